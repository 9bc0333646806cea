//! Checker jobs in cluster mode: a job accepted by any node is the cluster's, its items are
//! checked by whichever nodes have room, and every node keeps the same copy of its results.
//!
//! - The log `panlink_jobs` holds each job as records: its items (in chunks), then, once all its
//!   work is queued, `opened` (the job and the results answered at creation), then `results` as
//!   checks end, and `cancelled`. Every node folds the log, in order, into its LMDB ([`apply`]): a result is
//!   stored only if its item has none yet, under the job's next event id, so every node gives a
//!   job's results the same ids 1, 2, 3 … and any node serves its events, replay and export.
//! - The work queue `panlink_work` holds each job's items in batches of up to [`WORK_BATCH`] of
//!   one drive, under `<drive>.<lane>`; a node takes a batch when its lane has room, checks its
//!   items on the lane like its own (once its copy knows the job: a result never precedes its
//!   job's `opened` in the log), publishes their results, and acknowledges the batch. A node
//!   that dies holding one: after `cluster.work_ack_wait_ms` the batch goes to another node,
//!   whose results for items already answered are dropped by the fold.
//!
//! It must not check a job's items outside a batch it took, nor store a result outside the fold.
//!
//! Invariant: every item gets exactly one result event on every node (the fold drops a second),
//! and a job's event ids are the same on every node (the fold runs in the log's order).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::engine::{Engine, Job, SharedCheck, UrgentCounts};
use super::event::{self, CheckResult, Priority};
use super::quota;
use super::record::{self, ItemRecord, JobRecord};
use super::submission::{self, StoredItemQuota, SubmitError};
use crate::checker::share::Provider;
use crate::checker::verdict::{Reason, State, Verdict};
use crate::cluster::log::{Log, Record};
use crate::cluster::work::{Claimed, WorkQueue};
use crate::cluster::{Cluster, ClusterError};
use crate::config::ClusterConfig;
use crate::store::{Dbs, Store, StoreError, replica};

/// The cluster log of jobs and their results.
pub const JOBS_LOG: &str = "panlink_jobs";
/// The cluster work queue of items to check.
pub const WORK_QUEUE: &str = "panlink_work";
/// How long the jobs' log keeps a record: a node down longer than this misses the jobs and
/// results of that time.
const JOBS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// Items of one drive in one work batch at most.
pub const WORK_BATCH: usize = 100;
/// Items in one record of a new job's items at most (a record stays far below NATS's 1 MiB).
const ITEMS_PER_RECORD: usize = 500;
/// Results of a batch are published at least this often while it is checked.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// How long a fetch of work waits on the queue before it asks again.
const TAKE_WAIT: Duration = Duration::from_secs(5);
/// A batch whose job this node still does not know this long after taking it (and at least
/// twice the ack wait), with its copy of the jobs' log current, belongs to a job that was never
/// opened: a submission queues all its work within seconds, then opens the job.
const NEVER_OPENED_AFTER: Duration = Duration::from_secs(10);
/// The pause after a failed publish or fetch.
const RETRY_PAUSE: Duration = Duration::from_millis(250);
/// How long a node waits for its own copy to show a job it just published, or one another node
/// published (a request naming a job this node has not folded yet).
const READ_OWN_WRITE: Duration = Duration::from_secs(5);

/// The cluster's streams that jobs use, opened before the app (opening them waits on NATS).
#[derive(Clone)]
pub struct JobStreams {
    log: Log,
    work: WorkQueue,
}

impl JobStreams {
    /// Opens (creating them if needed) the jobs' log and the work queue.
    pub async fn open(cluster: &Cluster) -> Result<JobStreams, ClusterError> {
        Ok(JobStreams {
            log: cluster.log(JOBS_LOG, JOBS_KEPT).await?,
            work: cluster.work_queue(WORK_QUEUE).await?,
        })
    }
}

/// Jobs in cluster mode: submission, the fold of the jobs' log, and this node's workers.
pub struct SharedJobs {
    streams: JobStreams,
    engine: Arc<Engine>,
    store: Arc<Store>,
    ack_wait: Duration,
    max_held: i64,
    /// The stored-items quota's window: other nodes' jobs count here too, as they are folded.
    quota_window: quota::Window,
    /// Items of taken batches not yet answered, by drive and lane (0 urgent, 1 normal).
    held: Box<[[AtomicUsize; 2]]>,
}

/// A record of the jobs' log.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    /// Items `first`, `first + 1` … of a new job, published before its `Opened`.
    Items {
        job: String,
        first: u32,
        items: Vec<ItemRecord>,
    },
    /// A new job, with the results answered at its creation.
    Opened {
        job: JobRecord,
        answers: Vec<Answer>,
    },
    /// Results of checks.
    Results { job: String, answers: Vec<Answer> },
    /// The job's owner cancelled it: its items without a result are answered `cancelled`.
    Cancelled { job: String },
}

/// A result as the log carries it: the event's JSON exactly as SSE sends it.
#[derive(Serialize, Deserialize)]
struct Answer {
    item: u32,
    state: State,
    event: Box<RawValue>,
}

/// A work batch: items of one job and one drive.
#[derive(Serialize, Deserialize)]
struct WorkBatch {
    job: String,
    items: Vec<(u32, ItemRecord)>,
}

fn lane_index(priority: Priority) -> usize {
    match priority {
        Priority::Urgent => 0,
        Priority::Normal => 1,
    }
}

fn lane_name(priority: Priority) -> &'static str {
    match priority {
        Priority::Urgent => "urgent",
        Priority::Normal => "normal",
    }
}

impl SharedJobs {
    pub fn new(
        streams: JobStreams,
        engine: Arc<Engine>,
        store: Arc<Store>,
        config: &ClusterConfig,
        jobs: &crate::config::JobsConfig,
    ) -> SharedJobs {
        SharedJobs {
            streams,
            engine,
            store,
            ack_wait: config.work_ack_wait,
            max_held: i64::from(config.max_batches_in_flight),
            quota_window: quota::Window {
                retention_ms: u64::try_from(jobs.retention.as_millis()).unwrap_or(u64::MAX),
            },
            held: Provider::ALL.iter().map(|_| Default::default()).collect(),
        }
    }

    /// Takes a new job of `items` for `owner` (a key id): counts its items against the owner's
    /// quota on this node, publishes the job and its work, and answers once this node's copy
    /// has the job.
    pub async fn submit(
        &self,
        owner: String,
        items: Vec<ItemRecord>,
        quota: StoredItemQuota,
        now: u64,
        lane: Priority,
    ) -> Result<JobRecord, SubmitError> {
        let (items, layout) = submission::lay_out_off_workers(items, owner, now).await?;
        let owner = layout.job.owner.clone();
        let total = u64::from(layout.job.total);
        let reservation = self
            .store
            .write(move |txn, dbs| {
                quota::reserve(txn, dbs, &owner, total, quota.items, quota.window, now)
            })
            .await?;
        if let quota::Reservation::OverQuota { used } = reservation {
            return Err(SubmitError::OverQuota { used });
        }
        let id = layout.job.id.clone();
        // The items go first (in any order among themselves), then the work, then `opened`.
        let chunks = items
            .chunks(ITEMS_PER_RECORD)
            .enumerate()
            .map(|(n, chunk)| {
                let first = (n * ITEMS_PER_RECORD) as u32 + 1;
                Outgoing::Log {
                    name: format!("{id}-items-{first}"),
                    entry: Entry::Items {
                        job: id.clone(),
                        first,
                        items: chunk.to_vec(),
                    },
                }
            })
            .collect();
        self.publish_all(chunks).await?;
        let answers = layout
            .immediate
            .iter()
            .map(|(item, state, reason)| {
                let json = event::immediate_event_json(*item, &items[*item as usize - 1], *reason);
                answer(*item, *state, json)
            })
            .collect();
        let mut by_provider: Vec<Vec<(u32, ItemRecord)>> = vec![Vec::new(); Provider::ALL.len()];
        for (item_id, provider) in layout.providers_of.iter().enumerate().skip(1) {
            if let Some(provider) = provider {
                by_provider[provider.index()].push((item_id as u32, items[item_id - 1].clone()));
            }
        }
        let mut batches = Vec::new();
        for (provider, work) in Provider::ALL.iter().zip(by_provider) {
            for (n, chunk) in work.chunks(WORK_BATCH).enumerate() {
                batches.push(Outgoing::Work {
                    provider: *provider,
                    lane,
                    name: format!("{id}-{}-{n}", provider.as_str()),
                    batch: WorkBatch {
                        job: id.clone(),
                        items: chunk.to_vec(),
                    },
                });
            }
        }
        self.publish_all(batches).await?;
        // Last: a job exists only once all its work is queued (a taker holds a batch until its
        // node knows the job, and drops the batch of a job never opened).
        let opened = Entry::Opened {
            job: layout.job.clone(),
            answers,
        };
        let opened_at = self.publish(&id, &format!("{id}-opened"), &opened).await?;
        if !self
            .streams
            .log
            .wait_applied(opened_at, READ_OWN_WRITE)
            .await
        {
            tracing::warn!(job = %id, "this node's copy of the cluster's jobs is behind; the new job shows here once it catches up");
        }
        Ok(layout.job)
    }

    /// Publishes `outgoing`, [`PUBLISHES_IN_FLIGHT`] at a time, in no particular order; the
    /// first failure.
    async fn publish_all(&self, outgoing: Vec<Outgoing>) -> Result<(), SubmitError> {
        let mut running = futures_util::stream::FuturesUnordered::new();
        for record in outgoing {
            if running.len() >= PUBLISHES_IN_FLIGHT
                && let Some(published) = running.next().await
            {
                published?;
            }
            running.push(self.publish_outgoing(record));
        }
        while let Some(published) = running.next().await {
            published?;
        }
        Ok(())
    }

    async fn publish_outgoing(&self, outgoing: Outgoing) -> Result<(), SubmitError> {
        match outgoing {
            Outgoing::Log { name, entry } => {
                self.publish(entry.job_id(), &name, &entry).await?;
                Ok(())
            }
            Outgoing::Work {
                provider,
                lane,
                name,
                batch,
            } => self.queue_work(provider, lane, &name, &batch).await,
        }
    }

    /// Publishes `entry` to the jobs' log under the job's subject; its sequence.
    async fn publish(&self, job: &str, name: &str, entry: &Entry) -> Result<u64, SubmitError> {
        let payload = Bytes::from(serde_json::to_vec(entry).expect("log entries serialize"));
        self.streams
            .log
            .publish_named(job, name, payload)
            .await
            .map_err(SubmitError::Cluster)
    }

    async fn queue_work(
        &self,
        provider: Provider,
        lane: Priority,
        name: &str,
        batch: &WorkBatch,
    ) -> Result<(), SubmitError> {
        let payload = Bytes::from(serde_json::to_vec(batch).expect("work batches serialize"));
        let subject = format!("{}.{}", provider.as_str(), lane_name(lane));
        self.streams
            .work
            .publish(&subject, name, payload)
            .await
            .map_err(SubmitError::Cluster)
    }

    /// Cancels `job` for the whole cluster: every node answers its items still without a result
    /// `cancelled`, in the log's order; checks in flight finish and their results are dropped.
    pub async fn cancel(&self, job: &Job) -> Result<(), SubmitError> {
        let entry = Entry::Cancelled {
            job: job.id.clone(),
        };
        let at = self
            .publish(&job.id, &format!("{}-cancelled", job.id), &entry)
            .await?;
        self.streams.log.wait_applied(at, READ_OWN_WRITE).await;
        Ok(())
    }

    /// Puts the items of `job` matching `keys` that have no result yet on the urgent lane of
    /// the cluster: a new urgent work batch (the batch that holds them already may still check
    /// them; the fold keeps whichever result comes first).
    pub async fn hurry(&self, job: &Job, keys: &[u64]) -> Result<UrgentCounts, SubmitError> {
        let mut counts = UrgentCounts::default();
        let mut hurried = Vec::new();
        for key in keys {
            let mut found = false;
            for item_id in job.items_matching(*key) {
                found = true;
                if job.is_answered(item_id) {
                    counts.already_done += 1;
                } else {
                    counts.promoted += 1;
                    hurried.push(item_id);
                }
            }
            if !found {
                counts.not_in_job += 1;
            }
        }
        hurried.sort_unstable();
        hurried.dedup();
        let id = job.id.clone();
        let items = self.store.read(move |txn, dbs| {
            hurried
                .into_iter()
                .filter_map(|item_id| {
                    record::get_item(txn, dbs, &id, item_id)
                        .map(|item| item.map(|item| (item_id, item)))
                        .transpose()
                })
                .collect::<Result<Vec<_>, _>>()
        })?;
        let mut by_provider: HashMap<Provider, Vec<(u32, ItemRecord)>> = HashMap::new();
        for (item_id, item) in items {
            if let Some(provider) = item.provider {
                by_provider
                    .entry(provider)
                    .or_default()
                    .push((item_id, item));
            }
        }
        let now = crate::timefmt::now_ms();
        for (provider, work) in by_provider {
            for chunk in work.chunks(WORK_BATCH) {
                let name = format!(
                    "{}-urgent-{}-{}-{now}",
                    job.id,
                    provider.as_str(),
                    chunk[0].0
                );
                let batch = WorkBatch {
                    job: job.id.clone(),
                    items: chunk.to_vec(),
                };
                self.queue_work(provider, Priority::Urgent, &name, &batch)
                    .await?;
            }
        }
        Ok(counts)
    }

    /// Waits (a few seconds at most) until this node's copy has every job the log held when
    /// asked: a job another node just accepted is then known here.
    pub async fn catch_up(&self) {
        if let Ok(last) = self.streams.log.last_sequence().await {
            self.streams.log.wait_applied(last, READ_OWN_WRITE).await;
        }
    }
}

/// Publishes written at once while a job is submitted: the engine's acknowledgements of one
/// publish overlap the next ones instead of following each other.
const PUBLISHES_IN_FLIGHT: usize = 32;

/// A record on its way to the jobs' log or the work queue.
enum Outgoing {
    Log {
        name: String,
        entry: Entry,
    },
    Work {
        provider: Provider,
        lane: Priority,
        name: String,
        batch: WorkBatch,
    },
}

impl Entry {
    /// The job the entry is about.
    fn job_id(&self) -> &str {
        match self {
            Entry::Items { job, .. } | Entry::Results { job, .. } | Entry::Cancelled { job } => job,
            Entry::Opened { job, .. } => &job.id,
        }
    }
}

fn answer(item: u32, state: State, json: Vec<u8>) -> Answer {
    let text = String::from_utf8(json).expect("events are UTF-8 JSON");
    Answer {
        item,
        state,
        event: RawValue::from_string(text).expect("events are JSON"),
    }
}

/// In cluster mode: takes the unfinished jobs in this node's copy as followed ones, then starts
/// the fold of the jobs' log (until `stop`) and this node's workers; answers the log's last
/// sequence at start, which this node must reach before it knows every job.
pub async fn follower(shared: &Arc<SharedJobs>, stop: CancellationToken) -> Result<u64, String> {
    shared
        .engine
        .follow_stored_jobs()
        .await
        .map_err(|err| err.to_string())?;
    let (followed, latest) = shared.streams.log.resume_point(&shared.store).await?;
    spawn_tasks(shared, followed, &stop);
    Ok(latest)
}

/// Whether this node's fold reached `sequence` within `timeout`.
pub async fn caught_up(shared: &SharedJobs, sequence: u64, timeout: Duration) -> bool {
    shared.streams.log.wait_applied(sequence, timeout).await
}

/// Spawns the fold from `from` and a worker per drive and lane. Kept out of [`follower`]'s
/// future: the tasks' futures are large in debug builds.
#[inline(never)]
fn spawn_tasks(shared: &Arc<SharedJobs>, from: u64, stop: &CancellationToken) {
    let folding = Arc::clone(shared);
    tokio::spawn(Box::pin(shared.streams.log.clone().follow(
        from,
        stop.clone(),
        move |records: Vec<Record>| {
            let shared = Arc::clone(&folding);
            async move { apply(&shared, records).await }
        },
    )));
    for provider in Provider::ALL {
        for priority in [Priority::Urgent, Priority::Normal] {
            tokio::spawn(Box::pin(take_work(
                Arc::clone(shared),
                provider,
                priority,
                stop.clone(),
            )));
        }
    }
}

/// A result the fold stores: item, state, event id, JSON.
type Stored = (u32, State, u32, Bytes);

/// Folds records of the jobs' log into this node's copy, in order. A new job or a cancellation
/// is folded on its own (what follows is planned against it); items and results in runs.
async fn apply(shared: &SharedJobs, records: Vec<Record>) -> Result<(), StoreError> {
    let mut run: Vec<Folded> = Vec::new();
    for record in records {
        let entry: Entry = match serde_json::from_slice(&record.payload) {
            Ok(entry) => entry,
            Err(err) => {
                tracing::error!(sequence = record.sequence, error = %err, "an unreadable record in the cluster's jobs log; skipped");
                continue;
            }
        };
        let folded = Folded {
            sequence: record.sequence,
            mine: record.node == shared.streams.log.node(),
            entry,
        };
        if matches!(folded.entry, Entry::Opened { .. } | Entry::Cancelled { .. }) {
            apply_run(shared, std::mem::take(&mut run)).await?;
            apply_run(shared, vec![folded]).await?;
        } else {
            run.push(folded);
        }
    }
    apply_run(shared, run).await
}

/// A job's results planned in one run: the job, its next event id, the items answered in the
/// run, and what is stored.
type Planned = (Arc<Job>, u32, HashSet<u32>, Vec<Stored>);

/// A record of the jobs' log on its way into this node's copy.
struct Folded {
    sequence: u64,
    /// Published by this node.
    mine: bool,
    entry: Entry,
}

/// What a fold's commit is followed by.
enum After {
    Follow(JobRecord),
    /// Webhooks with deliveries queued by the fold.
    Wake(Vec<String>),
    Cancel(Arc<Job>, Vec<Stored>),
}

/// Folds a run of records in one write transaction (and the position reached with them), then
/// tells the engine what the run changed.
async fn apply_run(shared: &SharedJobs, run: Vec<Folded>) -> Result<(), StoreError> {
    let Some(last) = run.last().map(|folded| folded.sequence) else {
        return Ok(());
    };
    // Event ids are planned against the engine's view of each job (which only this fold
    // changes), plus what this run already answered.
    let mut planned: HashMap<String, Planned> = HashMap::new();
    let mut rest = Vec::new();
    for folded in run {
        match folded.entry {
            Entry::Results { job, answers } => {
                let Some(live) = shared.engine.job(&job) else {
                    // Finished (a late duplicate) or unknown here.
                    continue;
                };
                let (live, next, seen, stored) = planned.entry(job).or_insert_with(|| {
                    let next = live.next_event_id();
                    (live, next, HashSet::new(), Vec::new())
                });
                for answer in answers {
                    if answer.item == 0
                        || answer.item > live.total
                        || live.is_answered(answer.item)
                        || !seen.insert(answer.item)
                    {
                        continue;
                    }
                    let json = Bytes::copy_from_slice(answer.event.get().as_bytes());
                    stored.push((answer.item, answer.state, *next, json));
                    *next += 1;
                }
            }
            other => rest.push((folded.mine, other)),
        }
    }
    let cancel_of = rest.iter().find_map(|(_, entry)| match entry {
        Entry::Cancelled { job } => shared.engine.job(job),
        _ => None,
    });
    let answers: Vec<(String, Vec<Stored>)> = planned
        .iter()
        .map(|(job, (_, _, _, stored))| (job.clone(), stored.clone()))
        .collect();
    let cancelled = cancel_of.clone();
    let window = shared.quota_window;
    let cap = shared.engine.event_sink();
    let after = shared
        .store
        .write(move |txn, dbs| {
            let mut after = Vec::new();
            for (mine, entry) in &rest {
                match entry {
                    Entry::Items { job, first, items } => {
                        for (offset, item) in items.iter().enumerate() {
                            record::put_item(txn, dbs, job, first + offset as u32, item)?;
                        }
                    }
                    Entry::Opened { job, answers } => {
                        if record::get_job(txn, dbs, &job.id)?.is_some() {
                            continue;
                        }
                        record::put_job(txn, dbs, job)?;
                        if !mine {
                            // Counted here as the accepting node counted it there, so each
                            // node's quota check sees the whole cluster's jobs.
                            let (owner, total) = (&job.owner, u64::from(job.total));
                            let at = job.created_at_ms;
                            quota::reserve(txn, dbs, owner, total, u64::MAX, window, at)?;
                        }
                        for (n, answer) in answers.iter().enumerate() {
                            let json = answer.event.get().as_bytes();
                            record::put_event(txn, dbs, &job.id, n as u32 + 1, json)?;
                        }
                        if job.finished_at_ms.is_some() {
                            // Answered whole at creation: it ends here, on every node alike.
                            let woken = super::engine::completed_event(txn, dbs, job, cap)?;
                            after.push(After::Wake(woken));
                        }
                        after.push(After::Follow(job.clone()));
                    }
                    Entry::Cancelled { .. } => {
                        if let Some(job) = &cancelled {
                            let stored = cancel_rest(txn, dbs, job)?;
                            after.push(After::Cancel(Arc::clone(job), stored));
                        }
                    }
                    Entry::Results { .. } => {}
                }
            }
            for (job, stored) in &answers {
                for (_, _, event_id, json) in stored {
                    record::put_event(txn, dbs, job, *event_id, json)?;
                }
            }
            replica::set_followed(txn, dbs, JOBS_LOG, last)?;
            Ok(after)
        })
        .await?;
    for effect in after {
        match effect {
            After::Follow(job) => shared.engine.follow_job(&job).await?,
            After::Wake(webhooks) => shared.engine.wake_webhooks(&webhooks),
            After::Cancel(job, stored) => {
                shared.engine.mark_cancelled(&job);
                shared.engine.answer_followed(&job, stored).await?;
            }
        }
    }
    for (_, (job, _, _, stored)) in planned {
        if !stored.is_empty() {
            shared.engine.answer_followed(&job, stored).await?;
        }
    }
    Ok(())
}

/// Stores a `cancelled` result for every item of `job` without one, under the next event ids.
fn cancel_rest(txn: &mut heed::RwTxn, dbs: &Dbs, job: &Job) -> Result<Vec<Stored>, StoreError> {
    let mut next = job.next_event_id();
    let mut stored = Vec::new();
    let result = CheckResult::without_check(Verdict::new(State::Unknown, Reason::Cancelled));
    for item_id in 1..=job.total {
        if job.is_answered(item_id) {
            continue;
        }
        let item = record::get_item(txn, dbs, &job.id, item_id)?;
        let json = event::event_json(item_id, &result, item.as_ref());
        record::put_event(txn, dbs, &job.id, next, &json)?;
        stored.push((item_id, State::Unknown, next, Bytes::from(json)));
        next += 1;
    }
    Ok(stored)
}

/// Takes work batches of one drive's lane from the cluster while this node's lane has room,
/// until `stop`.
async fn take_work(
    shared: Arc<SharedJobs>,
    provider: Provider,
    priority: Priority,
    stop: CancellationToken,
) {
    let subject = format!("{}.{}", provider.as_str(), lane_name(priority));
    let taker = loop {
        match shared
            .streams
            .work
            .taker(&subject, shared.ack_wait, shared.max_held)
            .await
        {
            Ok(taker) => break taker,
            Err(err) => {
                tracing::warn!(subject, error = %err, "opening a work queue's consumer failed; retrying");
                if pause(&stop).await {
                    return;
                }
            }
        }
    };
    let held = &shared.held[provider.index()][lane_index(priority)];
    // Room for the lane's concurrency and at least one batch more: the next batch is taken
    // while the last items of the one before are still being checked.
    let room = shared.engine.lane_concurrency(provider).max(WORK_BATCH);
    loop {
        while held.load(Ordering::Acquire) >= room {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(10)) => {}
                () = stop.cancelled() => return,
            }
        }
        let taken = tokio::select! {
            taken = taker.take(TAKE_WAIT) => taken,
            () = stop.cancelled() => return,
        };
        match taken {
            Ok(Some(claimed)) => {
                held.fetch_add(WORK_BATCH, Ordering::AcqRel);
                tokio::spawn(work_on(
                    Arc::clone(&shared),
                    claimed,
                    provider,
                    priority,
                    stop.clone(),
                ));
            }
            Ok(None) => {}
            Err(err) => {
                tracing::warn!(subject, error = %err, "taking work from the cluster failed; retrying");
                if pause(&stop).await {
                    return;
                }
            }
        }
    }
}

/// Checks the items of a batch this node took, publishing their results as they come, and
/// acknowledges it once all are published. Items that already have a result here are skipped
/// (a batch handed out again after a node died). On `stop` it leaves the batch unacknowledged:
/// another node takes it after the ack wait.
async fn work_on(
    shared: Arc<SharedJobs>,
    claimed: Claimed,
    provider: Provider,
    priority: Priority,
    stop: CancellationToken,
) {
    let held = &shared.held[provider.index()][lane_index(priority)];
    let batch: WorkBatch = match serde_json::from_slice(&claimed.payload) {
        Ok(batch) => batch,
        Err(err) => {
            held.fetch_sub(WORK_BATCH, Ordering::AcqRel);
            tracing::error!(error = %err, "an unreadable work batch; discarded");
            let _ = claimed.discard().await;
            return;
        }
    };
    let job = match job_of_batch(&shared, &claimed, &batch.job, &stop).await {
        BatchJob::Open(job) => job,
        BatchJob::Ended => {
            held.fetch_sub(WORK_BATCH, Ordering::AcqRel);
            let _ = claimed.done().await;
            return;
        }
        BatchJob::NeverOpened => {
            held.fetch_sub(WORK_BATCH, Ordering::AcqRel);
            tracing::warn!(job = %batch.job, "a work batch of a job that was never opened (its node died while submitting it); discarded");
            let _ = claimed.discard().await;
            return;
        }
        BatchJob::Stopped => return,
    };
    let (reply, mut results) = mpsc::unbounded_channel();
    let mut items: HashMap<u32, ItemRecord> = HashMap::new();
    let mut ready: Vec<Answer> = Vec::new();
    for (item_id, item) in batch.items {
        if job.is_answered(item_id) || job.is_cancelled() {
            continue;
        }
        match item.share() {
            Some(share) => {
                items.insert(item_id, item);
                shared.engine.check_shared(SharedCheck {
                    share,
                    priority,
                    item_id,
                    reply: reply.clone(),
                });
            }
            None => {
                let result = CheckResult::without_check(Verdict::unknown(Reason::InvalidUrl, None));
                let json = event::event_json(item_id, &result, Some(&item));
                ready.push(answer(item_id, State::Unknown, json));
            }
        }
    }
    drop(reply);
    held.fetch_sub(WORK_BATCH - items.len(), Ordering::AcqRel);
    let mut flush = tokio::time::interval(PUBLISH_EVERY);
    let mut progress = tokio::time::interval(shared.ack_wait / 3);
    progress.tick().await;
    loop {
        tokio::select! {
            result = results.recv() => match result {
                Some((item_id, result)) => {
                    held.fetch_sub(1, Ordering::AcqRel);
                    let item = items.remove(&item_id);
                    let json = event::event_json(item_id, &result, item.as_ref());
                    ready.push(answer(item_id, result.verdict.state, json));
                    if ready.len() >= WORK_BATCH
                        && !publish_results(&shared, &batch.job, &mut ready, &stop).await
                    {
                        return;
                    }
                }
                None => break,
            },
            _ = flush.tick() => {
                if !publish_results(&shared, &batch.job, &mut ready, &stop).await {
                    return;
                }
            }
            _ = progress.tick() => {
                if let Err(err) = claimed.still_working().await {
                    tracing::warn!(job = %batch.job, error = %err, "telling the work queue a batch is in progress failed");
                }
            }
            () = stop.cancelled() => return,
        }
    }
    if !publish_results(&shared, &batch.job, &mut ready, &stop).await {
        return;
    }
    if let Err(err) = claimed.done().await {
        // Handed out again after the ack wait: its items have results and are skipped.
        tracing::warn!(job = %batch.job, error = %err, "acknowledging a finished work batch failed");
    }
}

/// What a taken batch's job is, as this node's copy sees it.
enum BatchJob {
    /// Open: its items are checked.
    Open(Arc<Job>),
    /// Finished or cancelled and ended: nothing to check.
    Ended,
    /// Not in the log, with this node's copy current: its node died before opening it.
    NeverOpened,
    /// This node is stopping (the batch stays unacknowledged).
    Stopped,
}

/// Waits until this node's copy knows the job of a batch it took. A job is opened in the log
/// after all its work is queued, and a result may only follow its job's `opened` there, so a
/// batch is checked only once the job is known here. A job still unknown after
/// [`NEVER_OPENED_AFTER`], with this node's copy at the log's end, was never opened.
async fn job_of_batch(
    shared: &SharedJobs,
    claimed: &Claimed,
    job: &str,
    stop: &CancellationToken,
) -> BatchJob {
    let taken = tokio::time::Instant::now();
    let mut progress = tokio::time::Instant::now();
    loop {
        if let Some(open) = shared.engine.job(job) {
            return BatchJob::Open(open);
        }
        match shared.store.read(|txn, dbs| record::get_job(txn, dbs, job)) {
            Ok(Some(stored)) if stored.finished_at_ms.is_some() => return BatchJob::Ended,
            _ => {}
        }
        if taken.elapsed() >= NEVER_OPENED_AFTER.max(shared.ack_wait * 2)
            && let Ok(last) = shared.streams.log.last_sequence().await
            && shared.streams.log.wait_applied(last, Duration::ZERO).await
            && shared.engine.job(job).is_none()
        {
            return BatchJob::NeverOpened;
        }
        if progress.elapsed() >= shared.ack_wait / 3 {
            progress = tokio::time::Instant::now();
            let _ = claimed.still_working().await;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = stop.cancelled() => return BatchJob::Stopped,
        }
    }
}

/// Publishes `ready` as one record of results (retrying until the log takes it); false on
/// `stop`.
async fn publish_results(
    shared: &SharedJobs,
    job: &str,
    ready: &mut Vec<Answer>,
    stop: &CancellationToken,
) -> bool {
    if ready.is_empty() {
        return true;
    }
    let first = ready.iter().map(|a| a.item).min().unwrap_or(0);
    let name = format!("{job}-results-{first}-{}", ready.len());
    let entry = Entry::Results {
        job: job.to_owned(),
        answers: std::mem::take(ready),
    };
    loop {
        match shared.publish(job, &name, &entry).await {
            Ok(_) => return true,
            Err(err) => {
                tracing::warn!(job, error = ?err, "publishing results to the cluster failed; retrying");
                if pause(stop).await {
                    return false;
                }
            }
        }
    }
}

/// Waits [`RETRY_PAUSE`]; true when `stop` came first.
async fn pause(stop: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(RETRY_PAUSE) => false,
        () = stop.cancelled() => true,
    }
}
