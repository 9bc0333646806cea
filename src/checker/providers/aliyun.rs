//! Aliyun / alipan (阿里云盘): `https://www.alipan.com/s/<share_id>` and
//! `https://www.aliyundrive.com/s/<share_id>` (with or without `www.`), also folder deep links
//! `/s/<share_id>/folder/<file_id>`: the id is the segment after `/s/`, not the last one.
//!
//! The check (`docs/providers.md` §3.7): `POST /adrive/v3/share_link/get_share_by_anonymous` with
//! `X-Canary` answers a share's name, file count and file list without a pass code. Errors are
//! `{"code":"Namespace.Reason"}` with HTTP 400/404; 429 (often with an empty body) is a rate
//! limit. A share with `has_pwd` is opened with `POST /v2/share_link/get_share_token` when a code
//! is known: `share_pwd is not valid` means a wrong code.

use serde::Deserialize;
use url::Url;

use super::{
    Parsed, host_in, is_share_id, non_json_answer, query_value, transport_failure, unlisted_code,
};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Expiry, Reason, State, Verdict};

/// Hosts of aliyun share links.
pub const SHARE_HOSTS: &[&str] = &[
    "www.alipan.com",
    "alipan.com",
    "www.aliyundrive.com",
    "aliyundrive.com",
];
/// The API origin the checker asks.
pub const API: &str = "https://api.aliyundrive.com";

const HEADERS: [(&str, &str); 3] = [
    ("origin", "https://www.alipan.com"),
    ("referer", "https://www.alipan.com/"),
    ("x-canary", "client=web,app=share,version=v2.3.1"),
];

/// The share id of an aliyun URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    let id = url.path().strip_prefix("/s/")?.split('/').next()?;
    is_share_id(id, 4, 64, b"").then(|| Parsed::id(id))
}

/// Asks aliyun about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let url = format!(
        "{API}/adrive/v3/share_link/get_share_by_anonymous?share_id={}",
        query_value(&share.id)
    );
    let body = serde_json::json!({ "share_id": share.id });
    let info = match client.post_json(&url, &HEADERS, &body).await {
        Ok(exchange) => info_outcome(exchange.status, &exchange.body),
        Err(err) => return transport_failure(&err),
    };
    let info = match info {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    if !info.has_pwd {
        return info.verdict;
    }
    let Some(code) = share.passcode.as_deref() else {
        let mut locked = info.verdict;
        locked.state = State::Locked;
        locked.reason = Reason::PasswordRequired;
        return locked;
    };
    let body = serde_json::json!({ "share_id": share.id, "share_pwd": code });
    match client
        .post_json(
            &format!("{API}/v2/share_link/get_share_token"),
            &HEADERS,
            &body,
        )
        .await
    {
        Ok(exchange) => token_verdict(exchange.status, &exchange.body, info.verdict),
        Err(err) => transport_failure(&err),
    }
}

/// What the anonymous step learned about a share that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The verdict on its content (valid, or empty), with name, count and expiry.
    pub verdict: Verdict,
    /// It is protected by a pass code.
    pub has_pwd: bool,
}

#[derive(Debug, Deserialize)]
struct Answer {
    code: Option<String>,
    share_name: Option<String>,
    share_title: Option<String>,
    file_count: Option<u64>,
    /// Only counted: each entry is skipped, not built.
    file_infos: Option<Vec<serde::de::IgnoredAny>>,
    expiration: Option<String>,
    has_pwd: Option<bool>,
    share_token: Option<String>,
}

/// The anonymous step: `Ok` when the share exists, else the final verdict.
pub fn info_outcome(status: u16, body: &[u8]) -> Result<Info, Verdict> {
    if status == 429 {
        return Err(Verdict::unknown(Reason::RateLimited, "HTTP 429".to_owned()));
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Err(non_json_answer(status));
    };
    if let Some(code) = answer.code.as_deref() {
        return Err(error_verdict(code, status));
    }
    let name = answer
        .share_name
        .or(answer.share_title)
        .filter(|n| !n.is_empty());
    let (Some(files), true) = (answer.file_infos, status == 200) else {
        return Err(Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("HTTP {status}"),
        ));
    };
    let (state, reason) = if !files.is_empty() {
        (State::Valid, Reason::AllChecksPassed)
    } else if name.is_some() || answer.file_count.is_some() {
        // A title with no files: the content was removed (or there never was any).
        (State::Invalid, Reason::EmptyShare)
    } else {
        return Err(Verdict::unknown(
            Reason::UnrecognizedResponse,
            "HTTP 200".to_owned(),
        ));
    };
    let mut verdict = Verdict::new(state, reason).with_code("HTTP 200".to_owned());
    verdict.file_count = answer.file_count.or(Some(files.len() as u64));
    if state == State::Invalid {
        verdict.file_count = Some(0);
    }
    verdict.share_name = name;
    verdict.expiry = match answer.expiration.as_deref().map(str::trim) {
        Some("") => Expiry::Permanent,
        Some(at) => crate::timefmt::parse_rfc3339_ms(at).map_or(Expiry::Unknown, Expiry::At),
        None => Expiry::Unknown,
    };
    Ok(Info {
        has_pwd: answer.has_pwd == Some(true) && state == State::Valid,
        verdict,
    })
}

/// The pass-code step, for a share the anonymous step found (`found`).
pub fn token_verdict(status: u16, body: &[u8], found: Verdict) -> Verdict {
    if String::from_utf8_lossy(body).contains("share_pwd is not valid") {
        return Verdict::new(State::Locked, Reason::PasswordWrong)
            .with_code(format!("HTTP {status}"));
    }
    if status == 429 {
        return Verdict::unknown(Reason::RateLimited, "HTTP 429".to_owned());
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return non_json_answer(status);
    };
    match (answer.share_token.filter(|t| !t.is_empty()), answer.code) {
        (Some(_), _) => found,
        (None, Some(code)) => error_verdict(&code, status),
        (None, None) => Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}")),
    }
}

/// Aliyun's error codes (`docs/providers.md` §3.7).
fn error_verdict(code: &str, status: u16) -> Verdict {
    let (state, reason) = match code {
        "ShareLink.Cancelled" => (State::Invalid, Reason::ShareCancelled),
        "ShareLink.Expired" => (State::Invalid, Reason::ShareExpired),
        "ShareLink.ContentInvalid" => (State::Invalid, Reason::ShareViolation),
        "NotFound.ShareLink" | "ShareLink.NotFound" | "NotFound.Drive" => {
            (State::Invalid, Reason::ShareNotFound)
        }
        // ParamFlowException: Alibaba Sentinel's hot-parameter flow limit, a rate limit.
        "TooManyRequests" | "ParamFlowException" => (State::Unknown, Reason::RateLimited),
        // ShareLink.Forbidden: "blocked" to one source, "exists but forbidden" to another.
        _ => unlisted_code(status),
    };
    Verdict::new(state, reason).with_code(code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{UrlCase, assert_urls};
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn url_table() {
        let cases: &[UrlCase] = &[
            (
                "https://www.alipan.com/s/qLVgamB72nu",
                Some(("qLVgamB72nu", None)),
            ),
            (
                "https://alipan.com/s/qLVgamB72nu",
                Some(("qLVgamB72nu", None)),
            ),
            (
                "https://www.aliyundrive.com/s/qLVgamB72nu",
                Some(("qLVgamB72nu", None)),
            ),
            (
                "https://aliyundrive.com/s/qLVgamB72nu",
                Some(("qLVgamB72nu", None)),
            ),
            (
                "https://www.alipan.com/s/qLVgamB72nu/folder/6412a6b1c2f3",
                Some(("qLVgamB72nu", None)),
            ),
            (
                "https://www.alipan.com/s/qLVgamB72nu?pwd=8x8x",
                Some(("qLVgamB72nu", Some("8x8x"))),
            ),
            (
                "https://www.aliyundrive.com/s/qLVgamB72nu?提取码:ab12",
                Some(("qLVgamB72nu", Some("ab12"))),
            ),
            (
                "https://www.alipan.com/s/qLVgamB72nu#pwd=zz11",
                Some(("qLVgamB72nu", Some("zz11"))),
            ),
            (
                "http://WWW.ALIPAN.COM/s/qLVgamB72nu/",
                Some(("qLVgamB72nu", None)),
            ),
            (
                "https://www.aliyundrive.com/s/qLVgamB72nu/folder/abc?password=7777",
                Some(("qLVgamB72nu", Some("7777"))),
            ),
            // Near misses.
            ("https://www.alipan.com/", None),
            ("https://www.alipan.com/s/", None),
            ("https://www.alipan.com/drive/file/all", None),
            ("https://www.alipan.com.example.com/s/qLVgamB72nu", None),
            ("https://api.aliyundrive.com/s/qLVgamB72nu", None),
            ("https://www.alipan.com/s/qLV-gam", None),
        ];
        assert_urls(Provider::Aliyun, cases);
    }

    const VALID: &str = r#"{"share_name":"T","share_title":"T","creator_id":"c","file_count":1,"expiration":"","updated_at":"2024-01-01T00:00:00.000Z","file_infos":[{"file_id":"f","file_name":"a","type":"file"}]}"#;

    #[test]
    fn anonymous_step() {
        let info = info_outcome(200, VALID.as_bytes()).unwrap();
        assert!(!info.has_pwd);
        let v = &info.verdict;
        assert_eq!((v.state, v.reason), (State::Valid, Reason::AllChecksPassed));
        assert_eq!(
            (v.share_name.as_deref(), v.file_count),
            (Some("T"), Some(1))
        );
        assert_eq!(v.expiry, Expiry::Permanent);
        let dated = VALID.replace(
            r#""expiration":"""#,
            r#""expiration":"2030-01-01T00:00:00.000Z""#,
        );
        assert_eq!(
            info_outcome(200, dated.as_bytes()).unwrap().verdict.expiry,
            Expiry::At(1_893_456_000_000)
        );
        let locked = VALID
            .replace(r#""vip""#, "")
            .replace(r#""creator_id""#, r#""has_pwd":true,"creator_id""#);
        assert!(info_outcome(200, locked.as_bytes()).unwrap().has_pwd);
        // Removed content: a title and a count, no files.
        let removed = info_outcome(
            200,
            br#"{"share_title":"T","file_count":3,"file_infos":[]}"#,
        )
        .unwrap();
        assert_eq!(
            (removed.verdict.state, removed.verdict.reason),
            (State::Invalid, Reason::EmptyShare)
        );
        let empty = info_outcome(200, br#"{"file_count":0,"file_infos":[]}"#).unwrap();
        assert_eq!(empty.verdict.reason, Reason::EmptyShare);
        // Drift: 200 with nothing of a share.
        assert_eq!(
            info_outcome(200, br#"{"x":1}"#).unwrap_err().state,
            State::Unknown
        );
        assert_eq!(
            info_outcome(200, br#"{"file_infos":[]}"#)
                .unwrap_err()
                .state,
            State::Unknown
        );
    }

    #[test]
    fn every_documented_code() {
        let cases = [
            (
                400,
                "ShareLink.Cancelled",
                State::Invalid,
                Reason::ShareCancelled,
            ),
            (
                400,
                "ShareLink.Expired",
                State::Invalid,
                Reason::ShareExpired,
            ),
            (
                400,
                "ShareLink.ContentInvalid",
                State::Invalid,
                Reason::ShareViolation,
            ),
            (
                404,
                "NotFound.ShareLink",
                State::Invalid,
                Reason::ShareNotFound,
            ),
            (
                404,
                "ShareLink.NotFound",
                State::Invalid,
                Reason::ShareNotFound,
            ),
            (404, "NotFound.Drive", State::Invalid, Reason::ShareNotFound),
            (
                400,
                "ShareLink.Forbidden",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                400,
                "Forbidden",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (429, "TooManyRequests", State::Unknown, Reason::RateLimited),
            // Reconstructed (the code's name is the evidence, no body is public); HTTP 200 or
            // 400 alike: the code decides.
            (
                400,
                "ParamFlowException",
                State::Unknown,
                Reason::RateLimited,
            ),
            (
                200,
                "ParamFlowException",
                State::Unknown,
                Reason::RateLimited,
            ),
            (
                401,
                "ShareLinkTokenInvalid",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                401,
                "AccessTokenInvalid",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
        ];
        for (status, code, state, reason) in cases {
            let body = format!(r#"{{"code":"{code}","message":"..."}}"#);
            let verdict = info_outcome(status, body.as_bytes()).unwrap_err();
            assert_eq!((verdict.state, verdict.reason), (state, reason), "{code}");
        }
        // 429 with an empty body.
        assert_eq!(
            info_outcome(429, b"").unwrap_err().reason,
            Reason::RateLimited
        );
        assert_eq!(
            info_outcome(200, b"<html></html>").unwrap_err().state,
            State::Unknown
        );
    }

    #[test]
    fn pass_code_step() {
        let found = || Verdict::new(State::Valid, Reason::AllChecksPassed);
        assert_eq!(
            token_verdict(
                200,
                br#"{"share_token":"tok","expire_time":"x","expires_in":7200}"#,
                found()
            )
            .state,
            State::Valid
        );
        let wrong = token_verdict(
            400,
            br#"{"code":"InvalidParameter.SharePwd","message":"share_pwd is not valid"}"#,
            found(),
        );
        assert_eq!(
            (wrong.state, wrong.reason),
            (State::Locked, Reason::PasswordWrong)
        );
        assert_eq!(token_verdict(429, b"", found()).reason, Reason::RateLimited);
        assert_eq!(token_verdict(200, br#"{}"#, found()).state, State::Unknown);
        assert_eq!(
            token_verdict(400, br#"{"code":"ShareLink.Cancelled"}"#, found()).reason,
            Reason::ShareCancelled
        );
    }
}
