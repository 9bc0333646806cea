//! The redirect's read-through cache: code → the link and its ready `Location` header.
//!
//! Sharded maps under short `parking_lot` locks (no global lock). A miss reads the link in one short
//! LMDB read transaction and fills the cache. Every change to a link invalidates its code after
//! the commit; each shard has an epoch that the invalidation bumps, and a miss fills only if the
//! epoch did not move while it read, so a reader that saw the old record can never put it back
//! after the change (the read transaction began after the epoch was read).
//!
//! While another server serves the same data dir (the overlap of a handover), nothing is cached:
//! every lookup reads LMDB, so a change made through either server is seen by the other at once.
//!
//! Invariant: the cache never answers a record older than the last committed change of its code
//! once the change's API call has returned.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use compact_str::CompactString;
use http::HeaderValue;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;

use super::record::LinkRecord;
use super::repo;
use crate::store::{Store, StoreError};

const SHARDS: usize = 64;

/// A cached link: the record and what the redirect sends.
#[derive(Debug)]
pub struct CachedLink {
    pub record: LinkRecord,
    /// The target, normalized (punycode host, percent-encoded) so that it is a valid header.
    pub location: Option<HeaderValue>,
    /// The fallback target (while the target share is dead), the same way.
    pub fallback: Option<HeaderValue>,
    /// Each visitor rule's `url` the same way, with the link's UTM parameters (`None` for a rule
    /// that shows a page).
    pub rule_locations: Box<[Option<HeaderValue>]>,
}

fn header_of(url: &str) -> Option<HeaderValue> {
    url::Url::parse(url)
        .ok()
        .and_then(|url| HeaderValue::from_str(url.as_str()).ok())
}

/// `url` with the link's UTM parameters, as a header.
fn target_header(url: &str, utm: Option<&super::record::Utm>) -> Option<HeaderValue> {
    match utm {
        None => header_of(url),
        Some(utm) => url::Url::parse(url)
            .ok()
            .and_then(|url| HeaderValue::from_str(utm.apply(&url).as_str()).ok()),
    }
}

impl CachedLink {
    pub fn new(record: LinkRecord) -> CachedLink {
        let utm = record.utm.as_ref();
        let location = target_header(&record.url, utm);
        let fallback = record.fallback_url.as_deref().and_then(header_of);
        let rule_locations = record
            .rules
            .iter()
            .map(|rule| rule.url.as_deref().and_then(|url| target_header(url, utm)))
            .collect();
        CachedLink {
            record,
            location,
            fallback,
            rule_locations,
        }
    }
}

#[derive(Default)]
struct Shard {
    /// Codes are keys held inline (up to 24 bytes): a probe compares them where the table is,
    /// without a second cache miss.
    map: FxHashMap<CompactString, Arc<CachedLink>>,
    epoch: u64,
}

/// The sharded cache.
pub struct LinkCache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    /// Another server may change links behind this one's back: read through, keep nothing.
    shared: AtomicBool,
}

impl LinkCache {
    /// A cache of about `max_entries` links (0: no caching, every lookup reads LMDB).
    pub fn new(max_entries: usize) -> LinkCache {
        LinkCache {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: max_entries.div_ceil(SHARDS),
            shared: AtomicBool::new(false),
        }
    }

    /// Whether another server may be changing links in the same data dir. On, the cache empties
    /// and keeps nothing until it is turned off again.
    pub fn set_shared(&self, shared: bool) {
        self.shared.store(shared, Ordering::Release);
        if shared {
            // Bumped epochs also stop lookups already under way from filling.
            for shard in self.shards.iter() {
                let mut shard = shard.lock();
                shard.epoch += 1;
                shard.map.clear();
            }
        }
    }

    /// Whether lookups read through (see [`LinkCache::set_shared`]).
    pub fn is_shared(&self) -> bool {
        self.shared.load(Ordering::Acquire)
    }

    /// The link under `code`, from memory or from LMDB.
    pub fn lookup(&self, store: &Store, code: &str) -> Result<Option<Arc<CachedLink>>, StoreError> {
        if self.shared.load(Ordering::Relaxed) {
            let record = store.read(|txn, dbs| repo::get(txn, dbs, code))?;
            return Ok(record.map(|record| Arc::new(CachedLink::new(record))));
        }
        let shard = self.shard(code);
        let epoch = {
            let shard = shard.lock();
            if let Some(link) = shard.map.get(code) {
                return Ok(Some(Arc::clone(link)));
            }
            shard.epoch
        };
        let Some(record) = store.read(|txn, dbs| repo::get(txn, dbs, code))? else {
            return Ok(None);
        };
        let link = Arc::new(CachedLink::new(record));
        if self.per_shard > 0 {
            let mut shard = shard.lock();
            if shard.epoch == epoch {
                if shard.map.len() >= self.per_shard {
                    // Arbitrary eviction: the map's first key (hash order is effectively random).
                    if let Some(victim) = shard.map.keys().next().cloned() {
                        shard.map.remove(&victim);
                    }
                }
                shard.map.insert(code.into(), Arc::clone(&link));
            }
        }
        Ok(Some(link))
    }

    /// Forgets `code`; call after the commit that changed or deleted it.
    pub fn invalidate(&self, code: &str) {
        let mut shard = self.shard(code).lock();
        shard.epoch += 1;
        shard.map.remove(code);
    }

    /// Links held in memory.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| shard.lock().map.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, code: &str) -> &Mutex<Shard> {
        &self.shards[super::shard_of(code, SHARDS)]
    }
}
