//! Links that expire after a number of clicks (`max_clicks`): the exact count of human clicks of
//! each such link, in memory, decided at the moment of the click.
//!
//! A link's counter starts, at its first click in this process, from what storage and the click
//! counter hold (so a restart keeps the count so far), then moves only here: taking a click is a
//! compare-and-swap below the limit, so concurrent visitors get exactly `max_clicks` redirects.
//! In cluster mode the other nodes' human clicks are added as their records are folded, so the
//! limit holds across the cluster to within the clicks taken elsewhere and not yet folded here.
//! Only links with a limit have an entry; a change to the link drops its entry.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

const SHARDS: usize = 16;

type Shard = Mutex<FxHashMap<Box<str>, Arc<AtomicU64>>>;

/// The counters of the links with a click limit.
pub struct ClickLimits {
    shards: Box<[Shard]>,
}

impl Default for ClickLimits {
    fn default() -> Self {
        ClickLimits {
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl ClickLimits {
    fn counter(&self, code: &str, counted: impl FnOnce() -> u64) -> Arc<AtomicU64> {
        let mut shard = self.shards[super::shard_of(code, SHARDS)].lock();
        if let Some(counter) = shard.get(code) {
            return Arc::clone(counter);
        }
        // Read under the shard's lock: two first clicks must not both start from storage.
        let counter = Arc::new(AtomicU64::new(counted()));
        shard.insert(code.into(), Arc::clone(&counter));
        counter
    }

    /// Takes one of `max` clicks of `code`; false when they are all taken. `counted` gives the
    /// human clicks counted so far, read only at the link's first click in this process.
    pub fn take(&self, code: &str, max: u64, counted: impl FnOnce() -> u64) -> bool {
        self.counter(code, counted)
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether every one of `max` clicks of `code` is taken.
    pub fn exhausted(&self, code: &str, max: u64, counted: impl FnOnce() -> u64) -> bool {
        self.counter(code, counted).load(Ordering::Acquire) >= max
    }

    /// Counts `clicks` taken elsewhere (another node of the cluster) against `code`'s limit, if
    /// its counter is in memory; a counter made later starts from storage, which has them.
    pub fn add(&self, code: &str, clicks: u64) {
        if let Some(counter) = self.shards[super::shard_of(code, SHARDS)].lock().get(code) {
            counter.fetch_add(clicks, Ordering::AcqRel);
        }
    }

    /// Drops every counter: the next click of each link starts from the counts (after another
    /// server that counted clicks of the same data dir has stopped).
    pub fn forget_all(&self) {
        for shard in self.shards.iter() {
            shard.lock().clear();
        }
    }

    /// Drops `code`'s counter (the link changed or went); the next click starts from the counts.
    pub fn forget(&self, code: &str) {
        self.shards[super::shard_of(code, SHARDS)]
            .lock()
            .remove(code);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_max_clicks_are_taken_across_threads() {
        let limits = Arc::new(ClickLimits::default());
        let taken = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| {
                    for _ in 0..100 {
                        if limits.take("abc", 100, || 3) {
                            taken.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        assert_eq!(
            taken.load(Ordering::Relaxed),
            97,
            "started from 3 counted before"
        );
        assert!(limits.exhausted("abc", 100, || 0));
        limits.forget("abc");
        assert!(!limits.exhausted("abc", 100, || 99));
        assert!(limits.take("abc", 100, || 0));
        assert!(!limits.take("abc", 100, || 0));
    }

    #[test]
    fn clicks_taken_elsewhere_count_once_a_counter_exists() {
        let limits = ClickLimits::default();
        // No counter yet: storage will have them when one is made.
        limits.add("xyz", 5);
        assert!(limits.take("xyz", 10, || 5));
        limits.add("xyz", 3);
        assert!(limits.take("xyz", 10, || 0));
        assert!(!limits.take("xyz", 10, || 0), "5 + 1 + 3 + 1 taken");
        assert!(limits.exhausted("xyz", 10, || 0));
    }
}
