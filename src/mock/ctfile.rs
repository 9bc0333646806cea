//! The mock of ctfile's `getfile.php` and `getdir.php` (`docs/providers.md` §3.12):
//! `{"code": 200, "file": {…}}` for a share that opens, `401` for a missing or wrong pass code,
//! `404` for a share that is gone (the codes public helpers read), each with a `message`. The
//! folder's `file` (a listing URL) is the mock's own: the adapter reads a folder's code only.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// The host ctfile's API answers on.
pub const HOSTS: &[&str] = &["webapi.ctfile.com"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let folder = match req.path.as_str() {
        "/getfile.php" => false,
        "/getdir.php" => true,
        _ => return text(StatusCode::NOT_FOUND, "text/html", "<html>404</html>"),
    };
    // `<uid>-<fid>-<chk>`: the case is read from the last part.
    let id = req.query(if folder { "d" } else { "f" });
    let case_id = id.rsplit('-').next().unwrap_or("").to_owned();
    let file = |name: String| {
        let file = if folder {
            json!({"url": format!("/iajax_guest.php?item=file_act&d={id}")})
        } else {
            json!({"file_name": name, "file_size": "1.20 MB", "file_time": "2026-01-01",
                   "file_chk": "0123456789abcdef", "userid": 1, "file_id": 2})
        };
        super::json(StatusCode::OK, &json!({"code": 200, "file": file}))
    };
    let failure = |code: i64, message: &str| {
        super::json(StatusCode::OK, &json!({"code": code, "message": message}))
    };
    match state.settle("ctfile", &case_id).await {
        Case::Ok | Case::OkExpiring(_) | Case::Empty => file(format!("mock-{case_id}")),
        Case::Gone | Case::NotFound | Case::Expired | Case::Banned => {
            failure(404, "文件不存在或已删除")
        }
        Case::Locked => match req.query("passcode") {
            LOCK_CODE => file(format!("mock-{case_id}")),
            _ => failure(401, "请输入正确的访问密码"),
        },
        Case::Limited => super::throttled(),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}
