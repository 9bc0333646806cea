//! The provider adapters: one file per cloud drive, each owning its URL patterns, its request
//! sequence and its code table. This module recognizes a URL's provider and dispatches a check.
//!
//! Implemented so far: quark and baidu. Links of the other seven drives are reported as
//! `unsupported_provider` until their adapters land (issue 4).
//!
//! Invariant: an adapter only ever contacts its provider's fixed API hosts, never a host taken from
//! the user's URL; and it returns `invalid` only for answers its code table knows to mean "gone".

pub mod baidu;
pub mod quark;

use url::Url;

use super::client::{UpstreamClient, UpstreamError};
use super::passcode;
use super::share::{Provider, ShareRef};
use super::verdict::{Reason, State, Verdict};

/// What a URL is to the checker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recognized {
    Share(ShareRef),
    /// A well-formed http(s) URL of no supported provider.
    Unsupported,
    /// Not an absolute http(s) URL.
    InvalidUrl,
}

/// Recognizes a share URL; `passcode` (from the client) wins over one found in the URL.
pub fn recognize(text: &str, passcode: Option<&str>) -> Recognized {
    let Ok(url) = Url::parse(text.trim()) else {
        return Recognized::InvalidUrl;
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Recognized::InvalidUrl;
    }
    let found = quark::parse(&url)
        .map(|id| (Provider::Quark, id))
        .or_else(|| baidu::parse(&url).map(|id| (Provider::Baidu, id)));
    match found {
        Some((provider, id)) => Recognized::Share(ShareRef {
            provider,
            id,
            passcode: passcode
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .or_else(|| passcode::from_url(&url)),
        }),
        None => Recognized::Unsupported,
    }
}

/// Whether checks of `provider` are implemented.
pub fn is_supported(provider: Provider) -> bool {
    matches!(provider, Provider::Quark | Provider::Baidu)
}

/// Hosts of `provider`'s share links (for `/pool` metadata and docs).
pub fn share_hosts(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Quark => quark::SHARE_HOSTS,
        Provider::Baidu => baidu::SHARE_HOSTS,
        Provider::Uc => &["drive.uc.cn"],
        Provider::Tianyi => &["cloud.189.cn", "h5.cloud.189.cn"],
        Provider::Pan123 => &[
            "www.123pan.com",
            "123pan.cn",
            "www.123684.com",
            "www.123912.com",
        ],
        Provider::Pan115 => &["115.com", "115cdn.com", "anxia.com"],
        Provider::Aliyun => &["www.alipan.com", "www.aliyundrive.com"],
        Provider::Xunlei => &["pan.xunlei.com"],
        Provider::Cmcc => &["caiyun.139.com", "yun.139.com"],
    }
}

/// Asks the provider about `share` once (the engine decides about retries).
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let client = &client.for_provider(share.provider);
    match share.provider {
        Provider::Quark => quark::check(client, share).await,
        Provider::Baidu => baidu::check(client, share).await,
        _ => Verdict::new(State::Unknown, Reason::UnsupportedProvider),
    }
}

/// The verdict for an exchange that failed before an answer: never dead.
pub(crate) fn transport_failure(err: &UpstreamError) -> Verdict {
    match err {
        UpstreamError::Timeout => Verdict::unknown(Reason::Timeout, None),
        UpstreamError::BodyTooLarge(_) => Verdict::unknown(Reason::UnrecognizedResponse, None),
        UpstreamError::Connect(_) | UpstreamError::Broken(_) => {
            Verdict::unknown(Reason::UpstreamError, None)
        }
    }
}

/// The verdict for an answer whose body is not the provider's JSON: a rate limit (429), a
/// server error (5xx), or an unrecognised page; never dead.
pub(crate) fn non_json_answer(status: u16) -> Verdict {
    let code = Some(format!("HTTP {status}"));
    match status {
        429 => Verdict::unknown(Reason::RateLimited, code),
        500..=599 => Verdict::unknown(Reason::UpstreamError, code),
        _ => Verdict::unknown(Reason::UnrecognizedResponse, code),
    }
}

/// Percent-encodes one query value.
pub(crate) fn query_value(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognition_and_passcode_priority() {
        let Recognized::Share(share) =
            recognize("https://pan.quark.cn/s/39749e1fb630?pwd=ab12", None)
        else {
            panic!("quark not recognized");
        };
        assert_eq!(share.provider, Provider::Quark);
        assert_eq!(share.passcode.as_deref(), Some("ab12"));
        let Recognized::Share(share) =
            recognize("https://pan.quark.cn/s/39749e1fb630?pwd=ab12", Some("zz99"))
        else {
            panic!();
        };
        assert_eq!(
            share.passcode.as_deref(),
            Some("zz99"),
            "the client's pass code wins"
        );
        assert_eq!(
            recognize("https://example.com/s/abc", None),
            Recognized::Unsupported
        );
        assert_eq!(recognize("not a url", None), Recognized::InvalidUrl);
        assert_eq!(
            recognize("ftp://pan.quark.cn/s/abc", None),
            Recognized::InvalidUrl
        );
        assert_eq!(
            recognize("https://drive.uc.cn/s/abc", None),
            Recognized::Unsupported
        );
    }

    #[test]
    fn non_json_answers_are_never_dead() {
        assert_eq!(non_json_answer(429).reason, Reason::RateLimited);
        assert_eq!(non_json_answer(502).reason, Reason::UpstreamError);
        assert_eq!(non_json_answer(200).reason, Reason::UnrecognizedResponse);
        for status in [200, 403, 404, 429, 500] {
            assert_eq!(non_json_answer(status).state, State::Unknown);
        }
        assert_eq!(
            transport_failure(&UpstreamError::Timeout).reason,
            Reason::Timeout
        );
    }
}
