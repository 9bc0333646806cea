//! The small HTML pages of the redirect: not found, gone (expired or disabled), the password
//! form and the "open in your browser" page. Chinese, in the site's look (the embedded
//! `/static/site.css`), never cached; no script but the copy button's (`/static/open.js`).

use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, StatusCode};

use crate::http::response::{self, HttpResponse};

const HTML: HeaderValue = HeaderValue::from_static("text/html; charset=utf-8");
const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str) -> HttpResponse {
    page_with_head(status, title, "", body)
}

fn page_with_head(status: StatusCode, title: &str, head: &str, body: &str) -> HttpResponse {
    let html = format!(
        "<!doctype html>\n<html lang=\"zh-CN\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{title}</title><link rel=\"icon\" href=\"data:,\">\
<link rel=\"stylesheet\" href=\"/static/site.css\">{head}</head><body>\
<header class=\"site\"><span class=\"brand\">panlink 短链接</span></header>\
<main class=\"narrow\">{body}</main></body></html>\n"
    );
    let mut response = response::with_body(status, HTML, html);
    response.headers_mut().insert(CACHE_CONTROL, NO_STORE);
    response.headers_mut().insert(CONTENT_TYPE, HTML);
    response::secure_page(response.headers_mut(), response::LINK_PAGE_CSP);
    response
}

/// 404: no such code.
pub fn not_found() -> HttpResponse {
    page(
        StatusCode::NOT_FOUND,
        "短链接不存在",
        "<h1>短链接不存在</h1><p>这个短链接不存在，或已被创建者删除。请检查链接是否完整。</p>",
    )
}

/// 410: the link expired.
pub fn expired() -> HttpResponse {
    page(
        StatusCode::GONE,
        "短链接已过期",
        "<h1>短链接已过期</h1><p>这个短链接已超过有效期，无法继续访问。</p>",
    )
}

/// 410: the owner disabled the link.
pub fn disabled() -> HttpResponse {
    page(
        StatusCode::GONE,
        "短链接已停用",
        "<h1>短链接已停用</h1><p>这个短链接已被创建者停用。</p>",
    )
}

/// 410: the link's target share is dead (and the link has no fallback): the link's title, the
/// drive, since when.
pub fn share_dead(link: &super::record::LinkRecord) -> HttpResponse {
    let Some(target) = &link.target else {
        return expired();
    };
    let title = link
        .title
        .as_deref()
        .map(|t| format!("<p>链接：<strong>{}</strong></p>", escape(t)))
        .unwrap_or_default();
    let share = target
        .share_name
        .as_deref()
        .map(|n| format!("<p class=\"muted\">分享名：{}</p>", escape(n)))
        .unwrap_or_default();
    let body = format!(
        "<h1>该网盘分享已失效</h1>{title}<p>这个短链接指向的{drive}分享已失效（被取消、过期或不存在），\
自 {since} 起无法访问。</p>{share}<p class=\"muted\">如果分享恢复，短链接会自动恢复跳转。</p>",
        drive = escape(target.provider.display_name()),
        since = escape(&crate::timefmt::beijing_minute(target.since_ms)),
    );
    page(StatusCode::GONE, "该网盘分享已失效", &body)
}

/// 200: a visitor rule asks the visitor to leave the in-app browser (WeChat, QQ and others block
/// many drive domains): where the app's menu is, the short link, and a button that copies it.
pub fn open_in_browser(short_url: &str, title: Option<&str>) -> HttpResponse {
    let title = title
        .map(|t| format!("<p>链接：<strong>{}</strong></p>", escape(t)))
        .unwrap_or_default();
    let body = format!(
        "<div class=\"open-hint\" aria-hidden=\"true\">↗</div>\
<h1>请在浏览器中打开</h1>{title}\
<p>当前应用内置的浏览器无法打开这个链接（网盘等页面常被拦截）。</p>\
<ol><li>点击右上角的 <strong>···</strong> 按钮；</li>\
<li>选择 <strong>在浏览器打开</strong>（或“在默认浏览器中打开”）。</li></ol>\
<div class=\"card\"><p class=\"muted\">也可以复制链接，粘贴到手机浏览器的地址栏：</p>\
<code id=\"short-link\" class=\"open-link\">{url}</code>\
<div class=\"row\"><button type=\"button\" id=\"copy-link\" class=\"primary\" hidden>复制链接</button>\
<span id=\"copy-status\" class=\"muted\" role=\"status\"></span></div></div>",
        url = escape(short_url),
    );
    page_with_head(
        StatusCode::OK,
        "请在浏览器中打开",
        "<script src=\"/static/copy.js\" defer></script><script src=\"/static/open.js\" defer></script>",
        &body,
    )
}

/// 404 for a path that is no page of this site (a browser asked; API clients get JSON).
pub fn page_not_found() -> HttpResponse {
    page(
        StatusCode::NOT_FOUND,
        "页面不存在",
        "<h1>页面不存在</h1><p>这个地址没有对应的页面。请检查地址是否完整，或回到\
<a href=\"/\">首页（API 指南）</a>。</p>",
    )
}

/// The password form (200), or again with an error message (`status` 403 or 429). The link's
/// title, when it has one, tells the visitor what the password opens.
pub fn password_form(
    code: &str,
    title: Option<&str>,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let title = title
        .map(|t| format!("<p class=\"muted\">链接：{}</p>", escape(t)))
        .unwrap_or_default();
    let body = format!(
        "<h1>此链接需要密码</h1>{title}<p>请输入访问密码后继续。</p>{error}\
<form method=\"post\" action=\"/{code}\" class=\"card\"><label for=\"pw\">访问密码</label>\
<div class=\"row\"><input id=\"pw\" name=\"password\" type=\"password\" class=\"grow\" \
autocomplete=\"off\" required autofocus><button type=\"submit\" class=\"primary\">访问</button></div></form>",
        code = escape(code)
    );
    page(status, "需要密码", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
