//! What a node's local copy of a replicated bucket has applied (cluster mode): per bucket the
//! revision its follower reached (where a restart resumes), and per key the revision of the value
//! stored for it (so that an older change never overwrites a newer one that this node wrote
//! itself and applied ahead of the follower).
//!
//! It knows revisions, not what the buckets hold. Layout: `replica_revisions` maps
//! `bucket ++ 0x00 ++ key` → revision (u64 BE); the follower's revision per bucket is the key
//! `bucket ++ 0x00` (keys are never empty).

use heed::{RoTxn, RwTxn};

use super::{Dbs, StoreError};

fn row(bucket: &str, key: &str) -> Vec<u8> {
    let mut row = super::keys::prefixed(bucket);
    row.extend_from_slice(key.as_bytes());
    row
}

fn read(txn: &RoTxn, dbs: &Dbs, row: &[u8]) -> Result<u64, StoreError> {
    match dbs.replica_revisions.get(txn, row)? {
        None => Ok(0),
        Some(bytes) => bytes
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt("replica revision")),
    }
}

/// The revision the follower of `bucket` has applied (0: none).
pub fn followed(txn: &RoTxn, dbs: &Dbs, bucket: &str) -> Result<u64, StoreError> {
    read(txn, dbs, &row(bucket, ""))
}

/// Records that the follower of `bucket` applied everything up to `revision`.
pub fn set_followed(
    txn: &mut RwTxn,
    dbs: &Dbs,
    bucket: &str,
    revision: u64,
) -> Result<(), StoreError> {
    dbs.replica_revisions
        .put(txn, &row(bucket, ""), &revision.to_be_bytes())?;
    Ok(())
}

/// Whether a change of `key` at `revision` is newer than what is stored for it; if so, records
/// `revision` as the key's (the caller then stores the change in the same transaction).
pub fn advance(
    txn: &mut RwTxn,
    dbs: &Dbs,
    bucket: &str,
    key: &str,
    revision: u64,
) -> Result<bool, StoreError> {
    debug_assert!(!key.is_empty(), "bucket keys are never empty");
    let row = row(bucket, key);
    if read(txn, dbs, &row)? >= revision {
        return Ok(false);
    }
    dbs.replica_revisions
        .put(txn, &row, &revision.to_be_bytes())?;
    Ok(true)
}

/// Forgets every revision recorded for `bucket` (its copy is applied again from the start).
pub fn forget(txn: &mut RwTxn, dbs: &Dbs, bucket: &str) -> Result<(), StoreError> {
    let range = super::keys::under(&super::keys::prefixed(bucket));
    dbs.replica_revisions
        .delete_range(txn, &super::keys::borrowed(&range))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn a_key_takes_only_newer_revisions_and_the_follower_resumes() {
        let (_dir, store) = Store::temporary();
        let outcomes = store
            .write(|txn, dbs| {
                let mut seen = Vec::new();
                for revision in [5, 3, 5, 9] {
                    seen.push(advance(txn, dbs, "b", "k", revision)?);
                }
                seen.push(advance(txn, dbs, "b", "other", 1)?);
                seen.push(advance(txn, dbs, "b", "gone", 12)?);
                seen.push(advance(txn, dbs, "b", "gone", 10)?);
                set_followed(txn, dbs, "b", 9)?;
                Ok(seen)
            })
            .await
            .unwrap();
        assert_eq!(outcomes, [true, false, false, true, true, true, false]);
        assert_eq!(store.read(|txn, dbs| followed(txn, dbs, "b")).unwrap(), 9);
        assert_eq!(store.read(|txn, dbs| followed(txn, dbs, "c")).unwrap(), 0);

        store.write(|txn, dbs| forget(txn, dbs, "b")).await.unwrap();
        assert_eq!(store.read(|txn, dbs| followed(txn, dbs, "b")).unwrap(), 0);
        let again = store
            .write(|txn, dbs| advance(txn, dbs, "b", "k", 1))
            .await
            .unwrap();
        assert!(again);
    }
}
