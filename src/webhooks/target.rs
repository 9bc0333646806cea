//! Which URLs a webhook may post to: `https://` (or `http://` when `webhooks.allow_http`), no
//! user info, and a host that is not, and does not resolve to, a loopback, private, link-local,
//! CGNAT or multicast address unless `webhooks.allow_private`. Checked at creation and again at
//! every delivery: a name is resolved by the receiver client's DNS layer, which drops those
//! addresses, and the connection goes to an address it kept, so a name cannot be re-pointed
//! between the check and the connection.

use std::net::IpAddr;
use std::time::Duration;

use crate::checker::client::UpstreamClient;
use crate::netguard;

/// Longest webhook URL.
pub const MAX_URL_LEN: usize = 2048;

/// How long the creation check waits for DNS.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// A URL's shape, before any address is looked at. The error is a Chinese reason.
pub fn parse(text: &str, allow_http: bool) -> Result<url::Url, String> {
    if text.len() > MAX_URL_LEN {
        return Err(format!("最长 {MAX_URL_LEN} 个字符"));
    }
    let url = url::Url::parse(text).map_err(|_| "不是合法的 URL".to_owned())?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err("必须使用 https://（服务端未开启 webhooks.allow_http）".into()),
        _ => return Err("必须是 https:// 地址".into()),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("不能包含用户名或密码".into());
    }
    if url.host().is_none() {
        return Err("缺少主机名".into());
    }
    Ok(url)
}

/// An IP literal host that may not be contacted, as a Chinese reason.
pub fn literal_refusal(url: &url::Url, allow_private: bool) -> Option<String> {
    let ip: IpAddr = match url.host()? {
        url::Host::Ipv4(v4) => v4.into(),
        url::Host::Ipv6(v6) => v6.into(),
        url::Host::Domain(_) => return None,
    };
    (!allow_private && !netguard::is_public(ip))
        .then(|| format!("{ip} 是回环、内网、链路本地、运营商级 NAT 或组播地址"))
}

/// The whole check at creation: the literal rule, or the name resolved now by the client that
/// will deliver (which keeps only allowed addresses).
pub async fn check_reachable(
    client: &UpstreamClient,
    url: &url::Url,
    allow_private: bool,
) -> Result<(), String> {
    if let Some(refusal) = literal_refusal(url, allow_private) {
        return Err(refusal);
    }
    let Some(url::Host::Domain(name)) = url.host() else {
        return Ok(());
    };
    match tokio::time::timeout(RESOLVE_TIMEOUT, client.resolve(name)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(_)) if allow_private => Err(format!("{name} 无法解析")),
        Ok(Err(_)) => Err(format!(
            "{name} 无法解析，或只解析到回环、内网、链路本地、运营商级 NAT 或组播地址"
        )),
        Err(_) => Err(format!("{name} 的 DNS 查询超时")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        assert!(parse("https://hooks.example.com/x?a=1", false).is_ok());
        assert!(parse("http://hooks.example.com/x", false).is_err());
        assert!(parse("http://hooks.example.com/x", true).is_ok());
        assert!(parse("ftp://hooks.example.com/x", true).is_err());
        assert!(parse("https://user:pw@hooks.example.com/", false).is_err());
        assert!(parse("not a url", false).is_err());
        assert!(
            parse(
                &format!("https://a.example/{}", "x".repeat(MAX_URL_LEN)),
                false
            )
            .is_err()
        );
    }

    #[test]
    fn private_literals_are_refused_unless_allowed() {
        for text in [
            "https://127.0.0.1/",
            "https://10.1.2.3/",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/",
            "https://100.64.0.1/",
            "https://224.0.0.1/",
            // The WHATWG parser reads these as 127.0.0.1.
            "https://2130706433/",
            "https://0x7f.1/",
        ] {
            let url = parse(text, false).unwrap();
            assert!(literal_refusal(&url, false).is_some(), "{text}");
            assert!(literal_refusal(&url, true).is_none(), "{text}");
        }
        let public = parse("https://1.1.1.1/", false).unwrap();
        assert!(literal_refusal(&public, false).is_none());
        let name = parse("https://hooks.example.com/", false).unwrap();
        assert!(literal_refusal(&name, false).is_none());
    }
}
