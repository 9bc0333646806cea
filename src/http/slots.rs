//! Concurrent work per owner (a client address, an API key), for limits that a single client
//! must not exceed however many connections it opens. Sharded so that no request waits on one
//! global lock; an owner leaves its shard's map when its last slot is released, so the maps hold
//! only owners with work in progress.

use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap};

const SHARDS: usize = 32;

/// At most `limit` slots per owner `K` at once.
pub struct ConcurrencySlots<K> {
    shards: Box<[Mutex<FxHashMap<K, usize>>]>,
    limit: usize,
}

/// One slot of one owner, given back on drop. It owns a handle to its table, so it may live in a
/// task that outlives the request (an event stream).
pub struct Slot<K: Hash + Eq> {
    slots: Arc<ConcurrencySlots<K>>,
    owner: Option<K>,
}

impl<K: Hash + Eq + Clone> ConcurrencySlots<K> {
    pub fn new(limit: usize) -> Arc<ConcurrencySlots<K>> {
        Arc::new(ConcurrencySlots {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            limit,
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    fn shard(&self, owner: &K) -> &Mutex<FxHashMap<K, usize>> {
        // The high bits: the map itself buckets by the low ones.
        &self.shards[(FxBuildHasher.hash_one(owner) >> 58) as usize % SHARDS]
    }

    /// A slot for `owner`, or `None` when it already holds `limit`.
    pub fn try_take(self: &Arc<Self>, owner: K) -> Option<Slot<K>> {
        {
            let mut shard = self.shard(&owner).lock();
            let held = shard.entry(owner.clone()).or_insert(0);
            if *held >= self.limit {
                return None;
            }
            *held += 1;
        }
        Some(Slot {
            slots: Arc::clone(self),
            owner: Some(owner),
        })
    }

    /// Slots `owner` holds now.
    pub fn held(&self, owner: &K) -> usize {
        self.shard(owner).lock().get(owner).copied().unwrap_or(0)
    }
}

impl<K: Hash + Eq> Drop for Slot<K> {
    fn drop(&mut self) {
        let Some(owner) = self.owner.take() else {
            return;
        };
        let index = (FxBuildHasher.hash_one(&owner) >> 58) as usize % SHARDS;
        let mut shard = self.slots.shards[index].lock();
        if let Some(held) = shard.get_mut(&owner) {
            *held -= 1;
            if *held == 0 {
                shard.remove(&owner);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    #[test]
    fn an_owner_gets_at_most_its_limit_and_others_are_unaffected() {
        let slots = ConcurrencySlots::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "2001:db8::1".parse().unwrap();
        let first = slots.try_take(a).unwrap();
        let _second = slots.try_take(a).unwrap();
        assert!(slots.try_take(a).is_none());
        assert!(
            slots.try_take(b).is_some(),
            "another owner has its own slots"
        );
        drop(first);
        assert_eq!(slots.held(&a), 1);
        assert!(slots.try_take(a).is_some());
    }

    #[test]
    fn a_released_owner_leaves_no_entry() {
        let slots = ConcurrencySlots::new(1);
        drop(slots.try_take("key-1".to_owned()).unwrap());
        assert_eq!(slots.held(&"key-1".to_owned()), 0);
        assert!(slots.shards.iter().all(|shard| shard.lock().is_empty()));
    }
}
