//! Records waiting to be published to a cluster log (cluster mode), written in the same
//! transaction as the change they report, so that a change is never committed here without its
//! record, and removed once the log has acknowledged it.
//!
//! It knows logs by name, not what their records mean. Layout: `cluster_outbox` maps
//! `log ++ 0x00 ++ number (u64 BE)` → the record; `meta` holds the next number per log under
//! `outbox:` ++ log, so numbers keep increasing after the outbox empties (a reader recognises a
//! record published twice by its number).

use heed::{RoTxn, RwTxn};

use super::{Dbs, StoreError};

fn row(log: &str, number: u64) -> Vec<u8> {
    let mut row = super::keys::prefixed(log);
    row.extend_from_slice(&number.to_be_bytes());
    row
}

fn counter(log: &str) -> Vec<u8> {
    let mut key = b"outbox:".to_vec();
    key.extend_from_slice(log.as_bytes());
    key
}

/// Adds `record` for `log`; its number.
pub fn push(txn: &mut RwTxn, dbs: &Dbs, log: &str, record: &[u8]) -> Result<u64, StoreError> {
    let key = counter(log);
    let number = match dbs.meta.get(txn, &key)? {
        None => 1,
        Some(bytes) => {
            let bytes: [u8; 8] = bytes
                .try_into()
                .map_err(|_| StoreError::Corrupt("outbox counter"))?;
            u64::from_be_bytes(bytes)
        }
    };
    dbs.meta.put(txn, &key, &(number + 1).to_be_bytes())?;
    dbs.cluster_outbox.put(txn, &row(log, number), record)?;
    Ok(number)
}

/// The oldest `limit` records waiting for `log`, with their numbers.
pub fn waiting(
    txn: &RoTxn,
    dbs: &Dbs,
    log: &str,
    limit: usize,
) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
    let prefix = super::keys::prefixed(log);
    let mut out = Vec::new();
    for entry in dbs.cluster_outbox.prefix_iter(txn, &prefix)?.take(limit) {
        let (key, record) = entry?;
        let number: [u8; 8] = key[prefix.len()..]
            .try_into()
            .map_err(|_| StoreError::Corrupt("outbox row"))?;
        out.push((u64::from_be_bytes(number), record.to_vec()));
    }
    Ok(out)
}

/// Removes `log`'s record `number` (the log has it).
pub fn remove(txn: &mut RwTxn, dbs: &Dbs, log: &str, number: u64) -> Result<(), StoreError> {
    dbs.cluster_outbox.delete(txn, &row(log, number))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    #[tokio::test]
    async fn numbers_keep_increasing_after_the_outbox_empties() {
        let (_dir, store) = Store::temporary();
        let numbers = store
            .write(|txn, dbs| {
                let first = push(txn, dbs, "clicks", b"one")?;
                let second = push(txn, dbs, "clicks", b"two")?;
                let other = push(txn, dbs, "other", b"x")?;
                Ok((first, second, other))
            })
            .await
            .unwrap();
        assert_eq!(numbers, (1, 2, 1));
        let waiting_now = store
            .read(|txn, dbs| waiting(txn, dbs, "clicks", 10))
            .unwrap();
        assert_eq!(
            waiting_now,
            vec![(1, b"one".to_vec()), (2, b"two".to_vec())]
        );
        let third = store
            .write(|txn, dbs| {
                remove(txn, dbs, "clicks", 1)?;
                remove(txn, dbs, "clicks", 2)?;
                push(txn, dbs, "clicks", b"three")
            })
            .await
            .unwrap();
        assert_eq!(third, 3);
        let waiting_now = store
            .read(|txn, dbs| waiting(txn, dbs, "clicks", 10))
            .unwrap();
        assert_eq!(waiting_now, vec![(3, b"three".to_vec())]);
        assert_eq!(
            store
                .read(|txn, dbs| waiting(txn, dbs, "other", 10))
                .unwrap(),
            vec![(1, b"x".to_vec())]
        );
    }
}
