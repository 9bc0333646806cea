//! China Mobile cloud (中国移动云盘 / 和彩云 / 139): `https://caiyun.139.com/m/i?<linkID>`,
//! `https://caiyun.139.com/w/i/<linkID>`, `https://yun.139.com/shareweb/#/w/i/<linkID>`,
//! `https://caiyun.139.com/front/#/detail?linkID=<id>` and `https://caiyun.feixin.10086.cn/<id>`.
//!
//! The check (`docs/providers.md` §3.9): `POST …/IOutLink/getOutLinkInfoV6`. The request is the JSON
//! `getOutLinkInfoReq` encrypted with AES-128-CBC (PKCS#7, a random IV in front, Base64) and sent
//! as a JSON string; the answer comes back the same way, or as plain JSON. Its envelope spells the
//! code `code` or `resultCode`: both are read. `9188` means the share exists but wants its code.

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;
use serde::Deserialize;
use url::Url;

use super::{Parsed, host_in, is_share_id, non_json_answer, transport_failure, unlisted_code};
use crate::checker::client::UpstreamClient;
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// Hosts of cmcc share links.
pub const SHARE_HOSTS: &[&str] = &[
    "caiyun.139.com",
    "www.caiyun.139.com",
    "yun.139.com",
    "caiyun.feixin.10086.cn",
];
/// The API the checker asks.
pub const API: &str =
    "https://share-kd-njs.yun.139.com/yun-share/richlifeApp/devapp/IOutLink/getOutLinkInfoV6";
/// The fixed key of the web client's request and answer encryption (public in every client).
const KEY: &[u8; 16] = b"PVGDwmcvfs1uV3d1";

/// The link id of a cmcc URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    let host = host_in(url, SHARE_HOSTS)?;
    let path = url.path();
    let fragment = url.fragment().unwrap_or("");
    let id = if host == "caiyun.feixin.10086.cn" {
        path.strip_prefix('/')?.split('/').next()?.to_owned()
    } else if path == "/m/i" {
        // The bare query is the id: `/m/i?<linkID>`.
        url.query()?.split('&').next()?.to_owned()
    } else if let Some(rest) = path.strip_prefix("/w/i/") {
        rest.split('/').next()?.to_owned()
    } else if let Some(rest) = fragment.strip_prefix("/w/i/") {
        rest.split(['/', '?']).next()?.to_owned()
    } else if let Some(query) = fragment.strip_prefix("/detail?") {
        url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "linkID" || k == "linkId")
            .map(|(_, v)| v.into_owned())?
    } else {
        return None;
    };
    is_share_id(&id, 4, 32, b"_-").then(|| Parsed::id(id))
}

/// Asks cmcc about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let request = serde_json::json!({
        "getOutLinkInfoReq": {
            "account": "", "linkID": share.id, "passwd": share.passcode.as_deref().unwrap_or(""),
            "caSrt": 1, "coSrt": 1, "srtDr": 0, "bNum": 1, "pCaID": "root", "eNum": 200,
        },
        "commonAccountInfo": { "account": "", "accountType": 1 },
    });
    let body = serde_json::Value::String(encrypt(request.to_string().as_bytes()));
    // The web page's headers; `x-huawei-channelSrc` and `Origin` as every public web client of
    // the 139 gateway sends them (`docs/providers.md` §3.9).
    let headers = [
        ("accept", "application/json, text/plain, */*"),
        ("origin", "https://yun.139.com"),
        ("referer", "https://yun.139.com/"),
        ("hcy-cool-flag", "1"),
        ("x-huawei-channelsrc", "10000034"),
        (
            "x-deviceinfo",
            "||3|12.27.0|chrome|131.0.0.0|5c7f6d3b2a1908e4f6a5b4c3d2e1f0a9||windows 10|1536X695|zh-CN|||",
        ),
    ];
    let has_passcode = share.passcode.is_some();
    let encrypted = match client.post_json(API, &headers, &body).await {
        Ok(exchange) => verdict(exchange.status, &exchange.body, has_passcode),
        Err(err) => return transport_failure(&err),
    };
    if encrypted.provider_code.as_deref() != Some(GATEWAY_REFUSED) {
        return encrypted;
    }
    // The gateway refused the encrypted request's form: ask once more in the plain form a
    // live-probe checker used in 2026.
    let plain = serde_json::json!({
        "getOutLinkInfoReq": {
            "linkID": share.id, "pCaID": "root",
            "passwd": share.passcode.as_deref().unwrap_or(""),
        },
    });
    let headers = [
        ("accept", "application/json, text/plain, */*"),
        ("referer", "https://yun.139.com/"),
    ];
    match client.post_json(API, &headers, &plain).await {
        Ok(exchange) => verdict(exchange.status, &exchange.body, has_passcode),
        Err(err) => transport_failure(&err),
    }
}

/// The gateway's answer to a request whose form (headers, envelope) it does not accept.
const GATEWAY_REFUSED: &str = "9530";

/// Base64 of a random IV and `plain` encrypted with AES-128-CBC and PKCS#7.
pub fn encrypt(plain: &[u8]) -> String {
    let iv: [u8; 16] = rand::random();
    let sealed = cbc::Encryptor::<aes::Aes128>::new(KEY.into(), &iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(plain);
    let mut out = iv.to_vec();
    out.extend_from_slice(&sealed);
    base64::engine::general_purpose::STANDARD.encode(out)
}

/// The inverse of [`encrypt`]; `None` for anything that is not such a text.
pub fn decrypt(text: &str) -> Option<Vec<u8>> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()?;
    if raw.len() < 32 || raw.len() % 16 != 0 {
        return None;
    }
    let (iv, sealed) = raw.split_at(16);
    let iv: [u8; 16] = iv.try_into().ok()?;
    cbc::Decryptor::<aes::Aes128>::new(KEY.into(), &iv.into())
        .decrypt_padded_vec_mut::<Pkcs7>(sealed)
        .ok()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    code: Option<serde_json::Value>,
    result_code: Option<serde_json::Value>,
    data: Option<Data>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    nod_num: Option<u64>,
    ca_lst: Option<Vec<Node>>,
    co_lst: Option<Vec<Node>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Node {
    ca_name: Option<String>,
    co_name: Option<String>,
}

/// The answer as JSON: plain, or encrypted (bare or as a JSON string).
fn open_answer(body: &[u8]) -> Option<Answer> {
    if let Ok(answer) = serde_json::from_slice::<Answer>(body) {
        return Some(answer);
    }
    let text = match serde_json::from_slice::<String>(body) {
        Ok(text) => text,
        Err(_) => String::from_utf8(body.to_vec()).ok()?,
    };
    serde_json::from_slice(&decrypt(&text)?).ok()
}

fn code_text(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// cmcc's code table. `has_passcode`: whether a code was sent.
pub fn verdict(status: u16, body: &[u8], has_passcode: bool) -> Verdict {
    if status == 429 {
        return Verdict::unknown(Reason::RateLimited, "HTTP 429".to_owned());
    }
    let Some(answer) = open_answer(body) else {
        return non_json_answer(status);
    };
    let Some(code) = answer
        .code
        .as_ref()
        .or(answer.result_code.as_ref())
        .and_then(code_text)
    else {
        return Verdict::unknown(Reason::UnrecognizedResponse, format!("HTTP {status}"));
    };
    let (state, reason) = match code.as_str() {
        "0" => return content_verdict(answer.data, code),
        "9188" if has_passcode => (State::Locked, Reason::PasswordWrong),
        "9188" => (State::Locked, Reason::PasswordRequired),
        "200000728" => (State::Locked, Reason::PasswordWrong),
        "200000727" => (State::Invalid, Reason::ShareNotFound),
        "200000732" => (State::Invalid, Reason::ShareExpired),
        GATEWAY_REFUSED => (State::Unknown, Reason::RequestRejected),
        _ => unlisted_code(status),
    };
    Verdict::new(state, reason).with_code(code)
}

/// A `"0"` answer: its data says what is in the share.
fn content_verdict(data: Option<Data>, code: String) -> Verdict {
    let Some(data) = data else {
        return Verdict::unknown(Reason::UnrecognizedResponse, code);
    };
    let folders = data.ca_lst.unwrap_or_default();
    let files = data.co_lst.unwrap_or_default();
    let count = data.nod_num.unwrap_or((folders.len() + files.len()) as u64);
    let mut verdict = if count == 0 && folders.is_empty() && files.is_empty() {
        Verdict::new(State::Invalid, Reason::EmptyShare)
    } else {
        Verdict::new(State::Valid, Reason::AllChecksPassed)
    };
    verdict.provider_code = Some(code);
    verdict.file_count = Some(count);
    verdict.share_name = folders
        .iter()
        .find_map(|n| n.ca_name.clone())
        .or_else(|| files.iter().find_map(|n| n.co_name.clone()));
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
                "https://caiyun.139.com/m/i?2qidGwZUXqwqo",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://caiyun.139.com/m/i?2qidGwZUXqwqo&from=share",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://caiyun.139.com/w/i/2qidGwZUXqwqo",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://yun.139.com/shareweb/#/w/i/2qidGwZUXqwqo",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://yun.139.com/w/i/2qidGwZUXqwqo",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://caiyun.139.com/front/#/detail?linkID=2qidGwZUXqwqo",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://caiyun.feixin.10086.cn/2qidGwZUXqwqo",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://caiyun.139.com/w/i/2qidGwZUXqwqo?pwd=ab12",
                Some(("2qidGwZUXqwqo", Some("ab12"))),
            ),
            (
                "https://yun.139.com/shareweb/#/w/i/2qidGwZ_Xq-wo?提取码:ab12",
                Some(("2qidGwZ_Xq-wo", Some("ab12"))),
            ),
            (
                "http://CAIYUN.139.COM/w/i/2qidGwZUXqwqo",
                Some(("2qidGwZUXqwqo", None)),
            ),
            (
                "https://caiyun.139.com/front/#/detail?linkID=2qidGwZUXqwqo&pwd=zz11",
                Some(("2qidGwZUXqwqo", Some("zz11"))),
            ),
            // Near misses.
            ("https://caiyun.139.com/", None),
            ("https://caiyun.139.com/m/i", None),
            ("https://yun.139.com/shareweb/#/", None),
            ("https://caiyun.139.com/front/#/detail?other=1", None),
            ("https://caiyun.139.com.example.com/w/i/2qidGwZUXqwqo", None),
            ("https://caiyun.139.com/w/i/a", None),
        ];
        assert_urls(Provider::Cmcc, cases);
    }

    #[test]
    fn the_crypto_round_trips_and_rejects_junk() {
        let text = encrypt("{\"a\":\"链接\"}".as_bytes());
        assert_eq!(decrypt(&text).unwrap(), "{\"a\":\"链接\"}".as_bytes());
        assert_ne!(encrypt(b"x"), encrypt(b"x"), "a random IV each time");
        assert_eq!(decrypt("not base64!"), None);
        assert_eq!(decrypt("AAAA"), None);
        let mut tampered = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        let last = tampered.len() - 1;
        tampered[last] ^= 0xff;
        let tampered = base64::engine::general_purpose::STANDARD.encode(tampered);
        assert!(decrypt(&tampered).is_none_or(|plain| plain != "{\"a\":\"链接\"}".as_bytes()));
    }

    fn v(body: &str, passcode: bool) -> (State, Reason) {
        let verdict = verdict(200, body.as_bytes(), passcode);
        (verdict.state, verdict.reason)
    }

    #[test]
    fn both_envelope_spellings_plain_and_encrypted() {
        let plain = r#"{"success":true,"code":"0","desc":"","data":{"nodNum":2,"caLst":[],"coLst":[{"coID":"f1","coName":"a.mp4","size":1024,"udTime":"20240420120000"}]}}"#;
        let ok = verdict(200, plain.as_bytes(), false);
        assert_eq!(
            (ok.state, ok.reason),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(
            (ok.file_count, ok.share_name.as_deref()),
            (Some(2), Some("a.mp4"))
        );
        let result_code = plain.replace(r#""code""#, r#""resultCode""#);
        assert_eq!(
            v(&result_code, false),
            (State::Valid, Reason::AllChecksPassed)
        );
        let sealed = serde_json::to_string(&encrypt(result_code.as_bytes())).unwrap();
        assert_eq!(
            v(&sealed, false),
            (State::Valid, Reason::AllChecksPassed),
            "as a JSON string"
        );
        let bare = encrypt(result_code.as_bytes());
        assert_eq!(
            v(&bare, false),
            (State::Valid, Reason::AllChecksPassed),
            "as bare Base64"
        );
    }

    #[test]
    fn every_documented_code() {
        let cases = [
            (
                r#"{"success":true,"code":"9188","desc":"提取码非法","data":null}"#,
                false,
                State::Locked,
                Reason::PasswordRequired,
            ),
            (
                r#"{"success":true,"code":"9188","desc":"提取码错误或未提供提取码","data":null}"#,
                true,
                State::Locked,
                Reason::PasswordWrong,
            ),
            (
                r#"{"success":false,"code":"200000728","desc":"提取码错误","data":null}"#,
                true,
                State::Locked,
                Reason::PasswordWrong,
            ),
            (
                r#"{"success":false,"code":"200000727","desc":"外链不存在","data":null}"#,
                false,
                State::Invalid,
                Reason::ShareNotFound,
            ),
            (
                r#"{"success":false,"resultCode":"200000727","desc":"外链被分享者取消","data":null}"#,
                false,
                State::Invalid,
                Reason::ShareNotFound,
            ),
            (
                r#"{"success":false,"code":"200000732","desc":"该分享链接已超过有效期","data":null}"#,
                false,
                State::Invalid,
                Reason::ShareExpired,
            ),
            (
                r#"{"success":true,"code":"0","desc":"","data":null}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"success":true,"code":"0","data":{"nodNum":0,"caLst":[],"coLst":[]}}"#,
                false,
                State::Invalid,
                Reason::EmptyShare,
            ),
            // The gateway refusing the request's form (reconstructed: the code as reported, no
            // public body).
            (
                r#"{"success":false,"code":"9530","desc":"","data":null}"#,
                false,
                State::Unknown,
                Reason::RequestRejected,
            ),
            // 外链已过期 under a code no source explains beside its message.
            (
                r#"{"success":false,"code":"200000401","desc":"外链已过期","data":null}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"success":false,"code":"1909011501","desc":"?","data":null}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
            (
                r#"{"success":false,"desc":"?"}"#,
                false,
                State::Unknown,
                Reason::UnrecognizedResponse,
            ),
        ];
        for (body, passcode, state, reason) in cases {
            assert_eq!(v(body, passcode), (state, reason), "{body}");
        }
        assert_eq!(
            verdict(200, b"<html>139</html>", false).state,
            State::Unknown
        );
        assert_eq!(verdict(429, b"", false).reason, Reason::RateLimited);
        assert_eq!(verdict(500, b"oops", false).reason, Reason::UpstreamError);
    }
}
