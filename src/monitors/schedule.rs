//! When each monitored link is next due, in memory: one min-heap per provider of
//! `(due second, monitor slot, link id)`, twelve bytes a link. Everything else about a link
//! stays in LMDB. Pure: the time is an argument.
//!
//! A link of a monitor with interval `I` is due once per `I` at its own offset within it (a hash
//! of the monitor and link ids), so a monitor's links spread evenly over the interval instead of
//! coming due together.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::checker::share::Provider;

/// A link's offset within its monitor's interval.
pub fn offset(monitor_id: &str, link: u32, interval_s: u32) -> u32 {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    (monitor_id, link).hash(&mut hasher);
    // Fold the high bits in: FxHash's low bits are weak for short inputs.
    let hash = hasher.finish();
    let mixed = hash ^ (hash >> 29) ^ (hash >> 47);
    (mixed % u64::from(interval_s.max(1))) as u32
}

/// The link's next slot after a check at `checked_s`: the first second at least half an interval
/// later whose position in the interval is `offset`. So consecutive checks are between half an
/// interval and one and a half apart, once per interval on average, each at its own place.
pub fn next_slot(checked_s: u64, interval_s: u32, offset: u32) -> u64 {
    let interval = u64::from(interval_s.max(1));
    // At least a second on: an interval of 1 s must not make a link due again in the same second.
    let earliest = checked_s + (interval / 2).max(1);
    let offset = u64::from(offset) % interval;
    let base = earliest - earliest % interval + offset;
    if base >= earliest {
        base
    } else {
        base + interval
    }
}

/// One entry: due second, monitor slot, link id.
type Entry = Reverse<(u32, u32, u32)>;

/// The due links of every provider.
pub struct Schedule {
    heaps: Vec<BinaryHeap<Entry>>,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            heaps: Provider::ALL.iter().map(|_| BinaryHeap::new()).collect(),
        }
    }
}

impl Schedule {
    pub fn push(&mut self, provider: Provider, due_s: u32, monitor: u32, link: u32) {
        self.heaps[provider.index()].push(Reverse((due_s, monitor, link)));
    }

    /// When `provider`'s soonest link is due.
    pub fn next_due(&self, provider: Provider) -> Option<u32> {
        self.heaps[provider.index()]
            .peek()
            .map(|Reverse((due, _, _))| *due)
    }

    /// `provider`'s soonest link if it is due at `now_s`: `(due, monitor, link)`.
    pub fn pop_due(&mut self, provider: Provider, now_s: u32) -> Option<(u32, u32, u32)> {
        let heap = &mut self.heaps[provider.index()];
        match heap.peek() {
            Some(Reverse((due, _, _))) if *due <= now_s => heap.pop().map(|Reverse(e)| e),
            _ => None,
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.heaps.iter().map(BinaryHeap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Heap bytes the entries take (capacity, not just length).
    pub fn heap_bytes(&self) -> usize {
        self.heaps
            .iter()
            .map(|h| h.capacity() * std::mem::size_of::<Entry>())
            .sum()
    }

    /// Gives back capacity far beyond what is held (after many links were removed).
    pub fn shrink(&mut self) {
        for heap in &mut self.heaps {
            if heap.capacity() > 1024 && heap.capacity() > heap.len() * 2 {
                heap.shrink_to(heap.len() + heap.len() / 4);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_repeat_once_per_interval_at_the_links_offset() {
        let interval = 3_600;
        for offset in [0, 1, 1_799, 1_800, 3_599] {
            let mut at = 1_764_720_123;
            for _ in 0..50 {
                let next = next_slot(at, interval, offset);
                assert_eq!(next % 3_600, u64::from(offset));
                let gap = next - at;
                assert!((1_800..5_400).contains(&gap), "{gap}");
                at = next;
            }
        }
    }

    #[test]
    fn a_one_second_interval_still_waits_a_second() {
        assert_eq!(next_slot(100, 1, 0), 101);
        assert_eq!(next_slot(100, 2, 1), 101);
        assert_eq!(next_slot(100, 2, 0), 102);
    }

    #[test]
    fn offsets_spread_a_monitors_links_over_the_interval() {
        // 100 000 links over a day in 24 hourly buckets: none holds more than 10 % over its share.
        let mut buckets = [0u32; 24];
        for link in 0..100_000 {
            buckets[(offset("mon_abcdefghijkl", link, 86_400) / 3_600) as usize] += 1;
        }
        let share = 100_000 / 24;
        for (hour, n) in buckets.iter().enumerate() {
            assert!(n.abs_diff(share) < share / 10, "hour {hour}: {n}");
        }
    }

    #[test]
    fn the_schedule_hands_out_due_links_soonest_first_per_provider() {
        let mut schedule = Schedule::default();
        schedule.push(Provider::Quark, 30, 0, 3);
        schedule.push(Provider::Quark, 10, 0, 1);
        schedule.push(Provider::Baidu, 5, 1, 9);
        assert_eq!(schedule.next_due(Provider::Quark), Some(10));
        assert_eq!(schedule.pop_due(Provider::Quark, 9), None);
        assert_eq!(schedule.pop_due(Provider::Quark, 30), Some((10, 0, 1)));
        assert_eq!(schedule.pop_due(Provider::Quark, 30), Some((30, 0, 3)));
        assert_eq!(schedule.pop_due(Provider::Quark, 30), None);
        assert_eq!(schedule.len(), 1);
        assert_eq!(std::mem::size_of::<Entry>(), 12);
    }
}
