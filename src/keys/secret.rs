//! API key secrets and ids: generation from OS randomness, format check, hashing.
//!
//! A secret is `sk_` + 32 base62 characters (≈190 bits). Only its SHA-256 is stored; lookups hash
//! the presented secret and compare hashes, so the secret itself is never kept or logged.

use rand::TryRngCore;
use rand::rngs::OsRng;
use sha2::{Digest, Sha256};

/// The fixed prefix of every secret.
pub const SECRET_PREFIX: &str = "sk_";
/// Base62 characters after the prefix.
pub const SECRET_BODY_LEN: usize = 32;
/// Characters of a key id.
pub const ID_LEN: usize = 12;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// SHA-256 of a secret: the key under which its record is stored.
pub type SecretHash = [u8; 32];

/// A new secret from the operating system's random source.
pub fn generate_secret() -> String {
    let mut out = String::with_capacity(SECRET_PREFIX.len() + SECRET_BODY_LEN);
    out.push_str(SECRET_PREFIX);
    push_base62(&mut out, SECRET_BODY_LEN);
    out
}

/// A new key id (public, shown in listings; not a secret).
pub fn generate_id() -> String {
    let mut out = String::with_capacity(ID_LEN);
    push_base62(&mut out, ID_LEN);
    out
}

/// `len` random base62 characters (ids of jobs and other records).
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    push_base62(&mut out, len);
    out
}

/// Whether `text` has the shape of a secret; checked before any lookup.
pub fn looks_like_secret(text: &str) -> bool {
    text.len() == SECRET_PREFIX.len() + SECRET_BODY_LEN
        && text.starts_with(SECRET_PREFIX)
        && text.as_bytes()[SECRET_PREFIX.len()..]
            .iter()
            .all(u8::is_ascii_alphanumeric)
}

/// Whether `text` has the shape of a key id.
pub fn looks_like_id(text: &str) -> bool {
    text.len() == ID_LEN && text.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The storage key of a secret.
pub fn hash_secret(secret: &str) -> SecretHash {
    Sha256::digest(secret.as_bytes()).into()
}

/// Appends `len` uniformly random base62 characters (rejection sampling, no modulo bias).
fn push_base62(out: &mut String, len: usize) {
    let mut pushed = 0;
    let mut buf = [0u8; 64];
    while pushed < len {
        OsRng
            .try_fill_bytes(&mut buf)
            .expect("the OS random source works");
        for &byte in &buf {
            // 248 = 4 * 62: bytes at or above it would bias the first characters.
            if byte < 248 && pushed < len {
                out.push(BASE62[usize::from(byte % 62)] as char);
                pushed += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_the_documented_shape_and_differ() {
        let a = generate_secret();
        let b = generate_secret();
        assert!(looks_like_secret(&a), "{a}");
        assert_ne!(a, b);
        assert_eq!(a.len(), 35);
        assert!(looks_like_id(&generate_id()));
    }

    #[test]
    fn shape_check_refuses_near_misses() {
        assert!(!looks_like_secret("sk_short"));
        assert!(!looks_like_secret(&format!("pk_{}", "a".repeat(32))));
        assert!(!looks_like_secret(&format!("sk_{}!", "a".repeat(31))));
        assert!(looks_like_secret(&format!("sk_{}", "a".repeat(32))));
    }

    #[test]
    fn hash_is_sha256() {
        let hash = hash_secret("abc");
        assert_eq!(hash[..4], [0xba, 0x78, 0x16, 0xbf]);
    }
}
