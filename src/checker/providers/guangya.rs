//! 光鸭云盘 (guangya, xunlei's newer drive): `https://www.guangyapan.com/s/<share_id>` (also
//! `guangyapan.com` and `pan.guangyapan.com`), the pass code as `?code=` or beside the link;
//! the web app's `#/share…` route after it is ignored.
//!
//! The check (`docs/providers.md` §3.15) asks the two public share calls the web app makes before
//! a login is needed: `get_share_summary` (does the share exist) and `get_share_access_token`
//! (with the pass code). The body's `code` 404 on the summary is gone; 400 and 403 on the token
//! step want a pass code or refuse the one sent; a token is valid. Every other code is `unknown`.

use serde::Deserialize;
use serde_json::json;
use url::Url;

use super::{Parsed, host_under, is_share_id, json_int, non_json_answer, transport_failure};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Domains of guangya share links.
pub const SHARE_HOSTS: &[&str] = &["guangyapan.com"];
/// The share calls' base.
pub const API: &str = "https://api.guangyapan.com/nd.bizuserres.s/v1/";
const ORIGIN: &str = "https://www.guangyapan.com";
/// The web app's device header: 32 hex digits it makes up once per browser.
const DEVICE_ID: &str = "5f0c3a9e1b7d4c2a8e6f0b1d3c5a7e9f";

/// The share id of a guangya URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_under(url, SHARE_HOSTS)?;
    let id = url.path().strip_prefix("/s/")?.split('/').next()?;
    let mut parsed = Parsed::id(id);
    parsed.passcode = url
        .query_pairs()
        .find(|(name, _)| name == "code")
        .map(|(_, value)| value.into_owned())
        .filter(|v| !v.is_empty());
    is_share_id(id, 6, 80, b"-_").then_some(parsed)
}

/// Asks guangya about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let referer = format!("{ORIGIN}/");
    let headers = [
        ("accept", "application/json, text/plain, */*"),
        ("origin", ORIGIN),
        ("referer", referer.as_str()),
        ("did", DEVICE_ID),
        ("dt", "4"),
    ];
    let summary = match client
        .post_json(
            &format!("{API}get_share_summary"),
            &headers,
            &json!({"shareId": share.id}),
        )
        .await
    {
        Ok(answer) => summary_outcome(answer.status, &answer.body),
        Err(err) => return transport_failure(&err),
    };
    let title = match summary {
        Ok(title) => title,
        Err(verdict) => return verdict,
    };
    let body = json!({"shareId": share.id, "code": share.passcode.as_deref().unwrap_or("")});
    match client
        .post_json(&format!("{API}get_share_access_token"), &headers, &body)
        .await
    {
        Ok(answer) => token_verdict(answer.status, &answer.body, title, share.passcode.is_some()),
        Err(err) => transport_failure(&err),
    }
}

#[derive(Deserialize)]
struct Answer {
    code: Option<serde_json::Value>,
    data: Option<serde_json::Value>,
    access_token: Option<String>,
}

/// The summary's answer: the share's title if it exists, else the verdict.
fn summary_outcome(status: u16, body: &[u8]) -> Result<Option<String>, Verdict> {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Err(non_json_answer(status));
    };
    match (json_int(answer.code.as_ref()), answer.data) {
        (Some(0 | 200), Some(data)) if data.is_object() => Ok(data
            .get("title")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(str::to_owned)),
        (Some(404), _) => {
            Err(Verdict::new(State::Invalid, Reason::ShareNotFound)
                .with_code("code 404".to_owned()))
        }
        (Some(code), _) => Err(Verdict::unknown(
            Reason::ProviderUnverified,
            format!("code {code}"),
        )),
        (None, _) => Err(Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("HTTP {status}"),
        )),
    }
}

/// The token step's answer, for a share whose summary said `title`.
fn token_verdict(status: u16, body: &[u8], title: Option<String>, sent_passcode: bool) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return non_json_answer(status);
    };
    let data = answer.data.unwrap_or_default();
    let field = |name: &str| {
        data.get(name)
            .and_then(|v| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let token = answer
        .access_token
        .filter(|t| !t.is_empty())
        .or_else(|| field("accessToken"))
        .or_else(|| field("access_token"));
    let code = json_int(answer.code.as_ref());
    let (state, reason) = match (code, token) {
        (Some(0 | 200) | None, Some(_)) => {
            let mut verdict = Verdict::new(State::Valid, Reason::AllChecksPassed);
            verdict.share_name = title.or_else(|| field("shareName"));
            return verdict;
        }
        (Some(403), None) if sent_passcode => (State::Locked, Reason::PasswordWrong),
        (Some(400 | 403), None) if !sent_passcode => (State::Locked, Reason::PasswordRequired),
        (Some(_), _) => (State::Unknown, Reason::ProviderUnverified),
        (None, None) => (State::Unknown, Reason::UnrecognizedResponse),
    };
    let code = code.map_or_else(|| format!("HTTP {status}"), |c| format!("code {c}"));
    Verdict::new(state, reason).with_code(code)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::assert_urls;
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn url_table() {
        assert_urls(
            Provider::Guangya,
            &[
                (
                    "https://www.guangyapan.com/s/1926585463106830337_al8cmYXLP9l33ld2?code=iv5k#/share",
                    Some(("1926585463106830337_al8cmYXLP9l33ld2", Some("iv5k"))),
                ),
                (
                    "https://www.guangyapan.com/s/1917861858858889251_aeWVVxu726g3waa-#/share/1917856986679894069-x",
                    Some(("1917861858858889251_aeWVVxu726g3waa-", None)),
                ),
                (
                    "https://pan.guangyapan.com/s/share_123",
                    Some(("share_123", None)),
                ),
                ("https://guangyapan.com/s/abc", None),
                ("https://www.guangyapan.com/", None),
                ("https://guangyapan.com.example.net/s/share_123", None),
            ],
        );
    }

    #[test]
    fn the_summary_then_the_token() {
        let exists =
            r#"{"code":0,"msg":"success","data":{"title":"剧集","shareStatus":1}}"#.as_bytes();
        assert_eq!(
            summary_outcome(200, exists).unwrap().as_deref(),
            Some("剧集")
        );
        let gone =
            summary_outcome(200, r#"{"code":404,"msg":"分享不存在"}"#.as_bytes()).unwrap_err();
        assert_eq!(
            (gone.state, gone.reason),
            (State::Invalid, Reason::ShareNotFound)
        );
        let odd = summary_outcome(200, br#"{"code":500001,"msg":"x"}"#).unwrap_err();
        assert_eq!(
            (odd.state, odd.reason),
            (State::Unknown, Reason::ProviderUnverified)
        );
        assert_eq!(
            summary_outcome(429, b"slow down").unwrap_err().reason,
            Reason::RateLimited
        );
        let title = || Some("剧集".to_owned());
        let ok = token_verdict(
            200,
            br#"{"code":0,"data":{"accessToken":"t"}}"#,
            title(),
            false,
        );
        assert_eq!(
            (ok.state, ok.share_name.as_deref()),
            (State::Valid, Some("剧集"))
        );
        let ask = |code: &str, sent| {
            let body = format!(r#"{{"code":{code},"msg":"x"}}"#);
            let v = token_verdict(200, body.as_bytes(), title(), sent);
            (v.state, v.reason)
        };
        assert_eq!(ask("400", false), (State::Locked, Reason::PasswordRequired));
        assert_eq!(ask("403", false), (State::Locked, Reason::PasswordRequired));
        assert_eq!(ask("403", true), (State::Locked, Reason::PasswordWrong));
        // 400 with a code sent does not match what the source says 400 means.
        assert_eq!(
            ask("400", true),
            (State::Unknown, Reason::ProviderUnverified)
        );
        assert_eq!(
            ask("404", false),
            (State::Unknown, Reason::ProviderUnverified)
        );
        assert_eq!(
            token_verdict(200, br#"{"code":0,"data":{}}"#, title(), false).state,
            State::Unknown
        );
    }
}
