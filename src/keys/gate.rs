//! The key gate: authenticates `X-API-Key`, enforces each key's rate, and counts usage.
//!
//! The hot path reads the key record in one short LMDB read transaction (so a key created,
//! disabled or deleted by another process counts from the very next request), then touches one
//! shard of an in-memory map that holds the key's token bucket and its usage not yet flushed.
//! No write transaction per request: [`KeyGate::flush_usage`] folds the counters into the records
//! in one batched write, every `keys.usage_flush_ms` and at shutdown.

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::book::KeyBook;
use super::record::KeyRecord;
use super::repo::{self, UsageDelta};
use super::secret::{self, SecretHash};
use crate::cluster::bucket::Bucket;
use crate::config::KeysConfig;
use crate::error::ApiError;
use crate::store::Store;
use crate::timefmt;

const SHARDS: usize = 32;

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct AuthedKey {
    pub hash: SecretHash,
    pub record: KeyRecord,
}

/// Per-key state held in memory.
#[derive(Debug, Clone, Copy)]
struct KeyState {
    tokens: f64,
    refilled_at: Instant,
    pending_requests: u64,
    pending_last_used_ms: u64,
}

/// Authentication, rate limiting and usage counting for API keys.
pub struct KeyGate {
    store: Arc<Store>,
    book: KeyBook,
    default_rate_per_s: u32,
    default_burst: u32,
    shards: Box<[Mutex<FxHashMap<SecretHash, KeyState>>]>,
}

impl KeyGate {
    /// The storage the keys live in.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Where keys are changed (in cluster mode, the cluster's bucket first).
    pub fn book(&self) -> &KeyBook {
        &self.book
    }

    /// `bucket`: the cluster's bucket of keys in cluster mode.
    pub fn new(store: Arc<Store>, config: &KeysConfig, bucket: Option<Bucket>) -> KeyGate {
        KeyGate {
            book: KeyBook::new(Arc::clone(&store), bucket),
            store,
            default_rate_per_s: config.default_rate_per_s,
            default_burst: config.default_burst,
            shards: (0..SHARDS)
                .map(|_| Mutex::new(FxHashMap::default()))
                .collect(),
        }
    }

    /// Checks the `X-API-Key` header: 401 missing or unknown, 403 disabled, 429 over its rate.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<AuthedKey, ApiError> {
        let secret = headers
            .get("x-api-key")
            .ok_or(ApiError::MissingApiKey)?
            .to_str()
            .map_err(|_| ApiError::InvalidApiKey)?
            .trim();
        if secret.is_empty() {
            return Err(ApiError::MissingApiKey);
        }
        if !secret::looks_like_secret(secret) {
            return Err(ApiError::InvalidApiKey);
        }
        let hash = secret::hash_secret(secret);
        let record = self
            .store
            .read(|txn, dbs| repo::get_by_hash(txn, dbs, &hash))?
            .ok_or(ApiError::InvalidApiKey)?;
        if record.disabled {
            return Err(ApiError::KeyDisabled);
        }
        self.admit(&hash, &record)?;
        Ok(AuthedKey { hash, record })
    }

    /// Takes one token from the key's bucket and counts the request.
    fn admit(&self, hash: &SecretHash, record: &KeyRecord) -> Result<(), ApiError> {
        let rate = f64::from(record.rate_per_s.unwrap_or(self.default_rate_per_s));
        let burst = f64::from(record.burst.unwrap_or(self.default_burst));
        let now = Instant::now();
        let mut shard = self.shard(hash).lock();
        let state = shard.entry(*hash).or_insert(KeyState {
            tokens: burst,
            refilled_at: now,
            pending_requests: 0,
            pending_last_used_ms: 0,
        });
        let elapsed = now
            .saturating_duration_since(state.refilled_at)
            .as_secs_f64();
        state.tokens = (state.tokens + elapsed * rate).min(burst);
        state.refilled_at = now;
        if state.tokens < 1.0 {
            let wait = ((1.0 - state.tokens) / rate).ceil().max(1.0);
            return Err(ApiError::RateLimited {
                retry_after_s: wait.min(f64::from(u32::MAX)) as u32,
            });
        }
        state.tokens -= 1.0;
        state.pending_requests += 1;
        state.pending_last_used_ms = timefmt::now_ms();
        Ok(())
    }

    /// Usage counted in memory and not yet flushed, for admin listings.
    pub fn pending_usage(&self, hash: &SecretHash) -> (u64, Option<u64>) {
        match self.shard(hash).lock().get(hash) {
            Some(state) if state.pending_requests > 0 => {
                (state.pending_requests, Some(state.pending_last_used_ms))
            }
            _ => (0, None),
        }
    }

    /// Writes the counted usage into the key records in one batched write. Counts leave memory
    /// only after the commit that stores them, so a listing never misses them and a failed write
    /// loses nothing (the next flush retries).
    pub async fn flush_usage(&self) {
        let deltas = self.snapshot_usage();
        if !deltas.is_empty() {
            let stored = deltas.clone();
            let result = self
                .store
                .write(move |txn, dbs| repo::apply_usage(txn, dbs, &stored))
                .await;
            match result {
                Ok(()) => self.forget_flushed(&deltas),
                Err(err) => {
                    tracing::warn!(error = %err, keys = deltas.len(), "could not record key usage; will retry")
                }
            }
        }
        self.forget_idle_buckets();
    }

    fn snapshot_usage(&self) -> Vec<UsageDelta> {
        let mut deltas = Vec::new();
        for shard in self.shards.iter() {
            for (hash, state) in shard.lock().iter() {
                if state.pending_requests > 0 {
                    deltas.push(UsageDelta {
                        hash: *hash,
                        requests: state.pending_requests,
                        last_used_ms: state.pending_last_used_ms,
                    });
                }
            }
        }
        deltas
    }

    fn forget_flushed(&self, deltas: &[UsageDelta]) {
        for delta in deltas {
            if let Some(state) = self.shard(&delta.hash).lock().get_mut(&delta.hash) {
                state.pending_requests = state.pending_requests.saturating_sub(delta.requests);
            }
        }
    }

    /// Drops buckets untouched for a minute with nothing left to flush: they have refilled by now
    /// for any sane rate (a full bucket is the same as no bucket), so the map stays bounded by the
    /// keys in use.
    fn forget_idle_buckets(&self) {
        let now = Instant::now();
        for shard in self.shards.iter() {
            shard.lock().retain(|_, state| {
                state.pending_requests > 0
                    || now.saturating_duration_since(state.refilled_at).as_secs() < 60
            });
        }
    }

    fn shard(&self, hash: &SecretHash) -> &Mutex<FxHashMap<SecretHash, KeyState>> {
        &self.shards[usize::from(hash[0]) % SHARDS]
    }
}
