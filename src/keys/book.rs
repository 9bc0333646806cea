//! Where API keys are changed: created, patched, deleted, and points spent.
//!
//! In single-node mode each change is one write of the local LMDB. In cluster mode the record of
//! system is the cluster's `panlink_keys` bucket: a change is accepted there first (a new key by
//! create-if-absent, every other change by compare-and-set on the revision read, retried on a
//! conflict), then applied to this node's LMDB before the answer, so the caller reads its own
//! write. Every node follows the bucket into its LMDB ([`KeyBook::follow`]); authentication
//! keeps reading LMDB only.
//!
//! It must not write a key's record to LMDB in cluster mode other than by applying a change the
//! bucket accepted. Usage counters (`requests`, `last_used_at`) are each node's own and never
//! travel.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::record::KeyRecord;
use super::repo::{self, DebitOutcome, KeyPatch, NewKey, UpdateOutcome};
use super::secret::SecretHash;
use crate::cluster::bucket::{Bucket, Change, MAX_ATTEMPTS, WriteError};
use crate::error::ApiError;
use crate::store::{Dbs, Store, StoreError, codec, replica};

/// The cluster bucket of keys: key id → [`SharedKey`].
pub const KEYS_BUCKET: &str = "panlink_keys";

const KIND: &str = "shared key";

/// A key as the bucket holds it.
#[derive(Debug, Serialize, Deserialize)]
struct SharedKey {
    hash: SecretHash,
    record: KeyRecord,
}

/// The one place keys change (see the module's doc).
pub struct KeyBook {
    store: Arc<Store>,
    /// The cluster's bucket; `None` in single-node mode.
    bucket: Option<Bucket>,
}

impl KeyBook {
    pub fn new(store: Arc<Store>, bucket: Option<Bucket>) -> KeyBook {
        KeyBook { store, bucket }
    }

    /// Creates a key: its secret (shown once) and record.
    pub async fn create(&self, new: NewKey, now_ms: u64) -> Result<(String, KeyRecord), ApiError> {
        let Some(bucket) = &self.bucket else {
            return Ok(self
                .store
                .write(move |txn, dbs| repo::create(txn, dbs, new, now_ms))
                .await?);
        };
        for _ in 0..MAX_ATTEMPTS {
            let (secret, hash, record) = repo::fresh(&new, now_ms);
            let id = record.id.clone();
            match bucket.create(&id, shared(hash, &record)).await {
                Ok(revision) => {
                    let record = self.apply_own(&id, revision, Some(hash), record).await?;
                    return Ok((secret, record));
                }
                // A random id that another key has: draw again.
                Err(WriteError::Exists) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(WriteError::Contended.into())
    }

    /// Applies `patch` to the key `id`.
    pub async fn update(&self, id: &str, patch: KeyPatch) -> Result<UpdateOutcome, ApiError> {
        let Some(bucket) = &self.bucket else {
            let id = id.to_owned();
            return Ok(self
                .store
                .write(move |txn, dbs| repo::update(txn, dbs, &id, &patch))
                .await?);
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some((mut key, revision)) = read(bucket, id).await? else {
                return Ok(UpdateOutcome::NotFound);
            };
            if let Err(balance) = patch.apply(&mut key.record) {
                return Ok(UpdateOutcome::PointsWouldBeNegative { balance });
            }
            match bucket
                .update(id, shared(key.hash, &key.record), revision)
                .await
            {
                Ok(revision) => {
                    let record = self
                        .apply_own(id, revision, Some(key.hash), key.record)
                        .await?;
                    return Ok(UpdateOutcome::Updated {
                        hash: key.hash,
                        record,
                    });
                }
                Err(WriteError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(WriteError::Contended.into())
    }

    /// Deletes the key `id`; `false` if there was none.
    pub async fn delete(&self, id: &str) -> Result<bool, ApiError> {
        let Some(bucket) = &self.bucket else {
            let id = id.to_owned();
            return Ok(self
                .store
                .write(move |txn, dbs| repo::delete(txn, dbs, &id))
                .await?);
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some((key, revision)) = read(bucket, id).await? else {
                return Ok(false);
            };
            match bucket.delete(id, revision).await {
                Ok(revision) => {
                    self.apply_own(id, revision, None, key.record).await?;
                    return Ok(true);
                }
                Err(WriteError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(WriteError::Contended.into())
    }

    /// Takes `price` points from the key `id` (stored under `hash`) if it may spend them. Two
    /// spends never see the same balance: in single-node mode they run in the writer's
    /// transaction, in cluster mode each is a compare-and-set on the balance it read.
    pub async fn debit(
        &self,
        hash: SecretHash,
        id: &str,
        price: u64,
    ) -> Result<DebitOutcome, ApiError> {
        let Some(bucket) = &self.bucket else {
            return Ok(self
                .store
                .write(move |txn, dbs| repo::debit_points(txn, dbs, &hash, price))
                .await?);
        };
        for _ in 0..MAX_ATTEMPTS {
            let Some((mut key, revision)) = read(bucket, id).await? else {
                return Ok(DebitOutcome::KeyGone);
            };
            if key.hash != hash {
                return Ok(DebitOutcome::KeyGone);
            }
            let outcome = repo::debit(&mut key.record, price);
            if !matches!(outcome, DebitOutcome::Debited { .. }) {
                return Ok(outcome);
            }
            match bucket.update(id, shared(hash, &key.record), revision).await {
                Ok(revision) => {
                    self.apply_own(id, revision, Some(hash), key.record).await?;
                    return Ok(outcome);
                }
                Err(WriteError::Conflict) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(WriteError::Contended.into())
    }

    /// In cluster mode, starts the task that applies the bucket's changes to this node's LMDB
    /// (until `stop`) and answers the revision the bucket had at start, which this node must
    /// reach before it has every key ([`KeyBook::caught_up`]); `None` in single-node mode. A node
    /// that never followed the bucket first offers it the keys it already has (keys made before
    /// it joined), each only if its id is free.
    pub async fn follower(&self, stop: CancellationToken) -> Result<Option<u64>, ApiError> {
        let Some(bucket) = self.bucket.clone() else {
            return Ok(None);
        };
        let resume = bucket.resume_point(&self.store).await.map_err(|err| {
            tracing::warn!(error = %err, "reading where this node's copy of the keys resumes failed");
            ApiError::ClusterUnavailable
        })?;
        if resume.first_join {
            self.offer_local_keys(&bucket).await?;
        }
        spawn_follower(&self.store, bucket, resume.followed, stop);
        Ok(Some(resume.latest))
    }

    /// Waits until the follower applied `revision` (see [`KeyBook::follower`]).
    pub async fn caught_up(&self, revision: u64, timeout: std::time::Duration) -> bool {
        match &self.bucket {
            Some(bucket) => bucket.wait_applied(revision, timeout).await,
            None => true,
        }
    }

    async fn offer_local_keys(&self, bucket: &Bucket) -> Result<(), ApiError> {
        let local = self.store.read(repo::list)?;
        let mut offered = 0;
        for (hash, record) in local {
            match bucket.create(&record.id, shared(hash, &record)).await {
                Ok(_) => offered += 1,
                Err(WriteError::Exists) => {}
                Err(err) => return Err(err.into()),
            }
        }
        if offered > 0 {
            tracing::info!(
                keys = offered,
                "offered this node's keys to the cluster on its first join"
            );
        }
        Ok(())
    }

    /// Applies this node's own accepted change at once (the follower skips it when it arrives);
    /// the record as stored here.
    async fn apply_own(
        &self,
        id: &str,
        revision: u64,
        hash: Option<SecretHash>,
        record: KeyRecord,
    ) -> Result<KeyRecord, ApiError> {
        let change = Change {
            key: id.to_owned(),
            revision,
            value: hash.map(|hash| shared(hash, &record).into()),
        };
        let stored = self
            .store
            .write(move |txn, dbs| {
                apply(txn, dbs, std::slice::from_ref(&change), None)?;
                repo::get_by_id(txn, dbs, &change.key)
            })
            .await?;
        // A newer change of the same key may already have been applied: show what is stored.
        Ok(stored.map_or(record, |(_, record)| record))
    }
}

/// Spawns the follower of the keys' bucket from `followed`. Kept out of
/// [`KeyBook::follower`]'s future: the task's future is large in debug builds, and built here
/// only in cluster mode.
#[inline(never)]
fn spawn_follower(store: &Arc<Store>, bucket: Bucket, followed: u64, stop: CancellationToken) {
    let store = Arc::clone(store);
    tokio::spawn(Box::pin(bucket.follow(
        followed,
        stop,
        move |changes: Vec<Change>| {
            let store = Arc::clone(&store);
            async move {
                let last = changes.last().map_or(0, |change| change.revision);
                store
                    .write(move |txn, dbs| apply(txn, dbs, &changes, Some(last)))
                    .await
            }
        },
    )));
}

/// The bucket's value for a key: its hash and record, usage counters left out.
fn shared(hash: SecretHash, record: &KeyRecord) -> Vec<u8> {
    let record = KeyRecord {
        requests: 0,
        last_used_at_ms: None,
        ..record.clone()
    };
    codec::encode(&SharedKey { hash, record })
}

/// The key `id` as the bucket holds it now, with its revision.
async fn read(bucket: &Bucket, id: &str) -> Result<Option<(SharedKey, u64)>, ApiError> {
    let Some((bytes, revision)) = bucket.entry(id).await.map_err(ApiError::from)? else {
        return Ok(None);
    };
    let key = codec::decode::<SharedKey>(&bytes, KIND)?;
    Ok(Some((key, revision)))
}

/// Applies the bucket's `changes` to LMDB, each only if newer than what is stored for its key;
/// `followed`: the follower's revision to record with them.
fn apply(
    txn: &mut heed::RwTxn,
    dbs: &Dbs,
    changes: &[Change],
    followed: Option<u64>,
) -> Result<(), StoreError> {
    for change in changes {
        if !replica::advance(txn, dbs, KEYS_BUCKET, &change.key, change.revision)? {
            continue;
        }
        match &change.value {
            Some(bytes) => match codec::decode::<SharedKey>(bytes, KIND) {
                Ok(key) => {
                    repo::put_copy(txn, dbs, &key.hash, key.record)?;
                }
                // Skipped, not retried: a value no version of panlink wrote would stop the
                // follower for good.
                Err(_) => tracing::error!(
                    key = change.key,
                    revision = change.revision,
                    "an unreadable key in the cluster's bucket; skipped"
                ),
            },
            None => {
                repo::delete(txn, dbs, &change.key)?;
            }
        }
    }
    if let Some(revision) = followed {
        replica::set_followed(txn, dbs, KEYS_BUCKET, revision)?;
    }
    Ok(())
}
