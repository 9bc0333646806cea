//! The checking engine: per-provider lanes, dispatchers, and the result sink.
//!
//! Data flow: a job's items are pushed, per provider, onto that job's lock-free queue, and the job
//! onto the provider's ring of jobs with pending work. A provider's dispatcher takes the urgent
//! lane first, then one item from the job at the head of the ring (which goes back to the tail):
//! round-robin across jobs, so a small job is not stuck behind a big one. It waits for a
//! concurrency permit and a rate token, and spawns the check. Results go to one sink task that
//! commits them in batches (one write transaction for many results), and only after the commit
//! publishes them to SSE subscribers and counts them: nothing is shown that is not stored.
//!
//! In cluster mode (`jobs::shared`) the engine follows the cluster's jobs instead: their results
//! come from the cluster's log ([`Engine::answer_followed`]) and their items are never queued
//! here; the items of work batches this node took wait on the lanes' shared queues
//! ([`Engine::check_shared`]), behind urgent and normal job items of the same kind.
//!
//! Item states live in one atomic byte per item (pending → urgent → in flight → done); promotion
//! and cancellation are compare-and-swap, so an item is checked and answered exactly once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use crossbeam_queue::SegQueue;
use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore, broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::event::{self, CheckResult, Priority};
use super::health::{Gate, ProviderHealth};
use super::quota;
use super::record::{self, Counts, ItemRecord, JobRecord, JobStatus, ProviderTally};
use super::submission::{self, StoredItemQuota, SubmitError};
use crate::checker::cache::{self, CheckCache, Lookup};
use crate::checker::client::UpstreamClient;
use crate::checker::providers;
use crate::checker::share::{Provider, ShareRef};
use crate::checker::verdict::{Reason, State, Verdict};
use crate::config::{CheckerConfig, DriveConfig, PerDrive};
use crate::store::{Store, StoreError};
use crate::timefmt;
use crate::webhooks::{self, EventType, Webhooks};

const PENDING: u8 = 0;
const URGENT: u8 = 1;
const IN_FLIGHT: u8 = 2;
const DONE: u8 = 3;
const NO_PROVIDER: u8 = u8::MAX;
const PROVIDERS: usize = Provider::ALL.len();
/// Results committed in one write transaction at most.
const SINK_BATCH: usize = 4096;
/// Messages kept for live SSE subscribers before a slow one lags (it then reads LMDB).
const LIVE_BUFFER: usize = 4096;

/// What live subscribers receive.
#[derive(Debug, Clone)]
pub enum Published {
    Event(u32, Bytes),
    Done,
}

/// Live progress of one provider in a job.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProviderProgress {
    pub total: u32,
    pub done: u32,
    pub pending: u32,
    pub urgent_pending: u32,
    pub in_flight: u32,
}

#[derive(Debug, Clone)]
struct Progress {
    status: JobStatus,
    next_event: u32,
    counts: Counts,
    providers: [ProviderProgress; PROVIDERS],
    unsupported: u32,
    finished_at_ms: Option<u64>,
}

/// A job the engine is working on.
pub struct Job {
    pub id: String,
    /// The id of the key that created it.
    pub owner: String,
    pub created_at_ms: u64,
    pub total: u32,
    /// Item states, index = item id − 1.
    slots: Box<[AtomicU8]>,
    /// Provider index of each item, or `NO_PROVIDER`.
    item_provider: Box<[u8]>,
    /// `(match_key, item id)` sorted by key: finds the items of a URL for `urgent`.
    index: Box<[(u64, u32)]>,
    queues: [SegQueue<u32>; PROVIDERS],
    in_ring: [AtomicBool; PROVIDERS],
    progress: Mutex<Progress>,
    live: broadcast::Sender<Published>,
}

/// A snapshot of a job for `GET /jobs/{id}`.
#[derive(Debug, Clone)]
pub struct JobSnapshot {
    pub id: String,
    pub status: JobStatus,
    pub total: u32,
    pub counts: Counts,
    pub providers: Vec<(Provider, ProviderProgress)>,
    pub unsupported: u32,
    pub created_at_ms: u64,
    pub finished_at_ms: Option<u64>,
}

impl Job {
    fn new(record: &JobRecord, item_provider: Box<[u8]>, mut index: Vec<(u64, u32)>) -> Job {
        index.sort_unstable();
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        let mut providers = [ProviderProgress::default(); PROVIDERS];
        for (provider, tally) in &record.providers {
            providers[provider.index()].total = tally.total;
        }
        Job {
            id: record.id.clone(),
            owner: record.owner.clone(),
            created_at_ms: record.created_at_ms,
            total: record.total,
            slots: (0..record.total).map(|_| AtomicU8::new(PENDING)).collect(),
            item_provider,
            index: index.into_boxed_slice(),
            queues: Default::default(),
            in_ring: Default::default(),
            progress: Mutex::new(Progress {
                status: record.status,
                next_event: 1,
                counts: Counts::default(),
                providers,
                unsupported: record.unsupported,
                finished_at_ms: record.finished_at_ms,
            }),
            live,
        }
    }

    fn provider_of(&self, item_id: u32) -> Option<Provider> {
        let index = *self.item_provider.get(item_id as usize - 1)?;
        Provider::ALL.get(usize::from(index)).copied()
    }

    /// Moves an item from `from` to in flight; false if it was not in `from` any more.
    fn claim(&self, item_id: u32, from: u8) -> bool {
        let slot = &self.slots[item_id as usize - 1];
        if slot
            .compare_exchange(from, IN_FLIGHT, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        if let Some(provider) = self.provider_of(item_id) {
            let mut progress = self.progress.lock();
            let p = &mut progress.providers[provider.index()];
            if from == URGENT {
                p.urgent_pending -= 1;
            } else {
                p.pending -= 1;
            }
            p.in_flight += 1;
            if progress.status == JobStatus::Queued {
                progress.status = JobStatus::Running;
            }
        }
        true
    }

    /// Moves a pending item to the urgent state.
    fn promote(&self, item_id: u32) -> Promotion {
        let slot = &self.slots[item_id as usize - 1];
        match slot.compare_exchange(PENDING, URGENT, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => match self.provider_of(item_id) {
                Some(provider) => {
                    let mut progress = self.progress.lock();
                    let p = &mut progress.providers[provider.index()];
                    p.pending -= 1;
                    p.urgent_pending += 1;
                    Promotion::Promoted(provider)
                }
                None => Promotion::Done,
            },
            Err(URGENT) => Promotion::AlreadyUrgent,
            Err(IN_FLIGHT) => Promotion::InFlight,
            Err(_) => Promotion::Done,
        }
    }

    /// Takes a pending or urgent item out of the queues for cancellation; false if it was already
    /// being checked or done.
    fn take_for_cancel(&self, item_id: u32) -> bool {
        [PENDING, URGENT]
            .into_iter()
            .any(|from| self.claim(item_id, from))
    }

    /// Records that an item in flight has its result; true when it was the job's last.
    fn complete(&self, item_id: u32, state: State) -> Option<JobStatus> {
        self.slots[item_id as usize - 1].store(DONE, Ordering::Release);
        let mut progress = self.progress.lock();
        count_state(&mut progress.counts, state);
        if let Some(provider) = self.provider_of(item_id) {
            let p = &mut progress.providers[provider.index()];
            p.in_flight -= 1;
            p.done += 1;
        }
        (progress.counts.done == self.total).then_some(progress.status)
    }

    /// The items whose URL has match key `key` (see [`record::match_key`]).
    pub fn items_matching(&self, key: u64) -> impl Iterator<Item = u32> + '_ {
        let start = self.index.partition_point(|(k, _)| *k < key);
        self.index[start..]
            .iter()
            .take_while(move |(k, _)| *k == key)
            .map(|(_, id)| *id)
    }

    /// Whether item `item_id` has its result.
    pub fn is_answered(&self, item_id: u32) -> bool {
        self.slots
            .get(item_id as usize - 1)
            .is_none_or(|slot| slot.load(Ordering::Acquire) == DONE)
    }

    /// The id the job's next result event gets.
    pub fn next_event_id(&self) -> u32 {
        self.progress.lock().next_event
    }

    /// Whether the job was cancelled (its end may still be on its way).
    pub fn is_cancelled(&self) -> bool {
        self.progress.lock().status == JobStatus::Cancelled
    }

    /// Records a result another node's check produced and this node stored as event
    /// `event_id`; true when it was the job's last.
    fn answer_followed(&self, item_id: u32, state: State, event_id: u32) -> bool {
        let Some(slot) = self.slots.get(item_id as usize - 1) else {
            return false;
        };
        if slot.swap(DONE, Ordering::AcqRel) == DONE {
            return false;
        }
        let mut progress = self.progress.lock();
        count_state(&mut progress.counts, state);
        progress.next_event = progress.next_event.max(event_id + 1);
        if let Some(provider) = self.provider_of(item_id) {
            let p = &mut progress.providers[provider.index()];
            p.pending = p.pending.saturating_sub(1);
            p.done += 1;
        }
        if progress.status == JobStatus::Queued {
            progress.status = JobStatus::Running;
        }
        progress.counts.done == self.total
    }

    /// Subscribes to live events.
    pub fn subscribe(&self) -> broadcast::Receiver<Published> {
        self.live.subscribe()
    }

    /// Whether the job has ended: every item has its result and the end is recorded. (A
    /// cancelled job still has checks in flight until then.)
    pub fn is_finished(&self) -> bool {
        self.progress.lock().finished_at_ms.is_some()
    }

    pub fn snapshot(&self) -> JobSnapshot {
        let progress = self.progress.lock();
        JobSnapshot {
            id: self.id.clone(),
            status: progress.status,
            total: self.total,
            counts: progress.counts,
            providers: Provider::ALL
                .iter()
                .map(|p| (*p, progress.providers[p.index()]))
                .filter(|(_, p)| p.total > 0)
                .collect(),
            unsupported: progress.unsupported,
            created_at_ms: self.created_at_ms,
            finished_at_ms: progress.finished_at_ms,
        }
    }

    fn record(&self, progress: &Progress) -> JobRecord {
        JobRecord {
            id: self.id.clone(),
            owner: self.owner.clone(),
            created_at_ms: self.created_at_ms,
            finished_at_ms: progress.finished_at_ms,
            status: progress.status,
            total: self.total,
            counts: progress.counts,
            providers: Provider::ALL
                .iter()
                .filter(|p| progress.providers[p.index()].total > 0)
                .map(|p| {
                    let pp = progress.providers[p.index()];
                    (
                        *p,
                        ProviderTally {
                            total: pp.total,
                            done: pp.done,
                        },
                    )
                })
                .collect(),
            unsupported: progress.unsupported,
        }
    }
}

impl JobSnapshot {
    /// The snapshot of a job known only from storage (finished, or not loaded).
    pub fn from_record(record: &JobRecord) -> JobSnapshot {
        JobSnapshot {
            id: record.id.clone(),
            status: record.status,
            total: record.total,
            counts: record.counts,
            providers: record
                .providers
                .iter()
                .map(|(p, t)| {
                    (
                        *p,
                        ProviderProgress {
                            total: t.total,
                            done: t.done,
                            pending: t.total.saturating_sub(t.done),
                            urgent_pending: 0,
                            in_flight: 0,
                        },
                    )
                })
                .collect(),
            unsupported: record.unsupported,
            created_at_ms: record.created_at_ms,
            finished_at_ms: record.finished_at_ms,
        }
    }
}

/// Counters of one provider's lane, for `/pool`.
#[derive(Default)]
pub struct LaneStats {
    pub queued: AtomicI64,
    pub urgent_queued: AtomicI64,
    pub in_flight: AtomicI64,
    /// Monitors' re-checks waiting and running (running ones count in `in_flight` too).
    pub background_queued: AtomicI64,
    pub background_in_flight: AtomicI64,
    pub checked_total: AtomicU64,
    pub retries_total: AtomicU64,
    /// Results by state: valid, invalid, locked, unknown.
    pub by_state: [AtomicU64; 4],
    latency_ms: Mutex<LatencyWindow>,
}

/// The last few hundred upstream latencies, for p50/p95.
#[derive(Default)]
struct LatencyWindow {
    samples: Vec<u32>,
    next: usize,
}

impl LatencyWindow {
    const SIZE: usize = 512;

    fn record(&mut self, ms: u32) {
        if self.samples.len() < Self::SIZE {
            self.samples.push(ms);
        } else {
            self.samples[self.next] = ms;
        }
        self.next = (self.next + 1) % Self::SIZE;
    }

    fn percentiles(&self) -> (Option<u32>, Option<u32>) {
        if self.samples.is_empty() {
            return (None, None);
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        (Some(at(0.5)), Some(at(0.95)))
    }
}

impl LaneStats {
    /// `(p50, p95)` of recent upstream latencies in milliseconds.
    pub fn latency_percentiles(&self) -> (Option<u32>, Option<u32>) {
        self.latency_ms.lock().percentiles()
    }
}

/// A lane's metric handles, each registered at its first use and kept: a check then updates
/// them without a registry look-up (and without allocating the labels' key).
struct LaneMetrics {
    provider: Provider,
    check_seconds: OnceLock<metrics::Histogram>,
    checks: [OnceLock<metrics::Counter>; Reason::ALL.len()],
    retries: OnceLock<metrics::Counter>,
    cache_hits: OnceLock<metrics::Counter>,
    dedup: OnceLock<metrics::Counter>,
}

impl LaneMetrics {
    fn new(provider: Provider) -> LaneMetrics {
        LaneMetrics {
            provider,
            check_seconds: OnceLock::new(),
            checks: std::array::from_fn(|_| OnceLock::new()),
            retries: OnceLock::new(),
            cache_hits: OnceLock::new(),
            dedup: OnceLock::new(),
        }
    }

    fn check_seconds(&self) -> &metrics::Histogram {
        self.check_seconds.get_or_init(|| {
            metrics::histogram!("panlink_upstream_check_seconds", "provider" => self.provider.as_str())
        })
    }

    fn checks(&self, reason: Reason) -> &metrics::Counter {
        self.checks[reason.index()].get_or_init(|| {
            metrics::counter!("panlink_checks_total", "provider" => self.provider.as_str(), "reason" => reason.as_str())
        })
    }

    fn retries(&self) -> &metrics::Counter {
        self.retries.get_or_init(|| {
            metrics::counter!("panlink_checker_retries_total", "provider" => self.provider.as_str())
        })
    }

    fn cache_hits(&self) -> &metrics::Counter {
        self.cache_hits.get_or_init(|| {
            metrics::counter!("panlink_checker_cache_hits_total", "provider" => self.provider.as_str())
        })
    }

    fn dedup(&self) -> &metrics::Counter {
        self.dedup.get_or_init(|| {
            metrics::counter!("panlink_checker_dedup_total", "provider" => self.provider.as_str())
        })
    }
}

/// One provider's queues and counters.
pub struct Lane {
    pub provider: Provider,
    /// Its metric handles.
    metrics: LaneMetrics,
    urgent: SegQueue<(Arc<Job>, u32)>,
    ring: SegQueue<Arc<Job>>,
    /// Monitors' re-checks: taken only when urgent and normal work leave a slot.
    background: SegQueue<BackgroundCheck>,
    /// Items of the cluster's work batches this node took (cluster mode), urgent and normal.
    shared_urgent: SegQueue<SharedCheck>,
    shared_normal: SegQueue<SharedCheck>,
    wake: Notify,
    pub permits: Arc<Semaphore>,
    pub concurrency: usize,
    pub rate_per_s: u32,
    /// `drives.<name>.enabled`: when false, its links are answered without asking the drive.
    pub enabled: bool,
    pub stats: LaneStats,
    /// Adaptive limit and circuit breaker.
    pub health: ProviderHealth,
    /// Signalled when a check of this lane ends.
    slot_freed: Notify,
}

impl Lane {
    fn new(
        provider: Provider,
        concurrency: usize,
        rate_per_s: u32,
        enabled: bool,
        health: ProviderHealth,
    ) -> Lane {
        Lane {
            provider,
            metrics: LaneMetrics::new(provider),
            urgent: SegQueue::new(),
            ring: SegQueue::new(),
            background: SegQueue::new(),
            shared_urgent: SegQueue::new(),
            shared_normal: SegQueue::new(),
            wake: Notify::new(),
            permits: Arc::new(Semaphore::new(concurrency + urgent_headroom(concurrency))),
            concurrency,
            rate_per_s,
            enabled,
            stats: LaneStats::default(),
            health,
            slot_freed: Notify::new(),
        }
    }

    /// The next work, urgent first.
    #[cfg(test)]
    fn next_work(&self) -> Option<Work> {
        self.next_urgent().or_else(|| self.next_normal())
    }

    /// The next urgent item still waiting.
    fn next_urgent(&self) -> Option<Work> {
        while let Some((job, item_id)) = self.urgent.pop() {
            self.stats.urgent_queued.fetch_sub(1, Ordering::Relaxed);
            if job.claim(item_id, URGENT) {
                return Some(Work {
                    job,
                    item_id,
                    priority: Priority::Urgent,
                });
            }
        }
        None
    }

    /// The next normal item: one from the job at the head of the ring, which goes to the tail.
    fn next_normal(&self) -> Option<Work> {
        let p = self.provider.index();
        while let Some(job) = self.ring.pop() {
            let popped = job.queues[p].pop();
            if job.queues[p].is_empty() {
                job.in_ring[p].store(false, Ordering::Release);
                // A push may have raced the flag: put the job back if it has work again.
                if !job.queues[p].is_empty() && !job.in_ring[p].swap(true, Ordering::AcqRel) {
                    self.ring.push(Arc::clone(&job));
                }
            } else {
                self.ring.push(Arc::clone(&job));
            }
            if let Some(item_id) = popped {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                if job.claim(item_id, PENDING) {
                    return Some(Work {
                        job,
                        item_id,
                        priority: Priority::Normal,
                    });
                }
            }
        }
        None
    }

    /// The next item of a cluster work batch on `priority`'s side.
    fn next_shared(&self, priority: Priority) -> Option<SharedCheck> {
        let (queue, count) = match priority {
            Priority::Urgent => (&self.shared_urgent, &self.stats.urgent_queued),
            Priority::Normal => (&self.shared_normal, &self.stats.queued),
        };
        let check = queue.pop()?;
        count.fetch_sub(1, Ordering::Relaxed);
        Some(check)
    }

    /// The next monitor re-check.
    fn next_background(&self) -> Option<BackgroundCheck> {
        let check = self.background.pop()?;
        self.stats.background_queued.fetch_sub(1, Ordering::Relaxed);
        Some(check)
    }

    fn push_urgent(&self, job: &Arc<Job>, item_id: u32) {
        self.urgent.push((Arc::clone(job), item_id));
        self.stats.urgent_queued.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn push_normal(&self, job: &Arc<Job>, item_id: u32) {
        let p = self.provider.index();
        job.queues[p].push(item_id);
        self.stats.queued.fetch_add(1, Ordering::Relaxed);
        if !job.in_ring[p].swap(true, Ordering::AcqRel) {
            self.ring.push(Arc::clone(job));
        }
        self.wake.notify_one();
    }
}

struct Work {
    job: Arc<Job>,
    item_id: u32,
    priority: Priority,
}

/// A re-check for a monitor: asked of the provider below urgent and normal work, never answered
/// from the cache (it exists to see changes), and its verdict refreshes the cache.
pub struct BackgroundCheck {
    pub share: ShareRef,
    /// The asker's handle, given back with the verdict.
    pub tag: u64,
    pub reply: mpsc::UnboundedSender<(u64, Verdict)>,
}

/// An item of a cluster work batch this node took: checked on its provider's lane like a job's
/// item (the cache and the checks in flight answer it too), its result sent to `reply` with
/// `item_id`.
pub struct SharedCheck {
    pub share: ShareRef,
    pub priority: Priority,
    pub item_id: u32,
    pub reply: mpsc::UnboundedSender<(u32, CheckResult)>,
}

/// What a dispatcher starts next.
enum Next {
    Item(Work),
    Shared(SharedCheck),
    Background(BackgroundCheck),
}

/// Slots of a lane's adaptive limit that monitors' re-checks may hold at once: the other half
/// stays free for a job that arrives, which starts at once instead of waiting for them.
pub fn background_limit(limit: usize) -> usize {
    (limit / 2).max(1)
}

/// A result on its way to the sink.
struct Outcome {
    job: Arc<Job>,
    item_id: u32,
    /// The item as the check read it (the sink reads it again when `None`).
    item: Option<ItemRecord>,
    result: CheckResult,
}

/// What promoting an item did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Promotion {
    Promoted(Provider),
    AlreadyUrgent,
    InFlight,
    Done,
}

/// Counts of `POST /jobs/{id}/urgent`.
#[derive(Debug, Default, Serialize)]
pub struct UrgentCounts {
    pub promoted: u32,
    pub already_done: u32,
    pub in_flight: u32,
    pub not_in_job: u32,
}

/// The engine: lanes, dispatchers, the sink, and the jobs being worked on.
pub struct Engine {
    store: Arc<Store>,
    client: UpstreamClient,
    config: CheckerConfig,
    cache: CheckCache,
    pub lanes: Vec<Arc<Lane>>,
    jobs: Box<[JobShard]>,
    sink: mpsc::Sender<Outcome>,
    /// Told of finished jobs (`job.completed`), in the commit that records the end.
    webhooks: Arc<Webhooks>,
    shutdown: CancellationToken,
    clock: Instant,
    /// Cluster mode: jobs are the cluster's; this node follows them ([`Engine::follow_job`])
    /// and never queues their items itself.
    followed: AtomicBool,
}

const JOB_SHARDS: usize = 16;

/// One shard of the jobs being worked on, by id.
type JobShard = Mutex<HashMap<String, Arc<Job>>>;

impl Engine {
    /// Builds the engine and starts the dispatchers and the sink on the current runtime; the
    /// unfinished jobs in storage wait for [`Engine::resume`].
    pub fn start(
        store: Arc<Store>,
        client: UpstreamClient,
        config: &CheckerConfig,
        drives: &PerDrive<DriveConfig>,
        webhooks: Arc<Webhooks>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Engine>, StoreError> {
        let lanes: Vec<Arc<Lane>> = Provider::ALL
            .iter()
            .map(|&provider| {
                let drive = drives.of(provider);
                let concurrency = match drive.concurrency {
                    0 => config.concurrency,
                    own => own,
                };
                let rate_per_s = match drive.rate_per_s {
                    0 => config.rate_per_s,
                    own => own,
                };
                Arc::new(Lane::new(
                    provider,
                    concurrency,
                    rate_per_s,
                    drive.enabled,
                    ProviderHealth::new(
                        concurrency,
                        config.breaker_failures,
                        u64::try_from(config.breaker_cooldown.as_millis()).unwrap_or(u64::MAX),
                        config.retry_budget_ratio,
                    ),
                ))
            })
            .collect();
        let (sink, sink_rx) = mpsc::channel(SINK_BATCH * 4);
        let engine = Arc::new(Engine {
            store,
            client,
            config: config.clone(),
            cache: CheckCache::new(config.cache_ttl(), config.cache_max_entries),
            lanes,
            jobs: (0..JOB_SHARDS)
                .map(|_| Mutex::new(HashMap::new()))
                .collect(),
            sink,
            webhooks,
            shutdown,
            clock: Instant::now(),
            followed: AtomicBool::new(false),
        });
        let migrated = engine.store.write_now(record::migrate_owners_to_key_ids)?;
        if migrated > 0 {
            tracing::info!(
                jobs = migrated,
                "job owners rewritten from secret hashes to key ids"
            );
        }
        for lane in &engine.lanes {
            tokio::spawn(dispatch(Arc::clone(&engine), Arc::clone(lane)));
        }
        tokio::spawn(run_sink(Arc::clone(&engine), sink_rx));
        Ok(engine)
    }

    /// Milliseconds on the engine's monotonic clock.
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.clock.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn shard(&self, id: &str) -> &JobShard {
        let hash = id.bytes().fold(0usize, |h, b| {
            h.wrapping_mul(31).wrapping_add(usize::from(b))
        });
        &self.jobs[hash % JOB_SHARDS]
    }

    /// The job `id` if the engine is working on it.
    pub fn job(&self, id: &str) -> Option<Arc<Job>> {
        self.shard(id).lock().get(id).cloned()
    }

    /// Unfinished jobs of `owner` (a key id).
    pub fn open_jobs_of(&self, owner: &str) -> usize {
        self.jobs
            .iter()
            .map(|shard| {
                shard
                    .lock()
                    .values()
                    .filter(|j| j.owner == owner && !j.is_finished())
                    .count()
            })
            .sum()
    }

    /// Takes a new job of `items` for `owner` (a key id): lays it out off the async workers,
    /// stores it in one write that also counts its items against the owner's quota (nothing is
    /// stored over it), answers the items it cannot check, and starts checking the rest on the
    /// `lane`'s queues (urgent: someone is waiting for the whole job).
    pub async fn submit(
        &self,
        owner: String,
        items: Vec<ItemRecord>,
        quota: StoredItemQuota,
        now: u64,
        lane: Priority,
    ) -> Result<JobRecord, SubmitError> {
        let (items, layout) = submission::lay_out_off_workers(items, owner, now).await?;
        let stored = layout.job.clone();
        let immediate = layout.immediate.clone();
        let deliveries_cap = self.webhooks.sink();
        let reservation = self
            .store
            .write(move |txn, dbs| {
                let total = u64::from(stored.total);
                let reservation = quota::reserve(
                    txn,
                    dbs,
                    &stored.owner,
                    total,
                    quota.items,
                    quota.window,
                    now,
                )?;
                if let quota::Reservation::OverQuota { .. } = reservation {
                    return Ok((reservation, Vec::new()));
                }
                record::put_job(txn, dbs, &stored)?;
                for (position, item) in items.iter().enumerate() {
                    record::put_item(txn, dbs, &stored.id, position as u32 + 1, item)?;
                }
                for (event_id, (item_id, _, reason)) in immediate.iter().enumerate() {
                    let json = event::immediate_event_json(
                        *item_id,
                        &items[*item_id as usize - 1],
                        *reason,
                    );
                    record::put_event(txn, dbs, &stored.id, event_id as u32 + 1, &json)?;
                }
                let woken = if stored.status == JobStatus::Done {
                    completed_event(txn, dbs, &stored, deliveries_cap)?
                } else {
                    Vec::new()
                };
                Ok((reservation, woken))
            })
            .await?;
        let (reservation, woken) = reservation;
        self.webhooks.wake(&woken);
        if let quota::Reservation::OverQuota { used } = reservation {
            return Err(SubmitError::OverQuota { used });
        }
        let immediate: Vec<(u32, State)> = layout
            .immediate
            .iter()
            .map(|(id, state, _)| (*id, *state))
            .collect();
        self.admit(
            &layout.job,
            &layout.providers_of,
            layout.index,
            &immediate,
            lane,
        );
        Ok(layout.job)
    }

    /// Takes a job that was just stored: `immediate` events (items answered at creation) are
    /// already recorded under ids `1..=immediate.len()`.
    fn admit(
        &self,
        record: &JobRecord,
        providers_of: &[Option<Provider>],
        index: Vec<(u64, u32)>,
        immediate: &[(u32, State)],
        lane: Priority,
    ) {
        let item_provider: Box<[u8]> = providers_of[1..]
            .iter()
            .map(|p| p.map_or(NO_PROVIDER, |p| p.index() as u8))
            .collect();
        let job = Arc::new(Job::new(record, item_provider, index));
        self.restore_progress(&job, immediate, immediate.len() as u32);
        self.enqueue(&job, lane);
        if !job.is_finished() {
            self.shard(&job.id)
                .lock()
                .insert(job.id.clone(), Arc::clone(&job));
        }
    }

    /// Marks recorded results as done and counts them.
    fn restore_progress(&self, job: &Job, recorded: &[(u32, State)], last_event: u32) {
        let mut progress = job.progress.lock();
        progress.next_event = last_event + 1;
        for &(item_id, state) in recorded {
            let Some(slot) = job.slots.get(item_id as usize - 1) else {
                continue;
            };
            if slot.swap(DONE, Ordering::AcqRel) == DONE {
                continue;
            }
            count_state(&mut progress.counts, state);
            if let Some(provider) = job.provider_of(item_id) {
                progress.providers[provider.index()].done += 1;
            }
        }
        for provider in Provider::ALL {
            let p = &mut progress.providers[provider.index()];
            p.pending = p.total - p.done;
        }
        if progress.counts.done == job.total
            && !matches!(progress.status, JobStatus::Done | JobStatus::Cancelled)
        {
            progress.status = JobStatus::Done;
            progress.finished_at_ms.get_or_insert_with(timefmt::now_ms);
        }
    }

    /// Pushes every pending item onto its provider's normal or urgent queue.
    fn enqueue(&self, job: &Arc<Job>, lane: Priority) {
        for item_id in 1..=job.total {
            if job.slots[item_id as usize - 1].load(Ordering::Acquire) != PENDING {
                continue;
            }
            let Some(provider) = job.provider_of(item_id) else {
                continue;
            };
            match lane {
                Priority::Normal => self.lanes[provider.index()].push_normal(job, item_id),
                Priority::Urgent => {
                    if let Promotion::Promoted(provider) = job.promote(item_id) {
                        self.lanes[provider.index()].push_urgent(job, item_id);
                    }
                }
            }
        }
    }

    /// Reloads unfinished jobs after a restart: recorded results are kept, the rest re-queued.
    /// Call once, when this server alone serves the data dir (another one may still be working
    /// on them before). In cluster mode it does nothing: [`Engine::follow_stored_jobs`] took
    /// them.
    pub fn resume(&self) -> Result<(), StoreError> {
        if self.followed.load(Ordering::Acquire) {
            return Ok(());
        }
        let records = self.store.read(record::unfinished_jobs)?;
        for record in records {
            let (job, recorded) = self.load_stored(&record)?;
            tracing::info!(job = %job.id, done = recorded, total = job.total, "resuming job");
            if job.is_finished() {
                // Finished between its last result and the record update: store the end.
                let progress = job.progress.lock().clone();
                let finished = job.record(&progress);
                let cap = self.webhooks.sink();
                let woken = self.store.write_now(|txn, dbs| {
                    record::put_job(txn, dbs, &finished)?;
                    completed_event(txn, dbs, &finished, cap)
                })?;
                self.webhooks.wake(&woken);
                continue;
            }
            self.enqueue(&job, Priority::Normal);
            self.shard(&job.id).lock().insert(job.id.clone(), job);
        }
        Ok(())
    }

    /// The job `record` as storage has it: its items, and its results so far marked done and
    /// counted; also how many results it has.
    fn load_stored(&self, record: &JobRecord) -> Result<(Arc<Job>, usize), StoreError> {
        let ((providers_of, index), recorded, last) = self.store.read(|txn, dbs| {
            let items = record::item_index(txn, dbs, &record.id, record.total)?;
            let (recorded, last) = record::recorded_results(txn, dbs, &record.id)?;
            Ok((items, recorded, last))
        })?;
        let recorded: Vec<(u32, State)> = recorded
            .into_iter()
            .map(|(item, state)| (item, event::parse_state(&state)))
            .collect();
        let item_provider: Box<[u8]> = providers_of[1..]
            .iter()
            .map(|p| p.map_or(NO_PROVIDER, |p| p.index() as u8))
            .collect();
        let job = Arc::new(Job::new(record, item_provider, index));
        self.restore_progress(&job, &recorded, last);
        Ok((job, recorded.len()))
    }

    /// Cluster mode: from now on jobs are the cluster's. The unfinished jobs in storage are
    /// followed as they stand (their results come from the cluster's log), never re-queued here.
    pub async fn follow_stored_jobs(&self) -> Result<(), StoreError> {
        self.followed.store(true, Ordering::Release);
        for record in self.store.read(record::unfinished_jobs)? {
            self.follow_job(&record).await?;
        }
        Ok(())
    }

    /// Where the writes that find events put them.
    pub fn event_sink(&self) -> webhooks::EventSink {
        self.webhooks.sink()
    }

    /// Wakes the workers of `webhooks` after a commit that queued deliveries for them.
    pub fn wake_webhooks(&self, webhooks: &[String]) {
        self.webhooks.wake(webhooks);
    }

    /// Cluster mode: takes the job `record`, whose items and results so far are in storage, as
    /// one this node follows: its progress, live events and end come from results stored by
    /// [`Engine::answer_followed`]; its items are checked by whichever node takes them.
    pub async fn follow_job(&self, record: &JobRecord) -> Result<(), StoreError> {
        let (job, _) = self.load_stored(record)?;
        if !job.is_finished() {
            self.shard(&job.id).lock().insert(job.id.clone(), job);
        } else if record.finished_at_ms.is_none() {
            // Every item had its result but the end was not stored (a crash in between).
            let status = if job.is_cancelled() {
                JobStatus::Cancelled
            } else {
                JobStatus::Done
            };
            self.finish(&job, status).await?;
        }
        Ok(())
    }

    /// Cluster mode: publishes results of `job` stored as events (item id, state, event id, its
    /// JSON), in order, and ends the job when the last item has its result.
    pub async fn answer_followed(
        &self,
        job: &Arc<Job>,
        answers: Vec<(u32, State, u32, Bytes)>,
    ) -> Result<(), StoreError> {
        let mut finished = false;
        for (item_id, state, event_id, json) in answers {
            finished |= job.answer_followed(item_id, state, event_id);
            let _ = job.live.send(Published::Event(event_id, json));
        }
        if finished {
            let status = if job.is_cancelled() {
                JobStatus::Cancelled
            } else {
                JobStatus::Done
            };
            self.finish(job, status).await?;
        }
        Ok(())
    }

    /// Cluster mode: marks `job` cancelled (its remaining items are answered `cancelled` by
    /// [`Engine::answer_followed`]).
    pub fn mark_cancelled(&self, job: &Job) {
        let mut progress = job.progress.lock();
        if !matches!(progress.status, JobStatus::Done | JobStatus::Cancelled) {
            progress.status = JobStatus::Cancelled;
        }
    }

    /// Cluster mode: checks an item of a work batch this node took on its provider's lane.
    pub fn check_shared(&self, check: SharedCheck) {
        let lane = &self.lanes[check.share.provider.index()];
        match check.priority {
            Priority::Urgent => {
                lane.shared_urgent.push(check);
                lane.stats.urgent_queued.fetch_add(1, Ordering::Relaxed);
            }
            Priority::Normal => {
                lane.shared_normal.push(check);
                lane.stats.queued.fetch_add(1, Ordering::Relaxed);
            }
        }
        lane.wake.notify_one();
    }

    /// Queues a monitor's re-check on its provider's background lane; the verdict goes to
    /// `check.reply`. The caller bounds how many it has queued (the monitors' scheduler: twice
    /// the lane's concurrency per provider).
    pub fn check_in_background(&self, check: BackgroundCheck) {
        let lane = &self.lanes[check.share.provider.index()];
        lane.background.push(check);
        lane.stats.background_queued.fetch_add(1, Ordering::Relaxed);
        lane.wake.notify_one();
    }

    /// The concurrency a provider's lane is configured with.
    pub fn lane_concurrency(&self, provider: Provider) -> usize {
        self.lanes[provider.index()].concurrency
    }

    /// Moves the pending items of `job` matching `keys` (see [`record::match_key`]) to the urgent lanes;
    /// items being checked are not interrupted.
    /// What [`Engine::hurry`] answers for a job that has finished (only in storage): every item
    /// of it is done already.
    pub fn hurry_finished(
        &self,
        job: &JobRecord,
        keys: &[u64],
    ) -> Result<UrgentCounts, StoreError> {
        let (_, index) = self
            .store
            .read(|txn, dbs| record::item_index(txn, dbs, &job.id, job.total))?;
        let mut counts = UrgentCounts::default();
        for key in keys {
            let n = index.iter().filter(|(k, _)| k == key).count() as u32;
            if n == 0 {
                counts.not_in_job += 1;
            }
            counts.already_done += n;
        }
        Ok(counts)
    }

    pub fn hurry(&self, job: &Arc<Job>, keys: &[u64]) -> UrgentCounts {
        let mut counts = UrgentCounts::default();
        for key in keys {
            let items: Vec<u32> = job.items_matching(*key).collect();
            if items.is_empty() {
                counts.not_in_job += 1;
            }
            for item_id in items {
                match job.promote(item_id) {
                    Promotion::Promoted(provider) => {
                        let lane = &self.lanes[provider.index()];
                        lane.push_urgent(job, item_id);
                        counts.promoted += 1;
                    }
                    Promotion::AlreadyUrgent => counts.promoted += 1,
                    Promotion::InFlight => counts.in_flight += 1,
                    Promotion::Done => counts.already_done += 1,
                }
            }
        }
        counts
    }

    /// Cancels `job`: pending items get a `cancelled` result; checks in flight finish.
    pub async fn cancel(&self, job: &Arc<Job>) {
        {
            let mut progress = job.progress.lock();
            if matches!(progress.status, JobStatus::Done | JobStatus::Cancelled) {
                return;
            }
            progress.status = JobStatus::Cancelled;
        }
        for item_id in 1..=job.total {
            if !job.take_for_cancel(item_id) {
                continue;
            }
            let outcome = Outcome {
                job: Arc::clone(job),
                item_id,
                item: None,
                result: CheckResult::without_check(Verdict::new(State::Unknown, Reason::Cancelled)),
            };
            if self.sink.send(outcome).await.is_err() {
                return;
            }
        }
        // The job ends in the sink, with the last of these results or of the checks in flight.
    }

    async fn finish(&self, job: &Arc<Job>, status: JobStatus) -> Result<(), StoreError> {
        let record = {
            let mut progress = job.progress.lock();
            progress.status = status;
            progress.finished_at_ms.get_or_insert_with(timefmt::now_ms);
            job.record(&progress)
        };
        let cap = self.webhooks.sink();
        let woken = self
            .store
            .write(move |txn, dbs| {
                record::put_job(txn, dbs, &record)?;
                completed_event(txn, dbs, &record, cap)
            })
            .await?;
        self.webhooks.wake(&woken);
        let _ = job.live.send(Published::Done);
        self.shard(&job.id).lock().remove(&job.id);
        Ok(())
    }
}

/// Queues `job.completed` for the owner's webhooks, in the transaction that records the end of
/// `job`; answers the webhooks to wake after the commit.
pub(super) fn completed_event(
    txn: &mut heed::RwTxn,
    dbs: &crate::store::Dbs,
    job: &JobRecord,
    sink: webhooks::EventSink,
) -> Result<Vec<String>, StoreError> {
    let data = serde_json::json!({
        "job_id": job.id,
        "status": job.status,
        "total": job.total,
        "counts": job.counts,
        "created_at": timefmt::rfc3339_ms(job.created_at_ms),
        "finished_at": job.finished_at_ms.map(timefmt::rfc3339_ms),
        "results_url": format!("/jobs/{}/results", job.id),
    });
    let now = timefmt::now_ms();
    let event = webhooks::record::Event {
        kind: EventType::JobCompleted,
        data: &data,
        at_ms: now,
    };
    // Every node of a cluster finds a job's end: it is told once.
    let name = format!("job.completed/{}", job.id);
    sink.for_owner(txn, dbs, &job.owner, &event, Some(name))
}

/// How far a start may run ahead of the exact 1/rate schedule. tokio's timer counts whole
/// milliseconds, so waiting for a start due in a few microseconds slept a millisecond: a fast lane
/// (a high `rate_per_s`) was capped by the timer, not by its rate, and a faster build hit the wait
/// more often (a one-provider job at 3 000–5 000 checks/s instead of 10 000). The long-run rate is
/// unchanged; a burst holds at most this long's worth of starts more.
const RATE_TOLERANCE: Duration = Duration::from_millis(1);

/// A lane's rate: starts spaced by 1/rate, with no burst beyond one interval of catch-up and
/// [`RATE_TOLERANCE`] of lead.
struct Pacer {
    interval: Duration,
    next_start: tokio::time::Instant,
}

impl Pacer {
    fn new(rate_per_s: u32, now: tokio::time::Instant) -> Pacer {
        Pacer {
            interval: Duration::from_secs_f64(1.0 / f64::from(rate_per_s.max(1))),
            next_start: now,
        }
    }

    /// Takes the next start, made at `now` or, when `Some`, at the instant to wait for.
    fn take(&mut self, now: tokio::time::Instant) -> Option<tokio::time::Instant> {
        let wait =
            (self.next_start > now + RATE_TOLERANCE).then(|| self.next_start - RATE_TOLERANCE);
        self.next_start = self.next_start.max(now) + self.interval;
        wait
    }
}

async fn dispatch(engine: Arc<Engine>, lane: Arc<Lane>) {
    let mut pacer = Pacer::new(lane.rate_per_s, tokio::time::Instant::now());
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&lane.permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = engine.shutdown.cancelled() => return,
        };
        let Some(next) = next_allowed_work(&engine, &lane).await else {
            return;
        };
        // A drive turned off is not asked: its answers need no pacing.
        if lane.enabled
            && let Some(at) = pacer.take(tokio::time::Instant::now())
        {
            tokio::time::sleep_until(at).await;
        }
        let engine = Arc::clone(&engine);
        let lane = Arc::clone(&lane);
        lane.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        match next {
            Next::Item(work) => {
                tokio::spawn(async move {
                    let outcome = run_check(&engine, &lane, work, permit).await;
                    lane.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                    lane.slot_freed.notify_one();
                    let _ = engine.sink.send(outcome).await;
                });
            }
            Next::Shared(check) => {
                tokio::spawn(async move {
                    let result =
                        check_share(&engine, &lane, &check.share, check.priority, permit).await;
                    lane.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                    lane.slot_freed.notify_one();
                    let _ = check.reply.send((check.item_id, result));
                });
            }
            Next::Background(check) => {
                lane.stats
                    .background_in_flight
                    .fetch_add(1, Ordering::Relaxed);
                tokio::spawn(async move {
                    let (verdict, _) = ask_with_retries(&engine, &lane, &check.share).await;
                    lane.health.record(verdict.reason, engine.now_ms());
                    engine.cache.refresh(&check.share, &verdict);
                    drop(permit);
                    lane.stats
                        .background_in_flight
                        .fetch_sub(1, Ordering::Relaxed);
                    lane.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
                    lane.slot_freed.notify_one();
                    let _ = check.reply.send((check.tag, verdict));
                });
            }
        }
    }
}

/// Slots over a lane's limit that only urgent links may use: soft preemption without slowing the
/// normal work, so a hurried link starts at once instead of waiting for a check to end.
pub fn urgent_headroom(limit: usize) -> usize {
    (limit / 8).max(1)
}

/// The next work the lane may start: waits while the breaker is open, while the lane is at its
/// adaptive limit (urgent links may go over it by [`urgent_headroom`]; one check while the lane
/// warms up, see `health.rs`), and while there is no work. Monitors' re-checks go only when no
/// urgent or normal work waits, within [`background_limit`]. `None` on shutdown.
async fn next_allowed_work(engine: &Engine, lane: &Lane) -> Option<Next> {
    loop {
        match lane.health.gate(engine.now_ms()) {
            Gate::Go | Gate::Probe => {}
            Gate::WaitUntil(at) => {
                let wait = Duration::from_millis(at.saturating_sub(engine.now_ms()).max(1));
                tokio::select! {
                    () = tokio::time::sleep(wait) => continue,
                    () = engine.shutdown.cancelled() => return None,
                }
            }
        }
        // Register for wake-ups before looking, so none is missed in between.
        let freed = lane.slot_freed.notified();
        let woke = lane.wake.notified();
        tokio::pin!(freed, woke);
        freed.as_mut().enable();
        woke.as_mut().enable();
        let in_flight = usize::try_from(lane.stats.in_flight.load(Ordering::Acquire)).unwrap_or(0);
        let now_ms = engine.now_ms();
        let (limit, warming_until) = lane.health.limit_at(now_ms);
        if in_flight < limit + urgent_headroom(limit) {
            if let Some(work) = lane.next_urgent() {
                return Some(Next::Item(work));
            }
            if let Some(check) = lane.next_shared(Priority::Urgent) {
                return Some(Next::Shared(check));
            }
        }
        if in_flight < limit {
            if let Some(work) = lane.next_normal() {
                return Some(Next::Item(work));
            }
            if let Some(check) = lane.next_shared(Priority::Normal) {
                return Some(Next::Shared(check));
            }
        }
        let background = lane.stats.background_in_flight.load(Ordering::Acquire);
        if in_flight < limit
            && usize::try_from(background).unwrap_or(0) < background_limit(limit)
            && let Some(check) = lane.next_background()
        {
            return Some(Next::Background(check));
        }
        let warmup_over = async {
            match warming_until {
                Some(at) => tokio::time::sleep(Duration::from_millis(at - now_ms)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = freed => {}
            () = woke => {}
            () = warmup_over => {}
            () = engine.shutdown.cancelled() => return None,
        }
    }
}

/// Checks one item of a job this node works on: reads it, then [`check_share`].
async fn run_check(
    engine: &Engine,
    lane: &Lane,
    work: Work,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> Outcome {
    let item = engine
        .store
        .read(|txn, dbs| record::get_item(txn, dbs, &work.job.id, work.item_id))
        .ok()
        .flatten();
    let result = match item.as_ref().and_then(ItemRecord::share) {
        Some(share) => check_share(engine, lane, &share, work.priority, permit).await,
        None => {
            let mut result =
                CheckResult::without_check(Verdict::unknown(Reason::UpstreamError, None));
            result.priority = work.priority;
            result
        }
    };
    Outcome {
        job: work.job,
        item_id: work.item_id,
        item,
        result,
    }
}

/// Checks one share: from the cache, by waiting for another check of the same share, or by
/// asking the provider (with retries). `permit` is the lane's concurrency slot; a waiter gives it
/// up, since it does not load the provider.
async fn check_share(
    engine: &Engine,
    lane: &Lane,
    share: &ShareRef,
    priority: Priority,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> CheckResult {
    let started = Instant::now();
    let shared = |verdict| CheckResult {
        verdict,
        cached: true,
        attempts: 0,
        elapsed: started.elapsed(),
        priority,
    };
    let lead = match engine.cache.lookup(share) {
        Lookup::Hit(verdict) => {
            drop(permit);
            lane.metrics.cache_hits().increment(1);
            return shared(verdict);
        }
        Lookup::Wait(receiver) => {
            drop(permit);
            if let Some(verdict) = cache::wait(receiver).await {
                lane.metrics.dedup().increment(1);
                return shared(verdict);
            }
            // The leader went away without a verdict: take a permit again and ask (and lead).
            return match Arc::clone(&lane.permits).acquire_owned().await {
                Ok(permit) => Box::pin(check_share(engine, lane, share, priority, permit)).await,
                Err(_) => shared(Verdict::unknown(Reason::UpstreamError, None)),
            };
        }
        Lookup::Lead(lead) => lead,
    };
    let (verdict, attempts) = ask_with_retries(engine, lane, share).await;
    lane.health.record(verdict.reason, engine.now_ms());
    engine.cache.finish(lead, &verdict);
    drop(permit);
    CheckResult {
        verdict,
        cached: false,
        attempts,
        elapsed: started.elapsed(),
        priority,
    }
}

/// Asks the provider, retrying transient outcomes with exponential backoff and jitter.
async fn ask_with_retries(engine: &Engine, lane: &Lane, share: &ShareRef) -> (Verdict, u32) {
    if !lane.enabled {
        // The setting that turned the drive off stands where a provider's code would.
        let setting = format!("drives.{}.enabled=false", lane.provider.as_str());
        return (Verdict::unknown(Reason::UnsupportedProvider, setting), 0);
    }
    let mut attempts = 0;
    let verdict = loop {
        attempts += 1;
        let asked = Instant::now();
        let verdict = providers::check(&engine.client, share).await;
        lane.stats
            .latency_ms
            .lock()
            .record(u32::try_from(asked.elapsed().as_millis()).unwrap_or(u32::MAX));
        lane.metrics
            .check_seconds()
            .record(asked.elapsed().as_secs_f64());
        if attempts == 1 {
            lane.health.earn_retry();
        }
        if !verdict.reason.is_transient()
            || attempts >= engine.config.max_attempts
            || engine.shutdown.is_cancelled()
            || !lane.health.spend_retry()
        {
            break verdict;
        }
        lane.stats.retries_total.fetch_add(1, Ordering::Relaxed);
        lane.metrics.retries().increment(1);
        let base = engine.config.retry_backoff * 2u32.pow(attempts - 1);
        let jitter = rand::random::<f64>() * base.as_secs_f64();
        tokio::time::sleep(base + Duration::from_secs_f64(jitter)).await;
    };
    lane.stats.checked_total.fetch_add(1, Ordering::Relaxed);
    lane.stats.by_state[state_index(verdict.state)].fetch_add(1, Ordering::Relaxed);
    lane.metrics.checks(verdict.reason).increment(1);
    (verdict, attempts)
}

/// Commits results in batches, then publishes and counts them.
async fn run_sink(engine: Arc<Engine>, mut rx: mpsc::Receiver<Outcome>) {
    let mut batch: Vec<Outcome> = Vec::with_capacity(SINK_BATCH);
    while rx.recv_many(&mut batch, SINK_BATCH).await > 0 {
        // Event ids are given here, in the order results reach the sink.
        let mut firsts: HashMap<usize, u32> = HashMap::new();
        let mut prepared = Vec::with_capacity(batch.len());
        for outcome in &mut batch {
            let event_id = {
                let mut progress = outcome.job.progress.lock();
                let id = progress.next_event;
                progress.next_event += 1;
                id
            };
            firsts
                .entry(Arc::as_ptr(&outcome.job) as usize)
                .or_insert(event_id);
            // Serialized here, off the writer thread, when the check brought its item along;
            // else the writer reads the item and serializes the result there.
            let body = match outcome.item.take() {
                Some(item) => EventBody::Json(event::event_json(
                    outcome.item_id,
                    &outcome.result,
                    Some(&item),
                )),
                None => EventBody::FromItem(outcome.result.clone()),
            };
            prepared.push(PreparedEvent {
                job: Arc::clone(&outcome.job),
                event_id,
                item_id: outcome.item_id,
                body,
            });
        }
        let written = engine
            .store
            .write(move |txn, dbs| {
                let mut out = Vec::with_capacity(prepared.len());
                for event in prepared {
                    let job_id = event.job.id.as_str();
                    let json = match event.body {
                        EventBody::Json(json) => json,
                        EventBody::FromItem(result) => {
                            let item = record::get_item(txn, dbs, job_id, event.item_id)?;
                            event::event_json(event.item_id, &result, item.as_ref())
                        }
                    };
                    record::put_event(txn, dbs, job_id, event.event_id, &json)?;
                    out.push((event.event_id, Bytes::from(json)));
                }
                Ok(out)
            })
            .await;
        match written {
            Ok(events) => {
                for (outcome, (event_id, json)) in batch.drain(..).zip(events) {
                    publish(&engine, outcome, event_id, json).await;
                }
            }
            Err(err) => {
                tracing::error!(error = %err, results = batch.len(), "could not record results; re-queueing them");
                for outcome in batch.drain(..) {
                    // Give back the event ids and the items: they will be checked again.
                    if let Some(first) = firsts.get(&(Arc::as_ptr(&outcome.job) as usize)) {
                        let mut progress = outcome.job.progress.lock();
                        progress.next_event = progress.next_event.min(*first);
                    }
                    requeue(&engine, &outcome.job, outcome.item_id);
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

fn requeue(engine: &Engine, job: &Arc<Job>, item_id: u32) {
    let slot = &job.slots[item_id as usize - 1];
    if slot
        .compare_exchange(IN_FLIGHT, PENDING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return;
    }
    if let Some(provider) = job.provider_of(item_id) {
        {
            let mut progress = job.progress.lock();
            let p = &mut progress.providers[provider.index()];
            p.in_flight -= 1;
            p.pending += 1;
        }
        engine.lanes[provider.index()].push_normal(job, item_id);
    }
}

async fn publish(engine: &Engine, outcome: Outcome, event_id: u32, json: Bytes) {
    let job = outcome.job;
    let finished = job.complete(outcome.item_id, outcome.result.verdict.state);
    let _ = job.live.send(Published::Event(event_id, json));
    if let Some(status) = finished {
        let status = if status == JobStatus::Cancelled {
            JobStatus::Cancelled
        } else {
            JobStatus::Done
        };
        if let Err(err) = engine.finish(&job, status).await {
            tracing::error!(job = %job.id, error = %err, "could not record the end of a job");
        }
    }
}

/// A result with its event id, ready to be stored.
struct PreparedEvent {
    job: Arc<Job>,
    event_id: u32,
    item_id: u32,
    body: EventBody,
}

/// An event's JSON, or what the writer needs to make it.
enum EventBody {
    Json(Vec<u8>),
    /// The check came without its item (it could not be read): the writer reads it.
    FromItem(CheckResult),
}

fn count_state(counts: &mut Counts, state: State) {
    counts.done += 1;
    match state {
        State::Valid => counts.valid += 1,
        State::Invalid => counts.invalid += 1,
        State::Locked => counts.locked += 1,
        State::Unknown => counts.unknown += 1,
    }
}

fn state_index(state: State) -> usize {
    match state {
        State::Valid => 0,
        State::Invalid => 1,
        State::Locked => 2,
        State::Unknown => 3,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_fast_lane_is_paced_by_its_rate_not_by_the_timer() {
        let t0 = tokio::time::Instant::now();
        // 100 000/s: 10 µs apart. Starts due within the 1 ms tolerance go at once (a wait that
        // short would sleep a whole timer tick); the 102nd start, 1.01 ms ahead, waits.
        let mut pacer = Pacer::new(100_000, t0);
        for n in 0..=100 {
            assert_eq!(pacer.take(t0), None, "start {n}");
        }
        assert_eq!(
            pacer.take(t0),
            Some(t0 + Duration::from_micros(1010) - RATE_TOLERANCE)
        );
    }

    #[test]
    fn a_slow_lane_waits_out_its_interval_and_never_bursts_after_idling() {
        let t0 = tokio::time::Instant::now();
        let mut pacer = Pacer::new(20, t0);
        assert_eq!(pacer.take(t0), None);
        let due = t0 + Duration::from_millis(50);
        assert_eq!(pacer.take(t0), Some(due - RATE_TOLERANCE));
        // Idle for a minute: one start at once, then the interval again, no catch-up burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(pacer.take(later), None);
        assert_eq!(
            pacer.take(later),
            Some(later + Duration::from_millis(50) - RATE_TOLERANCE)
        );
    }

    proptest! {
        /// Over any span, the starts made are at most rate × span plus the tolerance's worth and
        /// one, whatever the moments the dispatcher asks at.
        #[test]
        fn the_long_run_rate_holds(rate in 1u32..200_000, gaps in proptest::collection::vec(0u64..2_000, 1..400)) {
            let t0 = tokio::time::Instant::now();
            let mut pacer = Pacer::new(rate, t0);
            let mut now = t0;
            let mut starts = 0u64;
            for gap in gaps {
                now += Duration::from_micros(gap);
                if let Some(at) = pacer.take(now) {
                    now = now.max(at);
                }
                starts += 1;
                let span = (now - t0).as_secs_f64() + RATE_TOLERANCE.as_secs_f64();
                prop_assert!(starts as f64 <= span * f64::from(rate) + 2.0, "{starts} starts in {span} s at {rate}/s");
            }
        }
    }

    fn lanes() -> Vec<Lane> {
        Provider::ALL
            .iter()
            .map(|&provider| Lane::new(provider, 1, 1, true, ProviderHealth::new(1, 1, 1, 0.2)))
            .collect()
    }

    fn job(number: usize, providers: &[Provider]) -> Arc<Job> {
        let mut tallies = std::collections::BTreeMap::new();
        for p in providers {
            tallies.entry(*p).or_insert(ProviderTally::default()).total += 1;
        }
        let record = JobRecord {
            id: format!("job{number:013}"),
            owner: String::new(),
            created_at_ms: 0,
            finished_at_ms: None,
            status: JobStatus::Queued,
            total: providers.len() as u32,
            counts: Counts::default(),
            providers: tallies,
            unsupported: 0,
        };
        let item_provider = providers.iter().map(|p| p.index() as u8).collect();
        let job = Arc::new(Job::new(&record, item_provider, Vec::new()));
        {
            let mut progress = job.progress.lock();
            for p in Provider::ALL {
                let pp = &mut progress.providers[p.index()];
                pp.pending = pp.total;
            }
        }
        job
    }

    #[derive(Debug, Clone)]
    enum Op {
        Submit(Vec<u8>),
        Urgent(usize, u32),
        Cancel(usize),
        Dispatch(u8),
        Complete(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            proptest::collection::vec(0u8..3, 1..12).prop_map(Op::Submit),
            (0usize..4, 1u32..12).prop_map(|(j, i)| Op::Urgent(j, i)),
            (0usize..4).prop_map(Op::Cancel),
            (0u8..3).prop_map(Op::Dispatch),
            (0usize..8).prop_map(Op::Complete),
        ]
    }

    proptest! {
        /// Whatever the interleaving of submit, urgent, cancel, dispatch and completion, every
        /// item of every job gets exactly one result and the counters balance.
        #[test]
        fn every_item_yields_exactly_one_result(ops in proptest::collection::vec(op(), 1..120)) {
            let lanes = lanes();
            let mut jobs: Vec<Arc<Job>> = Vec::new();
            let mut in_flight: Vec<(usize, u32)> = Vec::new();
            let mut results: HashMap<(usize, u32), u32> = HashMap::new();
            let job_index = |jobs: &[Arc<Job>], job: &Arc<Job>| jobs.iter().position(|j| Arc::ptr_eq(j, job)).unwrap();
            let record = |results: &mut HashMap<(usize, u32), u32>, key: (usize, u32)| *results.entry(key).or_insert(0) += 1;
            for op in ops {
                match op {
                    Op::Submit(items) => {
                        let providers: Vec<Provider> = items.iter().map(|i| Provider::ALL[usize::from(*i)]).collect();
                        let job = job(jobs.len(), &providers);
                        for item_id in 1..=job.total {
                            let provider = job.provider_of(item_id).unwrap();
                            lanes[provider.index()].push_normal(&job, item_id);
                        }
                        jobs.push(job);
                    }
                    Op::Urgent(j, item) => {
                        if let Some(job) = jobs.get(j).filter(|job| item <= job.total)
                            && let Promotion::Promoted(provider) = job.promote(item)
                        {
                            lanes[provider.index()].push_urgent(job, item);
                        }
                    }
                    Op::Cancel(j) => {
                        if let Some(job) = jobs.get(j) {
                            for item in 1..=job.total {
                                if job.take_for_cancel(item) {
                                    job.complete(item, State::Unknown);
                                    record(&mut results, (j, item));
                                }
                            }
                        }
                    }
                    Op::Dispatch(p) => {
                        if let Some(work) = lanes[Provider::ALL[usize::from(p)].index()].next_work() {
                            in_flight.push((job_index(&jobs, &work.job), work.item_id));
                        }
                    }
                    Op::Complete(n) => {
                        if !in_flight.is_empty() {
                            let (j, item) = in_flight.remove(n % in_flight.len());
                            jobs[j].complete(item, State::Valid);
                            record(&mut results, (j, item));
                        }
                    }
                }
            }
            // Drain: dispatch and complete everything left.
            for (j, item) in in_flight.drain(..) {
                jobs[j].complete(item, State::Valid);
                record(&mut results, (j, item));
            }
            for lane in &lanes {
                while let Some(work) = lane.next_work() {
                    let j = job_index(&jobs, &work.job);
                    work.job.complete(work.item_id, State::Valid);
                    record(&mut results, (j, work.item_id));
                }
            }
            for (j, job) in jobs.iter().enumerate() {
                for item in 1..=job.total {
                    prop_assert_eq!(results.get(&(j, item)).copied(), Some(1), "job {} item {}", j, item);
                }
                let progress = job.progress.lock();
                prop_assert_eq!(progress.counts.done, job.total);
                for p in progress.providers.iter() {
                    prop_assert_eq!((p.pending, p.urgent_pending, p.in_flight), (0, 0, 0));
                    prop_assert_eq!(p.done, p.total);
                }
            }
            for lane in &lanes {
                prop_assert_eq!(lane.stats.queued.load(Ordering::Relaxed), 0);
                prop_assert_eq!(lane.stats.urgent_queued.load(Ordering::Relaxed), 0);
            }
        }
    }
}
