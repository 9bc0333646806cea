//! The mock of 115's share API (`docs/providers.md` §3.6 and §4): `share/snap`. Errors are
//! `state:false` with an `errno`; an expired share answers `state:true` with `share_state 7` and
//! its file list, as the real API does.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// Hosts 115's API answers on.
pub const HOSTS: &[&str] = &["115cdn.com", "webapi.115.com"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    if !matches!(req.path.as_str(), "/webapi/share/snap" | "/share/snap") {
        return text(StatusCode::NOT_FOUND, "text/html", "<html>404</html>");
    }
    let id = req.query("share_code").to_owned();
    let snap = |share_state: i64, count: usize, expire_time: i64, forbid: &str| {
        let list: Vec<serde_json::Value> = (1..=count)
            .map(|i| json!({"n": format!("file-{i}.mkv"), "s": 1024 * i, "fid": i.to_string(), "cid": "0", "ico": "mkv"}))
            .collect();
        super::json(
            StatusCode::OK,
            &json!({"state": true, "error": "", "errno": 0, "data": {
                "shareinfo": {"snap_id": "0", "share_title": format!("mock-{id}"), "share_state": share_state,
                              "forbid_reason": forbid, "file_size": 1024, "has_receive_code": 1, "have_vio_file": 0,
                              "share_duration": -1, "expire_time": expire_time},
                "share_state": share_state, "count": count, "list": list,
                "userinfo": {"user_id": "1", "user_name": "mock"}}}),
        )
    };
    let error = |errno: i64, message: &str| {
        super::json(
            StatusCode::OK,
            &json!({"state": false, "error": message, "errno": errno}),
        )
    };
    match state.settle("pan115", &id).await {
        Case::Ok => snap(1, 3, -1, ""),
        Case::OkExpiring(days) => {
            let at = super::in_days(days) / 1000;
            snap(1, 3, i64::try_from(at).unwrap_or(-1), "")
        }
        Case::Empty => snap(1, 0, -1, ""),
        Case::Expired => snap(7, 3, -1, "链接已过期"),
        Case::Gone => error(4_100_010, "分享已取消"),
        Case::NotFound => error(990_002, "参数错误。"),
        Case::Banned => error(4_100_033, "涉嫌违规，链接已失效"),
        Case::Locked => match req.query("receive_code") {
            LOCK_CODE => snap(1, 3, -1, ""),
            "" => error(4_100_012, "请输入访问码"),
            _ => error(4_100_008, "访问码错误"),
        },
        Case::Limited => super::throttled(),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}
