//! What a short link may point to: an absolute `http`/`https` URL with a host, of bounded length,
//! without spaces, control characters or user info (`https://paypal.com@evil.example/` reads as
//! PayPal and goes to evil.example). Link creation and edits use it; the paid security check
//! parses more leniently so that it can report such tricks as risks. [`is_own_host`] compares hosts the way a
//! browser resolves them (case, IDNA, percent-encoding, a trailing dot, every loopback name).

use url::{Host, Url};

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
    if !url.username().is_empty() || url.password().is_some() {
        return Err("不能包含用户信息（user@host 形式，常用于伪装目标网站）".into());
    }
    match url.host_str() {
        Some(host) if !host.is_empty() => Ok(url),
        _ => Err("缺少主机名".into()),
    }
}

/// The host a browser would reach for `host` (a URL's host, or a `Host` header's host part):
/// lower case, IDNA, percent-decoded, without a trailing dot, IP literals in their one form, and
/// every loopback name (`localhost`, `127.0.0.0/8`, `::1`) as one. `None` when it is no host.
pub fn canonical_host(host: &str) -> Option<String> {
    let bare = host.trim_matches(['[', ']']);
    let parsed = if bare.contains(':') {
        Host::parse(&format!("[{bare}]"))
    } else {
        Host::parse(bare)
    }
    .ok()?;
    const LOOPBACK: &str = "loopback";
    Some(match parsed {
        Host::Domain(domain) => {
            let domain = domain.trim_end_matches('.').to_ascii_lowercase();
            if domain == "localhost" || domain.ends_with(".localhost") {
                LOOPBACK.to_owned()
            } else {
                domain
            }
        }
        Host::Ipv4(v4) if v4.is_loopback() => LOOPBACK.to_owned(),
        Host::Ipv4(v4) => v4.to_string(),
        Host::Ipv6(v6)
            if v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()) =>
        {
            LOOPBACK.to_owned()
        }
        Host::Ipv6(v6) => v6.to_string(),
    })
}

/// Whether `url` points at one of `own_hosts` (this service): such a link would loop.
pub fn is_own_host(url: &Url, own_hosts: &[&str]) -> bool {
    let Some(target) = url.host_str().and_then(canonical_host) else {
        return false;
    };
    own_hosts
        .iter()
        .any(|own| canonical_host(own).is_some_and(|own| own == target))
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

    #[test]
    fn user_info_is_refused() {
        for bad in [
            "https://paypal.com@evil.example/login",
            "https://user:pass@example.com/",
            "https://:pass@example.com/",
            "http://a%40b@example.com/",
        ] {
            assert!(parse(bad, 4096).is_err(), "{bad}");
        }
        assert!(parse("https://example.com/@someone", 4096).is_ok());
    }

    #[test]
    fn own_hosts_are_recognized_however_written() {
        let own = ["s.example.com"];
        for same in [
            "https://s.example.com/x",
            "https://S.Example.COM/x",
            "https://s.example.com./x",
            "https://s.example.com%2E/x",
            "https://s%2Eexample.com/x",
            "https://s.example.com.:443/x",
        ] {
            let url = parse(same, 4096).unwrap();
            assert!(is_own_host(&url, &own), "{same}");
        }
        let other = parse("https://s.example.com.evil/x", 4096).unwrap();
        assert!(!is_own_host(&other, &own));
        let idn = parse("https://例子.测试/x", 4096).unwrap();
        assert!(is_own_host(&idn, &["xn--fsqu00a.xn--0zwm56d"]));
        for loopback in [
            "http://localhost:8080/x",
            "http://127.0.0.1/x",
            "http://[::1]/x",
            "http://127.1/x",
        ] {
            let url = parse(loopback, 4096).unwrap();
            assert!(is_own_host(&url, &["127.0.0.1"]), "{loopback}");
            assert!(is_own_host(&url, &["localhost"]), "{loopback}");
        }
    }
}
