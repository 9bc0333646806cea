//! The security check's URL analysis over arbitrary text: never panics, is deterministic, and a
//! URL it calls safe has an http(s) scheme and a host (what the redirect may send a browser to).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use panlink::security::lists::Blocklist;
use panlink::security::rules::{Risk, inspect};

fn blocklist() -> &'static Blocklist {
    static LIST: OnceLock<Blocklist> = OnceLock::new();
    LIST.get_or_init(|| Blocklist::load(None).expect("the bundled list parses"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(url) = url::Url::parse(text) else { return };
    let own = ["s.example.com"];
    let first = inspect(&url, text.len(), blocklist(), &own);
    let again = inspect(&url, text.len(), blocklist(), &own);
    assert_eq!(first.risks, again.risks, "deterministic");
    if !first.risks.iter().any(|r| r.is_unsafe()) {
        assert!(matches!(url.scheme(), "http" | "https"), "{text:?}");
        assert!(url.host().is_some(), "{text:?}");
        assert!(!first.risks.contains(&Risk::UserinfoTrick));
    }
});
