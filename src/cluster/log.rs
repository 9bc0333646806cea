//! A replicated log (a JetStream stream) that every node publishes records to and every node
//! reads in order: publishing with a message id the stream de-duplicates, and a follower that
//! hands every record, in sequence order and in batches, to the product's apply function.
//!
//! It knows the engine and no product: records are bytes with the node that published them and
//! that node's number for the record.
//!
//! Invariant: the follower never skips a record ([`follow`]): it resumes after the last sequence
//! applied.

use std::future::Future;
use std::sync::Arc;

use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::bucket::BucketView;
use super::follow::{self, Progress, Read};
use crate::store::{Store, outbox, replica};

/// Records handed to one call of the apply function at most.
const MAX_BATCH: usize = 256;

/// The header naming the node that published a record.
const NODE_HEADER: &str = "Panlink-Node";
/// The header with the publishing node's number for the record.
const NUMBER_HEADER: &str = "Panlink-Number";

/// A record as the follower delivers it.
#[derive(Debug, Clone)]
pub struct Record {
    /// Its sequence in the log: increasing across the log.
    pub sequence: u64,
    /// The node that published it.
    pub node: String,
    /// That node's number for it: increasing per node, so a record published twice (a retry
    /// after the duplicate window) is recognised by its number.
    pub number: u64,
    pub payload: Bytes,
}

/// One replicated log, opened by [`super::Cluster::log`].
#[derive(Clone)]
pub struct Log {
    pub(super) name: &'static str,
    pub(super) node: String,
    pub(super) jetstream: jetstream::Context,
    pub(super) stream: stream::Stream,
    pub(super) progress: Arc<Progress>,
}

impl Log {
    /// Publishes `payload` as this node's record `number`; its sequence in the log. A record
    /// published again with the same number within the stream's duplicate window is dropped
    /// by the stream (the sequence of the first is returned).
    pub async fn publish(&self, number: u64, payload: Vec<u8>) -> Result<u64, String> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{}-{number}", self.node).as_str(),
        );
        headers.insert(NODE_HEADER, self.node.as_str());
        headers.insert(NUMBER_HEADER, number.to_string().as_str());
        let ack = self
            .jetstream
            .publish_with_headers(
                format!("{}.{}", self.name, self.node),
                headers,
                payload.into(),
            )
            .await
            .map_err(|err| err.to_string())?
            .await
            .map_err(|err| err.to_string())?;
        Ok(ack.sequence)
    }

    /// Publishes `payload` as this node's record under `<log>.<subject>`, named `id` to the
    /// stream's duplicate window: records that stand for the same thing whichever node publishes
    /// them (a result of an item) share an id, so a second is dropped within the window. Its
    /// number is 0: such records are told apart by their content, not by node and number.
    pub async fn publish_named(
        &self,
        subject: &str,
        id: &str,
        payload: Bytes,
    ) -> Result<u64, super::bucket::WriteError> {
        let unavailable = |err: String| super::bucket::WriteError::Unavailable(err);
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        headers.insert(NODE_HEADER, self.node.as_str());
        headers.insert(NUMBER_HEADER, "0");
        let ack = self
            .jetstream
            .publish_with_headers(format!("{}.{subject}", self.name), headers, payload)
            .await
            .map_err(|err| unavailable(err.to_string()))?
            .await
            .map_err(|err| unavailable(err.to_string()))?;
        Ok(ack.sequence)
    }

    /// Waits until this node's follower applied `sequence`, up to `timeout`; whether it did.
    pub async fn wait_applied(&self, sequence: u64, timeout: std::time::Duration) -> bool {
        self.progress.wait_applied(sequence, timeout).await
    }

    /// The log's last sequence now (0: empty).
    pub async fn last_sequence(&self) -> Result<u64, super::bucket::WriteError> {
        let mut stream = self.stream.clone();
        let info = stream
            .info()
            .await
            .map_err(|err| super::bucket::WriteError::Unavailable(err.to_string()))?;
        Ok(info.state.last_sequence)
    }

    /// Where this node's fold of the log resumes: after the last sequence `store` recorded as
    /// applied (0 if that is past the log's end: the cluster's data was reset, and the log is
    /// read from its start), and the log's last sequence now, which the fold must reach to be
    /// current.
    pub async fn resume_point(&self, store: &Store) -> Result<(u64, u64), String> {
        let mut followed = store
            .read(|txn, dbs| replica::followed(txn, dbs, self.name))
            .map_err(|err| err.to_string())?;
        let latest = self.last_sequence().await.map_err(|err| err.to_string())?;
        if followed > latest {
            tracing::warn!(
                log = self.name,
                followed,
                latest,
                "the cluster's log is behind this node; reading it from the start"
            );
            followed = 0;
        }
        Ok((followed, latest))
    }

    /// Publishes the records waiting in this node's outbox for this log (`store::outbox`), oldest
    /// first, each under this node's number for it, and removes each once the log has it; every
    /// `every` until `stop`. A record published again after a crash is dropped by the stream
    /// within its duplicate window, and recognised by its number after it.
    pub async fn publish_outbox(
        self,
        store: Arc<Store>,
        every: std::time::Duration,
        stop: CancellationToken,
    ) {
        let name = self.name;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => return,
            }
            let waiting = match store.read(|txn, dbs| outbox::waiting(txn, dbs, name, 64)) {
                Ok(waiting) => waiting,
                Err(err) => {
                    tracing::error!(log = name, error = %err, "reading the outbox failed");
                    continue;
                }
            };
            for (number, record) in waiting {
                if let Err(err) = self.publish(number, record).await {
                    tracing::warn!(log = name, error = %err, "publishing to the cluster failed; will retry");
                    break;
                }
                if let Err(err) = store
                    .write(move |txn, dbs| outbox::remove(txn, dbs, name, number))
                    .await
                {
                    tracing::error!(log = name, error = %err, "removing a published record from the outbox failed");
                    break;
                }
            }
        }
    }

    /// This node's id, as its records carry it.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How far this node has read the log, for `/health`.
    pub fn view(&self) -> BucketView {
        self.progress.view(self.name)
    }

    /// Follows the log from the sequence after `applied` until `stop`: every record, in order,
    /// goes to `apply` in batches of at most [`MAX_BATCH`] (those ready at once). `apply` must be
    /// idempotent per record (after a failure the batch is offered again; after a restart the
    /// caller resumes from what it stored).
    pub async fn follow<F, Fut, E>(self, applied: u64, stop: CancellationToken, apply: F)
    where
        F: FnMut(Vec<Record>) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let stream = self.stream.clone();
        let name = self.name;
        let asked = self.clone();
        follow::follow(
            self.name,
            &self.progress,
            applied,
            MAX_BATCH,
            stop,
            |from| {
                let stream = stream.clone();
                async move {
                    let config = consumer::pull::OrderedConfig {
                        deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                            start_sequence: from,
                        },
                        ..Default::default()
                    };
                    let consumer = stream
                        .create_consumer(config)
                        .await
                        .map_err(|err| err.to_string())?;
                    consumer.messages().await.map_err(|err| err.to_string())
                }
            },
            move |message: jetstream::Message| {
                let read = record_of(&message);
                if read.is_none() {
                    tracing::error!(
                        log = name,
                        subject = %message.subject,
                        "a record without its node and number in a cluster log; skipped"
                    );
                }
                read
            },
            || {
                let log = asked.clone();
                async move { log.last_sequence().await.ok() }
            },
            apply,
        )
        .await;
    }
}

/// The record a message carries, with its place in the log.
fn record_of(message: &jetstream::Message) -> Option<Read<Record>> {
    let info = message.info().ok()?;
    let headers = message.headers.as_ref()?;
    let node = headers.get(NODE_HEADER)?.as_str().to_owned();
    let number = headers.get(NUMBER_HEADER)?.as_str().parse().ok()?;
    Some(Read {
        position: info.stream_sequence,
        pending: info.pending,
        value: Record {
            sequence: info.stream_sequence,
            node,
            number,
            payload: message.payload.clone(),
        },
    })
}
