//! The mock of baidu's share API (`docs/providers.md` §3.3 and §4): cookie warm-up, shorturlinfo,
//! verify and list. API calls without the `BAIDUID` cookie get the anti-bot redirect.

use bytes::Bytes;
use http::header::{LOCATION, SET_COOKIE};
use http::{HeaderValue, Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// Hosts baidu's API answers on.
pub const HOSTS: &[&str] = &["pan.baidu.com"];

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    if req.method == Method::GET && req.path == "/" {
        let mut response = text(
            StatusCode::OK,
            "text/html; charset=utf-8",
            "<html><title>百度网盘</title></html>",
        );
        response.headers_mut().insert(
            SET_COOKIE,
            HeaderValue::from_static("BAIDUID=MOCKBAIDUID0000:FG=1; expires=Thu, 31-Dec-37 23:55:55 GMT; path=/; domain=.baidu.com"),
        );
        return response;
    }
    if req.cookie("BAIDUID").is_none() {
        let mut response = text(StatusCode::FOUND, "text/html", "<html>302 Found</html>");
        response.headers_mut().insert(
            LOCATION,
            HeaderValue::from_static("https://wappass.baidu.com/static/captcha/tuxing.html"),
        );
        return response;
    }
    match (&req.method, req.path.as_str()) {
        (&Method::GET, "/api/shorturlinfo") => shorturlinfo(state, req).await,
        (&Method::POST, "/share/verify") => verify(state, req).await,
        (&Method::GET, "/share/list") => list(req),
        _ => text(StatusCode::NOT_FOUND, "text/html", "<html>404</html>"),
    }
}

fn errno(errno: i64, extra: serde_json::Value) -> Response<Full<Bytes>> {
    let mut body = json!({"errno": errno, "request_id": 1234567890u64});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    super::json(StatusCode::OK, &body)
}

async fn shorturlinfo(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let id = req
        .query("shorturl")
        .strip_prefix('1')
        .unwrap_or_default()
        .to_owned();
    let ids = json!({"shareid": 27_182_818, "uk": 31_415_926});
    match state.settle("baidu", &id).await {
        Case::Ok | Case::OkExpiring(_) | Case::Empty | Case::Banned => errno(
            0,
            json!({"shareid": 27_182_818, "uk": 31_415_926, "show_msg": ""}),
        ),
        // Deleted, cancelled, expired and missing shares all answer -21 here.
        Case::Gone | Case::Expired | Case::NotFound => errno(-21, ids),
        Case::Locked => errno(-9, ids),
        Case::Limited => errno(-62, json!({})),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}

async fn verify(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    let id = req.query("surl").to_owned();
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let pwd = form.get("pwd").map_or("", String::as_str);
    let accepted = || {
        let randsk = format!("RSK-{id}");
        let mut response = errno(0, json!({"randsk": randsk}));
        if let Ok(cookie) =
            HeaderValue::from_str(&format!("BDCLND={randsk}; path=/; domain=.baidu.com"))
        {
            response.headers_mut().insert(SET_COOKIE, cookie);
        }
        response
    };
    // `locktries…`: too many pass-code tries on this share; only a logged-in (BDUSS) visitor
    // may try again.
    if id.starts_with("locktries") && req.cookie("BDUSS").is_none() {
        return errno(-64, json!({"err_msg": ""}));
    }
    // `lockfreq…`: the address's request frequency limit.
    if id.starts_with("lockfreq") {
        return errno(-65, json!({"err_msg": ""}));
    }
    match state.settle("baidu", &id).await {
        Case::Locked if pwd == LOCK_CODE => accepted(),
        Case::Locked => errno(-9, json!({"err_msg": "提取码错误"})),
        Case::Limited => errno(-62, json!({"err_msg": "需要验证码"})),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
        _ => accepted(),
    }
}

fn list(req: &MockRequest) -> Response<Full<Bytes>> {
    // Old links ask by shareid and uk (digits): the shareid's first digit picks the case.
    let old_case = match req.query("shareid").chars().next() {
        Some('1') => Some(Case::Ok),
        Some('2') => Some(Case::Gone),
        Some('3') => Some(Case::Expired),
        Some('4') => Some(Case::NotFound),
        Some('5') => Some(Case::Locked),
        _ => None,
    };
    let id = match old_case {
        Some(_) => req.query("shareid"),
        None => req.query("shorturl"),
    };
    let files = |n: usize| -> Vec<serde_json::Value> {
        (1..=n)
            .map(|i| json!({"server_filename": format!("file-{i}.mp4"), "isdir": "0", "size": (1024 * i).to_string(), "fs_id": i}))
            .collect()
    };
    match old_case.unwrap_or_else(|| MockState::case_after_first_step(id)) {
        Case::Locked if req.cookie("BDCLND") != Some(&format!("RSK-{id}")) => errno(-12, json!({})),
        Case::Ok | Case::OkExpiring(_) | Case::Locked => {
            errno(0, json!({"title": format!("/mock-{id}"), "list": files(3)}))
        }
        Case::Empty => errno(0, json!({"title": format!("/mock-{id}"), "list": files(0)})),
        Case::Gone => errno(-7, json!({})),
        Case::Expired => errno(-8, json!({})),
        Case::NotFound => errno(105, json!({})),
        Case::Banned => errno(115, json!({})),
        Case::Limited => errno(-62, json!({})),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}
