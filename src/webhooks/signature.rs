//! The signature of a delivery: `X-Panlink-Signature: t=<unix seconds>,v1=<hex>`, where the hex
//! is HMAC-SHA256 keyed by the webhook's secret over `"<t>.<raw body>"` (the scheme Stripe
//! uses). The timestamp inside the signed text lets a receiver refuse old replays.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The `X-Panlink-Signature` value of `body` signed with `secret` at `t` (unix seconds).
pub fn header(secret: &str, t: u64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex(&digest(secret, t, body)))
}

fn digest(secret: &str, t: u64, body: &[u8]) -> [u8; 32] {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    out
}

/// Whether `header` is a valid signature of `body` for `secret`, made within `tolerance_s` of
/// `now_s`: what a receiver does (the guide shows it in Python and PHP; tests use this one).
pub fn verify(secret: &str, header: &str, body: &[u8], now_s: u64, tolerance_s: u64) -> bool {
    let mut t = None;
    let mut v1 = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = value.parse::<u64>().ok(),
            Some(("v1", value)) => v1.push(value),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    if now_s.abs_diff(t) > tolerance_s {
        return false;
    }
    let expected = hex(&digest(secret, t, body));
    v1.iter().any(|candidate| {
        use subtle::ConstantTimeEq;
        candidate.as_bytes().ct_eq(expected.as_bytes()).into()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_rfc_4231_hmac_sha256_vector() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?". Signed text is
        // "<t>.<body>", so t and body are chosen to spell that data.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_verifies_and_any_change_breaks_it() {
        let body = br#"{"id":"dlv_0000000000000001","type":"ping"}"#;
        let signed = header("whsec_abc", 1_700_000_000, body);
        assert!(signed.starts_with("t=1700000000,v1="));
        assert!(verify("whsec_abc", &signed, body, 1_700_000_100, 300));
        assert!(!verify("whsec_abd", &signed, body, 1_700_000_100, 300));
        assert!(!verify("whsec_abc", &signed, b"{}", 1_700_000_100, 300));
        assert!(!verify("whsec_abc", &signed, body, 1_700_001_000, 300));
        let other_t = signed.replace("t=1700000000", "t=1700000001");
        assert!(!verify("whsec_abc", &other_t, body, 1_700_000_100, 300));
    }
}
