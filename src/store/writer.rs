//! The group-commit writer: one OS thread owns every write transaction of this process.
//!
//! Producers send boxed operations over a bounded channel and await a oneshot. The thread blocks
//! for the first operation, drains whatever else is queued (up to `max_batch_ops`), applies each in
//! a nested transaction, commits once and only then completes every waiter. Under low load a batch
//! is one operation (no added latency); under load batches grow by themselves while the previous
//! commit's fsync runs. No timer, no acknowledgement before the fsync.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use heed::{Env, RwTxn, WithoutTls};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use super::{Condition, Dbs, StoreError};

/// How many operations may wait for the writer before producers wait too (back-pressure).
const QUEUE_CAPACITY: usize = 16 * 1024;

/// One queued write: applied in the batch transaction, then completed with the commit's outcome.
trait WriteOp: Send {
    /// Applies the operation; `false` means it failed and its nested transaction was aborted.
    fn apply(&mut self, env: &Env<WithoutTls>, parent: &mut RwTxn, dbs: &Dbs);
    /// Tells the waiter how it went, once the batch is committed (or failed).
    fn complete(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct TypedOp<F, R> {
    op: Option<F>,
    outcome: Option<Result<R, StoreError>>,
    ack: oneshot::Sender<Result<R, StoreError>>,
}

impl<F, R> WriteOp for TypedOp<F, R>
where
    R: Send + 'static,
    F: FnOnce(&mut RwTxn, &Dbs) -> Result<R, StoreError> + Send + 'static,
{
    fn apply(&mut self, env: &Env<WithoutTls>, parent: &mut RwTxn, dbs: &Dbs) {
        let Some(op) = self.op.take() else { return };
        let outcome = match env.nested_write_txn(parent) {
            Ok(mut child) => match op(&mut child, dbs) {
                Ok(value) => child.commit().map(|()| value).map_err(StoreError::from),
                Err(err) => {
                    child.abort();
                    Err(err)
                }
            },
            Err(err) => Err(StoreError::from(err)),
        };
        self.outcome = Some(outcome);
    }

    fn complete(self: Box<Self>, commit: Result<(), &StoreError>) {
        let result = match (commit, self.outcome) {
            (Ok(()), Some(outcome)) => outcome,
            (Err(err), _) => Err(err.for_another_op()),
            (Ok(()), None) => Err(StoreError::WriterGone),
        };
        // The waiter may have gone away (client hung up); the write stands regardless.
        let _ = self.ack.send(result);
    }
}

/// Counters of the writer, for metrics and benchmarks.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriterStats {
    pub commits: u64,
    pub ops: u64,
    pub last_batch: u64,
}

#[derive(Default)]
struct Counters {
    commits: AtomicU64,
    ops: AtomicU64,
    last_batch: AtomicU64,
    /// [`Condition`] of the last commit, as its `u8`.
    condition: AtomicU8,
}

pub(super) struct WriterHandle {
    sender: Mutex<Option<mpsc::Sender<Box<dyn WriteOp>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
}

impl WriterHandle {
    pub(super) fn spawn(env: Env<WithoutTls>, dbs: Dbs, max_batch_ops: usize) -> WriterHandle {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("lmdb-writer".into())
            .spawn(move || run(env, dbs, receiver, max_batch_ops, &thread_counters))
            .expect("spawn the LMDB writer thread");
        WriterHandle {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(Some(thread)),
            counters,
        }
    }

    pub(super) async fn submit<R, F>(&self, op: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut RwTxn, &Dbs) -> Result<R, StoreError> + Send + 'static,
    {
        // Clone the sender out of the lock so the lock is never held across an await.
        let sender = self.sender.lock().clone().ok_or(StoreError::WriterGone)?;
        let (ack, done) = oneshot::channel();
        let op: Box<dyn WriteOp> = Box::new(TypedOp {
            op: Some(op),
            outcome: None,
            ack,
        });
        sender.send(op).await.map_err(|_| StoreError::WriterGone)?;
        done.await.map_err(|_| StoreError::WriterGone)?
    }

    pub(super) fn stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            ops: self.counters.ops.load(Ordering::Relaxed),
            last_batch: self.counters.last_batch.load(Ordering::Relaxed),
        }
    }

    pub(super) fn condition(&self) -> Condition {
        Condition::from_u8(self.counters.condition.load(Ordering::Relaxed))
    }

    pub(super) fn close(&self, deadline: Duration) {
        // Dropping the last sender lets the thread drain what is queued and exit.
        self.sender.lock().take();
        let Some(thread) = self.thread.lock().take() else {
            return;
        };
        let started = Instant::now();
        while !thread.is_finished() {
            if started.elapsed() > deadline {
                tracing::error!("LMDB writer did not finish within the shutdown deadline");
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = thread.join();
    }
}

fn run(
    env: Env<WithoutTls>,
    dbs: Dbs,
    mut receiver: mpsc::Receiver<Box<dyn WriteOp>>,
    max_batch_ops: usize,
    counters: &Counters,
) {
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(max_batch_ops);
    while let Some(first) = receiver.blocking_recv() {
        batch.push(first);
        while batch.len() < max_batch_ops {
            match receiver.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let commit = apply_batch(&env, &dbs, &mut batch);
        let elapsed = started.elapsed();
        if let Err(err) = &commit {
            tracing::error!(error = %err, ops = batch.len(), "LMDB batch commit failed; every write in it was refused");
        }
        // Only this thread writes the condition, so the load and the store need no swap.
        let was = Condition::from_u8(counters.condition.load(Ordering::Relaxed));
        let condition = Condition::after(was, &commit, || super::disk_has_room(env.path()));
        counters
            .condition
            .store(condition.as_u8(), Ordering::Relaxed);
        if was != condition && condition == Condition::Ok {
            tracing::info!("LMDB commits go through again");
        }
        let size = batch.len() as u64;
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters.ops.fetch_add(size, Ordering::Relaxed);
        counters.last_batch.store(size, Ordering::Relaxed);
        metrics::histogram!("panlink_lmdb_commit_seconds").record(elapsed.as_secs_f64());
        metrics::histogram!("panlink_lmdb_batch_ops").record(size as f64);
        for op in batch.drain(..) {
            op.complete(commit.as_ref().map(|_| ()));
        }
    }
}

fn apply_batch(
    env: &Env<WithoutTls>,
    dbs: &Dbs,
    batch: &mut [Box<dyn WriteOp>],
) -> Result<(), StoreError> {
    let mut wtxn = env.write_txn()?;
    for op in batch.iter_mut() {
        op.apply(env, &mut wtxn, dbs);
    }
    wtxn.commit()
        .map_err(|err| StoreError::of_commit(err, env.path()))?;
    Ok(())
}
