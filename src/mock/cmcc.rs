//! The mock of cmcc's share API (`docs/providers.md` §3.9 and §4): `getOutLinkInfoV6`. A request
//! encrypted as the web client sends it (a JSON string of Base64 AES-CBC) is answered encrypted,
//! with the code spelled `resultCode`; a plain JSON request is answered in plain JSON with `code`.

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};
use crate::checker::providers::cmcc;

/// Hosts cmcc's API answers on.
pub const HOSTS: &[&str] = &["share-kd-njs.yun.139.com"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    if req.path != "/yun-share/richlifeApp/devapp/IOutLink/getOutLinkInfoV6" {
        return text(StatusCode::NOT_FOUND, "text/html", "<html>404</html>");
    }
    let (request, encrypted) = match serde_json::from_slice::<serde_json::Value>(&req.body) {
        Ok(serde_json::Value::String(sealed)) => {
            let plain = cmcc::decrypt(&sealed).and_then(|p| serde_json::from_slice(&p).ok());
            (plain.unwrap_or_default(), true)
        }
        Ok(plain) => (plain, false),
        Err(_) => (serde_json::Value::Null, false),
    };
    let ask = &request["getOutLinkInfoReq"];
    let Some(id) = ask["linkID"].as_str().map(str::to_owned) else {
        return reply(encrypted, "9999", "参数错误", serde_json::Value::Null);
    };
    let content = |folders: usize, files: usize| {
        let ca: Vec<serde_json::Value> = (1..=folders)
            .map(|i| json!({"caID": format!("c{i}"), "caName": format!("mock-{id}"), "udTime": "20240420120000", "path": "root"}))
            .collect();
        let co: Vec<serde_json::Value> = (1..=files)
            .map(|i| json!({"coID": format!("f{i}"), "coName": format!("file-{i}.mp4"), "coSize": 1024 * i, "coType": 3, "udTime": "20240420120000", "path": "root"}))
            .collect();
        json!({"nodNum": folders + files, "caLst": ca, "coLst": co, "nextPageCursor": ""})
    };
    // `okgw…`: the gateway refuses the encrypted form with 9530 and answers the plain one;
    // `refuse…`: it refuses both (its message is not public: left empty).
    if (encrypted && id.starts_with("okgw")) || id.starts_with("refuse") {
        return reply(encrypted, "9530", "", serde_json::Value::Null);
    }
    match state.settle("cmcc", &id).await {
        Case::Ok | Case::OkExpiring(_) => reply(encrypted, "0", "", content(1, 2)),
        Case::Empty => reply(encrypted, "0", "", content(0, 0)),
        Case::Gone => reply(
            encrypted,
            "200000727",
            "外链被分享者取消",
            serde_json::Value::Null,
        ),
        Case::NotFound | Case::Banned => reply(
            encrypted,
            "200000727",
            "外链不存在",
            serde_json::Value::Null,
        ),
        Case::Expired => reply(
            encrypted,
            "200000732",
            "该分享链接已超过有效期",
            serde_json::Value::Null,
        ),
        Case::Locked => match ask["passwd"].as_str().unwrap_or("") {
            LOCK_CODE => reply(encrypted, "0", "", content(1, 2)),
            "" => reply(encrypted, "9188", "提取码非法", serde_json::Value::Null),
            _ => reply(
                encrypted,
                "200000728",
                "提取码错误",
                serde_json::Value::Null,
            ),
        },
        Case::Limited => super::throttled(),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}

fn reply(
    encrypted: bool,
    code: &str,
    desc: &str,
    data: serde_json::Value,
) -> Response<Full<Bytes>> {
    let success = code == "0";
    if encrypted {
        let body = json!({"success": success, "resultCode": code, "desc": desc, "data": data});
        let sealed = cmcc::encrypt(body.to_string().as_bytes());
        super::json(StatusCode::OK, &serde_json::Value::String(sealed))
    } else {
        let body = json!({"success": success, "code": code, "desc": desc, "data": data});
        super::json(StatusCode::OK, &body)
    }
}
