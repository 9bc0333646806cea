//! The mock of weiyun (`docs/providers.md` §3.13): the share page, which sets the `wyctoken`
//! cookie and carries the words public checkers read (a dead share's, or `"need_pwd":1`), and the
//! `WeiyunShareView` API, which opens a share (`retcode` 0 with its name and listing) only for
//! the `g_tk` the page's cookie gave and, for a locked share, the right pass code. Its non-zero
//! retcodes are the mock's own: no public source lists weiyun's.

use bytes::Bytes;
use http::header::SET_COOKIE;
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// The host weiyun's pages and share API answer on.
pub const HOSTS: &[&str] = &["share.weiyun.com"];
const API_PATH: &str = "/webapp/json/weiyunShareNoLogin/WeiyunShareView";
/// The `wyctoken` cookie every page sets.
const WYCTOKEN: &str = "1597534862";

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    if req.method == Method::POST && req.path == API_PATH {
        return view(state, req);
    }
    let key = req.path.trim_start_matches('/').to_owned();
    let page = |body: &str| {
        let mut response = text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            &format!(
                "<!DOCTYPE html><html><head><title>微云</title></head><body>{body}</body></html>"
            ),
        );
        response.headers_mut().insert(
            SET_COOKIE,
            HeaderValue::from_static("wyctoken=1597534862; Path=/; Domain=weiyun.com"),
        );
        response
    };
    let state_script = |need_pwd: u8| {
        format!(
            r#"<div id="app"></div><script>window.syncData={{"need_pwd":{need_pwd},"pwd":""}};</script>"#
        )
    };
    // A fault spoils the answer that decides, the API's (below): the page is an ordinary one.
    if super::fault::Fault::of(&key).is_some() {
        return page(&state_script(0));
    }
    // The page is the check's first request; the API, which decides, answers the same case.
    match state.settle_for_later("weiyun", &key).await {
        Case::Ok | Case::OkExpiring(_) | Case::Empty => page(&state_script(0)),
        Case::Locked => page(&state_script(1)),
        Case::Gone => page("<p>抱歉，该分享已被删除</p>"),
        Case::Expired => page("<p>抱歉，该分享链接已过期</p>"),
        Case::Banned => page("<p>该分享内容违反相关法规，无法访问</p>"),
        Case::NotFound => page("<p>目录无效</p>"),
        Case::Limited => super::throttled(),
        Case::Error | Case::Slow => super::server_error(),
        // The page is HTML anyway: the junk is the API's answer.
        Case::Junk => page(r#"<div id="app"></div>"#),
    }
}

/// `WeiyunShareView`: the request's key and pass code sit in a JSON string inside the body.
fn view(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    let inner: serde_json::Value = body["req_body"]
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let asked = &inner["ReqMsg_body"][".weiyun.WeiyunShareViewMsgReq_body"];
    let key = asked["share_key"].as_str().unwrap_or("");
    let pwd = asked["share_pwd"].as_str().unwrap_or("");
    let refused = |retcode: i64, retmsg: &str| {
        super::json(
            StatusCode::OK,
            &json!({"data": {"rsp_header": {"retcode": retcode, "retmsg": retmsg}, "rsp_body": {}}}),
        )
    };
    if let Some(fault) = super::fault::Fault::of(key) {
        super::fault::choose(fault);
    }
    if req.query("g_tk") != WYCTOKEN {
        return refused(190051, "mock: g_tk does not match the page's wyctoken");
    }
    let opened = |files: usize| {
        let file_list: Vec<_> = (0..files.saturating_sub(1))
            .map(|n| json!({"file_id": format!("f{n}"), "file_name": format!("{n}.mkv"), "file_size": 1024}))
            .collect();
        let dir_list: Vec<_> = (0..files.min(1))
            .map(|_| json!({"dir_key": "d0", "dir_name": "sub"}))
            .collect();
        super::json(
            StatusCode::OK,
            &json!({"data": {"rsp_header": {"retcode": 0, "retmsg": ""},
                             "rsp_body": {"RspMsg_body": {
                                 "share_name": format!("mock-{key}"), "need_pwd": 0, "pwd": "",
                                 "file_list": file_list, "dir_list": dir_list}}}}),
        )
    };
    match state.settled_case("weiyun", key) {
        Case::Ok | Case::OkExpiring(_) | Case::Slow | Case::Limited => opened(3),
        Case::Empty => opened(0),
        Case::Locked if pwd == LOCK_CODE => opened(3),
        Case::Locked => refused(190049, "mock: pass code missing or wrong"),
        Case::Gone | Case::Expired | Case::Banned | Case::NotFound => {
            refused(190011, "mock: share unavailable")
        }
        Case::Error => super::server_error(),
        Case::Junk => super::html_page(),
    }
}
