//! A replicated work queue (a JetStream stream with work-queue retention): a message is handed
//! to one node at a time through a shared durable consumer, acknowledged once its work is done,
//! and handed to another node when the one holding it goes quiet for the ack wait.
//!
//! It knows the engine and no product: messages are bytes under a subject the product names.
//!
//! Invariant: a message leaves the queue only when a node acknowledges it; until then it is
//! redelivered after every ack wait that passes without an acknowledgement or a sign of progress.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;

use super::bucket::WriteError;

/// A work queue, opened by [`super::Cluster::work_queue`].
#[derive(Clone)]
pub struct WorkQueue {
    pub(super) name: &'static str,
    pub(super) jetstream: jetstream::Context,
    pub(super) stream: stream::Stream,
}

/// A message held by this node: its payload, to be acknowledged when done.
pub struct Claimed {
    pub payload: Bytes,
    /// Times the queue handed it out, this one included (above 1: a node before this one did
    /// not finish it).
    pub delivered: i64,
    message: jetstream::Message,
}

/// How a node takes messages of one subject (see [`WorkQueue::taker`]).
pub struct Taker {
    consumer: consumer::Consumer<consumer::pull::Config>,
}

/// A queue's consumer, for `/health` and `/pool`.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct TakerView {
    pub consumer: String,
    /// Messages waiting to be handed out.
    pub waiting: u64,
    /// Messages handed out and not yet acknowledged.
    pub held: u64,
}

impl WorkQueue {
    /// Its consumers that have messages waiting or handed out, as NATS reports them now.
    pub async fn busy(&self) -> Vec<TakerView> {
        let mut consumers = self.stream.consumers();
        let mut busy = Vec::new();
        while let Some(Ok(info)) = consumers.next().await {
            if info.num_pending > 0 || info.num_ack_pending > 0 {
                busy.push(TakerView {
                    consumer: info.name,
                    waiting: info.num_pending,
                    held: info.num_ack_pending as u64,
                });
            }
        }
        busy
    }

    /// Puts `payload` under `<queue>.<subject>`; `id` names the message to the stream's duplicate
    /// window, so publishing it again (a retry) queues it once.
    pub async fn publish(&self, subject: &str, id: &str, payload: Bytes) -> Result<(), WriteError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        self.jetstream
            .publish_with_headers(format!("{}.{subject}", self.name), headers, payload)
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))?
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))?;
        Ok(())
    }

    /// The shared consumer of `<queue>.<subject>` (created if needed): every node taking from it
    /// gets different messages. A message not acknowledged within `ack_wait` is handed out
    /// again; at most `max_held` are held across the cluster at once.
    pub async fn taker(
        &self,
        subject: &str,
        ack_wait: Duration,
        max_held: i64,
    ) -> Result<Taker, WriteError> {
        let name = format!("{}_{}", self.name, subject.replace('.', "_"));
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            filter_subject: format!("{}.{subject}", self.name),
            ack_policy: consumer::AckPolicy::Explicit,
            ack_wait,
            max_ack_pending: max_held,
            ..Default::default()
        };
        let consumer = self
            .stream
            .create_consumer(config)
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))?;
        Ok(Taker { consumer })
    }
}

impl Taker {
    /// The next message, waiting up to `wait` for one; `None` when none came.
    pub async fn take(&self, wait: Duration) -> Result<Option<Claimed>, WriteError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))?;
        match batch.next().await {
            Some(Ok(message)) => {
                let delivered = message.info().map_or(1, |info| info.delivered);
                Ok(Some(Claimed {
                    payload: message.payload.clone(),
                    delivered,
                    message,
                }))
            }
            Some(Err(err)) => Err(WriteError::Unavailable(err.to_string())),
            None => Ok(None),
        }
    }
}

impl Claimed {
    /// Tells the queue this node still works on it: the ack wait starts again.
    pub async fn still_working(&self) -> Result<(), WriteError> {
        self.message
            .ack_with(AckKind::Progress)
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))
    }

    /// Removes it from the queue, once the server confirms.
    pub async fn done(&self) -> Result<(), WriteError> {
        self.message
            .double_ack()
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))
    }

    /// Removes an unreadable message for good.
    pub async fn discard(&self) -> Result<(), WriteError> {
        self.message
            .ack_with(AckKind::Term)
            .await
            .map_err(|err| WriteError::Unavailable(err.to_string()))
    }
}
