//! Xunlei (迅雷云盘): `https://pan.xunlei.com/s/<share_id>` (`?pwd=` optional, a trailing `#`
//! is common).
//!
//! The check (`docs/providers.md` §3.8) takes two steps:
//! 1. a captcha token from `POST xluser-ssl.xunlei.com/v1/shield/captcha/init`, signed with
//!    `captcha_sign` (an MD5 chain over the client's fixed identity and the time). The token is
//!    kept process-wide until 30 s before its `expires_in`, refreshed by one request at a time;
//!    an answer with a `url` asks for an interactive captcha, which panlink cannot solve;
//! 2. `GET api-pan.xunlei.com/drive/v1/share` with `X-Captcha-Token`: `share_status` decides.
//!    `captcha_invalid` (HTTP 400) drops the token and asks once more with a fresh one.

use std::time::Duration;

use md5::{Digest, Md5};
use serde::Deserialize;
use url::Url;

use super::{Parsed, host_in, is_share_id, non_json_answer, query_value, transport_failure};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Expiry, Reason, State, Verdict};

/// Hosts of xunlei share links.
pub const SHARE_HOSTS: &[&str] = &["pan.xunlei.com", "lixian.vip.xunlei.com"];

/// One client of the xunlei drive service: where it asks, and its group of identity and
/// `captcha_sign` salts. The id, version, package name and salts belong together; a request
/// mixing them with another client's group is refused (`docs/providers.md` §3.8). PikPak is the
/// same service under other hosts, with a client of its own (`pikpak.rs`).
pub struct Family {
    pub captcha_url: &'static str,
    pub api: &'static str,
    /// `Origin` (and, with a `/`, `Referer`) of the client's web page.
    pub origin: &'static str,
    pub referer: &'static str,
    pub client_id: &'static str,
    /// Any 32 hex digits.
    pub device_id: &'static str,
    pub client_version: &'static str,
    pub package_name: &'static str,
    /// One salt per MD5 round of `captcha_sign`.
    pub salts: &'static [&'static str],
    /// The captcha request's `action`: the share request it is for, as this client spells it.
    pub action: &'static str,
    /// The session name of the captcha token in the client.
    pub session: &'static str,
}

/// The web client of `pan.xunlei.com`.
pub const XUNLEI: Family = Family {
    captcha_url: "https://xluser-ssl.xunlei.com/v1/shield/captcha/init",
    api: "https://api-pan.xunlei.com/drive/v1/share",
    origin: "https://pan.xunlei.com",
    referer: "https://pan.xunlei.com/",
    client_id: "Xqp0kJBXWhwaTpB6",
    device_id: "5505bd0cab8c9469b98e5891d9fb3e0d",
    client_version: "1.92.91",
    package_name: "pan.xunlei.com",
    salts: &[
        "tkPbM0TLWT+eMvAdV2FbXEEQ/Qx5QrfO895+47hmDDPdRZ98xm",
        "7EBc6XKuI6YGw19anZHmnE4d8W18zjrJU+F",
        "stEQvsO6eeP93DdrX7mfYA7G",
        "edXgGCdIaqdZJZH5k",
        "J9SB6D864S1B",
        "xlAs2Oo28sr",
        "21+f+kgyrbIcwUUo+xaPD4GYHkpRGv5i4wOnyHrkH4ehKti",
        "08kltU1bp6eV5bEdlgSEU0GpzjD7/j5X3FwbiiraEzar",
        "hX6tf7kBT/DS",
    ],
    action: "get:/drive/v1/share",
    session: "xunlei.captcha_token",
};
/// A token is replaced this long before it expires.
const REFRESH_EARLY: Duration = Duration::from_secs(30);
/// The provider code of a refused captcha token.
const CAPTCHA_INVALID: &str = "captcha_invalid";

/// The share id of a xunlei URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_in(url, SHARE_HOSTS)?;
    let id = url.path().strip_prefix("/s/")?.split('/').next()?;
    is_share_id(id, 4, 64, b"-_").then(|| Parsed::id(id))
}

/// `captcha_sign` of `family`'s client on `device_id` for `timestamp` (unix milliseconds as
/// text): `1.` and the last round of MD5 (hex) over the client identity, the device and the
/// time, one salt appended per round.
pub fn captcha_sign(family: &Family, device_id: &str, timestamp: &str) -> String {
    let mut text = format!(
        "{}{}{}{device_id}{timestamp}",
        family.client_id, family.client_version, family.package_name
    );
    for salt in family.salts {
        text.push_str(salt);
        text = hex(&Md5::digest(text.as_bytes()));
    }
    format!("1.{text}")
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Asks xunlei about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    check_family(client, share, &XUNLEI).await
}

/// Asks `family`'s service about `share`.
pub async fn check_family(client: &UpstreamClient, share: &ShareRef, family: &Family) -> Verdict {
    let mut verdict = Verdict::unknown(Reason::UpstreamError, None);
    for _ in 0..2 {
        let mut failure = None;
        let Some(token) = client
            .session(family.session, || fetch_token(client, family, &mut failure))
            .await
        else {
            return failure.unwrap_or(verdict);
        };
        verdict = ask(client, share, family, &token).await;
        if verdict.provider_code.as_deref() != Some(CAPTCHA_INVALID) {
            break;
        }
        client.forget_session(family.session);
    }
    verdict
}

async fn ask(client: &UpstreamClient, share: &ShareRef, family: &Family, token: &str) -> Verdict {
    let url = format!(
        "{}?share_id={}&pass_code={}&limit=100&pass_code_token=&page_token=&thumbnail_size=SIZE_SMALL",
        family.api,
        query_value(&share.id),
        query_value(share.passcode.as_deref().unwrap_or(""))
    );
    let headers = [
        ("accept", "*/*"),
        ("content-type", "application/json"),
        ("origin", family.origin),
        ("referer", family.referer),
        ("x-client-id", family.client_id),
        ("x-device-id", family.device_id),
        ("x-captcha-token", token),
    ];
    match client.get(&url, &headers).await {
        Ok(exchange) => share_verdict(exchange.status, &exchange.body),
        Err(err) => transport_failure(&err),
    }
}

/// One captcha-token request; on failure, the verdict to give is left in `failure`.
async fn fetch_token(
    client: &UpstreamClient,
    family: &Family,
    failure: &mut Option<Verdict>,
) -> Option<(String, Option<Duration>)> {
    let timestamp = crate::timefmt::now_ms().to_string();
    // The web page's request: no app-only fields (`redirect_uri`, user fields in `meta`).
    let body = serde_json::json!({
        "action": family.action,
        "captcha_token": "",
        "client_id": family.client_id,
        "device_id": family.device_id,
        "meta": {
            "package_name": family.package_name,
            "client_version": family.client_version,
            "timestamp": timestamp,
            "captcha_sign": captcha_sign(family, family.device_id, &timestamp),
        },
    });
    let headers = [
        ("accept", "application/json;charset=UTF-8"),
        ("origin", family.origin),
        ("referer", family.referer),
        ("x-device-id", family.device_id),
        ("x-client-id", family.client_id),
        ("x-client-version", family.client_version),
    ];
    let outcome = match client.post_json(family.captcha_url, &headers, &body).await {
        Ok(exchange) => token_outcome(exchange.status, &exchange.body),
        Err(err) => Err(transport_failure(&err)),
    };
    match outcome {
        Ok(token) => Some(token),
        Err(verdict) => {
            *failure = Some(verdict);
            None
        }
    }
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    captcha_token: Option<String>,
    expires_in: Option<u64>,
    url: Option<String>,
}

/// The captcha step: the token and how long to use it, or the verdict when there is none.
pub fn token_outcome(status: u16, body: &[u8]) -> Result<(String, Option<Duration>), Verdict> {
    let Ok(answer) = serde_json::from_slice::<TokenAnswer>(body) else {
        return Err(non_json_answer(status));
    };
    if answer.url.as_deref().is_some_and(|u| !u.is_empty()) {
        // An interactive captcha: risk control, not a verdict.
        return Err(Verdict::unknown(
            Reason::RateLimited,
            "captcha_required".to_owned(),
        ));
    }
    let Some(token) = answer.captcha_token.filter(|t| !t.is_empty()) else {
        return Err(Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("HTTP {status}"),
        ));
    };
    let lifetime =
        Duration::from_secs(answer.expires_in.unwrap_or(300)).saturating_sub(REFRESH_EARLY);
    Ok((token, Some(lifetime)))
}

#[derive(Debug, Deserialize)]
struct ShareAnswer {
    share_status: Option<String>,
    title: Option<String>,
    file_num: Option<serde_json::Value>,
    /// Only counted: each entry is skipped, not built.
    files: Option<Vec<serde::de::IgnoredAny>>,
    expiration_at: Option<String>,
    error: Option<String>,
    error_code: Option<i64>,
}

/// The share step's code table.
pub fn share_verdict(status: u16, body: &[u8]) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<ShareAnswer>(body) else {
        return non_json_answer(status);
    };
    let Some(share_status) = answer.share_status.as_deref() else {
        let (reason, code) = match answer.error.as_deref() {
            Some(CAPTCHA_INVALID) => (Reason::RateLimited, CAPTCHA_INVALID.to_owned()),
            // error_code 10: 操作频繁 (too many requests; OpenList's PikPak driver).
            Some(error) if answer.error_code == Some(10) => (Reason::RateLimited, error.to_owned()),
            // invalid_argument: a bogus id to some, but also any request the API dislikes.
            Some(error) => (Reason::UnrecognizedResponse, error.to_owned()),
            None if status == 429 => (Reason::RateLimited, format!("HTTP {status}")),
            None => (Reason::UnrecognizedResponse, format!("HTTP {status}")),
        };
        return Verdict::unknown(reason, code);
    };
    let (state, reason) = match share_status {
        "OK" => (State::Valid, Reason::AllChecksPassed),
        "PASS_CODE_EMPTY" => (State::Locked, Reason::PasswordRequired),
        "PASS_CODE_ERROR" => (State::Locked, Reason::PasswordWrong),
        "DELETED" | "CANCEL" => (State::Invalid, Reason::ShareCancelled),
        "EXPIRED" => (State::Invalid, Reason::ShareExpired),
        "NOT_FOUND" => (State::Invalid, Reason::ShareNotFound),
        "SENSITIVE_RESOURCE" | "SENSITIVE_WORD" => (State::Invalid, Reason::ShareViolation),
        "AUDITING" => (State::Unknown, Reason::UnderReview),
        // PROHIBITED: sharing unavailable from this region; the share may be fine.
        _ => (State::Unknown, Reason::UnrecognizedResponse),
    };
    let mut verdict = Verdict::new(state, reason).with_code(share_status.to_owned());
    if state != State::Valid {
        return verdict;
    }
    let count = match &answer.file_num {
        Some(serde_json::Value::String(n)) => n.parse().ok(),
        Some(serde_json::Value::Number(n)) => n.as_u64(),
        _ => None,
    }
    .or(answer.files.as_ref().map(|f| f.len() as u64));
    if count == Some(0) {
        verdict.state = State::Invalid;
        verdict.reason = Reason::EmptyShare;
    }
    verdict.file_count = count;
    verdict.share_name = answer.title.filter(|t| !t.is_empty());
    verdict.expiry = match answer.expiration_at.as_deref() {
        Some("-1") => Expiry::Permanent,
        Some(at) => crate::timefmt::parse_rfc3339_ms(at).map_or(Expiry::Unknown, Expiry::At),
        None => Expiry::Unknown,
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
            (
                "https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1",
                Some(("VNxY3kq1rVhL6cQ8mAa1", None)),
            ),
            (
                "https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1?pwd=ab12",
                Some(("VNxY3kq1rVhL6cQ8mAa1", Some("ab12"))),
            ),
            (
                "https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1?pwd=ab12#",
                Some(("VNxY3kq1rVhL6cQ8mAa1", Some("ab12"))),
            ),
            (
                "https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1#",
                Some(("VNxY3kq1rVhL6cQ8mAa1", None)),
            ),
            (
                "https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1?path=%2F&pwd=x7x7",
                Some(("VNxY3kq1rVhL6cQ8mAa1", Some("x7x7"))),
            ),
            (
                "https://pan.xunlei.com/s/VN_abc-DEF123",
                Some(("VN_abc-DEF123", None)),
            ),
            (
                "https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1?提取码:k8k8",
                Some(("VNxY3kq1rVhL6cQ8mAa1", Some("k8k8"))),
            ),
            (
                "http://PAN.XUNLEI.COM/s/VNxY3kq1rVhL6cQ8mAa1/",
                Some(("VNxY3kq1rVhL6cQ8mAa1", None)),
            ),
            (
                "https://lixian.vip.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1",
                Some(("VNxY3kq1rVhL6cQ8mAa1", None)),
            ),
            (
                "https://pan.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1?pwd=ab12&from=pc",
                Some(("VNxY3kq1rVhL6cQ8mAa1", Some("ab12"))),
            ),
            // Near misses.
            ("https://pan.xunlei.com/", None),
            ("https://pan.xunlei.com/s/", None),
            ("https://pan.xunlei.com/folder/VNxY3kq1rVhL6cQ8mAa1", None),
            (
                "https://pan.xunlei.com.example.net/s/VNxY3kq1rVhL6cQ8mAa1",
                None,
            ),
            ("https://www.xunlei.com/s/VNxY3kq1rVhL6cQ8mAa1", None),
            ("https://pan.xunlei.com/s/bad!id", None),
        ];
        assert_urls(Provider::Xunlei, cases);
    }

    #[test]
    fn captcha_sign_is_an_md5_chain() {
        let sign = captcha_sign(&XUNLEI, XUNLEI.device_id, "1700000000000");
        assert!(sign.starts_with("1."), "{sign}");
        assert_eq!(sign.len(), 2 + 32);
        assert!(sign[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(
            sign,
            captcha_sign(&XUNLEI, XUNLEI.device_id, "1700000000000"),
            "deterministic"
        );
        assert_ne!(
            sign,
            captcha_sign(&XUNLEI, XUNLEI.device_id, "1700000000001"),
            "depends on the time"
        );
        // A signature the live service accepted (a public reimplementation's sample of 2026-01,
        // verbatim): the group and the salts are right only if this holds.
        assert_eq!(
            captcha_sign(&XUNLEI, "adb1a76709f6584a13b58baaf6e1d871", "1787409379387"),
            "1.2546227cbfbcf07eeba5df575fac2085"
        );
        // The first round alone, checked against an independent MD5 value: md5("a") .
        assert_eq!(hex(&Md5::digest(b"a")), "0cc175b9c0f1b6a831c399e269772661");
    }

    #[test]
    fn captcha_step() {
        let (token, lifetime) =
            token_outcome(200, br#"{"captcha_token":"tok","expires_in":300}"#).unwrap();
        assert_eq!(token, "tok");
        assert_eq!(lifetime, Some(Duration::from_secs(270)));
        let challenge = token_outcome(
            200,
            br#"{"captcha_token":"tok","url":"https://captcha.example/"}"#,
        )
        .unwrap_err();
        assert_eq!(
            (challenge.state, challenge.reason),
            (State::Unknown, Reason::RateLimited)
        );
        assert_eq!(
            token_outcome(200, br#"{"captcha_token":""}"#)
                .unwrap_err()
                .state,
            State::Unknown
        );
        assert_eq!(
            token_outcome(502, b"bad gateway").unwrap_err().reason,
            Reason::UpstreamError
        );
    }

    #[test]
    fn every_share_status() {
        let cases = [
            ("PASS_CODE_EMPTY", State::Locked, Reason::PasswordRequired),
            ("PASS_CODE_ERROR", State::Locked, Reason::PasswordWrong),
            ("DELETED", State::Invalid, Reason::ShareCancelled),
            ("CANCEL", State::Invalid, Reason::ShareCancelled),
            ("EXPIRED", State::Invalid, Reason::ShareExpired),
            ("NOT_FOUND", State::Invalid, Reason::ShareNotFound),
            ("SENSITIVE_RESOURCE", State::Invalid, Reason::ShareViolation),
            ("SENSITIVE_WORD", State::Invalid, Reason::ShareViolation),
            ("AUDITING", State::Unknown, Reason::UnderReview),
            ("PROHIBITED", State::Unknown, Reason::UnrecognizedResponse),
            (
                "SOMETHING_NEW",
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
        ];
        for (status, state, reason) in cases {
            let body = format!(r#"{{"share_status":"{status}","share_status_text":"..."}}"#);
            let verdict = share_verdict(200, body.as_bytes());
            assert_eq!((verdict.state, verdict.reason), (state, reason), "{status}");
            assert_eq!(verdict.provider_code.as_deref(), Some(status));
        }
        let ok = share_verdict(
            200,
            br#"{"share_status":"OK","share_status_text":"","title":"T","file_num":"1","files":[{"name":"x"}],"expiration_at":"-1"}"#,
        );
        assert_eq!(
            (ok.state, ok.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(
            (ok.share_name.as_deref(), ok.file_count),
            (Some("T"), Some(1))
        );
        assert_eq!(ok.expiry, Expiry::Permanent);
        let dated = share_verdict(200, br#"{"share_status":"OK","title":"T","file_num":"2","expiration_at":"2030-01-01T00:00:00Z"}"#);
        assert_eq!(dated.expiry, Expiry::At(1_893_456_000_000));
        let empty = share_verdict(
            200,
            br#"{"share_status":"OK","title":"T","file_num":"0","files":[]}"#,
        );
        assert_eq!(
            (empty.state, empty.reason),
            (State::Invalid, Reason::EmptyShare)
        );
    }

    #[test]
    fn errors_are_never_dead() {
        let captcha = share_verdict(400, r#"{"error":"captcha_invalid","error_code":9,"error_description":"验证码无效","error_details":[],"error_url":""}"#.as_bytes());
        assert_eq!(
            (captcha.state, captcha.reason),
            (State::Unknown, Reason::RateLimited)
        );
        assert_eq!(captcha.provider_code.as_deref(), Some(CAPTCHA_INVALID));
        let argument = share_verdict(
            400,
            r#"{"error":"invalid_argument","error_code":3,"error_description":"请求参数错误"}"#
                .as_bytes(),
        );
        assert_eq!(
            (argument.state, argument.reason),
            (State::Unknown, Reason::UnrecognizedResponse)
        );
        assert_eq!(share_verdict(200, b"<html></html>").state, State::Unknown);
        assert_eq!(share_verdict(200, b"{}").state, State::Unknown);
    }
}
