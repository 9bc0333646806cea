//! What a short link may point to: an absolute `http`/`https` URL with a host, of bounded length,
//! without spaces or control characters. The same parser serves link creation and the security
//! check, so both judge the URL the redirect would send.

use url::Url;

/// Why a target URL is refused (Chinese, for the API's `msg`).
pub fn parse(text: &str, max_len: usize) -> Result<Url, String> {
    if text.is_empty() {
        return Err("不能为空".into());
    }
    if text.len() > max_len {
        return Err(format!("长度不能超过 {max_len} 字节"));
    }
    if text
        .chars()
        .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return Err("不能包含空白、控制字符或反斜杠".into());
    }
    let lower = text.get(..8).unwrap_or(text).to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err("必须以 http:// 或 https:// 开头".into());
    }
    // `url` would read `https:///x` as host `x`: the authority must follow `//` directly.
    let after_scheme = text.split_once("://").map_or("", |(_, rest)| rest);
    if after_scheme.is_empty() || after_scheme.starts_with(['/', '?', '#']) {
        return Err("缺少主机名".into());
    }
    let url = Url::parse(text).map_err(|err| format!("不是合法的 URL ({err})"))?;
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok(url),
        _ => Err("缺少主机名".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_refuses() {
        for ok in [
            "https://example.com",
            "http://example.com/a?b=c#d",
            "HTTPS://EXAMPLE.COM/",
            "https://例子.测试/路径",
            "https://[2001:db8::1]:8443/x",
            "http://203.0.113.5/",
        ] {
            assert!(parse(ok, 4096).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "example.com",
            "ftp://example.com/",
            "javascript:alert(1)",
            "https://",
            "https:///path",
            "https://exa mple.com/",
            "https://example.com/\n",
            "https:\\\\example.com",
            "data:text/html,hi",
            "http://a b/",
        ] {
            assert!(parse(bad, 4096).is_err(), "{bad}");
        }
        assert!(parse(&format!("https://e.com/{}", "a".repeat(5000)), 4096).is_err());
    }
}
