//! The mock of aliyun's share API (`docs/providers.md` §3.7 and §4): the anonymous share info and the
//! share token. Errors are `{"code":"Namespace.Reason"}` with HTTP 400/404; throttling is a 429
//! with an empty body.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// Hosts aliyun's API answers on.
pub const HOSTS: &[&str] = &["api.aliyundrive.com", "api.alipan.com"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let id = body["share_id"]
        .as_str()
        .unwrap_or(req.query("share_id"))
        .to_owned();
    match (&req.method, req.path.as_str()) {
        (&Method::POST, "/adrive/v3/share_link/get_share_by_anonymous") => info(state, &id).await,
        (&Method::POST, "/v2/share_link/get_share_token") => {
            if body["share_pwd"].as_str() == Some(LOCK_CODE) {
                super::json(
                    StatusCode::OK,
                    &json!({"share_token": format!("stk-{id}"), "expire_time": "2099-01-01T00:00:00Z", "expires_in": 7200}),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidResource.SharePwd",
                    "The resource share_pwd is not valid. share_pwd is not valid",
                )
            }
        }
        _ => error(StatusCode::NOT_FOUND, "NotFound", "not found"),
    }
}

async fn info(state: &MockState, id: &str) -> Response<Full<Bytes>> {
    let share = |expiration: String, files: usize, has_pwd: bool| {
        let infos: Vec<serde_json::Value> = (1..=files)
            .map(|i| json!({"file_id": format!("f{i}"), "file_name": format!("file-{i}.mp4"), "type": "file"}))
            .collect();
        let mut body = json!({
            "share_name": format!("mock-{id}"), "share_title": format!("mock-{id}"), "display_name": "mock",
            "creator_id": "c0ffee", "creator_name": "mock", "avatar": "", "vip": "non-vip",
            "expiration": expiration, "updated_at": "2024-04-20T12:00:00.000Z", "file_count": 3,
            "file_infos": infos,
        });
        if has_pwd {
            body["has_pwd"] = json!(true);
        }
        super::json(StatusCode::OK, &body)
    };
    // `flow…`: Alibaba Sentinel's hot-parameter flow limit refuses the request.
    if id.starts_with("flow") {
        return error(
            StatusCode::BAD_REQUEST,
            "ParamFlowException",
            "ParamFlowException",
        );
    }
    match state.settle("aliyun", id).await {
        Case::Ok => share(String::new(), 3, false),
        Case::OkExpiring(days) => share(crate::timefmt::rfc3339_ms(super::in_days(days)), 3, false),
        // The content was removed: a title and a count, no files.
        Case::Empty => share(String::new(), 0, false),
        Case::Locked => share(String::new(), 3, true),
        Case::Gone => error(
            StatusCode::BAD_REQUEST,
            "ShareLink.Cancelled",
            "分享者已取消分享",
        ),
        Case::Expired => error(StatusCode::BAD_REQUEST, "ShareLink.Expired", "分享已过期"),
        Case::NotFound => error(StatusCode::NOT_FOUND, "NotFound.ShareLink", "分享不存在"),
        Case::Banned => error(
            StatusCode::BAD_REQUEST,
            "ShareLink.ContentInvalid",
            "分享内容已失效（被举报/屏蔽）",
        ),
        Case::Limited => text(StatusCode::TOO_MANY_REQUESTS, "text/plain", ""),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    super::json(status, &json!({"code": code, "message": message}))
}
