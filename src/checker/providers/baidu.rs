//! Baidu (百度网盘): `https://pan.baidu.com/s/1<surl>` (`?pwd=`), `…/share/init?surl=<surl>`, and the
//! `yun.baidu.com` alias. The id is kept without the leading `1`. Old links,
//! `…/share/link?shareid=<n>&uk=<n>`, have no surl: their id is `<shareid>.<uk>` and they are
//! asked with `GET /share/list?shareid=&uk=` alone (a dot is never part of a surl).
//!
//! The check (`docs/providers.md` §3.3): a cookie warm-up (`GET /` gives `BAIDUID`; without it the API
//! answers with a redirect to an anti-bot page; the cookie is kept across checks and fetched again
//! after such a redirect), then
//! - with a pass code: `POST /share/verify` (its `randsk` becomes the `BDCLND` cookie);
//! - without one: `GET /api/shorturlinfo`, where `-21` means the share does not exist and `-9`
//!   means it is locked, which says nothing about whether it still exists;
//!
//! then `GET /share/list` for the file list (empty → dead), the title and the final codes.

use serde::Deserialize;
use url::Url;

use super::{Parsed, host_in, is_share_id, non_json_answer, query_value, transport_failure};
use crate::checker::client::{Exchange, UpstreamClient};
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Expiry, Reason, State, Verdict};

/// Hosts of baidu share links.
pub const SHARE_HOSTS: &[&str] = &["pan.baidu.com", "yun.baidu.com"];
/// The API origin the checker asks.
pub const ORIGIN: &str = "https://pan.baidu.com";

/// The share id of a baidu URL, without the leading `1` of `/s/1…`.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    let id = if let Some(rest) = url.path().strip_prefix("/s/") {
        rest.split('/').next()?.strip_prefix('1')?.to_owned()
    } else if url.path() == "/share/link"
        && let Some(old) = old_link_id(url)
    {
        return Some(Parsed::id(old));
    } else if url.path() == "/share/init" || url.path() == "/share/link" {
        url.query_pairs()
            .find(|(k, _)| k == "surl")
            .map(|(_, v)| v.into_owned())?
    } else {
        return None;
    };
    is_share_id(&id, 4, 64, b"_-").then(|| Parsed::id(id))
}

/// `<shareid>.<uk>` of an old `share/link?shareid=&uk=` link (both all digits).
fn old_link_id(url: &Url) -> Option<String> {
    let value = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .filter(|v| (1..=20).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit()))
    };
    Some(format!("{}.{}", value("shareid")?, value("uk")?))
}

/// Asks baidu about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let share_url = match share.id.split_once('.') {
        Some((shareid, uk)) => format!("{ORIGIN}/share/link?shareid={shareid}&uk={uk}"),
        None => format!("{ORIGIN}/s/1{}", share.id),
    };
    // The BAIDUID cookie is kept across checks, as a browser keeps it; one warm-up fetches it.
    let warm_up = || async {
        let exchange = client.get(&format!("{ORIGIN}/"), &[]).await.ok()?;
        exchange.cookie("BAIDUID").map(|cookie| (cookie, None))
    };
    let baiduid = client.session(SESSION_COOKIE, warm_up).await;
    let mut cookie = baiduid.map(|v| format!("BAIDUID={v}")).unwrap_or_default();
    // A logged-in cookie (`checker.cookies`) gets past -64, which locks anonymous checks of a
    // share after too many pass-code tries.
    if let Some(login) = client.login_cookie() {
        if !cookie.is_empty() {
            cookie.push_str("; ");
        }
        cookie.push_str(login);
    }
    let verdict = check_with_cookie(client, share, &share_url, &mut cookie).await;
    if verdict
        .provider_code
        .as_deref()
        .is_some_and(|c| c.starts_with("HTTP 3"))
    {
        // The anti-bot redirect: the cookie is no longer good; the next attempt warms up again.
        client.forget_session(SESSION_COOKIE);
    }
    verdict
}

/// The name under which the BAIDUID cookie is kept in the client's sessions.
const SESSION_COOKIE: &str = "baidu.BAIDUID";

async fn check_with_cookie(
    client: &UpstreamClient,
    share: &ShareRef,
    share_url: &str,
    cookie: &mut String,
) -> Verdict {
    // An old link has no surl for verify or shorturlinfo: the list answers alone (with a pass
    // code it can only say locked).
    if let Some((shareid, uk)) = share.id.split_once('.') {
        return list_step(
            client,
            &format!("shareid={shareid}&uk={uk}"),
            share_url,
            cookie,
        )
        .await;
    }
    match share.passcode.as_deref() {
        Some(passcode) => {
            let url = format!(
                "{ORIGIN}/share/verify?surl={}&t={}&channel=chunlei&web=1&app_id=250528&clienttype=0",
                query_value(&share.id),
                crate::timefmt::now_ms()
            );
            let headers = [("referer", share_url), ("cookie", cookie.as_str())];
            let form = [("pwd", passcode), ("vcode", ""), ("vcode_str", "")];
            let randsk = match client.post_form(&url, &headers, &form).await {
                Ok(exchange) => verify_outcome(&exchange),
                Err(err) => return transport_failure(&err),
            };
            match randsk {
                Ok(randsk) => {
                    if !cookie.is_empty() {
                        cookie.push_str("; ");
                    }
                    cookie.push_str("BDCLND=");
                    cookie.push_str(&randsk);
                }
                Err(verdict) => return verdict,
            }
        }
        None => {
            let url = format!(
                "{ORIGIN}/api/shorturlinfo?app_id=250528&web=1&channel=chunlei&clienttype=0&shorturl=1{}",
                query_value(&share.id)
            );
            let headers = [("referer", share_url), ("cookie", cookie.as_str())];
            match client.get(&url, &headers).await {
                Ok(exchange) => {
                    if let Err(verdict) = shorturlinfo_outcome(exchange.status, &exchange.body) {
                        return verdict;
                    }
                }
                Err(err) => return transport_failure(&err),
            }
        }
    }

    list_step(
        client,
        &format!("shorturl={}", query_value(&share.id)),
        share_url,
        cookie,
    )
    .await
}

/// `GET /share/list` for the share named by `which` (`shorturl=…` or `shareid=…&uk=…`).
async fn list_step(client: &UpstreamClient, which: &str, share_url: &str, cookie: &str) -> Verdict {
    let url = format!(
        "{ORIGIN}/share/list?web=5&app_id=250528&desc=1&showempty=0&page=1&num=20&order=time&{which}&root=1&view_mode=1&channel=chunlei&clienttype=0"
    );
    let headers = [
        ("referer", share_url),
        ("cookie", cookie),
        ("accept", "application/json, text/plain, */*"),
    ];
    match client.get(&url, &headers).await {
        Ok(exchange) => list_verdict(exchange.status, &exchange.body),
        Err(err) => transport_failure(&err),
    }
}

#[derive(Debug, Deserialize)]
struct Answer {
    errno: Option<i64>,
    randsk: Option<String>,
    title: Option<String>,
    list: Option<Vec<ListEntry>>,
}

#[derive(Debug, Deserialize)]
struct ListEntry {
    server_filename: Option<String>,
}

fn parse_answer(status: u16, body: &[u8]) -> Result<(i64, Answer), Verdict> {
    // A redirect is baidu's anti-bot answer: risk control, not a verdict.
    if (300..400).contains(&status) {
        return Err(Verdict::unknown(
            Reason::RateLimited,
            format!("HTTP {status}"),
        ));
    }
    let Ok(answer) = serde_json::from_slice::<Answer>(body) else {
        return Err(non_json_answer(status));
    };
    match answer.errno {
        Some(errno) => Ok((errno, answer)),
        None => Err(Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("HTTP {status}"),
        )),
    }
}

/// The shorturlinfo step: `Ok` when the share is public and exists.
pub fn shorturlinfo_outcome(status: u16, body: &[u8]) -> Result<(), Verdict> {
    let (errno, _) = parse_answer(status, body)?;
    let (state, reason) = match errno {
        0 => return Ok(()),
        -21 => (State::Invalid, Reason::ShareNotFound),
        // Locked, and a locked share may be dead or alive: not a verdict on existence.
        -9 => (State::Unknown, Reason::PasswordRequired),
        RATE_LIMITED_62 | RATE_LIMITED_64 | RATE_LIMITED_65 => {
            (State::Unknown, Reason::RateLimited)
        }
        _ => (State::Unknown, Reason::UnrecognizedResponse),
    };
    Err(Verdict::new(state, reason).with_code(errno.to_string()))
}

/// The verify step: the `randsk` to send as `BDCLND` when the pass code was accepted.
pub fn verify_outcome(exchange: &Exchange) -> Result<String, Verdict> {
    let (errno, answer) = parse_answer(exchange.status, &exchange.body)?;
    let (state, reason) = match errno {
        0 => {
            return answer
                .randsk
                .filter(|r| !r.is_empty())
                .or_else(|| exchange.cookie("BDCLND"))
                .ok_or_else(|| Verdict::unknown(Reason::UnrecognizedResponse, "0".to_owned()));
        }
        -9 => (State::Locked, Reason::PasswordWrong),
        -12 => (State::Locked, Reason::PasswordRequired),
        RATE_LIMITED_62 | RATE_LIMITED_64 | RATE_LIMITED_65 => {
            (State::Unknown, Reason::RateLimited)
        }
        _ => (State::Unknown, Reason::UnrecognizedResponse),
    };
    Err(Verdict::new(state, reason).with_code(errno.to_string()))
}

/// `-62`: a captcha is wanted (too many requests).
const RATE_LIMITED_62: i64 = -62;
/// `-64`: too many tries of pass codes on this share; a logged-in cookie gets past it, a proxy
/// does not (`docs/providers.md` §3.3).
const RATE_LIMITED_64: i64 = -64;
/// `-65`: the account's or address's request frequency limit.
const RATE_LIMITED_65: i64 = -65;

/// The list step's verdict.
pub fn list_verdict(status: u16, body: &[u8]) -> Verdict {
    let (errno, answer) = match parse_answer(status, body) {
        Ok(parsed) => parsed,
        Err(verdict) => return verdict,
    };
    let code = Some(errno.to_string());
    let (state, reason) = match errno {
        0 => {
            let Some(list) = answer.list else {
                return Verdict::unknown(Reason::UnrecognizedResponse, code);
            };
            let name = answer
                .title
                .map(|t| t.trim_matches('/').to_owned())
                .filter(|t| !t.is_empty())
                .or_else(|| list.first().and_then(|e| e.server_filename.clone()));
            let (state, reason) = if list.is_empty() {
                (State::Invalid, Reason::EmptyShare)
            } else {
                (State::Valid, Reason::AllChecksPassed)
            };
            return Verdict {
                state,
                reason,
                share_name: name,
                file_count: Some(list.len() as u64),
                expiry: Expiry::Unknown,
                provider_code: code,
            };
        }
        -7 => (State::Invalid, Reason::ShareCancelled),
        -8 => (State::Invalid, Reason::ShareExpired),
        115 => (State::Invalid, Reason::ShareViolation),
        -9 => (State::Locked, Reason::PasswordWrong),
        -12 => (State::Locked, Reason::PasswordRequired),
        // 啊哦，链接错误没找到文件 (baidu's own message, and PanSou's reading).
        105 => (State::Invalid, Reason::ShareNotFound),
        RATE_LIMITED_62 | RATE_LIMITED_64 | RATE_LIMITED_65 => {
            (State::Unknown, Reason::RateLimited)
        }
        // 117, 145 and the rest: no source explains them; stay conservative.
        _ => (State::Unknown, Reason::UnrecognizedResponse),
    };
    Verdict::new(state, reason).with_code(code)
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
                "https://pan.baidu.com/s/1AbC_d-9xyz",
                Some(("AbC_d-9xyz", None)),
            ),
            (
                "https://pan.baidu.com/s/1AbCd9xyz?pwd=ab12",
                Some(("AbCd9xyz", Some("ab12"))),
            ),
            (
                "https://pan.baidu.com/s/1AbCd9xyz?pwd=ab12#list/path=%2F",
                Some(("AbCd9xyz", Some("ab12"))),
            ),
            (
                "https://yun.baidu.com/s/1AbCd9xyz",
                Some(("AbCd9xyz", None)),
            ),
            (
                "https://pan.baidu.com/share/init?surl=AbCd9xyz",
                Some(("AbCd9xyz", None)),
            ),
            (
                "https://pan.baidu.com/share/init?surl=AbCd9xyz&pwd=1234",
                Some(("AbCd9xyz", Some("1234"))),
            ),
            (
                "https://yun.baidu.com/share/init?surl=AbCd9xyz",
                Some(("AbCd9xyz", None)),
            ),
            (
                "https://pan.baidu.com/s/1AbCd9xyz?提取码:w2x9",
                Some(("AbCd9xyz", Some("w2x9"))),
            ),
            (
                "http://PAN.BAIDU.COM/s/1AbCd9xyz#list/path=%2F",
                Some(("AbCd9xyz", None)),
            ),
            (
                "https://pan.baidu.com/s/1AbCd9xyz#pwd=k9k9",
                Some(("AbCd9xyz", Some("k9k9"))),
            ),
            // Near misses.
            ("https://pan.baidu.com/s/AbCd9xyz", None),
            ("https://pan.baidu.com/share/init", None),
            // Old links: shareid and uk, both digits.
            (
                "https://pan.baidu.com/share/link?shareid=44750878449&uk=1102487041658",
                Some(("44750878449.1102487041658", None)),
            ),
            (
                "http://yun.baidu.com/share/link?uk=2636470911&shareid=3921178",
                Some(("3921178.2636470911", None)),
            ),
            ("https://pan.baidu.com/share/link?shareid=12a&uk=3", None),
            ("https://pan.baidu.com/share/link?shareid=12", None),
            ("https://pan.baidu.com/disk/home", None),
            ("https://baidu.com/s/1AbCd9xyz", None),
            ("https://pan.baidu.com.cn/s/1AbCd9xyz", None),
            ("https://pan.baidu.com/s/1ab", None),
        ];
        assert_urls(Provider::Baidu, cases);
    }

    fn short(body: &str) -> Result<(), (State, Reason)> {
        shorturlinfo_outcome(200, body.as_bytes()).map_err(|v| (v.state, v.reason))
    }

    #[test]
    fn shorturlinfo_codes() {
        assert_eq!(
            short(r#"{"errno":0,"shareid":12345,"uk":678,"show_msg":""}"#),
            Ok(())
        );
        assert_eq!(
            short(r#"{"errno":-21,"shareid":1,"uk":2}"#),
            Err((State::Invalid, Reason::ShareNotFound))
        );
        assert_eq!(
            short(r#"{"errno":-9}"#),
            Err((State::Unknown, Reason::PasswordRequired))
        );
        assert_eq!(
            short(r#"{"errno":-62}"#),
            Err((State::Unknown, Reason::RateLimited))
        );
        assert_eq!(
            short(r#"{"errno":140,"shareid":0}"#),
            Err((State::Unknown, Reason::UnrecognizedResponse))
        );
        // Missing errno (an anti-bot shell with ids decoded from the surl) is not a verdict.
        assert_eq!(
            short(r#"{"shareid":123,"uk":456}"#),
            Err((State::Unknown, Reason::UnrecognizedResponse))
        );
        assert_eq!(
            short("<html>安全验证</html>"),
            Err((State::Unknown, Reason::UnrecognizedResponse))
        );
        let redirect = shorturlinfo_outcome(302, b"").unwrap_err();
        assert_eq!(redirect.reason, Reason::RateLimited);
    }

    fn exchange(status: u16, body: &str, set_cookie: Option<&str>) -> Exchange {
        let mut headers = http::HeaderMap::new();
        if let Some(cookie) = set_cookie {
            headers.insert(http::header::SET_COOKIE, cookie.parse().unwrap());
        }
        Exchange {
            status,
            headers,
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn verify_codes() {
        assert_eq!(
            verify_outcome(&exchange(200, r#"{"errno":0,"randsk":"RSK1"}"#, None)).unwrap(),
            "RSK1"
        );
        assert_eq!(
            verify_outcome(&exchange(
                200,
                r#"{"errno":0}"#,
                Some("BDCLND=RSK2; path=/")
            ))
            .unwrap(),
            "RSK2"
        );
        let wrong =
            verify_outcome(&exchange(200, r#"{"errno":-9,"err_msg":"..."}"#, None)).unwrap_err();
        assert_eq!(
            (wrong.state, wrong.reason),
            (State::Locked, Reason::PasswordWrong)
        );
        let needed = verify_outcome(&exchange(200, r#"{"errno":-12}"#, None)).unwrap_err();
        assert_eq!(
            (needed.state, needed.reason),
            (State::Locked, Reason::PasswordRequired)
        );
        // Reconstructed: the sources give the codes, not whole bodies.
        for errno in [-64, -65] {
            let body = format!(r#"{{"errno":{errno},"err_msg":"","request_id":1}}"#);
            let limited = verify_outcome(&exchange(200, &body, None)).unwrap_err();
            assert_eq!(
                (limited.state, limited.reason),
                (State::Unknown, Reason::RateLimited)
            );
        }
        let limited = verify_outcome(&exchange(200, r#"{"errno":-62}"#, None)).unwrap_err();
        assert_eq!(limited.reason, Reason::RateLimited);
        let odd = verify_outcome(&exchange(200, r#"{"errno":0}"#, None)).unwrap_err();
        assert_eq!(
            odd.state,
            State::Unknown,
            "success without randsk proves nothing"
        );
    }

    #[test]
    fn list_codes() {
        let valid = list_verdict(
            200,
            br#"{"errno":0,"title":"/name","list":[{"server_filename":"a","isdir":"0","size":"1"}]}"#,
        );
        assert_eq!(
            (valid.state, valid.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(valid.share_name.as_deref(), Some("name"));
        assert_eq!(valid.file_count, Some(1));
        let empty = list_verdict(200, br#"{"errno":0,"title":"/x","list":[]}"#);
        assert_eq!(
            (empty.state, empty.reason),
            (State::Invalid, Reason::EmptyShare)
        );
        let cases = [
            (-7, State::Invalid, Reason::ShareCancelled),
            (-8, State::Invalid, Reason::ShareExpired),
            (115, State::Invalid, Reason::ShareViolation),
            (-9, State::Locked, Reason::PasswordWrong),
            (-12, State::Locked, Reason::PasswordRequired),
            (-62, State::Unknown, Reason::RateLimited),
            (-64, State::Unknown, Reason::RateLimited),
            (-65, State::Unknown, Reason::RateLimited),
            (105, State::Invalid, Reason::ShareNotFound),
            (117, State::Unknown, Reason::UnrecognizedResponse),
            (145, State::Unknown, Reason::UnrecognizedResponse),
            (-6, State::Unknown, Reason::UnrecognizedResponse),
        ];
        for (errno, state, reason) in cases {
            let verdict = list_verdict(200, format!(r#"{{"errno":{errno}}}"#).as_bytes());
            assert_eq!(
                (verdict.state, verdict.reason),
                (state, reason),
                "errno {errno}"
            );
            assert_eq!(verdict.provider_code, Some(errno.to_string()));
        }
        assert_eq!(list_verdict(200, br#"{"errno":0}"#).state, State::Unknown);
        assert_eq!(list_verdict(500, b"oops").reason, Reason::UpstreamError);
    }
}
