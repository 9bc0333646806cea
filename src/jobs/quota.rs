//! The per-key quota on stored job items: what one key may make the server keep on disk.
//!
//! Jobs answered at once (every URL unsupported) are never open, so the open-jobs limit alone does
//! not bound what a key stores. The quota counts items at submission, in the same write
//! transaction that stores them, over the retention window: items of jobs submitted within the
//! last `jobs.retention_s` (and up to one bucket more) count, whether their job is finished or not.
//! Counts live in the `meta` database under `item_quota/<key id>`, as a few time buckets, so a
//! check is one small read and one small write in a transaction the job writes anyway.

use heed::RwTxn;
use serde::{Deserialize, Serialize};

use crate::store::{Dbs, StoreError, codec};

/// Buckets per retention window: the window is counted to within one bucket.
const BUCKETS_PER_WINDOW: u64 = 8;

#[derive(Debug, Default, Serialize, Deserialize)]
struct QuotaRecord {
    /// `(bucket number, items submitted in it)`, oldest first.
    buckets: Vec<(u64, u64)>,
}

/// What a reservation found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// The items are counted; `used` includes them.
    Reserved { used: u64 },
    /// Counting them would pass the quota; nothing was counted.
    OverQuota { used: u64 },
}

/// The window the quota counts over.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub retention_ms: u64,
}

impl Window {
    fn bucket_ms(self) -> u64 {
        (self.retention_ms / BUCKETS_PER_WINDOW).max(1_000)
    }

    /// The first bucket still inside the window at `now_ms`.
    fn oldest_live(self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.retention_ms) / self.bucket_ms()
    }
}

fn record_key(owner: &str) -> Vec<u8> {
    let mut key = b"item_quota/".to_vec();
    key.extend_from_slice(owner.as_bytes());
    key
}

/// Counts `items` more for `owner` unless that passes `quota`; one read and one put in `txn`.
pub fn reserve(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    items: u64,
    quota: u64,
    window: Window,
    now_ms: u64,
) -> Result<Reservation, StoreError> {
    let key = record_key(owner);
    let mut record: QuotaRecord = match dbs.meta.get(txn, &key)? {
        Some(bytes) => codec::decode(bytes, "item quota")?,
        None => QuotaRecord::default(),
    };
    let oldest = window.oldest_live(now_ms);
    record.buckets.retain(|(bucket, _)| *bucket >= oldest);
    let before: u64 = record.buckets.iter().map(|(_, n)| n).sum();
    let used = before.saturating_add(items);
    if used > quota {
        return Ok(Reservation::OverQuota { used: before });
    }
    let current = now_ms / window.bucket_ms();
    match record.buckets.last_mut() {
        Some((bucket, n)) if *bucket == current => *n += items,
        _ => record.buckets.push((current, items)),
    }
    dbs.meta.put(txn, &key, &codec::encode(&record))?;
    Ok(Reservation::Reserved { used })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// Items `owner` has stored within the window at `now_ms`.
    fn used(
        txn: &heed::RoTxn,
        dbs: &Dbs,
        owner: &str,
        window: Window,
        now_ms: u64,
    ) -> Result<u64, StoreError> {
        let Some(bytes) = dbs.meta.get(txn, &record_key(owner))? else {
            return Ok(0);
        };
        let record: QuotaRecord = codec::decode(bytes, "item quota")?;
        let oldest = window.oldest_live(now_ms);
        Ok(record
            .buckets
            .iter()
            .filter(|(bucket, _)| *bucket >= oldest)
            .map(|(_, n)| n)
            .sum())
    }

    fn store() -> (tempfile::TempDir, std::sync::Arc<Store>) {
        Store::temporary()
    }

    #[test]
    fn items_count_until_the_quota_and_leave_the_window_with_time() {
        let (_dir, store) = store();
        let window = Window {
            retention_ms: 80_000,
        };
        let reserve_at = |items, now| {
            store
                .write_now(|txn, dbs| reserve(txn, dbs, "k1", items, 100, window, now))
                .unwrap()
        };
        assert_eq!(
            reserve_at(60, 1_000_000),
            Reservation::Reserved { used: 60 }
        );
        assert_eq!(
            reserve_at(41, 1_045_000),
            Reservation::OverQuota { used: 60 }
        );
        assert_eq!(
            reserve_at(40, 1_045_000),
            Reservation::Reserved { used: 100 }
        );
        // Another key has its own count.
        let other = store
            .write_now(|txn, dbs| reserve(txn, dbs, "k2", 100, 100, window, 1_005_000))
            .unwrap();
        assert_eq!(other, Reservation::Reserved { used: 100 });
        // A window (and a bucket) later, the first 60 no longer count; the 40 still do.
        assert_eq!(
            reserve_at(60, 1_091_000),
            Reservation::Reserved { used: 100 }
        );
        let left = store
            .read(|txn, dbs| used(txn, dbs, "k1", window, 1_150_000))
            .unwrap();
        assert_eq!(left, 60);
    }
}
