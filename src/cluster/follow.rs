//! The loop behind every follower of the cluster's buckets and logs: read from a position, hand
//! what is ready in batches to the product's apply function, and start reading again after the
//! last item applied when the reader fails.
//!
//! It knows neither buckets nor logs (the caller opens the reader and reads positions off its
//! items) nor any product.
//!
//! Invariant: nothing is skipped. A batch whose apply fails is offered again (after a pause)
//! until it is applied, and a reader is reopened after the last position applied.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures_util::{FutureExt, Stream, StreamExt};
use tokio_util::sync::CancellationToken;

/// The pause before a failed reader is reopened or a failed batch is applied again.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long a reader may stay silent before the source is asked whether it has moved on.
const QUIET_CHECK: Duration = Duration::from_secs(3);

/// How far a follower is, for `/health`.
#[derive(Debug, Default)]
pub struct Progress {
    /// The last position applied (0: none yet).
    pub applied: AtomicU64,
    /// Items the reader said were still to come after the last batch.
    pub pending: AtomicU64,
}

impl Progress {
    /// Waits until the follower applied `position`, up to `timeout`; whether it did.
    pub async fn wait_applied(&self, position: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.applied.load(Ordering::Relaxed) >= position {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// The follower of `name` as `/health` shows it.
    pub fn view(&self, name: &'static str) -> BucketView {
        BucketView {
            bucket: name,
            applied_revision: self.applied.load(Ordering::Relaxed),
            pending: self.pending.load(Ordering::Relaxed),
        }
    }
}

/// How far this node's copy of a bucket or log is, for `/health`.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct BucketView {
    /// The bucket's or log's name.
    pub bucket: &'static str,
    /// The last revision (a log: sequence) the follower applied locally (0: none yet).
    pub applied_revision: u64,
    /// Items the reader said were still to come after the last batch it delivered.
    pub pending: u64,
}

/// An item as the follower hands it on: the value, its position, the items pending after it.
pub struct Read<T> {
    pub value: T,
    pub position: u64,
    pub pending: u64,
}

/// Follows a source from the position after `applied` until `stop`: `open(from)` opens a reader
/// at position `from`; `read` turns each raw item into a [`Read`] (`None`: the item is skipped,
/// the caller having logged why); every item goes to `apply` in order, in batches of at most
/// `max_batch` (what the reader has ready at once). `latest()` answers the source's last
/// position: a reader silent for [`QUIET_CHECK`] while the source is past what was applied is
/// reopened (a reader whose server died may otherwise wait forever; seen after a `kill -9` of
/// one nats-server of three).
#[allow(clippy::too_many_arguments)]
pub async fn follow<S, Raw, ReadError, Open, Opening, OpenError, T, Latest, Asked, F, Fut, E>(
    name: &'static str,
    progress: &Progress,
    mut applied: u64,
    max_batch: usize,
    stop: CancellationToken,
    mut open: Open,
    read: impl Fn(Raw) -> Option<Read<T>>,
    mut latest: Latest,
    mut apply: F,
) where
    Latest: FnMut() -> Asked,
    Asked: Future<Output = Option<u64>>,
    S: Stream<Item = Result<Raw, ReadError>> + Unpin,
    ReadError: Display,
    Open: FnMut(u64) -> Opening,
    Opening: Future<Output = Result<S, OpenError>>,
    OpenError: Display,
    T: Clone,
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = Result<(), E>>,
    E: Display,
{
    progress.applied.store(applied, Ordering::Relaxed);
    'reopen: while !stop.is_cancelled() {
        let opened = tokio::select! {
            opened = open(applied + 1) => opened,
            () = stop.cancelled() => return,
        };
        let mut reader = match opened {
            Ok(reader) => reader,
            Err(err) => {
                tracing::warn!(source = name, error = %err, "reading a cluster bucket or log failed; retrying");
                pause(&stop).await;
                continue;
            }
        };
        loop {
            let mut next = tokio::select! {
                item = reader.next() => item,
                () = tokio::time::sleep(QUIET_CHECK) => {
                    if latest().await.is_some_and(|last| last > applied) {
                        tracing::warn!(source = name, applied, "a cluster bucket's or log's reader went quiet behind its source; reopening");
                        continue 'reopen;
                    }
                    continue;
                }
                () = stop.cancelled() => return,
            };
            let mut batch = Vec::new();
            let mut last = None;
            // Whether the reader failed or ended (it is reopened after this batch).
            let mut broken = false;
            loop {
                match next {
                    Some(Ok(raw)) => {
                        if let Some(item) = read(raw) {
                            progress.pending.store(item.pending, Ordering::Relaxed);
                            if item.position > applied {
                                last = Some(item.position);
                                batch.push(item.value);
                            }
                        }
                    }
                    Some(Err(err)) => {
                        tracing::warn!(source = name, error = %err, "a cluster bucket's or log's reader failed; reopening");
                        broken = true;
                        break;
                    }
                    None => {
                        broken = true;
                        break;
                    }
                }
                if batch.len() >= max_batch {
                    break;
                }
                // Only what the reader has ready now: a lone item is applied at once.
                match reader.next().now_or_never() {
                    Some(item) => next = item,
                    None => break,
                }
            }
            if let Some(last) = last {
                while let Err(err) = apply(batch.clone()).await {
                    tracing::error!(source = name, error = %err, "applying a cluster bucket's or log's items locally failed; retrying");
                    pause(&stop).await;
                    if stop.is_cancelled() {
                        return;
                    }
                }
                applied = last;
                progress.applied.store(applied, Ordering::Relaxed);
            }
            if broken {
                pause(&stop).await;
                continue 'reopen;
            }
        }
    }
}

/// Waits [`RETRY_PAUSE`], or less if `stop` comes first.
async fn pause(stop: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(RETRY_PAUSE) => {}
        () = stop.cancelled() => {}
    }
}
