//! What the visitor rules and the click statistics know about a visitor: operating system, device
//! class, browser and in-app browser (from `User-Agent`), and language (from `Accept-Language`).
//!
//! The OS and the phone/desktop split come from the `woothee` crate, chosen by a benchmark against
//! `uaparser` (docs/visitor-rules.md): both read the OS of every string of
//! `tests/fixtures/user_agents.tsv` right, woothee at about 1 µs a parse, uaparser at about 68 µs
//! and with a 200 KB regex file to ship. Two refinements on top of woothee, from the browsers' own
//! documentation: an Android user agent without `Mobile` is a tablet (Chrome's rule for tablets),
//! and an iPad is a tablet. In-app browsers are found by the token each app adds (no crate knows
//! the Chinese ones). A parse is remembered in a small per-thread table keyed by the whole string,
//! so the visitors of a popular link, who share a handful of user agents, cost a hash and a
//! compare each. The browser is told by the tokens of the Chinese browsers first (woothee knows
//! few of them), then by woothee's name.
//!
//! Must not: allocate on a remembered user agent.

use std::cell::RefCell;
use std::hash::BuildHasher;

use serde::{Deserialize, Serialize};

/// An operating system a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    Ios,
    Android,
    Windows,
    Macos,
    Linux,
}

/// A device class a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Mobile,
    Tablet,
    Desktop,
}

/// An in-app browser a rule can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum App {
    Wechat,
    Qq,
    Weibo,
    Alipay,
    Dingtalk,
    Douyin,
}

/// A browser, for the statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    Chrome,
    Safari,
    Firefox,
    Edge,
    Ie,
    Opera,
    Uc,
    Qq,
    Quark,
    Sogou,
    Baidu,
    Qihoo360,
    Xiaomi,
    Huawei,
    Samsung,
    Other,
}

macro_rules! names {
    ($ty:ty, $($variant:ident => $name:literal),+ $(,)?) => {
        impl $ty {
            /// Every accepted name, for error messages and the API guide.
            pub const NAMES: &'static [&'static str] = &[$($name),+];

            pub fn parse(text: &str) -> Option<Self> {
                match text {
                    $($name => Some(Self::$variant),)+
                    _ => None,
                }
            }

            /// Its name (as the API and the statistics write it).
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)+
                }
            }
        }
    };
}

names!(Os, Ios => "ios", Android => "android", Windows => "windows", Macos => "macos", Linux => "linux");
names!(Device, Mobile => "mobile", Tablet => "tablet", Desktop => "desktop");
names!(App, Wechat => "wechat", Qq => "qq", Weibo => "weibo", Alipay => "alipay",
    Dingtalk => "dingtalk", Douyin => "douyin");
names!(Browser, Chrome => "chrome", Safari => "safari", Firefox => "firefox", Edge => "edge",
    Ie => "ie", Opera => "opera", Uc => "uc", Qq => "qqbrowser", Quark => "quark",
    Sogou => "sogou", Baidu => "baidu", Qihoo360 => "360", Xiaomi => "xiaomi",
    Huawei => "huawei", Samsung => "samsung", Other => "other");

/// What a user agent says, as far as the rules care.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Profile {
    pub os: Option<Os>,
    pub device: Option<Device>,
    pub app: Option<App>,
    pub browser: Option<Browser>,
}

/// The tokens in-app browsers add to the system web view's user agent, first match wins. WeChat's
/// Android string also names QQ's browser core (`MQQBrowser`), so the QQ app is told by ` QQ/`.
const APP_TOKENS: &[(&str, App)] = &[
    ("MicroMessenger", App::Wechat),
    ("__weibo__", App::Weibo),
    ("AlipayClient", App::Alipay),
    ("DingTalk", App::Dingtalk),
    ("aweme", App::Douyin),
    (" QQ/", App::Qq),
];

/// Tokens of browsers woothee does not tell apart (most are Chrome or Safari to it), first match
/// wins; Edge's own tokens come before Chrome's name.
const BROWSER_TOKENS: &[(&str, Browser)] = &[
    ("Quark/", Browser::Quark),
    ("UCBrowser", Browser::Uc),
    ("UCWEB", Browser::Uc),
    ("MQQBrowser", Browser::Qq),
    ("QQBrowser", Browser::Qq),
    ("MetaSr", Browser::Sogou),
    ("SogouMobileBrowser", Browser::Sogou),
    ("baiduboxapp", Browser::Baidu),
    ("BaiduBrowser", Browser::Baidu),
    ("QihooBrowser", Browser::Qihoo360),
    ("360SE", Browser::Qihoo360),
    ("MiuiBrowser", Browser::Xiaomi),
    ("HuaweiBrowser", Browser::Huawei),
    ("HarmonyOS", Browser::Huawei),
    ("SamsungBrowser", Browser::Samsung),
    ("Edg/", Browser::Edge),
    ("EdgA/", Browser::Edge),
    ("EdgiOS/", Browser::Edge),
    ("OPR/", Browser::Opera),
    ("FxiOS/", Browser::Firefox),
    ("CriOS/", Browser::Chrome),
];

/// Reads a user agent (no memory: see [`profile_of`]).
pub fn parse(user_agent: &str) -> Profile {
    let app = APP_TOKENS
        .iter()
        .find(|(token, _)| user_agent.contains(token))
        .map(|&(_, app)| app);
    let token_browser = BROWSER_TOKENS
        .iter()
        .find(|(token, _)| user_agent.contains(token))
        .map(|&(_, browser)| browser);
    let Some(read) = woothee::parser::Parser::new().parse(user_agent) else {
        return Profile {
            app,
            browser: token_browser,
            ..Profile::default()
        };
    };
    let browser = token_browser.or(match read.name {
        "Chrome" => Some(Browser::Chrome),
        "Safari" => Some(Browser::Safari),
        "Firefox" => Some(Browser::Firefox),
        "Edge" => Some(Browser::Edge),
        "Internet Explorer" => Some(Browser::Ie),
        "Opera" => Some(Browser::Opera),
        "UCBrowser" => Some(Browser::Uc),
        "UNKNOWN" | "" => None,
        _ => Some(Browser::Other),
    });
    let os = match read.os {
        "iPhone" | "iPad" | "iPod" | "iOS" => Some(Os::Ios),
        "Android" => Some(Os::Android),
        "Mac OSX" => Some(Os::Macos),
        "Linux" => Some(Os::Linux),
        name if name.starts_with("Windows") && !name.contains("Phone") => Some(Os::Windows),
        _ => None,
    };
    let device = match (read.category, os) {
        _ if read.os == "iPad" => Some(Device::Tablet),
        (_, Some(Os::Android)) if !user_agent.contains("Mobile") => Some(Device::Tablet),
        ("smartphone" | "mobilephone", _) => Some(Device::Mobile),
        ("pc", _) => Some(Device::Desktop),
        _ => None,
    };
    Profile {
        os,
        device,
        app,
        browser,
    }
}

/// Remembered parses per thread (a power of two). Direct-mapped: a slot holds the last user agent
/// whose hash fell there.
const MEMORY_SLOTS: usize = 256;
/// Longer user agents are parsed each time rather than copied into the table.
const MEMORY_MAX_LEN: usize = 512;

struct Remembered {
    user_agent: Box<str>,
    profile: Profile,
}

thread_local! {
    static MEMORY: RefCell<Vec<Option<Remembered>>> =
        RefCell::new((0..MEMORY_SLOTS).map(|_| None).collect());
}

/// [`parse`], remembered per thread.
pub fn profile_of(user_agent: &str) -> Profile {
    if user_agent.len() > MEMORY_MAX_LEN {
        return parse(user_agent);
    }
    let slot = rustc_hash::FxBuildHasher.hash_one(user_agent) as usize & (MEMORY_SLOTS - 1);
    MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if let Some(seen) = &memory[slot]
            && &*seen.user_agent == user_agent
        {
            return seen.profile;
        }
        let profile = parse(user_agent);
        memory[slot] = Some(Remembered {
            user_agent: user_agent.into(),
            profile,
        });
        profile
    })
}

/// Remembered `Accept-Language` headers per thread (a power of two), direct-mapped, and the
/// longest one remembered (browsers send a few dozen bytes; each sends the same one every time).
const LANGUAGE_SLOTS: usize = 64;
const LANGUAGE_MEMORY_MAX_LEN: usize = 128;

/// A remembered header and its answer (the subtag's bytes and length; 0: none).
type RememberedLanguage = (Box<[u8]>, [u8; 8], u8);

thread_local! {
    static LANGUAGES: RefCell<Vec<Option<RememberedLanguage>>> =
        RefCell::new(vec![None; LANGUAGE_SLOTS]);
}

/// The primary subtag (lowercase) of the language the visitor prefers most in `Accept-Language`
/// (highest `q`, the first on a tie; `*` and `q=0` never count), into `out`; `None` if there is
/// none. At most 8 letters: a primary subtag is 2 to 8 (RFC 5646). Remembered per thread.
pub fn preferred_language<'a>(header: &[u8], out: &'a mut [u8; 8]) -> Option<&'a str> {
    if header.len() > LANGUAGE_MEMORY_MAX_LEN {
        return parse_language(header, out);
    }
    let slot = rustc_hash::FxBuildHasher.hash_one(header) as usize & (LANGUAGE_SLOTS - 1);
    let len = LANGUAGES.with(|memory| {
        let mut memory = memory.borrow_mut();
        if let Some((seen, bytes, len)) = &memory[slot]
            && **seen == *header
        {
            *out = *bytes;
            return usize::from(*len);
        }
        let len = parse_language(header, out).map_or(0, str::len);
        memory[slot] = Some((header.into(), *out, len as u8));
        len
    });
    (len > 0)
        .then(|| std::str::from_utf8(&out[..len]).ok())
        .flatten()
}

fn parse_language<'a>(header: &[u8], out: &'a mut [u8; 8]) -> Option<&'a str> {
    let text = std::str::from_utf8(header).ok()?;
    let mut best: Option<(&str, u32)> = None;
    for item in text.split(',') {
        let mut parts = item.split(';');
        let range = parts.next().unwrap_or_default().trim();
        let quality = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .map_or(1000, quality_milli);
        let primary = range.split('-').next().unwrap_or_default();
        if quality == 0
            || !(1..=8).contains(&primary.len())
            || !primary.bytes().all(|b| b.is_ascii_alphabetic())
        {
            continue;
        }
        if best.is_none_or(|(_, q)| quality > q) {
            best = Some((primary, quality));
        }
    }
    let (primary, _) = best?;
    let out = &mut out[..primary.len()];
    out.copy_from_slice(primary.as_bytes());
    out.make_ascii_lowercase();
    std::str::from_utf8(out).ok()
}

/// `q` as thousandths (RFC 9110: at most three decimals); malformed counts as 0.
fn quality_milli(text: &str) -> u32 {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let fraction_ok = fraction.len() <= 3 && fraction.bytes().all(|b| b.is_ascii_digit());
    match whole {
        "1" if fraction.bytes().all(|b| b == b'0') && fraction_ok => 1000,
        "0" if fraction_ok => fraction
            .bytes()
            .chain(std::iter::repeat(b'0'))
            .take(3)
            .fold(0, |milli, digit| milli * 10 + u32::from(digit - b'0')),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every row of the fixture: (os, device, app, user agent).
    fn fixture() -> Vec<(String, String, String, String)> {
        include_str!("../../tests/fixtures/user_agents.tsv")
            .lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .map(|line| {
                let cols: Vec<&str> = line.split('\t').collect();
                assert!(cols.len() >= 4, "short fixture row: {line}");
                (
                    cols[0].to_owned(),
                    cols[1].to_owned(),
                    cols[2].to_owned(),
                    cols[3].to_owned(),
                )
            })
            .collect()
    }

    fn name<T: Serialize>(value: Option<T>) -> String {
        value.map_or("-".to_owned(), |v| {
            serde_json::to_value(v)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
    }

    #[test]
    fn every_fixture_user_agent_reads_as_recorded() {
        let rows = fixture();
        assert!(rows.len() >= 30);
        for (os, device, app, ua) in rows {
            let profile = profile_of(&ua);
            assert_eq!(profile, parse(&ua), "memory differs from a parse: {ua}");
            assert_eq!(
                (name(profile.os), name(profile.device), name(profile.app)),
                (os, device, app),
                "{ua}"
            );
        }
    }

    #[test]
    fn a_remembered_slot_is_never_answered_for_another_user_agent() {
        // Many strings share each of the 256 slots; each must still read as itself.
        for i in 0..2_000 {
            let ua = if i % 2 == 0 {
                format!("Mozilla/5.0 (iPhone; CPU iPhone OS 17_{i} like Mac OS X) Mobile/15E148")
            } else {
                format!("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/{i}.0 Safari/537.36")
            };
            let expected = if i % 2 == 0 { Os::Ios } else { Os::Windows };
            assert_eq!(profile_of(&ua).os, Some(expected), "{ua}");
            assert_eq!(profile_of(&ua).os, Some(expected), "{ua} (second time)");
        }
    }

    #[test]
    fn garbage_and_empty_user_agents_read_as_nothing() {
        assert_eq!(parse(""), Profile::default());
        assert_eq!(parse("curl/8.5.0").os, None);
        assert_eq!(parse(&"x".repeat(10_000)), Profile::default());
    }

    #[test]
    fn the_most_preferred_language_wins() {
        let mut buf = [0u8; 8];
        let mut pick =
            |header: &str| preferred_language(header.as_bytes(), &mut buf).map(str::to_owned);
        assert_eq!(pick("zh-CN,zh;q=0.9,en;q=0.8").as_deref(), Some("zh"));
        assert_eq!(pick("en-US;q=0.5, ja;q=0.8").as_deref(), Some("ja"));
        assert_eq!(pick("fr;q=0.5, DE;q=0.5").as_deref(), Some("fr"));
        assert_eq!(pick("*, en;q=0.1").as_deref(), Some("en"));
        assert_eq!(pick("en;q=0, *").as_deref(), None);
        assert_eq!(pick("").as_deref(), None);
        assert_eq!(pick("zh-Hant-TW").as_deref(), Some("zh"));
        assert_eq!(pick("x1-foo, ko;q=0.3").as_deref(), Some("ko"));
        assert_eq!(pick("en;q=abc, it;q=0.25").as_deref(), Some("it"));
        assert_eq!(pick("en;q=1.5, it;q=0.001").as_deref(), Some("it"));
    }
}
