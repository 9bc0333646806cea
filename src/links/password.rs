//! Link passwords: argon2id hashes (PHC strings, the argon2 crate's defaults: 19 MiB, 2 passes),
//! computed on the blocking pool a few at a time, and the limiter of wrong attempts per link and
//! client IP.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Shortest and longest password accepted.
pub const MIN_LEN: usize = 4;
pub const MAX_LEN: usize = 128;

/// Hashes and verifies passwords off the async workers, at most `permits` at once (each takes
/// 19 MiB and tens of milliseconds: unbounded, a burst could exhaust memory).
pub struct Hasher {
    permits: Arc<Semaphore>,
}

impl Default for Hasher {
    fn default() -> Self {
        Hasher::new()
    }
}

impl Hasher {
    pub fn new() -> Hasher {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Hasher {
            permits: Arc::new(Semaphore::new(cores * 2)),
        }
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, ApiError> {
        let mut hashes = self.hash_all(vec![password]).await?;
        Ok(hashes.pop().expect("one hash per password"))
    }

    /// The PHC strings of `passwords`, in order, hashed in parallel on the blocking pool (as many
    /// at once as the permits allow: a batch of links uses every core, not one).
    pub async fn hash_all(&self, passwords: Vec<String>) -> Result<Vec<String>, ApiError> {
        let mut running = Vec::with_capacity(passwords.len());
        for password in passwords {
            let permit = Arc::clone(&self.permits)
                .acquire_owned()
                .await
                .map_err(|_| ApiError::ShuttingDown)?;
            running.push(tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
                    .expect("16 bytes make a valid salt");
                Argon2::default()
                    .hash_password(password.as_bytes(), &salt)
                    .map(|hash| hash.to_string())
            }));
        }
        let mut hashes = Vec::with_capacity(running.len());
        for task in running {
            let hash = task.await.map_err(|_| ApiError::Internal)?.map_err(|err| {
                tracing::error!(error = %err, "argon2 hashing failed");
                ApiError::Internal
            })?;
            hashes.push(hash);
        }
        Ok(hashes)
    }

    /// Whether `password` matches the PHC string `hash`.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::ShuttingDown)?;
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash)
                .map(|parsed| {
                    Argon2::default()
                        .verify_password(password.as_bytes(), &parsed)
                        .is_ok()
                })
                .unwrap_or(false)
        })
        .await
        .map_err(|_| ApiError::Internal)
    }
}

/// Whether a password is acceptable to set.
pub fn check(password: &str) -> Result<(), String> {
    let len = password.chars().count();
    if !(MIN_LEN..=MAX_LEN).contains(&len) {
        return Err(format!("密码长度须为 {MIN_LEN} 到 {MAX_LEN} 个字符"));
    }
    if password.chars().any(char::is_control) {
        return Err("密码不能包含控制字符".into());
    }
    Ok(())
}

struct Failures {
    count: u32,
    since: Instant,
}

/// Wrong password attempts per (code, client IP) in a fixed window.
pub struct AttemptLimiter {
    max_failures: u32,
    window: Duration,
    shards: Box<[AttemptShard]>,
}

type AttemptShard = Mutex<FxHashMap<(Box<str>, IpAddr), Failures>>;

const SHARDS: usize = 16;

impl AttemptLimiter {
    pub fn new(max_failures: u32, window: Duration) -> AttemptLimiter {
        AttemptLimiter {
            max_failures,
            window,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
        }
    }

    /// `Some(seconds to wait)` when this client has used up its attempts on `code`.
    pub fn blocked(&self, code: &str, ip: IpAddr) -> Option<u64> {
        let shard = self.shard(ip).lock();
        let failures = shard.get(&(Box::from(code), ip))?;
        let elapsed = failures.since.elapsed();
        (failures.count >= self.max_failures && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    /// Counts a wrong attempt.
    pub fn failed(&self, code: &str, ip: IpAddr) {
        let mut shard = self.shard(ip).lock();
        let failures = shard.entry((Box::from(code), ip)).or_insert(Failures {
            count: 0,
            since: Instant::now(),
        });
        if failures.since.elapsed() >= self.window {
            *failures = Failures {
                count: 0,
                since: Instant::now(),
            };
        }
        failures.count += 1;
    }

    /// Forgets the failures of a client that got the password right.
    pub fn succeeded(&self, code: &str, ip: IpAddr) {
        self.shard(ip).lock().remove(&(Box::from(code), ip));
    }

    /// Drops windows that have passed (called by the periodic flush).
    pub fn forget_expired(&self) {
        for shard in self.shards.iter() {
            shard
                .lock()
                .retain(|_, failures| failures.since.elapsed() < self.window);
        }
    }

    fn shard(&self, ip: IpAddr) -> &AttemptShard {
        let index = match ip {
            IpAddr::V4(v4) => usize::from(v4.octets()[3]),
            IpAddr::V6(v6) => usize::from(v6.octets()[15]),
        };
        &self.shards[index % SHARDS]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_blocks_after_the_allowed_failures_and_forgets_on_success() {
        let limiter = AttemptLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "203.0.113.9".parse().unwrap();
        let other: IpAddr = "203.0.113.10".parse().unwrap();
        for _ in 0..3 {
            assert_eq!(limiter.blocked("abc", ip), None);
            limiter.failed("abc", ip);
        }
        assert!(limiter.blocked("abc", ip).is_some());
        assert_eq!(limiter.blocked("abc", other), None);
        assert_eq!(limiter.blocked("abd", ip), None);
        limiter.succeeded("abc", ip);
        assert_eq!(limiter.blocked("abc", ip), None);
    }

    #[test]
    fn password_rules() {
        assert!(check("abcd").is_ok());
        assert!(check("密码很长很安全").is_ok());
        assert!(check("abc").is_err());
        assert!(check(&"x".repeat(129)).is_err());
        assert!(check("ab\ncd").is_err());
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let hasher = Hasher::new();
        let hash = hasher.hash("s3cret!".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify("s3cret!".into(), hash.clone()).await.unwrap());
        assert!(!hasher.verify("wrong".into(), hash).await.unwrap());
        assert!(!hasher.verify("x".into(), "garbage".into()).await.unwrap());
    }
}
