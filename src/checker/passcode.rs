//! Pass codes (提取码 / 访问码 / 密码 / pwd): from a URL's query or fragment, or from the text that
//! follows a URL in a post (`docs/providers.md` §2.3).

use std::sync::LazyLock;

use regex::Regex;
use url::Url;

/// Query (and fragment) parameter names that carry a pass code.
const PARAM_NAMES: &[&str] = &[
    "pwd",
    "password",
    "passcode",
    "pass_code",
    "receive_code",
    "accesscode",
    "access_code",
    "sharepwd",
];

/// A keyword, an optional colon (ASCII or full-width) or `=`, then the code. Only the keyword
/// ignores case: under Unicode case folding `[A-Za-z0-9]` would also match `ſ` (a long s) and
/// `K` (the Kelvin sign), and a pass code is ASCII.
static TEXT_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i:提取码|访问码|提取密码|密码|pwd|passcode)\s*[:：=]?\s*([A-Za-z0-9]{2,16})")
        .expect("the pass-code pattern compiles")
});

/// The pass code carried by `url`: a known query or fragment parameter, or a `提取码:xxxx` put
/// in the query or the fragment (as some search sites do).
pub fn from_url(url: &Url) -> Option<String> {
    // A known parameter decides, even when its value is not a plausible code.
    let from_pairs = |mut pairs: url::form_urlencoded::Parse<'_>| {
        pairs
            .find(|(name, _)| PARAM_NAMES.contains(&name.to_ascii_lowercase().as_str()))
            .map(|(_, value)| Some(value.trim().to_owned()).filter(|v| is_plausible(v)))
    };
    if let Some(code) = from_pairs(url.query_pairs()) {
        return code;
    }
    if let Some(fragment) = url.fragment() {
        let fragment = fragment.rsplit('?').next().unwrap_or(fragment);
        if let Some(code) = from_pairs(url::form_urlencoded::parse(fragment.as_bytes())) {
            return code;
        }
    }
    [url.query(), url.fragment()]
        .into_iter()
        .flatten()
        .find_map(|part| from_text(&percent_decode(part)))
}

/// The first pass code announced in `text` (`提取码: abcd`, `访问码：abcd`, `pwd=abcd`, …).
pub fn from_text(text: &str) -> Option<String> {
    TEXT_CODE
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
}

/// Pass codes are short ASCII alphanumerics.
fn is_plausible(code: &str) -> bool {
    (1..=32).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// `text` with its percent escapes (and `+`) decoded, as UTF-8 (lossy).
pub(crate) fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_code(url: &str) -> Option<String> {
        from_url(&Url::parse(url).unwrap())
    }

    #[test]
    fn codes_in_urls() {
        assert_eq!(
            url_code("https://pan.quark.cn/s/abc?pwd=x1Y2").as_deref(),
            Some("x1Y2")
        );
        assert_eq!(
            url_code("https://115.com/s/sw3?password=ab12#").as_deref(),
            Some("ab12")
        );
        assert_eq!(
            url_code("https://115.com/s/sw3#password=cd34").as_deref(),
            Some("cd34")
        );
        assert_eq!(
            url_code("https://www.123pan.com/s/abc?提取码:JZMM").as_deref(),
            Some("JZMM")
        );
        assert_eq!(
            url_code("https://www.123pan.com/s/abc?%E6%8F%90%E5%8F%96%E7%A0%81:JZMM").as_deref(),
            Some("JZMM")
        );
        assert_eq!(url_code("https://pan.quark.cn/s/abc"), None);
        assert_eq!(url_code("https://pan.quark.cn/s/abc?pwd=bad!code"), None);
    }

    #[test]
    fn codes_in_text() {
        assert_eq!(from_text(" 提取码: abcd 来自分享").as_deref(), Some("abcd"));
        assert_eq!(from_text("（访问码：w2x9）").as_deref(), Some("w2x9"));
        assert_eq!(from_text("密码:1234").as_deref(), Some("1234"));
        assert_eq!(from_text("PWD = Zz99").as_deref(), Some("Zz99"));
        assert_eq!(from_text("no code here"), None);
        // Characters that fold to ASCII letters are not part of a code.
        assert_eq!(from_text("pwdſ2qid"), None);
        assert_eq!(from_text("pwd=\u{212A}k12"), None);
    }
}
