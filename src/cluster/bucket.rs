//! A replicated key-value bucket that a product keeps a local copy of: writes that the bucket
//! accepts or refuses by revision (create only if absent, update only from the revision read),
//! and a follower that hands every change, in revision order and in batches, to the product's
//! apply function.
//!
//! It knows the engine and no product: values are bytes, and what a change means is the apply
//! function's business.
//!
//! Invariant: the follower never skips a change ([`follow`]): it resumes after the last revision
//! applied.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::follow::{self, Progress, Read};
use crate::store::{Store, replica};

/// At most this many changes go to one call of the apply function (one local write).
const MAX_BATCH: usize = 512;
/// How long a read is asked again while a new bucket's servers do not answer direct reads yet.
const NEW_BUCKET_READ_WAIT: Duration = Duration::from_secs(5);
const NEW_BUCKET_READ_PAUSE: Duration = Duration::from_millis(50);

/// A change of one key, as the bucket's watch delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub key: String,
    /// The bucket's revision of this change (its stream sequence): increasing across the bucket.
    pub revision: u64,
    /// The new value; `None` when the key was deleted.
    pub value: Option<Bytes>,
}

/// Why a write was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// `create`: the key exists already.
    #[error("the key exists")]
    Exists,
    /// `update` or `delete`: the key changed since the revision read.
    #[error("the key changed since it was read")]
    Conflict,
    /// NATS did not accept the write (unreachable, no quorum, timed out, refused): nothing is
    /// known to have been written.
    #[error("the cluster did not accept the write: {0}")]
    Unavailable(String),
    /// A read-modify-write lost [`MAX_ATTEMPTS`] times in a row to other writes of the same key.
    #[error("the write lost {MAX_ATTEMPTS} times in a row to concurrent writes of the same key")]
    Contended,
}

/// Attempts a product's read-modify-write of one key makes before it gives up
/// ([`WriteError::Contended`]): each lost attempt means another write of that key won, so this
/// bounds how long a caller waits on a hot key.
pub const MAX_ATTEMPTS: usize = 200;

/// See [`Bucket::resume_point`].
#[derive(Debug, Clone, Copy)]
pub struct Resume {
    /// The revision the copy has applied (follow from the next one).
    pub followed: u64,
    /// The bucket's latest revision now: the copy is current once it has applied it.
    pub latest: u64,
    /// The copy never followed the bucket (a node's first join).
    pub first_join: bool,
}

pub use super::follow::BucketView;

/// One replicated bucket, opened by [`super::Cluster::bucket`].
#[derive(Clone)]
pub struct Bucket {
    pub(super) name: &'static str,
    pub(super) store: kv::Store,
    pub(super) jetstream: async_nats::jetstream::Context,
    pub(super) progress: Arc<Progress>,
}

impl Bucket {
    /// The bucket's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Puts `value` under `key` only if the key has no live value; the new revision.
    pub async fn create(&self, key: &str, value: Vec<u8>) -> Result<u64, WriteError> {
        self.store
            .create(key, value.into())
            .await
            .map_err(|err| match err.kind() {
                kv::CreateErrorKind::AlreadyExists => WriteError::Exists,
                // Another write of the key is being replicated: it is taken (or about to be).
                _ if lost_a_race(&err) => WriteError::Exists,
                _ => WriteError::Unavailable(err.to_string()),
            })
    }

    /// Puts `value` under `key` only if `revision` is still its latest; the new revision.
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        revision: u64,
    ) -> Result<u64, WriteError> {
        self.store
            .update(key, value.into(), revision)
            .await
            .map_err(|err| match err.kind() {
                kv::UpdateErrorKind::WrongLastRevision => WriteError::Conflict,
                _ if lost_a_race(&err) => WriteError::Conflict,
                _ => WriteError::Unavailable(err.to_string()),
            })
    }

    /// Deletes `key` only if `revision` is still its latest; the delete's revision. (Written as
    /// the client's own delete is, a `KV-Operation: DEL` marker, but through the stream, whose
    /// acknowledgement gives the revision the client's call does not return.)
    pub async fn delete(&self, key: &str, revision: u64) -> Result<u64, WriteError> {
        let mut subject = self
            .store
            .put_prefix
            .clone()
            .unwrap_or_else(|| self.store.prefix.clone());
        subject.push_str(key);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("KV-Operation", "DEL");
        headers.insert(
            async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
            revision.to_string().as_str(),
        );
        let refused = |err: async_nats::jetstream::context::PublishError| {
            if err.kind() == async_nats::jetstream::context::PublishErrorKind::WrongLastSequence
                || lost_a_race(&err)
            {
                WriteError::Conflict
            } else {
                WriteError::Unavailable(err.to_string())
            }
        };
        let ack = self
            .jetstream
            .publish_with_headers(subject, headers, Bytes::new())
            .await
            .map_err(refused)?
            .await
            .map_err(refused)?;
        Ok(ack.sequence)
    }

    /// The live value of `key` with its revision; `None` if it has none (never written, or
    /// deleted). A server may answer from a copy a little behind: a write that depends on the
    /// value must go through [`Bucket::update`] with the revision, which the leader checks.
    pub async fn entry(&self, key: &str) -> Result<Option<(Bytes, u64)>, WriteError> {
        let deadline = tokio::time::Instant::now() + NEW_BUCKET_READ_WAIT;
        let entry = loop {
            match self.store.entry(key).await {
                Ok(entry) => break entry,
                // A bucket just created has a leader before its servers answer direct reads
                // (NATS says "no responders" for a moment): the first read of a node that
                // joins a new cluster may come in between. The client's error has no kind for
                // it, so its text is what can be read.
                Err(err)
                    if err.to_string().contains("no responders")
                        && tokio::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(NEW_BUCKET_READ_PAUSE).await;
                }
                Err(err) => return Err(WriteError::Unavailable(err.to_string())),
            }
        };
        Ok(entry
            .filter(|entry| entry.operation == kv::Operation::Put)
            .map(|entry| (entry.value, entry.revision)))
    }

    /// The bucket's latest revision now (0: never written).
    pub async fn last_revision(&self) -> Result<u64, WriteError> {
        let status = self
            .store
            .status()
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))?;
        Ok(status.info.state.last_sequence)
    }

    /// Where this node's copy in `store` resumes following the bucket. A copy ahead of the bucket
    /// (the cluster's data was reset) forgets what it applied and starts over.
    pub async fn resume_point(&self, store: &Store) -> Result<Resume, String> {
        let mut followed = store
            .read(|txn, dbs| replica::followed(txn, dbs, self.name))
            .map_err(|err| err.to_string())?;
        let latest = self.last_revision().await.map_err(|err| err.to_string())?;
        if followed > latest {
            tracing::warn!(
                bucket = self.name,
                followed,
                latest,
                "the cluster's bucket is behind this node's copy; applying it again from the start"
            );
            store
                .write(|txn, dbs| replica::forget(txn, dbs, self.name))
                .await
                .map_err(|err| err.to_string())?;
            followed = 0;
        }
        Ok(Resume {
            followed,
            latest,
            first_join: followed == 0,
        })
    }

    /// Waits until the follower has applied `revision`, or `timeout` passed; whether it has.
    pub async fn wait_applied(&self, revision: u64, timeout: Duration) -> bool {
        self.progress.wait_applied(revision, timeout).await
    }

    /// The revisions this node's copy has reached, for `/health`.
    pub fn view(&self) -> BucketView {
        self.progress.view(self.name)
    }

    /// Follows the bucket from the revision after `applied` until `stop`: every change, in
    /// revision order, goes to `apply` in batches of at most [`MAX_BATCH`] (those the watch has
    /// ready at once). `apply` must be idempotent per revision: after a failure the batch is
    /// offered again, and after a restart the caller resumes from what it stored.
    pub async fn follow<F, Fut, E>(self, applied: u64, stop: CancellationToken, apply: F)
    where
        F: FnMut(Vec<Change>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let store = self.store.clone();
        let asked = self.clone();
        follow::follow(
            self.name,
            &self.progress,
            applied,
            MAX_BATCH,
            stop,
            |from| {
                let store = store.clone();
                async move { store.watch_all_from_revision(from).await }
            },
            |entry: kv::Entry| {
                Some(Read {
                    position: entry.revision,
                    pending: entry.delta,
                    value: change_of(entry),
                })
            },
            || {
                let bucket = asked.clone();
                async move { bucket.last_revision().await.ok() }
            },
            apply,
        )
        .await;
    }
}

/// Whether the server refused a write because the key's revision was not the one expected.
///
/// A replicated stream refuses with one of two codes: 10071 ("wrong last sequence: N", the
/// revision checked against the stored one) or 10164 ("wrong last sequence", while another write
/// of the same key is still being replicated). async-nats 0.51 maps only the first to
/// `WrongLastRevision`, so the server's code is read from the error's sources.
fn lost_a_race(err: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::ErrorCode;
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(server) = err.downcast_ref::<async_nats::jetstream::Error>() {
            return matches!(
                server.error_code(),
                ErrorCode::STREAM_WRONG_LAST_SEQUENCE
                    | ErrorCode::STREAM_WRONG_LAST_SEQUENCE_CONSTANT
            );
        }
        next = err.source();
    }
    false
}

fn change_of(entry: kv::Entry) -> Change {
    Change {
        value: (entry.operation == kv::Operation::Put).then_some(entry.value),
        key: entry.key,
        revision: entry.revision,
    }
}
