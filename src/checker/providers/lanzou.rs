//! 蓝奏云 (lanzou): `https://<any>.lanzou<x>.com/<id>` on any of its rotating mirror domains
//! (`lanzoui.com`, `lanzoux.com`, `lanzouw.com`, …, and `lanzn.com`), also `/s/<id>` and the
//! mobile `/tp/<id>`; the pass code as `?pwd=`, or `密码:xxxx` beside the link.
//!
//! The check (`docs/providers.md` §3.10) reads the share page itself, always from one fixed host
//! ([`PAGE_HOST`]; the id is the same on every mirror): its markers tell a cancelled or missing
//! share, a file page, a folder page, or a page that asks for a pass code. A pass code is tried
//! the way the page's own script does: `POST /ajaxm.php?file=<n>` with the form its `down_p`
//! function builds; `zt: 1` opens it. The page may first be the Aliyun WAF's JavaScript challenge
//! (`acw_sc__v2`): its cookie is computed here from the page's `arg1` and the page asked once
//! more; a challenge of another shape, or a second one, is `unknown` / `anti_bot_challenge`.

use std::sync::LazyLock;

use regex::Regex;
use url::Url;

use super::{Parsed, host_under, is_share_id, json_int, non_json_answer, transport_failure};
use crate::checker::client::{Exchange, UpstreamClient};
use crate::checker::share::ShareRef;
use crate::checker::verdict::{Reason, State, Verdict};

/// The mirror domains of lanzou share links (a link may be on any subdomain of them).
pub const SHARE_HOSTS: &[&str] = &[
    "lanzoua.com",
    "lanzoub.com",
    "lanzouc.com",
    "lanzoud.com",
    "lanzoue.com",
    "lanzouf.com",
    "lanzoug.com",
    "lanzouh.com",
    "lanzoui.com",
    "lanzouj.com",
    "lanzouk.com",
    "lanzoul.com",
    "lanzoum.com",
    "lanzoun.com",
    "lanzouo.com",
    "lanzoup.com",
    "lanzouq.com",
    "lanzour.com",
    "lanzous.com",
    "lanzout.com",
    "lanzouu.com",
    "lanzouv.com",
    "lanzouw.com",
    "lanzoux.com",
    "lanzouy.com",
    "lanzouz.com",
    "lanzn.com",
];

/// Where the checker reads share pages (OpenList's lanzou driver reads them there too).
pub const PAGE_HOST: &str = "pan.lanzoui.com";

/// The share id of a lanzou URL.
pub fn parse(url: &Url) -> Option<Parsed> {
    host_under(url, SHARE_HOSTS)?;
    let path = url.path();
    let rest = path
        .strip_prefix("/s/")
        .or_else(|| path.strip_prefix("/tp/"))
        .or_else(|| path.strip_prefix('/'))?;
    let id = rest.split('/').next()?;
    is_share_id(id, 5, 32, b"").then(|| Parsed::id(id))
}

/// Asks lanzou about `share`.
pub async fn check(client: &UpstreamClient, share: &ShareRef) -> Verdict {
    let url = format!("https://{PAGE_HOST}/{}", share.id);
    let page = match page(client, &url).await {
        Ok(page) => page,
        Err(verdict) => return verdict,
    };
    match read_page(&page) {
        Page::Verdict(verdict) => verdict,
        Page::Locked(form) => match share.passcode.as_deref() {
            None => Verdict::new(State::Locked, Reason::PasswordRequired),
            Some(code) => match form {
                Some(form) => try_code(client, &url, &form, code).await,
                // A folder's pass code goes through another script; not verified here.
                None => Verdict::unknown(Reason::ProviderUnverified, "folder pass code".to_owned()),
            },
        },
    }
}

/// The share page, through one `acw_sc__v2` challenge at most.
async fn page(client: &UpstreamClient, url: &str) -> Result<Exchange, Verdict> {
    let headers = [("accept-language", "zh-CN,zh;q=0.9")];
    let first = client
        .get(url, &headers)
        .await
        .map_err(|err| transport_failure(&err))?;
    if !is_challenge(&first.body) {
        return Ok(first);
    }
    let Some(cookie) = challenge_cookie(&first.body) else {
        return Err(Verdict::unknown(
            Reason::AntiBotChallenge,
            "acw_sc__v2 without arg1".to_owned(),
        ));
    };
    let cookie = format!("acw_sc__v2={cookie}");
    let again = client
        .get(url, &[headers[0], ("cookie", &cookie)])
        .await
        .map_err(|err| transport_failure(&err))?;
    if is_challenge(&again.body) {
        return Err(Verdict::unknown(
            Reason::AntiBotChallenge,
            "acw_sc__v2 again".to_owned(),
        ));
    }
    Ok(again)
}

fn is_challenge(body: &[u8]) -> bool {
    contains(body, "acw_sc__v2")
}

/// The `acw_sc__v2` cookie for a challenge page: its `arg1` (40 hex digits) reordered by a fixed
/// permutation, then XORed with a fixed mask, as the page's script does (the same two constants
/// in OpenList's lanzou driver and in other public solvers, `docs/providers.md` §3.10).
pub fn challenge_cookie(page: &[u8]) -> Option<String> {
    const ORDER: [usize; 40] = [
        6, 28, 34, 31, 33, 18, 30, 23, 9, 8, 19, 38, 17, 24, 0, 5, 32, 21, 10, 22, 25, 14, 15, 3,
        16, 27, 13, 35, 2, 29, 11, 26, 4, 36, 1, 39, 37, 7, 20, 12,
    ];
    const MASK: &[u8; 40] = b"3000176000856006061501533003690027800375";
    static ARG1: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"arg1\s*=\s*'([0-9A-Fa-f]{40})'").expect("a valid regex"));
    let text = std::str::from_utf8(page).ok()?;
    let arg1 = ARG1.captures(text)?.get(1)?.as_str().as_bytes();
    let mut reordered = [0u8; 40];
    for (from, to) in ORDER.iter().enumerate() {
        reordered[*to] = arg1[from];
    }
    let mut cookie = String::with_capacity(40);
    for (pair, mask) in reordered.chunks(2).zip(MASK.chunks(2)) {
        let byte = hex_byte(pair)? ^ hex_byte(mask)?;
        cookie.push_str(&format!("{byte:02x}"));
    }
    Some(cookie)
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()
}

/// What a share page says.
enum Page {
    Verdict(Verdict),
    /// It asks for a pass code; the form to try one with, when the page carries it (a file).
    Locked(Option<CodeForm>),
}

/// What the page's `down_p` script posts with a pass code.
struct CodeForm {
    file: String,
    sign: String,
}

/// Lanzou's page markers (`docs/providers.md` §3.10).
fn read_page(page: &Exchange) -> Page {
    if page.status != 200 {
        return Page::Verdict(non_json_answer(page.status));
    }
    // Comments may carry any text (a template's leftovers): markers count only outside them, as
    // OpenList reads the page after its `RemoveNotes`.
    let uncommented = without_comments(&page.body);
    let body = uncommented.as_slice();
    // Dead: the owner cancelled it; it never existed or was deleted; the link was invalidated.
    if contains(body, "文件取消分享了") || contains(body, "取消分享") {
        return Page::Verdict(dead(Reason::ShareCancelled, "取消分享"));
    }
    if contains(body, "文件不存在") || contains(body, "访问地址错误") {
        return Page::Verdict(dead(Reason::ShareNotFound, "文件不存在"));
    }
    if contains(body, "文件链接失效") {
        return Page::Verdict(dead(Reason::ShareExpired, "文件链接失效"));
    }
    if contains(body, "pwdload") || contains(body, "passwddiv") {
        return Page::Locked(code_form(body));
    }
    let file = contains(body, "class=\"fileinfo\"")
        || contains(body, "id=\"file\"")
        || contains(body, "文件描述");
    let folder = contains(body, "id=\"infos\"");
    if !file && !folder {
        return Page::Verdict(Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("HTTP {}", page.status),
        ));
    }
    let mut verdict = Verdict::new(State::Valid, Reason::AllChecksPassed);
    verdict.share_name = title(body);
    // A file page is one file; a folder's list comes from another request, not made here.
    verdict.file_count = file.then_some(1);
    Page::Verdict(verdict)
}

/// `body` without `<!-- … -->` and `/* … */` comments, nor `// …` to the end of a line (unless
/// the `//` follows a `:`, as in `https://`).
fn without_comments(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    while let Some(&first) = rest.first() {
        let end_of = |open: &[u8], close: &[u8]| {
            rest.starts_with(open).then(|| {
                memchr::memmem::find(&rest[open.len()..], close)
                    .map_or(rest.len(), |at| open.len() + at + close.len())
            })
        };
        let skip = end_of(b"<!--", b"-->")
            .or_else(|| end_of(b"/*", b"*/"))
            .or_else(|| {
                (rest.starts_with(b"//") && out.last() != Some(&b':'))
                    .then(|| memchr::memchr(b'\n', rest).unwrap_or(rest.len()))
            });
        match skip {
            Some(n) => rest = &rest[n..],
            None => {
                out.push(first);
                rest = &rest[1..];
            }
        }
    }
    out
}

fn dead(reason: Reason, marker: &str) -> Verdict {
    Verdict::new(State::Invalid, reason).with_code(marker.to_owned())
}

/// The name in `<title>NAME - 蓝奏云</title>`.
fn title(body: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let start = text.find("<title>")? + "<title>".len();
    let end = start + text[start..].find("</title>")?;
    let name = text[start..end].trim();
    let name = name.strip_suffix("- 蓝奏云").unwrap_or(name).trim();
    (!name.is_empty()).then(|| name.to_owned())
}

/// The pass-code form of a file page: the number in `'/ajaxm.php?file=<n>'` and the `sign` its
/// `down_p` data names, which is a variable assigned elsewhere in the page (`var x = '…';`).
fn code_form(body: &[u8]) -> Option<CodeForm> {
    static FILE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"/ajaxm\.php\?file=(\d+)").expect("a valid regex"));
    static SIGN: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"'sign'\s*:\s*('([^']*)'|([A-Za-z_$][A-Za-z0-9_$]*))").expect("a valid regex")
    });
    let text = std::str::from_utf8(body).ok()?;
    let file = FILE.captures(text)?.get(1)?.as_str().to_owned();
    let sign = SIGN.captures(text)?;
    let sign = match (sign.get(2), sign.get(3)) {
        (Some(literal), _) => literal.as_str().to_owned(),
        (None, Some(variable)) => js_string_var(text, variable.as_str())?,
        _ => return None,
    };
    Some(CodeForm { file, sign })
}

/// The last non-empty value assigned to `var name = '…';` in `text`.
fn js_string_var(text: &str, name: &str) -> Option<String> {
    let pattern = format!(
        r#"var\s+{}\s*=\s*['"]([^'"]*)['"]\s*;"#,
        regex::escape(name)
    );
    let re = Regex::new(&pattern).ok()?;
    re.captures_iter(text)
        .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()))
        .filter(|v| !v.is_empty())
        .last()
}

/// Tries `code` with the page's form: `zt: 1` opens the share; `zt: 0` with a message about the
/// password is a wrong code.
async fn try_code(client: &UpstreamClient, page_url: &str, form: &CodeForm, code: &str) -> Verdict {
    let url = format!("https://{PAGE_HOST}/ajaxm.php?file={}", form.file);
    let fields = [
        ("action", "downprocess"),
        ("sign", form.sign.as_str()),
        ("p", code),
        ("kd", "1"),
    ];
    let headers = [
        ("referer", page_url),
        ("x-requested-with", "XMLHttpRequest"),
    ];
    match client.post_form(&url, &headers, &fields).await {
        Ok(exchange) => code_verdict(exchange.status, &exchange.body),
        Err(err) => transport_failure(&err),
    }
}

#[derive(serde::Deserialize)]
struct CodeAnswer {
    zt: Option<serde_json::Value>,
    inf: Option<serde_json::Value>,
}

/// The answer of `ajaxm.php` to a pass code.
fn code_verdict(status: u16, body: &[u8]) -> Verdict {
    let Ok(answer) = serde_json::from_slice::<CodeAnswer>(body) else {
        return non_json_answer(status);
    };
    let zt = json_int(answer.zt.as_ref());
    let inf = answer
        .inf
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    match zt {
        Some(1) => {
            let mut verdict = Verdict::new(State::Valid, Reason::AllChecksPassed);
            verdict.share_name = (!inf.is_empty()).then(|| inf.to_owned());
            verdict.file_count = Some(1);
            verdict
        }
        Some(0) if inf.contains("密码") => {
            Verdict::new(State::Locked, Reason::PasswordWrong).with_code(format!("zt 0 {inf}"))
        }
        other => Verdict::unknown(
            Reason::UnrecognizedResponse,
            format!("zt {}", other.map_or("?".to_owned(), |z| z.to_string())),
        ),
    }
}

fn contains(body: &[u8], marker: &str) -> bool {
    memchr::memmem::find(body, marker.as_bytes()).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::providers::test_support::assert_urls;
    use crate::checker::share::Provider;

    #[test]
    fn urls_on_every_mirror_and_form() {
        assert_urls(
            Provider::Lanzou,
            &[
                (
                    "https://wwi.lanzoui.com/iAbCd1234efg",
                    Some(("iAbCd1234efg", None)),
                ),
                ("https://lanzoux.com/b0abcdefg", Some(("b0abcdefg", None))),
                (
                    "https://abc.lanzouw.com/s/iXyZ98765",
                    Some(("iXyZ98765", None)),
                ),
                (
                    "https://www.lanzn.com/tp/iQwErTy12",
                    Some(("iQwErTy12", None)),
                ),
                (
                    "https://wwa.lanzouq.com/iAbCd1234efg?pwd=ab12",
                    Some(("iAbCd1234efg", Some("ab12"))),
                ),
                ("http://LANZOUS.COM/iUpper123", Some(("iUpper123", None))),
                // Not lanzou: a lookalike, the bare host, a too-short id.
                ("https://lanzoui.com.evil.com/iAbCd1234efg", None),
                ("https://notlanzoui.com/iAbCd1234efg", None),
                ("https://pan.lanzoui.com/", None),
                ("https://pan.lanzoui.com/ab", None),
            ],
        );
    }

    #[test]
    fn links_in_forum_text_with_their_pass_codes() {
        let post = "蓝奏云：https://wwi.lanzoui.com/iAbCd1234efg 密码:ab12\n\
                    备用 https://xyz.lanzouw.com/b0folder99 密码：cd34 其他\n\
                    https://lanzn.com/tp/iQwErTy12";
        let found: Vec<(Provider, String, Option<String>)> =
            crate::checker::extract::shares_in_text(post)
                .into_iter()
                .map(|f| (f.share.provider, f.share.id, f.share.passcode))
                .collect();
        let expected = [
            (Provider::Lanzou, "iAbCd1234efg", Some("ab12")),
            (Provider::Lanzou, "b0folder99", Some("cd34")),
            (Provider::Lanzou, "iQwErTy12", None),
        ]
        .map(|(p, id, code)| (p, id.to_owned(), code.map(str::to_owned)));
        assert_eq!(found, expected);
    }

    #[test]
    fn the_challenge_cookie_follows_the_published_algorithm() {
        // The permutation and mask of OpenList's driver and of the `posList` solvers give the
        // same answer (checked by hand for this arg1, with both forms).
        let page = b"<html><script>\nvar arg1='70D9569CD5E5895C84F284A09503B1598C5762A1';\n</script></html>";
        assert_eq!(
            challenge_cookie(page).as_deref(),
            Some("65b09b125d70704c9e7ba57fa8966899a253c522")
        );
        assert_eq!(challenge_cookie(b"<script>var arg2='x';</script>"), None);
    }

    fn page(body: &str) -> Exchange {
        Exchange {
            status: 200,
            headers: http::HeaderMap::new(),
            body: bytes::Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn page_markers() {
        let verdict = |body: &str| match read_page(&page(body)) {
            Page::Verdict(v) => (v.state, v.reason),
            Page::Locked(_) => (State::Locked, Reason::PasswordRequired),
        };
        assert_eq!(
            verdict("<div>来晚啦...文件取消分享了</div>"),
            (State::Invalid, Reason::ShareCancelled)
        );
        assert_eq!(
            verdict("<div>文件不存在，或已删除</div>"),
            (State::Invalid, Reason::ShareNotFound)
        );
        assert_eq!(
            verdict("<div>文件链接失效，请获取新链接</div>"),
            (State::Invalid, Reason::ShareExpired)
        );
        assert_eq!(
            verdict("<title>a.zip - 蓝奏云</title><div class=\"fileinfo\">"),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(
            verdict("<div id=\"infos\"></div>"),
            (State::Valid, Reason::AllChecksPassed)
        );
        assert_eq!(
            verdict("<html><div id=\"app\"></div></html>"),
            (State::Unknown, Reason::UnrecognizedResponse)
        );
        // A marker inside a comment is not the page's word.
        assert_eq!(
            verdict(
                "<title>a.zip - 蓝奏云</title><!-- 取消分享 --><script>/* 文件不存在 */\n\
                 // 文件链接失效\nvar u = 'https://x';</script><div class=\"fileinfo\">"
            ),
            (State::Valid, Reason::AllChecksPassed)
        );
        let Page::Verdict(named) = read_page(&page(
            "<title>a.zip - 蓝奏云</title><div class=\"fileinfo\">",
        )) else {
            panic!("a file page");
        };
        assert_eq!(named.share_name.as_deref(), Some("a.zip"));
        assert_eq!(named.file_count, Some(1));
    }

    #[test]
    fn the_code_form_is_read_from_the_down_p_script() {
        let body = b"<div id=\"pwdload\"></div><script>var skdklds = 'SIGN123';\n\
            function down_p(){ var pwd = $('#pwd').val(); $.ajax({ type : 'post', \
            url : '/ajaxm.php?file=987654', data : { 'action':'downprocess','sign':skdklds,'p':pwd,'kd':1 } }); }</script>";
        let form = code_form(body).expect("a form");
        assert_eq!(form.file, "987654");
        assert_eq!(form.sign, "SIGN123");
        assert_eq!(
            code_verdict(
                200,
                br#"{"zt":1,"dom":"https://x","url":"?abc","inf":"a.zip"}"#
            )
            .state,
            State::Valid
        );
        let wrong = code_verdict(200, r#"{"zt":0,"inf":"密码不正确"}"#.as_bytes());
        assert_eq!(
            (wrong.state, wrong.reason),
            (State::Locked, Reason::PasswordWrong)
        );
        assert_eq!(code_verdict(200, br#"{"zt":9}"#).state, State::Unknown);
    }
}
