//! The security check's rules: deterministic, offline, on the URL as the redirect would send it
//! (parsed by the same `url` crate, so `0x7f.1` is 127.0.0.1 and `例子.com` is punycode).
//!
//! Each rule yields a [`Risk`]; a risk is either *unsafe* (the URL must not be followed:
//! `safe = false`) or *suspicious* (worth a look, `safe` stays true). The rules, in order:
//!
//! | code | level | rule |
//! |---|---|---|
//! | `disallowed_scheme` | unsafe | scheme other than http/https (javascript:, data:, file:, ftp:…) |
//! | `userinfo_trick` | unsafe | user info before the host (`https://paypal.com@evil.tld`) |
//! | `ip_literal_host` | suspicious | the host is an IP address (any encoding, v4 or v6) |
//! | `private_network` | unsafe | loopback, private, link-local, CGNAT, multicast, reserved or documentation address (also IPv4-mapped, 6to4, NAT64), an internal name (`localhost`, `.local`, `.internal`, `.lan`, `.home.arpa`, single label), or a name that resolves to such an address |
//! | `self_reference` | unsafe | a link back to this service |
//! | `blocklisted_domain` | unsafe | the host or a parent domain is on the blocklist |
//! | `idn_homograph` | unsafe | an internationalized label mixing scripts beyond UTS 39's moderately restrictive level, or whose confusable skeleton is a protected brand's |
//! | `known_shortener` | suspicious | another URL shortener (a second hop hides the target) |
//! | `suspicious_keywords` | suspicious | a brand name on a domain that is not the brand's, an ASCII look-alike of a brand, two or more phishing words, or a host with many hyphens or labels |
//! | `unusual_port` | suspicious | an explicit port other than 80, 443, 8080, 8443 (admin and database ports especially) |
//! | `executable_download` | suspicious | the path ends in an executable or installer extension |
//! | `credential_parameters` | suspicious | the query carries a credential-like parameter (`password=`, `token=`, `key=`…) |
//! | `excessive_length` | suspicious | longer than 2048 bytes |
//! | `unresolvable_host` | suspicious | the name did not resolve within the DNS timeout |

use std::net::{IpAddr, Ipv6Addr};

use serde::Serialize;
use unicode_security::{RestrictionLevel, RestrictionLevelDetection};
use url::{Host, Url};

use super::lists::{self, Blocklist};
use crate::netguard;

/// URLs longer than this are `excessive_length`.
pub const LONG_URL: usize = 2048;

/// One finding of the check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    DisallowedScheme,
    UserinfoTrick,
    PrivateNetwork,
    SelfReference,
    BlocklistedDomain,
    IdnHomograph,
    IpLiteralHost,
    KnownShortener,
    SuspiciousKeywords,
    UnusualPort,
    ExecutableDownload,
    CredentialParameters,
    ExcessiveLength,
    UnresolvableHost,
}

impl Risk {
    /// The machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Risk::DisallowedScheme => "disallowed_scheme",
            Risk::UserinfoTrick => "userinfo_trick",
            Risk::PrivateNetwork => "private_network",
            Risk::SelfReference => "self_reference",
            Risk::BlocklistedDomain => "blocklisted_domain",
            Risk::IdnHomograph => "idn_homograph",
            Risk::IpLiteralHost => "ip_literal_host",
            Risk::KnownShortener => "known_shortener",
            Risk::SuspiciousKeywords => "suspicious_keywords",
            Risk::UnusualPort => "unusual_port",
            Risk::ExecutableDownload => "executable_download",
            Risk::CredentialParameters => "credential_parameters",
            Risk::ExcessiveLength => "excessive_length",
            Risk::UnresolvableHost => "unresolvable_host",
        }
    }

    /// Whether the risk makes the URL unsafe (rather than suspicious).
    pub fn is_unsafe(self) -> bool {
        matches!(
            self,
            Risk::DisallowedScheme
                | Risk::UserinfoTrick
                | Risk::PrivateNetwork
                | Risk::SelfReference
                | Risk::BlocklistedDomain
                | Risk::IdnHomograph
        )
    }

    /// What it means, for people (Chinese).
    pub fn reason(self) -> &'static str {
        match self {
            Risk::DisallowedScheme => "协议不是 http 或 https，可能执行脚本或访问本地文件",
            Risk::UserinfoTrick => "URL 在主机名前带有用户信息（@ 前缀），常用于伪装成其他网站",
            Risk::PrivateNetwork => "目标位于内网、本机或保留地址，可能用于攻击内部服务",
            Risk::SelfReference => "链接指向本服务自身，会形成跳转循环或隐藏真实目标",
            Risk::BlocklistedDomain => "域名在恶意域名黑名单中",
            Risk::IdnHomograph => "国际化域名混用多种文字或与知名品牌形近，疑似仿冒",
            Risk::IpLiteralHost => "主机名是 IP 地址而非域名",
            Risk::KnownShortener => "目标是另一个短链接服务，真实地址被隐藏",
            Risk::SuspiciousKeywords => "域名或路径含有仿冒品牌或钓鱼常用词",
            Risk::UnusualPort => "使用了非常规端口",
            Risk::ExecutableDownload => "链接指向可执行文件或安装包",
            Risk::CredentialParameters => "查询参数中含有密码、令牌等凭据",
            Risk::ExcessiveLength => "URL 过长，可能用于隐藏真实内容",
            Risk::UnresolvableHost => "域名无法解析",
        }
    }
}

/// What the offline rules found, and the name still to resolve (if any).
#[derive(Debug, Default)]
pub struct Findings {
    pub risks: Vec<Risk>,
    /// A domain name whose addresses decide `private_network`.
    pub resolve: Option<String>,
}

impl Findings {
    pub fn add(&mut self, risk: Risk) {
        if !self.risks.contains(&risk) {
            self.risks.push(risk);
        }
    }
}

/// Applies every offline rule to `url` (`raw_len`: the length as submitted).
pub fn inspect(url: &Url, raw_len: usize, blocklist: &Blocklist, own_hosts: &[&str]) -> Findings {
    let mut found = Findings::default();
    if raw_len > LONG_URL {
        found.add(Risk::ExcessiveLength);
    }
    if !matches!(url.scheme(), "http" | "https") {
        found.add(Risk::DisallowedScheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        found.add(Risk::UserinfoTrick);
    }
    match url.host() {
        None => {}
        Some(Host::Ipv4(v4)) => ip_rules(IpAddr::V4(v4), &mut found),
        Some(Host::Ipv6(v6)) => ip_rules(IpAddr::V6(v6), &mut found),
        Some(Host::Domain(domain)) => {
            let host = domain.trim_end_matches('.').to_ascii_lowercase();
            domain_rules(&host, blocklist, own_hosts, &mut found);
            if !found.risks.contains(&Risk::PrivateNetwork) {
                found.resolve = Some(host);
            }
        }
    }
    if crate::links::target::is_own_host(url, own_hosts) {
        found.add(Risk::SelfReference);
    }
    if let Some(port) = url.port()
        && !matches!(port, 80 | 443 | 8080 | 8443)
    {
        found.add(Risk::UnusualPort);
    }
    if let Some(last) = url.path_segments().and_then(|mut s| s.next_back())
        && let Some((_, ext)) = last.rsplit_once('.')
        && lists::EXECUTABLE_EXTENSIONS
            .iter()
            .any(|e| e.eq_ignore_ascii_case(ext))
    {
        found.add(Risk::ExecutableDownload);
    }
    // Not `pwd`/`pass`: cloud-drive links carry their public share pass code that way.
    const CREDENTIALS: &[&str] = &[
        "password",
        "passwd",
        "token",
        "access_token",
        "auth",
        "api_key",
        "apikey",
        "key",
        "secret",
        "session",
        "sessionid",
        "sid",
    ];
    if url
        .query_pairs()
        .any(|(name, _)| CREDENTIALS.iter().any(|c| c.eq_ignore_ascii_case(&name)))
    {
        found.add(Risk::CredentialParameters);
    }
    if phishing_words(url) >= 2 {
        found.add(Risk::SuspiciousKeywords);
    }
    found.risks.sort();
    found
}

/// Rules for an address (a literal, or one a name resolved to).
pub fn ip_rules(ip: IpAddr, found: &mut Findings) {
    found.add(Risk::IpLiteralHost);
    if !is_public_including_tunnels(ip) {
        found.add(Risk::PrivateNetwork);
    }
}

/// `netguard::is_public`, also looking inside 6to4 (2002::/16) and NAT64 (64:ff9b::/96)
/// addresses, which carry an IPv4 address.
pub fn is_public_including_tunnels(ip: IpAddr) -> bool {
    if !netguard::is_public(ip) {
        return false;
    }
    let IpAddr::V6(v6) = ip else { return true };
    match embedded_v4(v6) {
        Some(v4) => netguard::is_public(IpAddr::V4(v4)),
        None => true,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = v6.segments();
    let octets = v6.octets();
    if s[0] == 0x2002 {
        return Some(std::net::Ipv4Addr::new(
            octets[2], octets[3], octets[4], octets[5],
        ));
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6].iter().all(|&x| x == 0) {
        return Some(std::net::Ipv4Addr::new(
            octets[12], octets[13], octets[14], octets[15],
        ));
    }
    None
}

fn domain_rules(host: &str, blocklist: &Blocklist, own_hosts: &[&str], found: &mut Findings) {
    let internal = !host.contains('.')
        || lists::INTERNAL_SUFFIXES
            .iter()
            .any(|suffix| lists::is_within(host, suffix));
    if internal {
        found.add(Risk::PrivateNetwork);
    }
    if own_hosts
        .iter()
        .any(|own| lists::is_within(host, &own.to_ascii_lowercase()))
    {
        found.add(Risk::SelfReference);
    }
    if blocklist.blocks(host) {
        found.add(Risk::BlocklistedDomain);
    }
    if lists::SHORTENERS.iter().any(|s| lists::is_within(host, s)) {
        found.add(Risk::KnownShortener);
    }
    let labels: Vec<&str> = host.split('.').collect();
    let (unicode_host, _) = idna::domain_to_unicode(host);
    // Hyphens counted in the Unicode form: every punycode label has two of its own.
    if unicode_host.matches('-').count() >= 4 || labels.len() >= 6 {
        found.add(Risk::SuspiciousKeywords);
    }
    for (ascii, label) in labels.iter().zip(unicode_host.split('.')) {
        let idn = ascii.starts_with("xn--");
        let letters: String = label.chars().filter(|&c| c != '-').collect();
        if idn
            && letters.as_str().detect_restriction_level() > RestrictionLevel::ModeratelyRestrictive
        {
            found.add(Risk::IdnHomograph);
        }
        let skeleton: String = unicode_security::skeleton(label).collect();
        for (brand, domains) in lists::BRANDS {
            let owned = domains.iter().any(|d| lists::is_within(host, d));
            if owned {
                continue;
            }
            let words = label.split('-');
            if label == *brand || words.clone().any(|w| w == *brand) {
                // The brand's name on a domain that is not the brand's.
                found.add(Risk::SuspiciousKeywords);
            } else if skeleton == *brand || label_skeleton_matches(label, brand) {
                found.add(if idn {
                    Risk::IdnHomograph
                } else {
                    Risk::SuspiciousKeywords
                });
            }
        }
    }
}

/// Whether a `-`-separated word of `label` looks like `brand` (same confusable skeleton).
fn label_skeleton_matches(label: &str, brand: &str) -> bool {
    brand.len() >= 4
        && label.split('-').any(|word| {
            word != brand && unicode_security::skeleton(word).eq(unicode_security::skeleton(brand))
        })
}

/// How many distinct phishing words appear in the host's and path's words.
fn phishing_words(url: &Url) -> usize {
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    let path = url.path().to_ascii_lowercase();
    lists::PHISHING_WORDS
        .iter()
        .filter(|word| {
            host.split(['.', '-'])
                .chain(path.split(['/', '.', '-', '_']))
                .any(|part| part == **word)
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risks(text: &str) -> Vec<&'static str> {
        risks_with(text, &["s.example"])
    }

    fn risks_with(text: &str, own: &[&str]) -> Vec<&'static str> {
        let blocklist = Blocklist::load(None).unwrap();
        let url = Url::parse(text).unwrap();
        inspect(&url, text.len(), &blocklist, own)
            .risks
            .iter()
            .map(|r| r.code())
            .collect()
    }

    #[test]
    fn clean_urls_have_no_risk() {
        for ok in [
            "https://example.com/",
            "https://pan.baidu.com/s/1abc?pwd=x1y2",
            "https://www.google.com/search?q=rust",
            "https://例子.测试/",
            "https://github.com/rust-lang/rust",
            "http://example.org:8080/a",
        ] {
            assert_eq!(risks(ok), Vec::<&str>::new(), "{ok}");
        }
    }

    #[test]
    fn each_rule_fires() {
        let cases: &[(&str, &str)] = &[
            ("javascript:alert(1)", "disallowed_scheme"),
            ("data:text/html,<script>x</script>", "disallowed_scheme"),
            ("file:///etc/passwd", "disallowed_scheme"),
            ("ftp://example.com/x", "disallowed_scheme"),
            ("https://paypal.com@evil.example/", "userinfo_trick"),
            ("https://user:pw@example.com/", "userinfo_trick"),
            ("http://93.184.216.34/", "ip_literal_host"),
            ("http://127.0.0.1/", "private_network"),
            ("http://0x7f.1/", "private_network"),
            ("http://2130706433/", "private_network"),
            ("http://10.0.0.8/", "private_network"),
            ("http://172.20.1.1/", "private_network"),
            ("http://192.168.1.1/", "private_network"),
            (
                "http://169.254.169.254/latest/meta-data/",
                "private_network",
            ),
            ("http://100.64.0.1/", "private_network"),
            ("http://[::1]/", "private_network"),
            ("http://[fe80::1]/", "private_network"),
            ("http://[::ffff:10.0.0.1]/", "private_network"),
            ("http://[2002:c0a8:0101::1]/", "private_network"),
            ("http://[64:ff9b::a00:1]/", "private_network"),
            ("http://localhost:8080/", "private_network"),
            ("http://printer.local/", "private_network"),
            ("http://db.internal/", "private_network"),
            ("http://router.home.arpa/", "private_network"),
            ("http://intranet/", "private_network"),
            ("https://s.example/abc123", "self_reference"),
            (
                "https://testsafebrowsing.appspot.com/s/phishing.html",
                "blocklisted_domain",
            ),
            ("https://a.b.steamcommunlty.com/login", "blocklisted_domain"),
            (
                "https://\u{430}\u{440}\u{440}\u{4cf}\u{435}.com/",
                "idn_homograph",
            ),
            ("https://p\u{430}ypal.com/", "idn_homograph"),
            ("https://g\u{585}\u{585}gle.com/", "idn_homograph"),
            ("https://bit.ly/3abc", "known_shortener"),
            ("https://t.cn/A6x", "known_shortener"),
            (
                "https://paypal.com.account-check.example/",
                "suspicious_keywords",
            ),
            ("https://secure-paypal.example/", "suspicious_keywords"),
            ("https://paypa1.example/", "suspicious_keywords"),
            (
                "https://example.com/account/verify/login",
                "suspicious_keywords",
            ),
            ("https://a-b-c-d-e.example/", "suspicious_keywords"),
            ("http://example.com:3306/", "unusual_port"),
            ("https://example.com/setup.exe", "executable_download"),
            ("https://example.com/app.APK?x=1", "executable_download"),
            ("https://example.com/?token=abc", "credential_parameters"),
            ("https://example.com/?Password=x", "credential_parameters"),
        ];
        for (url, code) in cases {
            assert!(
                risks(url).contains(code),
                "{url}: expected {code}, got {:?}",
                risks(url)
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(LONG_URL));
        assert_eq!(risks(&long), ["excessive_length"]);
    }

    #[test]
    fn levels() {
        assert!(Risk::PrivateNetwork.is_unsafe());
        assert!(Risk::IdnHomograph.is_unsafe());
        assert!(!Risk::KnownShortener.is_unsafe());
        assert!(!Risk::UnresolvableHost.is_unsafe());
        // Legit Chinese IDNs are single-script: no homograph finding.
        assert!(!risks("https://xn--fiqs8s.xn--fiqs8s/").contains(&"idn_homograph"));
    }
}
