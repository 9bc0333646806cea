//! The mock of xunlei's share API (`docs/providers.md` §3.8 and §4): captcha tokens, then the share.
//! A token is good only if this mock issued it; a request without a good one gets
//! `captcha_invalid` (HTTP 400), and one without `x-device-id` gets `invalid_argument`. PikPak,
//! the same service under other hosts (§3.11), is answered here too.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState};

/// Hosts xunlei's APIs answer on.
pub const HOSTS: &[&str] = &["xluser-ssl.xunlei.com", "api-pan.xunlei.com"];
/// Hosts PikPak's APIs answer on.
pub const PIKPAK_HOSTS: &[&str] = &["user.mypikpak.net", "api-drive.mypikpak.net"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    answer_as(state, req, "xunlei").await
}

/// PikPak's answers: xunlei's, counted as PikPak's.
pub async fn answer_pikpak(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    answer_as(state, req, "pikpak").await
}

async fn answer_as(
    state: &MockState,
    req: &MockRequest,
    provider: &'static str,
) -> Response<Full<Bytes>> {
    match (&req.method, req.path.as_str()) {
        (&Method::POST, "/v1/shield/captcha/init") => captcha_init(state, req),
        (&Method::GET, "/drive/v1/share") => share(state, req, provider).await,
        _ => error("not_found", 5, "not found", StatusCode::NOT_FOUND),
    }
}

fn error(error: &str, code: i64, description: &str, status: StatusCode) -> Response<Full<Bytes>> {
    super::json(
        status,
        &json!({"error": error, "error_code": code, "error_description": description, "error_details": [], "error_url": ""}),
    )
}

fn invalid_argument(detail: &str) -> Response<Full<Bytes>> {
    error("invalid_argument", 3, detail, StatusCode::BAD_REQUEST)
}

/// A signature looks like `1.` and 32 lowercase hex digits.
fn is_signature(sign: &str) -> bool {
    sign.strip_prefix("1.").is_some_and(|hex| {
        hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

fn captcha_init(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let signed = is_signature(body["meta"]["captcha_sign"].as_str().unwrap_or(""))
        && body["meta"]["timestamp"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
        && body["client_id"].as_str().is_some_and(|c| !c.is_empty())
        && body["device_id"].as_str().is_some_and(|d| !d.is_empty())
        && body["action"]
            .as_str()
            .is_some_and(|a| a.eq_ignore_ascii_case("get:/drive/v1/share"));
    // One client's group throughout: the header names the client the body signs as.
    let one_group = req
        .headers
        .get("x-client-id")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|id| Some(id) == body["client_id"].as_str());
    if !signed || !one_group {
        return invalid_argument("请求参数错误");
    }
    let token = state.issue_token();
    super::json(
        StatusCode::OK,
        &json!({"captcha_token": token, "expires_in": 300, "url": ""}),
    )
}

async fn share(
    state: &MockState,
    req: &MockRequest,
    provider: &'static str,
) -> Response<Full<Bytes>> {
    if req.headers.get("x-device-id").is_none() {
        return invalid_argument("device_id is empty");
    }
    let token = req
        .headers
        .get("x-captcha-token")
        .and_then(|v| v.to_str().ok());
    if !token.is_some_and(|t| state.token_issued(t)) {
        return captcha_invalid();
    }
    let id = req.query("share_id").to_owned();
    let status = |status: &str, text: &str| {
        super::json(
            StatusCode::OK,
            &json!({"share_status": status, "share_status_text": text, "file_num": "0", "files": []}),
        )
    };
    let valid = |files: usize, expiration_at: String| {
        let list: Vec<serde_json::Value> = (1..=files)
            .map(|i| json!({"id": format!("f{i}"), "name": format!("file-{i}.mp4"), "kind": "drive#file", "size": (1024 * i).to_string()}))
            .collect();
        super::json(
            StatusCode::OK,
            &json!({"share_status": "OK", "share_status_text": "", "title": format!("mock-{id}"),
                    "file_num": files.to_string(), "files": list, "pass_code_token": "pct",
                    "expiration_at": expiration_at, "expiration_days": "-1", "restore_count_left": "-1",
                    "user_info": {"user_id": "1", "nickname": "mock"}, "next_page_token": ""}),
        )
    };
    match state.settle(provider, &id).await {
        Case::Ok => valid(3, "-1".to_owned()),
        Case::OkExpiring(days) => valid(3, crate::timefmt::rfc3339_ms(super::in_days(days))),
        Case::Empty => valid(0, "-1".to_owned()),
        Case::Gone => status("DELETED", "分享已被删除"),
        Case::Expired => status("EXPIRED", "分享已过期"),
        Case::NotFound => status("NOT_FOUND", "分享不存在"),
        Case::Banned => status(
            "SENSITIVE_RESOURCE",
            "该分享内容可能因为涉及违规信息，无法访问",
        ),
        Case::Locked => match req.query("pass_code") {
            LOCK_CODE => valid(3, "-1".to_owned()),
            "" => status("PASS_CODE_EMPTY", "请输入提取码"),
            _ => status("PASS_CODE_ERROR", "提取码错误"),
        },
        // Xunlei's throttle: the token is refused.
        Case::Limited => captcha_invalid(),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}

fn captcha_invalid() -> Response<Full<Bytes>> {
    error("captcha_invalid", 9, "验证码无效", StatusCode::BAD_REQUEST)
}
