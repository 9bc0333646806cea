//! The mock of tianyi's share API (`docs/providers.md` §3.4 and §4): share info and access-code
//! check. `res_code` is the number `0` on success and a string on error; without
//! `Accept: application/json` the answers are XML, as the real API's are.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// Hosts tianyi's API answers on.
pub const HOSTS: &[&str] = &["cloud.189.cn", "api.cloud.189.cn"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let wants_json = req
        .headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    let path = req.path.trim_start_matches("/api");
    let id = req.query("shareCode").to_owned();
    let answer = match path {
        "/open/share/getShareInfoByCodeV2.action" => match state.settle("tianyi", &id).await {
            Case::Ok | Case::Empty | Case::OkExpiring(_) => Answer::Info { id, opened: true },
            Case::Locked => Answer::Info { id, opened: false },
            Case::Gone => Answer::Error("ShareCanceled", "share canceled."),
            Case::Expired => Answer::Error("ShareExpiredError", "share expired."),
            Case::NotFound => Answer::Error("ShareNotFound", "share not found or invalid."),
            Case::Banned => Answer::Error("ShareAuditNotPass", "share audit not pass."),
            Case::Limited => Answer::Error("InvalidVerifyCode", "verify code invalid."),
            Case::Error | Case::Slow => return super::server_error(),
            Case::Junk => return super::html_page(),
        },
        "/open/share/checkAccessCode.action" => {
            if req.query("accessCode") == LOCK_CODE {
                Answer::Opened
            } else {
                Answer::WrongCode
            }
        }
        _ => return text(StatusCode::NOT_FOUND, "text/html", "<html>404</html>"),
    };
    if wants_json {
        let (status, body) = answer.json();
        super::json(status, &body)
    } else {
        text(
            StatusCode::OK,
            "application/xml;charset=UTF-8",
            &answer.xml(),
        )
    }
}

enum Answer {
    Info { id: String, opened: bool },
    Opened,
    WrongCode,
    Error(&'static str, &'static str),
}

const SHARE_ID: u64 = 12_403_121_104_649;

impl Answer {
    fn json(&self) -> (StatusCode, serde_json::Value) {
        match self {
            Answer::Info { id, opened } => {
                let mut body = json!({
                    "res_code": 0, "res_message": "成功", "accessCode": "",
                    "creator": {"iconURL": "", "nickName": "mock", "oper": false, "ownerAccount": "173****1049@189.cn", "superVip": 0, "vip": 0},
                    "expireTime": 6, "expireType": 1, "fileCreateDate": "2024-05-09 11:38:51", "fileId": "924221132626570583",
                    "fileLastOpTime": "2024-05-09 11:38:51", "fileName": format!("mock-{id}"), "fileSize": 0, "fileType": "",
                    "isFolder": true, "needAccessCode": i32::from(!opened), "reviewStatus": 1,
                    "shareDate": 1_715_225_931_000u64, "shareMode": 1, "shareType": 1
                });
                if *opened {
                    body["shareId"] = json!(SHARE_ID);
                }
                (StatusCode::OK, body)
            }
            Answer::Opened => (
                StatusCode::OK,
                json!({"res_code": 0, "res_message": "成功", "shareId": SHARE_ID}),
            ),
            Answer::WrongCode => (
                StatusCode::OK,
                json!({"res_code": 0, "res_message": "成功", "success": false}),
            ),
            Answer::Error(code, message) => (
                StatusCode::BAD_REQUEST,
                json!({"res_code": code, "res_message": message}),
            ),
        }
    }

    fn xml(&self) -> String {
        let head = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
        match self {
            Answer::Info { id, opened } => {
                let share_id = if *opened {
                    format!("<shareId>{SHARE_ID}</shareId>")
                } else {
                    String::new()
                };
                format!(
                    "{head}<shareVO><fileName>mock-{id}</fileName><isFolder>true</isFolder><needAccessCode>{}</needAccessCode><reviewStatus>1</reviewStatus>{share_id}</shareVO>",
                    i32::from(!opened)
                )
            }
            Answer::Opened => format!(
                "{head}<checkAccessCode><res_code>0</res_code><shareId>{SHARE_ID}</shareId></checkAccessCode>"
            ),
            Answer::WrongCode => format!(
                "{head}<checkAccessCode><res_code>0</res_code><success>false</success></checkAccessCode>"
            ),
            Answer::Error(code, message) => {
                format!("{head}<error><code>{code}</code><message>{message}</message></error>")
            }
        }
    }
}
