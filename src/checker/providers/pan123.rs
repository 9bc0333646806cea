//! 123pan (123云盘): `https://www.123pan.com/s/<key>` and its mirror domains (`123pan.cn`,
//! `www.123684.com`, `www.123865.com`, `www.123912.com`, …), and personal links
//! `https://<n>.share.123pan.cn/123pan/<key>`. Keys may hold `-` and `_`; a trailing `.html` is
//! dropped. The pass code comes as `?pwd=`, `?提取码:XXXX` or a bare `?XXXX`.
//!
//! The check (`docs/providers.md` §3.5): `GET /b/api/share/get` with `platform: web` and
//! `app-version: 3`, on the link's own host: each mirror is its own deployment. Links on
//! `www.123pan.com`, which some report as an SPA that answers every `/api` path with an HTML 404,
//! are asked again on `www.123912.com` when that happens; personal `*.share.123pan.cn` links are
//! asked on `www.123912.com`.
//!
//! `5103` is overloaded: `此分享不存在` means gone, `提取码错误` means it exists but the code is
//! missing or wrong. Any other message with `5103` decides nothing.

use serde::Deserialize;
use url::Url;

use super::{Parsed, is_share_id, non_json_answer, query_value, transport_failure, unlisted_code};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Hosts of 123pan share links (each also answers the API).
pub const SHARE_HOSTS: &[&str] = &[
    "www.123pan.com",
    "123pan.com",
    "www.123pan.cn",
    "123pan.cn",
    "www.123684.com",
    "www.123685.com",
    "www.123865.com",
    "www.123912.com",
    "www.123592.com",
    "www.123951.com",
    "123951.com",
    "www.123957.com",
    "123957.com",
];
/// The same hosts without `www.`, as links in the wild spell them (`docs/providers.md` §3.5); asked
/// on their `www.` name.
const BARE_HOSTS: &[(&str, &str)] = &[
    ("123684.com", "www.123684.com"),
    ("123685.com", "www.123685.com"),
    ("123865.com", "www.123865.com"),
    ("123912.com", "www.123912.com"),
    ("123592.com", "www.123592.com"),
];
/// Where links with no API host of their own are asked.
pub const FALLBACK_HOST: &str = "www.123912.com";
/// The suffix of personal share hosts (`<n>.share.123pan.cn`).
const PERSONAL_SUFFIX: &str = ".share.123pan.cn";

/// The share key of a 123pan URL, and the host to ask.
pub fn parse(url: &Url) -> Option<Parsed> {
    let host = url.host_str()?.to_ascii_lowercase();
    let (api_host, key) = if let Some(known) = SHARE_HOSTS.iter().find(|h| **h == host) {
        (*known, url.path().strip_prefix("/s/")?)
    } else if let Some((_, www)) = BARE_HOSTS.iter().find(|(bare, _)| *bare == host) {
        (*www, url.path().strip_prefix("/s/")?)
    } else if let Some(number) = host.strip_suffix(PERSONAL_SUFFIX) {
        if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        (FALLBACK_HOST, url.path().strip_prefix("/123pan/")?)
    } else {
        return None;
    };
    let key = key.split('/').next()?;
    let key = key.strip_suffix(".html").unwrap_or(key);
    if !is_share_id(key, 4, 64, b"-_") {
        return None;
    }
    Some(Parsed {
        id: key.to_owned(),
        passcode: bare_code(url),
        host: Some(api_host),
    })
}

/// A bare `?XXXX` query (four letters or digits, nothing else) is a pass code.
fn bare_code(url: &Url) -> Option<String> {
    let query = url.query()?;
    (query.len() == 4 && query.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| query.to_owned())
}

/// Asks 123pan about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let host = share.host.unwrap_or(FALLBACK_HOST);
    let verdict = ask(client, share, host).await;
    let spa_404 =
        verdict.provider_code.as_deref() == Some("HTTP 404") && verdict.state == State::Unknown;
    if spa_404 && host != FALLBACK_HOST {
        return ask(client, share, FALLBACK_HOST).await;
    }
    verdict
}

async fn ask(client: &UpstreamClient, share: &ShareRef, host: &str) -> Verdict {
    let origin = format!("https://{host}");
    let referer = format!("{origin}/");
    let url = format!(
        "{origin}/b/api/share/get?limit=100&next=0&orderBy=file_id&orderDirection=desc&shareKey={}&SharePwd={}&parentFileId=0&Page=1",
        query_value(&share.id),
        query_value(share.passcode.as_deref().unwrap_or(""))
    );
    let headers = [
        ("platform", "web"),
        ("app-version", "3"),
        ("origin", origin.as_str()),
        ("referer", referer.as_str()),
    ];
    match client.get(&url, &headers).await {
        Ok(exchange) => verdict(exchange.status, &exchange.body, share.passcode.is_some()),
        Err(err) => transport_failure(&err),
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    code: Option<i64>,
    message: Option<String>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Data {
    info_list: Option<Vec<FileEntry>>,
    next: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct FileEntry {
    file_name: Option<String>,
}

/// 123pan's code table. `has_passcode`: whether a pass code was sent.
pub fn verdict(status: u16, body: &[u8], has_passcode: bool) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return non_json_answer(status);
    };
    let Some(code) = answer.code else {
        return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
    };
    let raw = Some(code.to_string());
    let message = answer.message.as_deref().unwrap_or("");
    let (state, reason) = match code {
        0 => {
            let Some(list) = answer.data.and_then(|d| {
                let last_page = d.next.as_ref().is_some_and(|n| n == "-1" || n == -1);
                d.info_list.map(|l| (l, last_page))
            }) else {
                return Verdict::unknown(Reason::UnrecognizedResponse, raw);
            };
            let (list, last_page) = list;
            let mut verdict = if list.is_empty() {
                Verdict::new(State::Invalid, Reason::EmptyShare)
            } else {
                Verdict::new(State::Valid, Reason::AllChecksPassed)
            };
            verdict.provider_code = raw;
            // The list is paged: its length is the file count only on the last page.
            verdict.file_count = last_page.then_some(list.len() as u64);
            if list.len() == 1 {
                verdict.share_name = list[0].file_name.clone();
            }
            return verdict;
        }
        5103 if message.contains("此分享不存在") => (State::Invalid, Reason::ShareNotFound),
        5103 if message.contains("提取码错误") && has_passcode => {
            (State::Locked, Reason::PasswordWrong)
        }
        5103 if message.contains("提取码错误") => (State::Locked, Reason::PasswordRequired),
        // 分享链接已失效 and 分享页面不存在, with their messages (`docs/providers.md` §3.5).
        5104 if message.contains("失效") => (State::Invalid, Reason::ShareExpired),
        5107 if message.contains("不存在") => (State::Invalid, Reason::ShareNotFound),
        // ShareKey格式异常: 123pan does not take the key as one of its keys (a made-up or cut
        // key): nothing is known of a share.
        400 if message.contains("ShareKey") => (State::Unknown, Reason::InvalidUrl),
        // 50001, 404, 1001, 5113, and 5103 with another message: no source explains them.
        _ => unlisted_code(status),
    };
    Verdict::new(state, reason).with_code(raw)
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{UrlCase, assert_urls};
    use super::super::{Recognized, recognize};
    use super::*;
    use crate::checker::share::Provider;

    #[test]
    fn url_table() {
        let cases: &[UrlCase] = &[
            (
                "https://www.123pan.com/s/oec7Vv-OXIWh",
                Some(("oec7Vv-OXIWh", None)),
            ),
            (
                "https://www.123pan.com/s/oec7Vv-OXIWh.html",
                Some(("oec7Vv-OXIWh", None)),
            ),
            (
                "https://www.123pan.com/s/oec7Vv-OXIWh?pwd=JZMM",
                Some(("oec7Vv-OXIWh", Some("JZMM"))),
            ),
            (
                "https://www.123pan.com/s/oec7Vv-OXIWh?提取码:JZMM",
                Some(("oec7Vv-OXIWh", Some("JZMM"))),
            ),
            (
                "https://www.123pan.com/s/oec7Vv-OXIWh?%E6%8F%90%E5%8F%96%E7%A0%81:JZMM",
                Some(("oec7Vv-OXIWh", Some("JZMM"))),
            ),
            (
                "https://www.123pan.com/s/oec7Vv-OXIWh?ZY4K",
                Some(("oec7Vv-OXIWh", Some("ZY4K"))),
            ),
            ("https://123pan.cn/s/abCD-1234", Some(("abCD-1234", None))),
            (
                "https://www.123684.com/s/abCD_1234",
                Some(("abCD_1234", None)),
            ),
            (
                "https://www.123865.com/s/abCD-1234?pwd=a1b2",
                Some(("abCD-1234", Some("a1b2"))),
            ),
            (
                "https://www.123912.com/s/abCD-1234",
                Some(("abCD-1234", None)),
            ),
            (
                "https://www.123592.com/s/abCD-1234",
                Some(("abCD-1234", None)),
            ),
            ("https://123957.com/s/abCD-1234", Some(("abCD-1234", None))),
            (
                "https://123684.com/s/oec7Vv-61IWh?提取码:ZY4K",
                Some(("oec7Vv-61IWh", Some("ZY4K"))),
            ),
            (
                "https://123912.com/s/U8f2Td-X8OX",
                Some(("U8f2Td-X8OX", None)),
            ),
            (
                "https://123865.com/s/u9izjv-mISWv",
                Some(("u9izjv-mISWv", None)),
            ),
            (
                "https://1814435971.share.123pan.cn/123pan/abCD-1234",
                Some(("abCD-1234", None)),
            ),
            (
                "http://WWW.123PAN.COM/s/abCD-1234",
                Some(("abCD-1234", None)),
            ),
            // Near misses.
            ("https://www.123pan.com/", None),
            ("https://www.123pan.com/s/", None),
            ("https://www.123pan.com/x/abCD-1234", None),
            ("https://www.123pan.com/s/ab", None),
            ("https://evil.share.123pan.cn/123pan/abCD-1234", None),
            ("https://www.123pan.com.example.com/s/abCD-1234", None),
            ("https://www.123999.com/s/abCD-1234", None),
        ];
        assert_urls(Provider::Pan123, cases);
    }

    #[test]
    fn the_api_host_is_the_links_own_or_the_fallback() {
        let host = |text: &str| match recognize(text, None) {
            Recognized::Share(share) => share.host,
            _ => None,
        };
        assert_eq!(
            host("https://www.123684.com/s/abCD-1234"),
            Some("www.123684.com")
        );
        assert_eq!(host("https://123PAN.cn/s/abCD-1234"), Some("123pan.cn"));
        assert_eq!(
            host("https://123912.com/s/abCD-1234"),
            Some("www.123912.com")
        );
        assert_eq!(
            host("https://7.share.123pan.cn/123pan/abCD-1234"),
            Some(FALLBACK_HOST)
        );
    }

    #[test]
    fn code_table() {
        let v = |status: u16, body: &str, code: bool| {
            let verdict = verdict(status, body.as_bytes(), code);
            (verdict.state, verdict.reason)
        };
        let ok = verdict(
            200,
            br#"{"code":0,"message":"ok","data":{"InfoList":[{"FileName":"a","Size":1,"Type":0,"FileId":1}],"Next":"-1"}}"#,
            false,
        );
        assert_eq!(
            (ok.state, ok.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(
            (ok.file_count, ok.share_name.as_deref()),
            (Some(1), Some("a"))
        );
        assert_eq!(
            v(
                200,
                r#"{"code":0,"message":"ok","data":{"InfoList":[],"Next":"-1"}}"#,
                false
            ),
            (State::Invalid, Reason::EmptyShare)
        );
        assert_eq!(
            v(200, r#"{"code":0,"message":"ok","data":null}"#, false).0,
            State::Unknown
        );
        assert_eq!(
            v(
                200,
                r#"{"code":5103,"message":"此分享不存在","data":null}"#,
                false
            ),
            (State::Invalid, Reason::ShareNotFound)
        );
        // The drift guard: 5103 both ways.
        assert_eq!(
            v(
                200,
                r#"{"code":5103,"message":"提取码错误","data":null}"#,
                false
            ),
            (State::Locked, Reason::PasswordRequired)
        );
        assert_eq!(
            v(
                200,
                r#"{"code":5103,"message":"提取码错误","data":null}"#,
                true
            ),
            (State::Locked, Reason::PasswordWrong)
        );
        assert_eq!(
            v(
                200,
                r#"{"code":5103,"message":"分享链接异常","data":null}"#,
                false
            ),
            (State::Unknown, Reason::UnrecognizedResponse)
        );
        let answer = |code: i64, message: &str| {
            let body = format!(r#"{{"code":{code},"message":"{message}","data":null}}"#);
            v(200, &body, false)
        };
        // Verbatim: `{"code": 400, "message": "ShareKey格式异常", "data": null}` in a public
        // capture; 5104 and 5107 with the messages public checkers' tests give.
        assert_eq!(
            answer(5104, "分享链接已失效"),
            (State::Invalid, Reason::ShareExpired)
        );
        assert_eq!(
            answer(5107, "分享页面不存在"),
            (State::Invalid, Reason::ShareNotFound)
        );
        assert_eq!(
            answer(5104, "其他"),
            (State::Unknown, Reason::UnrecognizedResponse)
        );
        assert_eq!(
            answer(400, "ShareKey格式异常"),
            (State::Unknown, Reason::InvalidUrl)
        );
        for code in [50001, 404, 1001, 5113] {
            let body = format!(r#"{{"code":{code},"message":"ShareKey格式异常","data":null}}"#);
            assert_eq!(
                v(200, &body, false),
                (State::Unknown, Reason::UnrecognizedResponse),
                "{code}"
            );
        }
        assert_eq!(v(404, "<html>404</html>", false).0, State::Unknown);
        assert_eq!(v(429, "", false).1, Reason::RateLimited);
        assert_eq!(v(403, "<html>forbidden</html>", false).0, State::Unknown);
    }
}
