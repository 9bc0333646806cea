//! The mock of guangya's public share calls (`docs/providers.md` §3.15): `get_share_summary`
//! answers `{"code": 0, "data": {"title", …}}` or `code` 404, and `get_share_access_token` a token
//! or `code` 400 (no pass code) / 403 (wrong pass code), each with HTTP 200 and a `msg`.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// The host guangya's API answers on.
pub const HOSTS: &[&str] = &["api.guangyapan.com"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let id = body["shareId"].as_str().unwrap_or("").to_owned();
    let coded =
        |code: i64, msg: &str| super::json(StatusCode::OK, &json!({"code": code, "msg": msg}));
    match req.path.as_str() {
        "/nd.bizuserres.s/v1/get_share_summary" => match state.settle("guangya", &id).await {
            Case::Ok | Case::OkExpiring(_) | Case::Empty | Case::Locked => super::json(
                StatusCode::OK,
                &json!({"code": 0, "msg": "success",
                        "data": {"title": format!("mock-{id}"), "shareStatus": 1, "nickName": "mock"}}),
            ),
            Case::Gone | Case::NotFound | Case::Expired | Case::Banned => {
                coded(404, "分享不存在或已失效")
            }
            Case::Limited => super::throttled(),
            Case::Error | Case::Slow => super::server_error(),
            Case::Junk => super::html_page(),
        },
        "/nd.bizuserres.s/v1/get_share_access_token" => {
            let code = body["code"].as_str().unwrap_or("");
            let token = || {
                super::json(
                    StatusCode::OK,
                    &json!({"code": 0, "msg": "success",
                            "data": {"accessToken": format!("st-{id}"), "expiresIn": 7200}}),
                )
            };
            match MockState::case_after_first_step(&id) {
                Case::Locked if code == LOCK_CODE => token(),
                Case::Locked if code.is_empty() => coded(400, "请输入提取码"),
                Case::Locked => coded(403, "提取码错误"),
                Case::Error => super::server_error(),
                Case::Junk => super::html_page(),
                _ => token(),
            }
        }
        _ => text(
            StatusCode::NOT_FOUND,
            "application/json",
            r#"{"code":404,"msg":"not found"}"#,
        ),
    }
}
