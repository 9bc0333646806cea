//! The mock of quark's share API (`docs/providers.md` §3.1 and §4): token and detail. UC's API is the
//! same service (`docs/providers.md` §3.2) and is served by this module too, with its own hosts and
//! its required `Origin`.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, in_days, text};

/// Hosts quark's API answers on.
pub const HOSTS: &[&str] = &["drive-pc.quark.cn", "drive-h.quark.cn", "drive.quark.cn"];
/// Hosts UC's API answers on.
pub const UC_HOSTS: &[&str] = &["pc-api.uc.cn"];

const PERMANENT_MS: u64 = 4_102_416_000_000;

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    family_answer(state, req, "quark").await
}

/// UC: quark's answers, but only to requests from UC's page (`Origin: https://drive.uc.cn`);
/// others get the 403 HTML page UC serves them.
pub async fn answer_uc(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let origin = req.headers.get("origin").and_then(|v| v.to_str().ok());
    if origin != Some("https://drive.uc.cn") || req.query("pr") != "UCBrowser" {
        return text(
            StatusCode::FORBIDDEN,
            "text/html",
            "<html><body>403 Forbidden</body></html>",
        );
    }
    family_answer(state, req, "uc").await
}

async fn family_answer(
    state: &MockState,
    req: &MockRequest,
    provider: &str,
) -> Response<Full<Bytes>> {
    match (&req.method, req.path.as_str()) {
        (&Method::POST, "/1/clouddrive/share/sharepage/token") => token(state, req, provider).await,
        (&Method::GET, "/1/clouddrive/share/sharepage/detail") => detail(req),
        _ => error(StatusCode::NOT_FOUND, 404, "not found"),
    }
}

async fn token(state: &MockState, req: &MockRequest, provider: &str) -> Response<Full<Bytes>> {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let id = body["pwd_id"].as_str().unwrap_or_default().to_owned();
    let passcode = body["passcode"].as_str().unwrap_or_default();
    // Quark's own cases beside the shared table: a live share under risk control answers
    // `14021 file not found` with HTTP 400 (a public report's body).
    if id.starts_with("risk") {
        return error(StatusCode::BAD_REQUEST, 14021, "file not found");
    }
    if id.starts_with("oddstatus") {
        return valid(&id, None);
    }
    match state.settle(provider, &id).await {
        Case::Ok | Case::Empty => valid(&id, None),
        Case::OkExpiring(days) => valid(&id, Some(days)),
        Case::Gone => error(StatusCode::NOT_FOUND, 41012, "好友已取消了分享"),
        Case::Expired => error(StatusCode::NOT_FOUND, 41011, "分享地址已失效"),
        Case::NotFound => error(StatusCode::NOT_FOUND, 41006, "分享不存在"),
        Case::Banned => error(StatusCode::NOT_FOUND, 41010, "文件涉及违规内容"),
        Case::Locked if passcode == LOCK_CODE => valid(&id, None),
        Case::Locked if passcode.is_empty() => error(
            StatusCode::NOT_FOUND,
            41008,
            "当前分享链接需要提取码，请填写提取码。",
        ),
        Case::Locked => error(StatusCode::NOT_FOUND, 41007, "提取码错误，请检查后再试。"),
        // Quark publishes no rate-limit code; the mock throttles like a gateway does.
        Case::Limited => super::throttled(),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}

fn valid(id: &str, expiring_days: Option<u32>) -> Response<Full<Bytes>> {
    let (expired_type, expired_at) = match expiring_days {
        None => (1, PERMANENT_MS),
        Some(days) => (3, in_days(days)),
    };
    super::json(
        StatusCode::OK,
        &json!({
            "status": 200, "code": 0, "message": "ok", "timestamp": crate::timefmt::now_ms() / 1000,
            "data": {
                "stoken": format!("st-{id}"), "title": format!("mock-{id}"), "subscribed": false,
                "share_type": 1, "url_type": 1, "expired_type": expired_type, "expired_at": expired_at,
            },
            "metadata": {}
        }),
    )
}

fn detail(req: &MockRequest) -> Response<Full<Bytes>> {
    let id = req.query("pwd_id");
    if req.query("stoken") != format!("st-{id}") {
        return error(StatusCode::BAD_REQUEST, 41014, "stoken 校验失败");
    }
    let list: Vec<serde_json::Value> = match MockState::case_after_first_step(id) {
        Case::Empty => Vec::new(),
        _ => (1..=3)
            .map(|n| {
                json!({"fid": format!("f{n}"), "file_name": format!("file-{n}.mp4"), "dir": false,
                       "file_type": 1, "pdir_fid": "0", "size": 1024 * n, "share_fid_token": format!("t{n}")})
            })
            .collect(),
    };
    let total = list.len();
    // `oddstatus…`: files listed under a share status no source explains.
    let share_status = if id.starts_with("oddstatus") { 3 } else { 1 };
    super::json(
        StatusCode::OK,
        &json!({
            "status": 200, "code": 0, "message": "ok",
            "data": {"is_owner": 0, "list": list, "is_expire": false,
                     "share": {"title": format!("mock-{id}"), "status": share_status,
                               "partial_violation": false}},
            "metadata": {"_total": total, "_size": 50, "_count": total, "_page": 1}
        }),
    )
}

fn error(status: StatusCode, code: i64, message: &str) -> Response<Full<Bytes>> {
    super::json(
        status,
        &json!({"status": status.as_u16(), "code": code, "message": message,
                "timestamp": crate::timefmt::now_ms() / 1000, "data": {}, "metadata": {}}),
    )
}
