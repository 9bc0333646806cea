//! The provider adapters: one file per cloud drive, each owning its URL patterns, its request
//! sequence and its code table. This module recognizes a URL's provider and dispatches a check.
//!
//! Invariant: an adapter only ever contacts its provider's fixed API hosts, never a host taken from
//! the user's URL; and it returns `invalid` only for answers its code table knows to mean "gone".

pub mod aliyun;
pub mod baidu;
pub mod cmcc;
pub mod ctfile;
pub mod guangya;
pub mod lanzou;
pub mod onedrive;
pub mod pan115;
pub mod pan123;
pub mod pikpak;
pub mod quark;
pub mod tianyi;
pub mod uc;
pub mod weiyun;
pub mod xunlei;

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

/// What an adapter reads from one of its share URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The normalized share id.
    pub id: String,
    /// A pass code written into the link in the provider's own way (tianyi's `（访问码：…）`);
    /// the generic query, fragment and text forms are read by [`passcode::from_url`].
    pub passcode: Option<String>,
    /// [`ShareRef::host`].
    pub host: Option<&'static str>,
}

impl Parsed {
    /// A share id and nothing else.
    pub fn id(id: impl Into<String>) -> Parsed {
        Parsed {
            id: id.into(),
            passcode: None,
            host: None,
        }
    }
}

/// An adapter's URL parser.
type Parser = fn(&Url) -> Option<Parsed>;

/// Each provider's URL parser, in the order they are tried (their hosts do not overlap).
const PARSERS: [(Provider, Parser); 15] = [
    (Provider::Quark, quark::parse),
    (Provider::Uc, uc::parse),
    (Provider::Baidu, baidu::parse),
    (Provider::Tianyi, tianyi::parse),
    (Provider::Pan123, pan123::parse),
    (Provider::Pan115, pan115::parse),
    (Provider::Aliyun, aliyun::parse),
    (Provider::Xunlei, xunlei::parse),
    (Provider::Cmcc, cmcc::parse),
    (Provider::Lanzou, lanzou::parse),
    (Provider::Pikpak, pikpak::parse),
    (Provider::Ctfile, ctfile::parse),
    (Provider::Weiyun, weiyun::parse),
    (Provider::Onedrive, onedrive::parse),
    (Provider::Guangya, guangya::parse),
];

/// Recognizes a share URL. The pass code is the client's `passcode` if given, else one the
/// provider's URL form carries, else a generic `?pwd=` / `#password=` / `?提取码:` form.
pub fn recognize(text: &str, passcode: Option<&str>) -> Recognized {
    let Ok(url) = Url::parse(text.trim()) else {
        return Recognized::InvalidUrl;
    };
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Recognized::InvalidUrl;
    }
    let Some((provider, parsed)) = PARSERS
        .iter()
        .find_map(|(provider, parse)| parse(&url).map(|parsed| (*provider, parsed)))
    else {
        return Recognized::Unsupported;
    };
    let passcode = passcode
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .or(parsed.passcode)
        .or_else(|| passcode::from_url(&url));
    Recognized::Share(ShareRef {
        provider,
        id: parsed.id,
        passcode,
        host: parsed.host,
    })
}

/// Hosts of `provider`'s share links (for `/pool` metadata and docs).
pub fn share_hosts(provider: Provider) -> &'static [&'static str] {
    match provider {
        Provider::Quark => quark::SHARE_HOSTS,
        Provider::Uc => uc::SHARE_HOSTS,
        Provider::Baidu => baidu::SHARE_HOSTS,
        Provider::Tianyi => tianyi::SHARE_HOSTS,
        Provider::Pan123 => pan123::SHARE_HOSTS,
        Provider::Pan115 => pan115::SHARE_HOSTS,
        Provider::Aliyun => aliyun::SHARE_HOSTS,
        Provider::Xunlei => xunlei::SHARE_HOSTS,
        Provider::Cmcc => cmcc::SHARE_HOSTS,
        Provider::Lanzou => lanzou::SHARE_HOSTS,
        Provider::Pikpak => pikpak::SHARE_HOSTS,
        Provider::Ctfile => ctfile::SHARE_HOSTS,
        Provider::Weiyun => weiyun::SHARE_HOSTS,
        Provider::Onedrive => onedrive::SHARE_HOSTS,
        Provider::Guangya => guangya::SHARE_HOSTS,
    }
}

/// `host` as one of `provider`'s fixed share hosts (a stored [`ShareRef::host`] read back).
pub fn known_host(provider: Provider, host: &str) -> Option<&'static str> {
    share_hosts(provider).iter().find(|h| **h == host).copied()
}

/// The fixed host of `hosts` that `url` is on, if any (compared case-insensitively).
pub(crate) fn host_in(url: &Url, hosts: &'static [&'static str]) -> Option<&'static str> {
    let host = url.host_str()?;
    hosts.iter().find(|h| h.eq_ignore_ascii_case(host)).copied()
}

/// The domain of `bases` that `url`'s host is, or is a subdomain of (for drives whose links live
/// on per-user subdomains).
pub(crate) fn host_under(url: &Url, bases: &'static [&'static str]) -> Option<&'static str> {
    let host = url.host_str()?.to_ascii_lowercase();
    bases
        .iter()
        .find(|base| host == **base || host.strip_suffix(**base).is_some_and(|s| s.ends_with('.')))
        .copied()
}

/// A JSON integer that some APIs send as a number and others as a string.
pub(crate) fn json_int(value: Option<&serde_json::Value>) -> Option<i64> {
    match value? {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether `id` is `min..=max` bytes of ASCII letters, digits and `extra`.
pub(crate) fn is_share_id(id: &str, min: usize, max: usize, extra: &[u8]) -> bool {
    (min..=max).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// Asks the provider about `share` once (the engine decides about retries).
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let client = &client.for_provider(share.provider);
    match share.provider {
        Provider::Quark => quark::check(client, share).await,
        Provider::Uc => uc::check(client, share).await,
        Provider::Baidu => baidu::check(client, share).await,
        Provider::Tianyi => tianyi::check(client, share).await,
        Provider::Pan123 => pan123::check(client, share).await,
        Provider::Pan115 => pan115::check(client, share).await,
        Provider::Aliyun => aliyun::check(client, share).await,
        Provider::Xunlei => xunlei::check(client, share).await,
        Provider::Cmcc => cmcc::check(client, share).await,
        Provider::Lanzou => lanzou::check(client, share).await,
        Provider::Pikpak => pikpak::check(client, share).await,
        Provider::Ctfile => ctfile::check(client, share).await,
        Provider::Weiyun => weiyun::check(client, share).await,
        Provider::Onedrive => onedrive::check(client, share).await,
        Provider::Guangya => guangya::check(client, share).await,
    }
}

/// The verdict for an exchange that failed before an answer: never dead.
pub(crate) fn transport_failure(err: &UpstreamError) -> Verdict {
    match err {
        UpstreamError::Timeout => Verdict::unknown(Reason::Timeout, None),
        UpstreamError::BodyTooLarge(_) => Verdict::unknown(Reason::UnrecognizedResponse, None),
        UpstreamError::Unreachable(_) => Verdict::unknown(Reason::UpstreamUnreachable, None),
        UpstreamError::Connect(_) | UpstreamError::Broken(_) => {
            Verdict::unknown(Reason::UpstreamError, None)
        }
    }
}

/// The verdict for an answer whose body is not the provider's JSON: a rate limit (429), a
/// server error (5xx), or an unrecognised page; never dead.
pub(crate) fn non_json_answer(status: u16) -> Verdict {
    let (_, reason) = unlisted_code(status);
    Verdict::unknown(reason, format!("HTTP {status}"))
}

/// The outcome of a well-formed answer whose code a provider's table does not list: a rate limit
/// (HTTP 429), a server error (5xx), or unrecognized; never dead.
pub(crate) fn unlisted_code(status: u16) -> (State, Reason) {
    match status {
        429 => (State::Unknown, Reason::RateLimited),
        500..=599 => (State::Unknown, Reason::UpstreamError),
        _ => (State::Unknown, Reason::UnrecognizedResponse),
    }
}

/// Percent-encodes one query value.
pub(crate) fn query_value(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Helpers for the adapters' URL tables.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Recognized, recognize};
    use crate::checker::share::Provider;

    /// A URL and what it must be read as: `(id, pass code)`, or `None` when it must not match.
    pub type UrlCase = (&'static str, Option<(&'static str, Option<&'static str>)>);

    /// Every case of `cases` is recognized as `provider`'s share with that id and pass code, or
    /// (for `None`) not as a share of `provider`.
    pub fn assert_urls(provider: Provider, cases: &[UrlCase]) {
        for (text, expected) in cases {
            let got = match recognize(text, None) {
                Recognized::Share(share) if share.provider == provider => {
                    Some((share.id, share.passcode))
                }
                _ => None,
            };
            let expected = expected.map(|(id, code)| (id.to_owned(), code.map(str::to_owned)));
            assert_eq!(got, expected, "{text}");
        }
    }
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
            recognize("https://pan.quark.cn.evil.example/s/abc123", None),
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
