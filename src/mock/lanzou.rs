//! The mock of lanzou's share pages (`docs/providers.md` §3.10): HTML pages with the markers the
//! real ones carry, the pass-code form's `ajaxm.php` answer, and the Aliyun WAF challenge.
//!
//! Beside the shared table: `acw…` answers the `acw_sc__v2` challenge until the request carries
//! the cookie its `arg1` gives, then the page of the rest of the id; `acwbad…` answers a
//! challenge without `arg1` (a changed shape); `acwloop…` answers the challenge every time.

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use http_body_util::Full;
use serde_json::json;

use super::outcome::{Case, LOCK_CODE};
use super::{MockRequest, MockState, text};

/// The host lanzou's pages are read from.
pub const HOSTS: &[&str] = &["pan.lanzoui.com"];

/// The challenge's `arg1`, and the cookie it gives by the published algorithm (worked out by
/// hand, independently of the adapter's code).
const ARG1: &str = "70D9569CD5E5895C84F284A09503B1598C5762A1";
const ARG1_COOKIE: &str = "65b09b125d70704c9e7ba57fa8966899a253c522";

pub async fn answer(state: &MockState, req: &MockRequest) -> Response<Full<Bytes>> {
    if req.method == Method::POST && req.path == "/ajaxm.php" {
        return code_answer(req);
    }
    let id = req.path.trim_start_matches('/').to_owned();
    if id.is_empty() || id.contains('/') {
        return page("<html><body>访问地址错误，请核查</body></html>");
    }
    if id.starts_with("acwbad") {
        return page(
            "<html><script>var arg2='x';function setCookie(name,value){}\
                     function reload(x){setCookie(\"acw_sc__v2\", x);}</script></html>",
        );
    }
    if id.starts_with("acwloop") {
        return challenge();
    }
    let shown = match id.strip_prefix("acw") {
        Some(rest) if req.cookie("acw_sc__v2") == Some(ARG1_COOKIE) => rest.to_owned(),
        Some(_) => return challenge(),
        None => id.clone(),
    };
    match state.settle("lanzou", &shown).await {
        Case::Ok | Case::OkExpiring(_) => file_page(&id),
        Case::Empty => page(&format!(
            "<html><head><title>mock-{id} - 蓝奏云</title></head><body><div id=\"infos\"></div>\
             <script>var data = {{ 'lx':2, 'fid':1, 'uid':'1', 'pg':1 }};</script></body></html>"
        )),
        Case::Gone => {
            page("<html><body><div class=\"off\">来晚啦...文件取消分享了</div></body></html>")
        }
        Case::NotFound | Case::Banned => {
            page("<html><body><div class=\"off\">文件不存在，或已删除</div></body></html>")
        }
        Case::Expired => {
            page("<html><body><div class=\"off\">文件链接失效，请获取新链接</div></body></html>")
        }
        Case::Locked => page(&format!(
            "<html><head><title>文件</title></head><body><div id=\"pwdload\">\
             <div class=\"passwddiv\"><input id=\"pwd\"></div></div><script>\
             var skdklds = '{id}';\nfunction down_p(){{ var pwd = $('#pwd').val(); $.ajax({{ \
             type : 'post', url : '/ajaxm.php?file=4242', data : {{ 'action':'downprocess',\
             'sign':skdklds,'p':pwd,'kd':1 }}, dataType : 'json' }}); }}</script></body></html>"
        )),
        Case::Limited => super::throttled(),
        Case::Error | Case::Slow => super::server_error(),
        Case::Junk => super::html_page(),
    }
}

fn page(body: &str) -> Response<Full<Bytes>> {
    text(StatusCode::OK, "text/html; charset=utf-8", body)
}

fn file_page(id: &str) -> Response<Full<Bytes>> {
    page(&format!(
        "<html><head><title>mock-{id} - 蓝奏云</title></head><body><div class=\"fileinfo\">\
         <span class=\"p7\">文件大小：</span>1.2 M<br></div><div class=\"md\">文件描述：</div>\
         <iframe class=\"ifr2\" src=\"/fn?abc\"></iframe></body></html>"
    ))
}

/// The WAF's challenge page: a script that sets `acw_sc__v2` from `arg1` and reloads.
fn challenge() -> Response<Full<Bytes>> {
    page(&format!(
        "<html><script>\nvar arg1='{ARG1}';\nvar _0x4818=['\\x63\\x73'];\n\
         function setCookie(name,value){{var expiredate=new Date();}}\n\
         function reload(x) {{setCookie(\"acw_sc__v2\", x);document.location.reload();}}\n\
         </script></html>"
    ))
}

/// `ajaxm.php`: the pass code of a `lock…` share (named by the form's `sign`).
fn code_answer(req: &MockRequest) -> Response<Full<Bytes>> {
    let form: std::collections::HashMap<String, String> = url::form_urlencoded::parse(&req.body)
        .into_owned()
        .collect();
    let sign = form.get("sign").map_or("", String::as_str);
    let code = form.get("p").map_or("", String::as_str);
    if form.get("action").map(String::as_str) != Some("downprocess") || req.query("file").is_empty()
    {
        return super::json(StatusCode::OK, &json!({"zt": 0, "inf": "参数错误"}));
    }
    if Case::of(sign) == Case::Locked && code == LOCK_CODE {
        return super::json(
            StatusCode::OK,
            &json!({"zt": 1, "dom": "https://developer.lanzoug.com", "url": "?mock", "inf": format!("mock-{sign}")}),
        );
    }
    super::json(StatusCode::OK, &json!({"zt": 0, "inf": "密码不正确"}))
}
