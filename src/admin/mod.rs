//! Operator access: the admin bearer token and the admin JSON API.
//!
//! Invariant: the admin token is compared in constant time, never logged except once when it is
//! first generated, and admin routes never accept an API key instead.

pub mod keys_api;
pub mod token;

use http::HeaderMap;
use http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;

/// Checks `Authorization: Bearer <token>` against the admin token.
pub struct AdminAuth {
    /// SHA-256 of the token: comparing fixed-size digests keeps the comparison constant-time
    /// whatever the presented length.
    token_hash: [u8; 32],
}

impl AdminAuth {
    pub fn new(token: &str) -> AdminAuth {
        AdminAuth {
            token_hash: Sha256::digest(token.as_bytes()).into(),
        }
    }

    /// 401 unless the request carries the admin token.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let presented = headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.trim().split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then_some(token.trim())
            })
            .ok_or(ApiError::AdminUnauthorized)?;
        let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        if bool::from(presented.ct_eq(&self.token_hash)) {
            Ok(())
        } else {
            Err(ApiError::AdminUnauthorized)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn bearer_token_checked() {
        let auth = AdminAuth::new("correct-horse-battery-staple");
        assert!(
            auth.check(&headers("Bearer correct-horse-battery-staple"))
                .is_ok()
        );
        assert!(
            auth.check(&headers("bearer correct-horse-battery-staple"))
                .is_ok()
        );
        assert!(auth.check(&headers("Bearer wrong")).is_err());
        assert!(
            auth.check(&headers("Basic correct-horse-battery-staple"))
                .is_err()
        );
        assert!(
            auth.check(&headers("correct-horse-battery-staple"))
                .is_err()
        );
        assert!(auth.check(&HeaderMap::new()).is_err());
    }
}
