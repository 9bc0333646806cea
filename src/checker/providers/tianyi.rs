//! Tianyi (天翼云盘, cloud.189.cn): `https://cloud.189.cn/t/<code>`,
//! `https://cloud.189.cn/web/share?code=<code>` and `https://h5.cloud.189.cn/share.html#/t/<code>`.
//! The access code is often glued to the link as `（访问码：abcd）`, raw or percent-encoded.
//!
//! The check (`docs/providers.md` §3.4): `GET /api/open/share/getShareInfoByCodeV2.action` with
//! `Accept: application/json;charset=UTF-8` and `Sign-Type: 1`. `res_code` is the integer `0` on
//! success and a string (`ShareNotFound`, …) on error. Without the JSON `Accept` the API answers
//! XML, which is read too. A share with `needAccessCode: 1` needs a second call,
//! `checkAccessCode.action`, when a code is known.

use serde::Deserialize;
use url::Url;

use super::{
    Parsed, host_in, is_share_id, non_json_answer, query_value, transport_failure, unlisted_code,
};
use crate::checker::client::UpstreamClient;
use crate::checker::passcode;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Hosts of tianyi share links.
pub const SHARE_HOSTS: &[&str] = &["cloud.189.cn", "h5.cloud.189.cn"];
/// The API prefix the checker asks.
pub const API: &str = "https://cloud.189.cn/api/open/share";

/// The share code (and a glued access code) of a tianyi URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    let raw = if let Some(rest) = url.path().strip_prefix("/t/") {
        rest.to_owned()
    } else if url.path() == "/web/share" {
        // `code=` may carry the glued access code, encoded: read the raw query, not the pairs.
        let query = url.query()?;
        query
            .split('&')
            .find_map(|pair| pair.strip_prefix("code="))?
            .to_owned()
    } else if url.path() == "/share.html" || url.path() == "/web/share.html" {
        url.fragment()?.strip_prefix("/t/")?.to_owned()
    } else {
        return None;
    };
    let decoded = passcode::percent_decode(&raw);
    let end = decoded
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(decoded.len());
    let (code, rest) = decoded.split_at(end);
    if !is_share_id(code, 4, 32, b"") {
        return None;
    }
    Some(Parsed {
        id: code.to_owned(),
        passcode: passcode::from_text(rest),
        host: None,
    })
}

/// Asks tianyi about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let referer = format!("https://cloud.189.cn/web/share?code={}", share.id);
    let headers = [
        ("accept", "application/json;charset=UTF-8"),
        ("sign-type", "1"),
        ("referer", referer.as_str()),
    ];
    let url = format!(
        "{API}/getShareInfoByCodeV2.action?noCache={}&shareCode={}",
        rand::random::<f64>(),
        query_value(&share.id)
    );
    let info = match client.get(&url, &headers).await {
        Ok(exchange) => info_outcome(exchange.status, &exchange.body),
        Err(err) => return transport_failure(&err),
    };
    let info = match info {
        Ok(info) => info,
        Err(verdict) => return verdict,
    };
    if !info.needs_code {
        return valid(info.name);
    }
    let Some(code) = share.passcode.as_deref() else {
        return Verdict::new(State::Locked, Reason::PasswordRequired)
            .with_code("needAccessCode".to_owned());
    };
    let url = format!(
        "{API}/checkAccessCode.action?shareCode={}&accessCode={}",
        query_value(&share.id),
        query_value(code)
    );
    match client.get(&url, &headers).await {
        Ok(exchange) => access_code_verdict(exchange.status, &exchange.body, info.name),
        Err(err) => transport_failure(&err),
    }
}

/// What the share-info step learned about a share that exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub name: Option<String>,
    /// It needs an access code, and the answer gave no `shareId` (it was not opened yet).
    pub needs_code: bool,
}

/// Tianyi's answer, from JSON or from the XML it sends without the JSON `Accept`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(rename = "res_code", default, deserialize_with = "code_text")]
    res_code: Option<String>,
    share_id: Option<i64>,
    need_access_code: Option<i64>,
    review_status: Option<i64>,
    file_name: Option<String>,
    success: Option<bool>,
}

/// `res_code` is `0` (a number) on success and a string on error.
fn code_text<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::String(s) => Some(s),
        _ => None,
    })
}

fn parse_answer(status: u16, body: &[u8]) -> Result<Answer, Verdict> {
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        return Ok(answer);
    }
    let text = std::str::from_utf8(body).map_err(|_| non_json_answer(status))?;
    xml_answer(text).ok_or_else(|| non_json_answer(status))
}

/// The XML forms: `<error><code>…</code><message>…</message></error>` and `<shareVO>…</shareVO>`.
fn xml_answer(text: &str) -> Option<Answer> {
    let text = text.trim_start();
    if !text.starts_with('<') || text.contains("<html") || text.contains("<HTML") {
        return None;
    }
    let number = |tag| xml_field(text, tag).and_then(|v| v.trim().parse().ok());
    if let Some(code) = xml_field(text, "code").filter(|_| text.contains("<error")) {
        return Some(Answer {
            res_code: Some(code.trim().to_owned()),
            ..Answer::default()
        });
    }
    let ok = text.contains("<shareVO") || xml_field(text, "res_code").is_some();
    ok.then(|| Answer {
        res_code: Some(xml_field(text, "res_code").unwrap_or("0").trim().to_owned()),
        share_id: number("shareId"),
        need_access_code: number("needAccessCode"),
        review_status: number("reviewStatus"),
        file_name: xml_field(text, "fileName").map(str::to_owned),
        success: xml_field(text, "success").map(|v| v.trim() == "true"),
    })
}

/// The text of the first `<tag>…</tag>`.
fn xml_field<'a>(text: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = text.find(&open)? + open.len();
    let len = text[start..].find(&format!("</{tag}>"))?;
    Some(&text[start..start + len])
}

/// The share-info step: `Ok` when the share exists (open, or waiting for its access code).
pub fn info_outcome(status: u16, body: &[u8]) -> Result<Info, Verdict> {
    let answer = parse_answer(status, body)?;
    let Some(code) = answer.res_code.clone() else {
        return Err(Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("HTTP {status}"),
        ));
    };
    if code != "0" {
        return Err(error_verdict(&code, status));
    }
    if let Some(review) = answer.review_status.filter(|r| *r != 1) {
        return Err(Verdict::unknown(
            Reason::UnderReview,
            format!("reviewStatus {review}"),
        ));
    }
    let opened = answer.share_id.is_some_and(|id| id > 0);
    let needs_code = answer.need_access_code == Some(1) && !opened;
    if !needs_code && !opened && answer.file_name.is_none() {
        // `0` with none of the share's fields is not proof of anything.
        return Err(Verdict::unknown(Reason::UnrecognizedResponse, code));
    }
    Ok(Info {
        name: answer.file_name.filter(|n| !n.is_empty()),
        needs_code,
    })
}

/// The access-code step's verdict.
pub fn access_code_verdict(status: u16, body: &[u8], name: Option<String>) -> Verdict {
    let answer = match parse_answer(status, body) {
        Ok(answer) => answer,
        Err(verdict) => return verdict,
    };
    match answer.res_code.as_deref() {
        Some("0") if answer.share_id.is_some_and(|id| id > 0) => valid(name),
        Some("0") if answer.success == Some(false) => {
            Verdict::new(State::Locked, Reason::PasswordWrong).with_code("success:false".to_owned())
        }
        Some("0") | None => {
            Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"))
        }
        Some(code) => error_verdict(code, status),
    }
}

fn valid(name: Option<String>) -> Verdict {
    let mut verdict = Verdict::new(State::Valid, Reason::AllChecksPassed).with_code("0".to_owned());
    verdict.share_name = name;
    verdict
}

/// Tianyi's error codes (`docs/providers.md` §3.4).
fn error_verdict(code: &str, status: u16) -> Verdict {
    let (state, reason) = match code {
        "ShareNotFound" | "ShareInfoNotFound" | "FileNotFound" | "FileNotFoundError" => {
            (State::Invalid, Reason::ShareNotFound)
        }
        "ShareExpiredError" | "ShareExpired" => (State::Invalid, Reason::ShareExpired),
        "ShareCanceled" => (State::Invalid, Reason::ShareCancelled),
        "ShareAuditNotPass" => (State::Invalid, Reason::ShareViolation),
        "ShareAuditWaiting" => (State::Unknown, Reason::UnderReview),
        "AccessCodeError" | "ShareAccessCodeError" | "ShareAccessCodeNotMatch" => {
            (State::Locked, Reason::PasswordWrong)
        }
        "ShareAccessCodeFaildCountOver" | "InvalidVerifyCode" => {
            (State::Unknown, Reason::RateLimited)
        }
        // ShareAuditNo, ShareNotReceiver, ShareNotFoundFlatDir, FileTooLarge, InvalidSessionKey,
        // ShareNotExistError, ShareAuditError, …: meanings unsure or not about existence.
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
                "https://cloud.189.cn/t/yYvIvyVfY7rm",
                Some(("yYvIvyVfY7rm", None)),
            ),
            (
                "https://cloud.189.cn/t/yYvIvyVfY7rm（访问码：ab12）",
                Some(("yYvIvyVfY7rm", Some("ab12"))),
            ),
            (
                "https://cloud.189.cn/t/yYvIvyVfY7rm(访问码:ab12)",
                Some(("yYvIvyVfY7rm", Some("ab12"))),
            ),
            (
                "https://cloud.189.cn/t/yYvIvyVfY7rm%EF%BC%88%E8%AE%BF%E9%97%AE%E7%A0%81%EF%BC%9Aab12%EF%BC%89",
                Some(("yYvIvyVfY7rm", Some("ab12"))),
            ),
            (
                "https://cloud.189.cn/web/share?code=yYvIvyVfY7rm",
                Some(("yYvIvyVfY7rm", None)),
            ),
            (
                "https://cloud.189.cn/web/share?code=yYvIvyVfY7rm%EF%BC%88%E8%AE%BF%E9%97%AE%E7%A0%81%EF%BC%9Aw2x9%EF%BC%89",
                Some(("yYvIvyVfY7rm", Some("w2x9"))),
            ),
            (
                "https://cloud.189.cn/web/share?code=yYvIvyVfY7rm&accessCode=zz11",
                Some(("yYvIvyVfY7rm", Some("zz11"))),
            ),
            (
                "https://h5.cloud.189.cn/share.html#/t/yYvIvyVfY7rm",
                Some(("yYvIvyVfY7rm", None)),
            ),
            (
                "https://h5.cloud.189.cn/share.html#/t/yYvIvyVfY7rm（访问码：k7k7）",
                Some(("yYvIvyVfY7rm", Some("k7k7"))),
            ),
            (
                "https://cloud.189.cn/t/2QnQz2Ij6nMz?pwd=ab34",
                Some(("2QnQz2Ij6nMz", Some("ab34"))),
            ),
            (
                "http://CLOUD.189.CN/t/2QnQz2Ij6nMz",
                Some(("2QnQz2Ij6nMz", None)),
            ),
            // Near misses.
            ("https://cloud.189.cn/t/", None),
            ("https://cloud.189.cn/web/share", None),
            ("https://cloud.189.cn/web/main/file/folder/123", None),
            ("https://h5.cloud.189.cn/share.html#/list", None),
            ("https://cloud.189.cn.example.org/t/yYvIvyVfY7rm", None),
            ("https://cloud.189.cn/t/ab", None),
        ];
        assert_urls(Provider::Tianyi, cases);
    }

    const SUCCESS: &str = r#"{"res_code":0,"res_message":"成功","accessCode":"","creator":{"iconURL":"","nickName":"173","oper":false,"ownerAccount":"173****1049@189.cn","superVip":0,"vip":0},"expireTime":6,"expireType":1,"fileCreateDate":"2024-05-09 11:38:51","fileId":"924221132626570583","fileLastOpTime":"2024-05-09 11:38:51","fileName":"其他文件","fileSize":0,"fileType":"","isFolder":true,"needAccessCode":1,"reviewStatus":1,"shareDate":1715225931000,"shareMode":1,"shareType":1}"#;

    #[test]
    fn share_info_success_needing_a_code() {
        let info = info_outcome(200, SUCCESS.as_bytes()).unwrap();
        assert_eq!(info.name.as_deref(), Some("其他文件"));
        assert!(info.needs_code);
        let open = SUCCESS.replace(
            r#""needAccessCode":1"#,
            r#""needAccessCode":0,"shareId":12403121104649"#,
        );
        assert!(!info_outcome(200, open.as_bytes()).unwrap().needs_code);
        let in_review = SUCCESS.replace(r#""reviewStatus":1"#, r#""reviewStatus":0"#);
        let verdict = info_outcome(200, in_review.as_bytes()).unwrap_err();
        assert_eq!(
            (verdict.state, verdict.reason),
            (State::Unknown, Reason::UnderReview)
        );
        // `0` with nothing of a share in it: drift, not a verdict.
        let bare =
            info_outcome(200, r#"{"res_code":0,"res_message":"成功"}"#.as_bytes()).unwrap_err();
        assert_eq!(bare.state, State::Unknown);
    }

    #[test]
    fn every_documented_error_code() {
        let cases = [
            ("ShareNotFound", State::Invalid, Reason::ShareNotFound),
            ("ShareInfoNotFound", State::Invalid, Reason::ShareNotFound),
            ("FileNotFound", State::Invalid, Reason::ShareNotFound),
            ("FileNotFoundError", State::Invalid, Reason::ShareNotFound),
            ("ShareExpiredError", State::Invalid, Reason::ShareExpired),
            ("ShareExpired", State::Invalid, Reason::ShareExpired),
            ("ShareCanceled", State::Invalid, Reason::ShareCancelled),
            ("ShareAuditNotPass", State::Invalid, Reason::ShareViolation),
            ("ShareAuditWaiting", State::Unknown, Reason::UnderReview),
            ("AccessCodeError", State::Locked, Reason::PasswordWrong),
            ("ShareAccessCodeError", State::Locked, Reason::PasswordWrong),
            (
                "ShareAccessCodeNotMatch",
                State::Locked,
                Reason::PasswordWrong,
            ),
            (
                "ShareAccessCodeFaildCountOver",
                State::Unknown,
                Reason::RateLimited,
            ),
            ("InvalidVerifyCode", State::Unknown, Reason::RateLimited),
            ("ShareAuditNo", State::Unknown, Reason::UnrecognizedResponse),
            (
                "ShareNotReceiver",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                "ShareNotFoundFlatDir",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            ("FileTooLarge", State::Unknown, Reason::UnrecognizedResponse),
            (
                "InvalidSessionKey",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                "ShareNotExistError",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                "ShareAuditError",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            ("SomethingNew", State::Unknown, Reason::UnrecognizedResponse),
        ];
        for (code, state, reason) in cases {
            let body = format!(r#"{{"res_code":"{code}","res_message":"x"}}"#);
            let verdict = info_outcome(400, body.as_bytes()).unwrap_err();
            assert_eq!((verdict.state, verdict.reason), (state, reason), "{code}");
            assert_eq!(verdict.provider_code.as_deref(), Some(code));
        }
        let literal = info_outcome(
            200,
            br#"{"res_code":"ShareAuditNotPass","res_message":"share audit not pass."}"#,
        )
        .unwrap_err();
        assert_eq!(literal.reason, Reason::ShareViolation);
    }

    #[test]
    fn xml_answers_are_read() {
        let error = info_outcome(
            200,
            b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><error><code>ShareNotFound</code><message>share not found or invalid.</message></error>",
        )
        .unwrap_err();
        assert_eq!(
            (error.state, error.reason),
            (State::Invalid, Reason::ShareNotFound)
        );
        let ok = info_outcome(
            200,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><shareVO><fileName>电影</fileName><needAccessCode>0</needAccessCode><reviewStatus>1</reviewStatus><shareId>42</shareId></shareVO>".as_bytes(),
        )
        .unwrap();
        assert_eq!(ok.name.as_deref(), Some("电影"));
        assert!(!ok.needs_code);
        let html = info_outcome(200, b"<!DOCTYPE html><html><body>189</body></html>").unwrap_err();
        assert_eq!(
            (html.state, html.reason),
            (State::Unknown, Reason::UnrecognizedResponse)
        );
    }

    #[test]
    fn access_code_step() {
        let name = || Some("n".to_owned());
        let ok = access_code_verdict(
            200,
            r#"{"res_code":0,"res_message":"成功","shareId":12403121104649}"#.as_bytes(),
            name(),
        );
        assert_eq!(
            (ok.state, ok.share_name.as_deref()),
            (State::Valid, Some("n"))
        );
        let wrong = access_code_verdict(
            200,
            r#"{"res_code":0,"res_message":"成功","success":false}"#.as_bytes(),
            name(),
        );
        assert_eq!(
            (wrong.state, wrong.reason),
            (State::Locked, Reason::PasswordWrong)
        );
        let mismatch =
            access_code_verdict(200, br#"{"res_code":"ShareAccessCodeNotMatch"}"#, name());
        assert_eq!(mismatch.reason, Reason::PasswordWrong);
        let bare = access_code_verdict(200, br#"{"res_code":0}"#, name());
        assert_eq!(bare.state, State::Unknown);
        let gateway = access_code_verdict(502, b"bad gateway", name());
        assert_eq!(gateway.reason, Reason::UpstreamError);
    }
}
