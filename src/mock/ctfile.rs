//! The mock of ctfile's `getfile.php` (`docs/providers.md` §3.12): `{"code": 200, "file": {…}}`
//! for a share that opens, else `{"code": <n>, "message": …}`. The codes of the failures are the
//! mock's own (no public source lists ctfile's); the adapter reads none of them as dead.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// The host ctfile's API answers on.
pub const HOSTS: &[&str] = &["webapi.ctfile.com"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    if req.path != "/getfile.php" {
        return text(StatusCode::NOT_FOUND, "text/html", "<html>404</html>");
    }
    // `<uid>-<fid>-<chk>`: the case is read from the last part.
    let id = req.query("f");
    let case_id = id.rsplit('-').next().unwrap_or("").to_owned();
    let file = |name: String| {
        super::json(
            StatusCode::OK,
            &json!({"code": 200, "file": {"file_name": name, "file_size": "1.20 MB",
                    "file_time": "2026-01-01", "file_chk": "0123456789abcdef", "userid": 1, "file_id": 2}}),
        )
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
