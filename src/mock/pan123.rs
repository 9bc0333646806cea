//! The mock of 123pan's share API (`docs/providers.md` §3.5 and §4): `/b/api/share/get` on every mirror
//! host. `www.123pan.com` behaves as reported: an SPA that answers every `/api` path with an HTML
//! 404, so a checker must fall back to another mirror.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};
use crate::checker::providers::pan123;

/// Hosts 123pan's API answers on: every mirror a share link may name.
pub const HOSTS: &[&str] = pan123::SHARE_HOSTS;
/// The mirror whose API is gone.
const SPA_HOST: &str = "www.123pan.com";

pub async fn answer(state: &MockState, req: &MockRequest, host: &str) -> Response<Full<Bytes>> {
    if host == SPA_HOST || req.path != "/b/api/share/get" {
        return text(StatusCode::NOT_FOUND, "text/html", super::HTML_SHELL);
    }
    let id = req.query("shareKey").to_owned();
    let files = |n: usize| -> Vec<serde_json::Value> {
        (1..=n)
            .map(|i| json!({"FileId": i, "FileName": format!("file-{i}.mp4"), "Type": 0, "Size": 1024 * i, "Etag": "e", "UpdateAt": "2024-04-20T12:00:00+08:00"}))
            .collect()
    };
    let listing = |n| {
        super::json(
            StatusCode::OK,
            &json!({"code": 0, "message": "ok", "data": {"InfoList": files(n), "Next": "-1", "Len": n, "IsFirst": true, "Expired": false}}),
        )
    };
    let error = |message: &str| {
        super::json(
            StatusCode::OK,
            &json!({"code": 5103, "message": message, "data": null}),
        )
    };
    // `badkey…`: a key 123pan does not take as one of its keys (no hyphen, as made-up keys have).
    if id.starts_with("badkey") {
        return super::json(
            StatusCode::OK,
            &json!({"code": 400, "message": "ShareKey格式异常", "data": null}),
        );
    }
    match state.settle("pan123", &id).await {
        Case::Ok | Case::OkExpiring(_) => listing(3),
        Case::Empty => listing(0),
        // 123pan answers every dead share alike.
        // `gone5104…` and `gone5107…`: the two other dead answers public checkers' tests show.
        Case::Gone if id.starts_with("gone5104") => super::json(
            StatusCode::OK,
            &json!({"code": 5104, "message": "分享链接已失效", "data": null}),
        ),
        Case::Gone if id.starts_with("gone5107") => super::json(
            StatusCode::OK,
            &json!({"code": 5107, "message": "分享页面不存在", "data": null}),
        ),
        Case::Gone | Case::Expired | Case::NotFound | Case::Banned => error("此分享不存在"),
        Case::Locked if req.query("SharePwd") == LOCK_CODE => listing(3),
        Case::Locked => error("提取码错误"),
        Case::Limited => super::throttled(),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}
