//! 115 (115网盘): `https://115.com/s/<code>`, `https://115cdn.com/s/<code>` and
//! `https://anxia.com/s/<code>`; the receive code as `?password=xxxx` or in the fragment.
//!
//! The check (`docs/providers.md` §3.6): `GET https://115cdn.com/webapi/share/snap`. Errors come as
//! `state:false` with an `errno`. A `state:true` answer is valid **only** with `share_state == 1`:
//! an expired share answers `state:true` with `share_state 7` and a non-empty list, so the list
//! alone proves nothing.

use serde::Deserialize;
use url::Url;

use super::{
    Parsed, host_in, is_share_id, json_int, non_json_answer, query_value, transport_failure,
    unlisted_code,
};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Expiry, Reason, State, Verdict};

/// Hosts of 115 share links.
pub const SHARE_HOSTS: &[&str] = &[
    "115.com",
    "www.115.com",
    "115cdn.com",
    "www.115cdn.com",
    "anxia.com",
    "www.anxia.com",
];
/// The API the checker asks.
pub const API: &str = "https://115cdn.com/webapi/share/snap";

/// The share code of a 115 URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    let code = url.path().strip_prefix("/s/")?.split('/').next()?;
    is_share_id(code, 4, 32, b"").then(|| Parsed::id(code))
}

/// Asks 115 about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let code = share.passcode.as_deref().unwrap_or("");
    let url = format!(
        "{API}?share_code={}&offset=0&limit=20&receive_code={}&cid=",
        query_value(&share.id),
        query_value(code)
    );
    let referer = format!(
        "https://115cdn.com/s/{}?password={}&",
        share.id,
        query_value(code)
    );
    let headers = [
        ("referer", referer.as_str()),
        ("x-requested-with", "XMLHttpRequest"),
        ("accept", "application/json, text/javascript, */*; q=0.01"),
    ];
    match client.get(&url, &headers).await {
        Ok(exchange) => verdict(exchange.status, &exchange.body, share.passcode.is_some()),
        Err(err) => transport_failure(&err),
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    state: Option<bool>,
    errno: Option<serde_json::Value>,
    /// An object on success; errors may send `[]` or nothing.
    data: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Data {
    share_state: Option<i64>,
    shareinfo: Option<ShareInfo>,
    count: Option<u64>,
    list: Option<Vec<FileEntry>>,
}

#[derive(Debug, Deserialize)]
struct ShareInfo {
    share_state: Option<i64>,
    share_title: Option<String>,
    expire_time: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct FileEntry {
    n: Option<String>,
}

/// 115's code table. `has_passcode`: whether a receive code was sent.
pub fn verdict(status: u16, body: &[u8], has_passcode: bool) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return non_json_answer(status);
    };
    let errno = json_int(answer.errno.as_ref());
    match answer.state {
        Some(true) => snap_verdict(
            answer
                .data
                .filter(serde_json::Value::is_object)
                .and_then(|data| serde_json::from_value(data).ok()),
        ),
        Some(false) => {
            let Some(errno) = errno else {
                return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
            };
            let (state, reason) = match errno {
                4_100_012 => (State::Locked, Reason::PasswordRequired),
                // A wrong code is not a dead link.
                4_100_008 if has_passcode => (State::Locked, Reason::PasswordWrong),
                4_100_008 => (State::Locked, Reason::PasswordRequired),
                4_100_010 => (State::Invalid, Reason::ShareCancelled),
                4_100_033 => (State::Invalid, Reason::ShareViolation),
                // 990002 参数错误: said of unknown share codes, but also of any malformed request;
                // 990001 needs login; 4100004/4100009/4100034: meanings unsure.
                _ => unlisted_code(status),
            };
            Verdict::new(state, reason).with_code(errno.to_string())
        }
        None => Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}")),
    }
}

/// A `state:true` answer: the share's state decides, not its list.
fn snap_verdict(data: Option<Data>) -> Verdict {
    let Some(data) = data else {
        return Verdict::unknown(Reason::UnrecognizedResponse, "state:true".to_owned());
    };
    let info = data.shareinfo;
    let share_state = data
        .share_state
        .or_else(|| info.as_ref().and_then(|i| i.share_state));
    let code = Some(format!(
        "share_state {}",
        share_state.map_or("?".to_owned(), |s| s.to_string())
    ));
    let (state, reason) = match share_state {
        Some(1) => (State::Valid, Reason::AllChecksPassed),
        Some(7) => (State::Invalid, Reason::ShareExpired),
        Some(0 | 8) => (State::Unknown, Reason::UnderReview),
        // 2–6 (copyright, porn, cancelled, deleted, violence by one client's labels) and the
        // rest: not confirmed; never dead on a guess.
        _ => (State::Unknown, Reason::UnrecognizedResponse),
    };
    let title = info
        .as_ref()
        .and_then(|i| i.share_title.clone())
        .filter(|t| !t.is_empty())
        .or_else(|| {
            data.list
                .as_ref()
                .and_then(|l| l.first())
                .and_then(|f| f.n.clone())
        });
    let files = data.count.or(data.list.as_ref().map(|l| l.len() as u64));
    let mut verdict = Verdict::new(state, reason).with_code(code);
    if state == State::Valid && files == Some(0) {
        verdict.state = State::Invalid;
        verdict.reason = Reason::EmptyShare;
    }
    verdict.share_name = title;
    verdict.file_count = files;
    verdict.expiry = match info.as_ref().and_then(|i| i.expire_time) {
        Some(-1) => Expiry::Permanent,
        // Seconds; a value already in milliseconds is taken as such.
        Some(t) if t > 100_000_000_000 => Expiry::At(t.unsigned_abs()),
        Some(t) if t > 0 => Expiry::At(t.unsigned_abs() * 1000),
        _ => Expiry::Unknown,
    };
    verdict
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{UrlCase, assert_urls};
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn url_table() {
        let cases: &[UrlCase] = &[
            ("https://115.com/s/swfsfjg3h7i", Some(("swfsfjg3h7i", None))),
            (
                "https://115.com/s/swfsfjg3h7i?password=ab12",
                Some(("swfsfjg3h7i", Some("ab12"))),
            ),
            (
                "https://115.com/s/swfsfjg3h7i?password=ab12#",
                Some(("swfsfjg3h7i", Some("ab12"))),
            ),
            (
                "https://115.com/s/swfsfjg3h7i#password=cd34",
                Some(("swfsfjg3h7i", Some("cd34"))),
            ),
            (
                "https://115.com/s/swfsfjg3h7i#\n资源?password=cd34",
                Some(("swfsfjg3h7i", Some("cd34"))),
            ),
            (
                "https://115cdn.com/s/swfsfjg3h7i?password=ab12&",
                Some(("swfsfjg3h7i", Some("ab12"))),
            ),
            (
                "https://www.115cdn.com/s/swfsfjg3h7i",
                Some(("swfsfjg3h7i", None)),
            ),
            (
                "https://anxia.com/s/swfsfjg3h7i?password=ab12",
                Some(("swfsfjg3h7i", Some("ab12"))),
            ),
            (
                "https://115.com/s/swfsfjg3h7i?提取码:zz99",
                Some(("swfsfjg3h7i", Some("zz99"))),
            ),
            ("http://115.COM/s/swfsfjg3h7i/", Some(("swfsfjg3h7i", None))),
            // Near misses.
            ("https://115.com/", None),
            ("https://115.com/s/", None),
            ("https://115.com/?cid=0&offset=0", None),
            ("https://115.com.example.com/s/swfsfjg3h7i", None),
            ("https://115.com/s/bad-code!", None),
            ("https://webapi.115.com/s/swfsfjg3h7i", None),
        ];
        assert_urls(Provider::Pan115, cases);
    }

    fn v(body: &str, passcode: bool) -> (State, Reason) {
        let verdict = verdict(200, body.as_bytes(), passcode);
        (verdict.state, verdict.reason)
    }

    #[test]
    fn valid_share_with_title_count_and_expiry() {
        let verdict = verdict(
            200,
            r#"{"state":true,"error":"","errno":0,"data":{"shareinfo":{"share_state":1,"share_title":"T","forbid_reason":"","expire_time":-1},"share_state":1,"count":1,"list":[{"n":"a.mkv","s":1,"fid":"1","cid":"2"}]}}"#.as_bytes(),
            false,
        );
        assert_eq!(
            (verdict.state, verdict.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(verdict.share_name.as_deref(), Some("T"));
        assert_eq!(verdict.file_count, Some(1));
        assert_eq!(verdict.expiry, Expiry::Permanent);
        let dated = verdict_expiry(r#""expire_time":1900000000"#);
        assert_eq!(dated, Expiry::At(1_900_000_000_000));
    }

    fn verdict_expiry(field: &str) -> Expiry {
        let body = format!(
            r#"{{"state":true,"errno":0,"data":{{"shareinfo":{{"share_state":1,"share_title":"T",{field}}},"share_state":1,"count":2,"list":[{{"n":"a"}}]}}}}"#
        );
        verdict(200, body.as_bytes(), false).expiry
    }

    #[test]
    fn drift_guard_state_true_is_not_enough() {
        // PanSou #147: expired, state:true, errno 0, a non-empty list.
        assert_eq!(
            v(
                r#"{"state":true,"errno":0,"data":{"share_state":7,"shareinfo":{"forbid_reason":"链接已过期"},"count":1,"list":[{"n":"x"}]}}"#,
                false
            ),
            (State::Invalid, Reason::ShareExpired)
        );
        // share_state only inside shareinfo.
        assert_eq!(
            v(
                r#"{"state":true,"errno":0,"data":{"shareinfo":{"share_state":7},"count":1,"list":[{"n":"x"}]}}"#,
                false
            ),
            (State::Invalid, Reason::ShareExpired)
        );
        assert_eq!(
            v(
                r#"{"state":true,"errno":0,"data":{"count":1,"list":[{"n":"x"}]}}"#,
                false
            ),
            (State::Unknown, Reason::UnrecognizedResponse)
        );
        for share_state in [0, 8] {
            let body = format!(
                r#"{{"state":true,"errno":0,"data":{{"share_state":{share_state},"count":1,"list":[]}}}}"#
            );
            assert_eq!(v(&body, false), (State::Unknown, Reason::UnderReview));
        }
        for share_state in [2, 3, 4, 5, 6, 9] {
            let body = format!(
                r#"{{"state":true,"errno":0,"data":{{"share_state":{share_state},"count":1,"list":[]}}}}"#
            );
            assert_eq!(v(&body, false).0, State::Unknown, "{share_state}");
        }
        // The "empty share" fixture: state 1 and nothing in it.
        assert_eq!(
            v(
                r#"{"state":true,"errno":0,"data":{"shareinfo":{"share_state":1,"share_title":"空分享","forbid_reason":"","file_size":0,"has_receive_code":1,"have_vio_file":0,"share_duration":-1,"expire_time":-1},"share_state":1,"count":0,"list":[]}}"#,
                false
            ),
            (State::Invalid, Reason::EmptyShare)
        );
    }

    #[test]
    fn every_documented_errno() {
        let cases = [
            (
                r#"{"state":false,"error":"请输入访问码","errno":4100012}"#,
                false,
                State::Locked,
                Reason::PasswordRequired,
            ),
            (
                r#"{"state":false,"error":"访问码错误","errno":4100008}"#,
                true,
                State::Locked,
                Reason::PasswordWrong,
            ),
            (
                r#"{"state":false,"error":"分享已取消","errno":4100010}"#,
                false,
                State::Invalid,
                Reason::ShareCancelled,
            ),
            (
                r#"{"state":false,"error":"涉嫌违规，链接已失效","errno":4100033}"#,
                false,
                State::Invalid,
                Reason::ShareViolation,
            ),
            (
                r#"{"state":false,"error":"参数错误。","errno":990002}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"state":false,"error":"请先登录","errno":990001}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"state":false,"error":"","errno":4100034}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"state":false,"error":"","errno":4100004}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"state":false,"error":"","errno":4100009}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"state":false,"error":"分享已取消","errno":"4100010"}"#,
                false,
                State::Invalid,
                Reason::ShareCancelled,
            ),
            (
                r#"{"state":false,"error":"分享已取消"}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"state":false,"error":"分享已取消","errno":4100010,"data":[]}"#,
                false,
                State::Invalid,
                Reason::ShareCancelled,
            ),
        ];
        for (body, passcode, state, reason) in cases {
            assert_eq!(v(body, passcode), (state, reason), "{body}");
        }
        assert_eq!(
            verdict(200, b"<html>115</html>", false).state,
            State::Unknown
        );
        assert_eq!(verdict(429, b"", false).reason, Reason::RateLimited);
    }
}
