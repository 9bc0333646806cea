//! The data behind the security check's list rules: the bundled domain blocklist (plus the
//! operator's file), known URL shorteners, and the protected brand names that look-alike domains
//! imitate. All matching is on whole labels: `evil.example` matches `evil.example` and
//! `a.evil.example`, never `notevil.example`.

use std::collections::HashSet;
use std::path::Path;

/// The bundled blocklist: one domain per line, `#` comments. A snapshot of well-known phishing and
/// malware-distribution domains and the industry's test domains; operators extend it with
/// `security.blocklist_file` (same format; a line `!domain` exempts a domain).
const BUNDLED_BLOCKLIST: &str = include_str!("blocklist.txt");

/// URL shorteners: a link to one hides its real target behind a second hop.
pub const SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "t.co",
    "tinyurl.com",
    "goo.gl",
    "ow.ly",
    "is.gd",
    "v.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "s.id",
    "lnkd.in",
    "dub.sh",
    "kutt.it",
    "t.ly",
    "bl.ink",
    "short.io",
    "qr.ae",
    "trib.al",
    "soo.gd",
    "clck.ru",
    "t.cn",
    "url.cn",
    "dwz.cn",
    "suo.im",
    "985.so",
    "sina.lt",
    "mrw.so",
    "u.nu",
    "reurl.cc",
    "0rz.tw",
    "w.url.cn",
    "j.mp",
    "adf.ly",
    "shorte.st",
    "ouo.io",
    "bc.vc",
];

/// Brands that phishing imitates (first label of their registrable domain), with their real
/// registrable domains.
pub const BRANDS: &[(&str, &[&str])] = &[
    ("google", &["google.com", "google.cn"]),
    ("apple", &["apple.com", "apple.com.cn"]),
    ("icloud", &["icloud.com"]),
    ("microsoft", &["microsoft.com"]),
    ("outlook", &["outlook.com"]),
    ("paypal", &["paypal.com"]),
    ("amazon", &["amazon.com", "amazon.cn"]),
    ("facebook", &["facebook.com"]),
    ("github", &["github.com"]),
    ("netflix", &["netflix.com"]),
    ("steam", &["steampowered.com", "steamcommunity.com"]),
    ("steamcommunity", &["steamcommunity.com"]),
    ("baidu", &["baidu.com"]),
    ("taobao", &["taobao.com"]),
    ("tmall", &["tmall.com"]),
    ("alipay", &["alipay.com"]),
    ("alibaba", &["alibaba.com"]),
    ("aliyun", &["aliyun.com"]),
    ("alipan", &["alipan.com"]),
    ("tencent", &["tencent.com"]),
    ("weixin", &["weixin.qq.com", "qq.com"]),
    ("wechat", &["wechat.com"]),
    ("jd", &["jd.com"]),
    ("icbc", &["icbc.com.cn"]),
    ("ccb", &["ccb.com"]),
    ("boc", &["boc.cn"]),
    ("abchina", &["abchina.com"]),
    ("cmbchina", &["cmbchina.com"]),
    ("unionpay", &["unionpay.com"]),
    ("binance", &["binance.com"]),
    ("coinbase", &["coinbase.com"]),
    ("metamask", &["metamask.io"]),
    ("quark", &["quark.cn"]),
    ("xunlei", &["xunlei.com"]),
    ("123pan", &["123pan.com"]),
];

/// Words that phishing pages put in hosts and paths.
pub const PHISHING_WORDS: &[&str] = &[
    "login",
    "signin",
    "sign-in",
    "logon",
    "verify",
    "verification",
    "account",
    "secure",
    "security",
    "update",
    "confirm",
    "banking",
    "wallet",
    "password",
    "webscr",
    "unlock",
    "suspended",
    "recover",
    "billing",
    "invoice",
    "free-gift",
    "airdrop",
    "claim",
];

/// Executable or installer file extensions (URLhaus lists mostly such downloads).
pub const EXECUTABLE_EXTENSIONS: &[&str] = &[
    "exe", "scr", "msi", "bat", "cmd", "com", "pif", "vbs", "vbe", "js", "jse", "wsf", "ps1",
    "hta", "jar", "apk", "dmg", "pkg", "deb", "rpm", "sh", "dll", "lnk", "iso", "img",
];

/// Host names that never leave the local network.
pub const INTERNAL_SUFFIXES: &[&str] = &[
    "localhost",
    "local",
    "localdomain",
    "internal",
    "intranet",
    "lan",
    "home",
    "corp",
    "home.arpa",
    "in-addr.arpa",
    "ip6.arpa",
];

/// Ports of services that web links have no business pointing at.
pub const ADMIN_PORTS: &[u16] = &[
    21, 22, 23, 25, 110, 135, 139, 143, 445, 1433, 1521, 2375, 3306, 3389, 5432, 5900, 6379, 9200,
    11211, 27017,
];

/// The domain blocklist: bundled entries plus the operator's, minus the operator's exemptions.
#[derive(Debug, Default)]
pub struct Blocklist {
    blocked: HashSet<String>,
    exempt: HashSet<String>,
}

/// Why the operator's blocklist could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading the blocklist {path}: {source}")]
pub struct BlocklistError {
    path: String,
    source: std::io::Error,
}

impl Blocklist {
    /// The bundled list, extended by `extra` (the operator's file) when given.
    pub fn load(extra: Option<&Path>) -> Result<Blocklist, BlocklistError> {
        let mut list = Blocklist::default();
        list.add_lines(BUNDLED_BLOCKLIST);
        if let Some(path) = extra {
            let text = std::fs::read_to_string(path).map_err(|source| BlocklistError {
                path: path.display().to_string(),
                source,
            })?;
            list.add_lines(&text);
        }
        Ok(list)
    }

    fn add_lines(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or_default().trim();
            let (set, domain) = match line.strip_prefix('!') {
                Some(domain) => (&mut self.exempt, domain),
                None => (&mut self.blocked, line),
            };
            let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
            if !domain.is_empty() {
                set.insert(domain);
            }
        }
    }

    /// Entries in the list (for logs and metrics).
    pub fn len(&self) -> usize {
        self.blocked.len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocked.is_empty()
    }

    /// Whether `host` (lowercase ASCII, punycode) or a parent domain is blocked and not exempt.
    pub fn blocks(&self, host: &str) -> bool {
        let candidates = || suffixes(host);
        !candidates().any(|d| self.exempt.contains(d))
            && candidates().any(|d| self.blocked.contains(d))
    }
}

/// `a.b.c` → `a.b.c`, `b.c`, `c`.
pub fn suffixes(host: &str) -> impl Iterator<Item = &str> {
    std::iter::successors(Some(host), |h| h.split_once('.').map(|(_, rest)| rest))
}

/// Whether `host` is `domain` or one of its subdomains.
pub fn is_within(host: &str, domain: &str) -> bool {
    suffixes(host).any(|d| d == domain)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocklist_matches_whole_labels_and_honours_exemptions() {
        let mut list = Blocklist::default();
        list.add_lines("# comment\nevil.example\nBAD.Example. # trailing\n!ok.evil.example\n");
        assert!(list.blocks("evil.example"));
        assert!(list.blocks("a.b.evil.example"));
        assert!(list.blocks("bad.example"));
        assert!(!list.blocks("notevil.example"));
        assert!(!list.blocks("ok.evil.example"));
        assert!(!list.blocks("x.ok.evil.example"));
        assert_eq!(list.len(), 2);
    }

    #[test]
    fn the_bundled_list_loads() {
        let list = Blocklist::load(None).unwrap();
        assert!(list.len() >= 20);
        assert!(list.blocks("testsafebrowsing.appspot.com"));
        assert!(!list.blocks("example.com"));
    }

    #[test]
    fn suffix_walk() {
        assert_eq!(suffixes("a.b.c").collect::<Vec<_>>(), ["a.b.c", "b.c", "c"]);
        assert!(is_within("pan.baidu.com", "baidu.com"));
        assert!(!is_within("notbaidu.com", "baidu.com"));
    }
}
