//! The scheduler: one task that hands due links to the engine's background lanes, at most
//! twice a lane's concurrency per provider at a time, and records their verdicts in batches (one
//! write per batch: link states, transitions, run counts, and the webhook deliveries they cause).
//!
//! Its memory is the [`Schedule`] (twelve bytes a link) and the checks in flight. An entry is
//! valid when its due second is at least the link's stored `next_due_s` (older entries were
//! overtaken by a later check), or when it is the start of a run requested for the monitor and
//! the link was not checked since. Everything it needs survives a restart: the stored
//! `next_due_s` of each link and the monitor's `run_requested_at_ms`.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::change::{self, Checked};
use super::command::Command;
use super::record::{self, LinkRecord, MonitorRecord};
use super::schedule::{self, Schedule};
use super::watch::TargetWatcher;
use crate::checker::share::Provider;
use crate::checker::verdict::Verdict;
use crate::jobs::engine::{BackgroundCheck, Engine};
use crate::store::{Store, StoreError};
use crate::timefmt;
use crate::webhooks::Webhooks;

/// Results recorded in one write at most.
const BATCH: usize = 256;
/// How long a result waits for others to share its write.
const BATCH_WAIT: Duration = Duration::from_millis(20);
/// When recording fails, the links are asked again this much later.
const RETRY_AFTER_S: u32 = 30;

/// What `/metrics` and the load script read.
#[derive(Default)]
pub struct SchedulerStats {
    pub entries: AtomicU64,
    pub heap_bytes: AtomicU64,
    pub in_flight: AtomicU64,
    pub checked: AtomicU64,
}

struct Slot {
    id: String,
    /// The run requested last (unix ms).
    run_from_ms: Option<u64>,
    /// What the scheduler needs of the monitor's record, read when first needed and again after
    /// each change of the monitor (every change sends a schedule command).
    facts: Cell<Option<MonitorFacts>>,
}

#[derive(Clone, Copy)]
struct MonitorFacts {
    /// The monitor is the cluster's (cluster mode): its links are checked by the node it falls
    /// to. Otherwise this node's own (a monitor of the data dir from before it joined): checked
    /// here.
    cluster: bool,
    interval_s: u32,
}

impl MonitorFacts {
    fn of(monitor: &MonitorRecord) -> MonitorFacts {
        MonitorFacts {
            cluster: monitor.cluster,
            interval_s: monitor.interval_s,
        }
    }

    /// The facts of monitor `id` as storage has them (`None`: no record now).
    fn read(store: &Store, id: &str) -> Option<MonitorFacts> {
        store
            .read(|txn, dbs| record::get_monitor(txn, dbs, id))
            .ok()
            .flatten()
            .map(|monitor| MonitorFacts::of(&monitor))
    }
}

impl Slot {
    /// The facts of this slot's monitor (`None`: it has no record now).
    fn facts(&self, store: &Store) -> Option<MonitorFacts> {
        if self.facts.get().is_none() {
            self.facts.set(MonitorFacts::read(store, &self.id));
        }
        self.facts.get()
    }

    /// Whether an entry due at `due_s` starts the requested run for `link`.
    fn starts_run(&self, due_s: u32, link: &LinkRecord) -> bool {
        self.run_from_ms.is_some_and(|ms| {
            second_of(ms) == due_s && link.last_checked_ms.is_none_or(|checked| checked < ms)
        })
    }
}

fn second_of(ms: u64) -> u32 {
    u32::try_from(ms / 1000).unwrap_or(u32::MAX)
}

/// Monitors by slot number (never reused while the process runs, so an old entry cannot be
/// taken for another monitor's link).
#[derive(Default)]
struct Table {
    slots: Vec<Option<Slot>>,
    by_id: HashMap<String, u32>,
}

impl Table {
    fn slot_of(&mut self, id: &str) -> u32 {
        if let Some(&n) = self.by_id.get(id) {
            return n;
        }
        let n = self.slots.len() as u32;
        self.slots.push(Some(Slot {
            id: id.to_owned(),
            run_from_ms: None,
            facts: Cell::new(None),
        }));
        self.by_id.insert(id.to_owned(), n);
        n
    }

    fn forget(&mut self, id: &str) {
        if let Some(n) = self.by_id.remove(id) {
            self.slots[n as usize] = None;
        }
    }
}

/// A check handed to the engine.
struct Pending {
    slot: u32,
    link: u32,
    provider: Provider,
}

fn now_s() -> u32 {
    u32::try_from(timefmt::now_ms() / 1000).unwrap_or(u32::MAX)
}

/// The schedule as storage says it is.
fn rebuild(store: &Store) -> Result<(Schedule, Table), StoreError> {
    let mut schedule = Schedule::default();
    let mut table = Table::default();
    let monitors = store.read(record::all_monitors)?;
    for monitor in monitors.iter().filter(|m| !m.paused) {
        let slot = table.slot_of(&monitor.id);
        let run = Slot {
            id: monitor.id.clone(),
            run_from_ms: monitor.run_requested_at_ms,
            facts: Cell::new(Some(MonitorFacts::of(monitor))),
        };
        store.read(|txn, dbs| {
            record::walk_links(txn, dbs, &monitor.id, 0, |link| {
                let run_s = run.run_from_ms.map(second_of);
                let due = match run_s {
                    Some(s) if run.starts_run(s, &link) => link.next_due_s.min(s),
                    _ => link.next_due_s,
                };
                schedule.push(link.provider, due, slot, link.id);
                true
            })
        })?;
        table.slots[slot as usize] = Some(run);
    }
    Ok((schedule, table))
}

/// Runs the scheduler until shutdown.
/// What the scheduler works with.
pub struct Parts {
    pub store: Arc<Store>,
    pub engine: Arc<Engine>,
    pub webhooks: Arc<Webhooks>,
    pub watcher: Arc<dyn TargetWatcher>,
    pub stats: Arc<SchedulerStats>,
    /// Cluster mode: who checks the cluster's monitors, and where their verdicts go.
    pub shared: Option<Arc<super::shared::SharedMonitors>>,
    pub shutdown: CancellationToken,
}

pub async fn run(parts: Parts, mut commands: mpsc::UnboundedReceiver<Command>) {
    let Parts {
        store,
        engine,
        webhooks,
        watcher,
        stats,
        shared,
        shutdown,
    } = parts;
    let rebuilt = {
        let store = Arc::clone(&store);
        tokio::task::spawn_blocking(move || rebuild(&store)).await
    };
    let (mut schedule, mut table) = match rebuilt {
        Ok(Ok(found)) => found,
        Ok(Err(err)) => {
            tracing::error!(error = %err, "reading monitors failed; no monitor will run");
            return;
        }
        Err(_) => return,
    };
    tracing::info!(links = schedule.len(), "monitor schedule loaded");
    let (reply, mut replies) = mpsc::unbounded_channel::<(u64, Verdict)>();
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    // `(slot, link)` of the checks in flight: a link has one at a time (two entries of a link
    // due together, as a cluster's node has after taking a monitor over, must not race: the
    // later verdict would be recorded first).
    let mut checking: std::collections::HashSet<(u32, u32)> = std::collections::HashSet::new();
    let mut per_provider = [0usize; Provider::ALL.len()];
    let mut next_tag = 0u64;
    let mut batch: Vec<Checked> = Vec::with_capacity(BATCH);
    let mut batch_due: Option<tokio::time::Instant> = None;
    loop {
        let now = now_s();
        for provider in Provider::ALL {
            let cap = engine.lane_concurrency(provider) * 2;
            while per_provider[provider.index()] < cap {
                let Some((due, slot, link)) = schedule.pop_due(provider, now) else {
                    break;
                };
                let Some(Some(s)) = table.slots.get(slot as usize) else {
                    continue;
                };
                if checking.contains(&(slot, link)) {
                    // Its verdict puts it back on the schedule.
                    continue;
                }
                let found = store.read(|txn, dbs| record::get_link(txn, dbs, &s.id, link));
                let record = match found {
                    Ok(Some(record)) => record,
                    Ok(None) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "reading a monitored link failed");
                        schedule.push(provider, now.saturating_add(RETRY_AFTER_S), slot, link);
                        continue;
                    }
                };
                let is_run = s.starts_run(due, &record);
                if due < record.next_due_s && !is_run {
                    continue;
                }
                let checks_here = if record.watchers.is_empty() {
                    match &shared {
                        None => true,
                        // A monitor that is not the cluster's is on this node only.
                        Some(shared) => {
                            !s.facts(&store).is_some_and(|f| f.cluster) || shared.checks(&s.id)
                        }
                    }
                } else {
                    watcher.checks_here(&record)
                };
                if !checks_here {
                    // Another node checks this link (a share watched, or a monitor of the
                    // cluster's): keep its slot, so this node checks it on time should that
                    // node go.
                    let interval = s.facts(&store).map_or(RETRY_AFTER_S, |f| f.interval_s);
                    let offset = schedule::offset(&s.id, link, interval);
                    let next = schedule::next_slot(u64::from(now), interval, offset);
                    schedule.push(
                        provider,
                        u32::try_from(next).unwrap_or(u32::MAX),
                        slot,
                        link,
                    );
                    continue;
                }
                next_tag += 1;
                checking.insert((slot, link));
                pending.insert(
                    next_tag,
                    Pending {
                        slot,
                        link,
                        provider,
                    },
                );
                per_provider[provider.index()] += 1;
                engine.check_in_background(BackgroundCheck {
                    share: record.share(),
                    tag: next_tag,
                    reply: reply.clone(),
                });
            }
        }
        stats
            .entries
            .store(schedule.len() as u64, Ordering::Relaxed);
        stats
            .heap_bytes
            .store(schedule.heap_bytes() as u64, Ordering::Relaxed);
        stats
            .in_flight
            .store(pending.len() as u64, Ordering::Relaxed);
        let wake_s = Provider::ALL
            .iter()
            .filter(|p| per_provider[p.index()] < engine.lane_concurrency(**p) * 2)
            .filter_map(|p| schedule.next_due(*p))
            .min();
        let wake = async {
            match wake_s {
                Some(at) => {
                    let ms = (u64::from(at) * 1000).saturating_sub(timefmt::now_ms());
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                None => std::future::pending().await,
            }
        };
        let flush_due = async {
            match batch_due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            command = commands.recv() => match command {
                Some(Command::Schedule { monitor, links, run_from_ms }) => {
                    let slot = table.slot_of(&monitor);
                    if let Some(Some(s)) = table.slots.get_mut(slot as usize) {
                        // The monitor changed: its record is read again when next needed.
                        s.facts.set(None);
                        if let Some(run) = run_from_ms {
                            s.run_from_ms = Some(run);
                        }
                    }
                    for (link, provider, due) in links {
                        schedule.push(provider, due, slot, link);
                    }
                }
                Some(Command::Forget { monitor }) => {
                    table.forget(&monitor);
                    schedule.shrink();
                }
                None => return,
            },
            Some((tag, verdict)) = replies.recv() => {
                if let Some(p) = pending.remove(&tag) {
                    per_provider[p.provider.index()] -= 1;
                    checking.remove(&(p.slot, p.link));
                    if let Some(Some(s)) = table.slots.get(p.slot as usize) {
                        batch.push(Checked::of(s.id.clone(), p.link, p.provider, &verdict));
                    }
                    batch_due.get_or_insert_with(|| tokio::time::Instant::now() + BATCH_WAIT);
                }
                if batch.len() >= BATCH {
                    flush(&store, &webhooks, &watcher, shared.as_deref(), &mut batch, &mut schedule, &mut table, &stats).await;
                    batch_due = None;
                }
            }
            () = flush_due => {
                flush(&store, &webhooks, &watcher, shared.as_deref(), &mut batch, &mut schedule, &mut table, &stats).await;
                batch_due = None;
            }
            () = wake => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Records a batch of verdicts in one write and puts the links back on the schedule.
#[allow(clippy::too_many_arguments)]
async fn flush(
    store: &Store,
    webhooks: &Arc<Webhooks>,
    watcher: &Arc<dyn TargetWatcher>,
    shared: Option<&super::shared::SharedMonitors>,
    batch: &mut Vec<Checked>,
    schedule: &mut Schedule,
    table: &mut Table,
    stats: &SchedulerStats,
) {
    if batch.is_empty() {
        return;
    }
    let mut results = std::mem::take(batch);
    if let Some(shared) = shared {
        let theirs = the_clusters(store, table, &mut results);
        if !theirs.is_empty() {
            // Every node applies them, and tells its own scheduler of the next slots.
            let count = theirs.len() as u64;
            let retry = retry_of(&theirs);
            let verdicts = change::Change::Verdicts {
                results: theirs,
                at_ms: timefmt::now_ms(),
            };
            match shared.submit(verdicts).await {
                Ok(_) => {
                    stats.checked.fetch_add(count, Ordering::Relaxed);
                }
                Err(err) => {
                    tracing::warn!(error = %err, results = retry.len(), "publishing monitor results failed; asking again later");
                    ask_again_later(retry, schedule, table);
                }
            }
        }
        if results.is_empty() {
            return;
        }
    }
    let retry = retry_of(&results);
    let now = timefmt::now_ms();
    let count = results.len() as u64;
    let cap = webhooks.sink();
    let told = Arc::clone(watcher);
    match store
        .write(move |txn, dbs| change::record_results(txn, dbs, &results, now, cap, Some(&*told)))
        .await
    {
        Ok(recorded) => {
            stats.checked.fetch_add(count, Ordering::Relaxed);
            webhooks.wake(&recorded.woken);
            if !recorded.tags.is_empty() {
                watcher.committed(&recorded.tags);
            }
            for (monitor, link, provider, due) in recorded.next {
                if let Some(&slot) = table.by_id.get(&monitor) {
                    schedule.push(provider, due, slot, link);
                }
            }
        }
        Err(err) => {
            tracing::warn!(error = %err, results = retry.len(), "recording monitor results failed; asking again later");
            ask_again_later(retry, schedule, table);
        }
    }
}

/// `(monitor, link, provider)` of each verdict, to ask again should recording them fail.
fn retry_of(results: &[Checked]) -> Vec<(String, u32, Provider)> {
    results
        .iter()
        .map(|c| (c.monitor.clone(), c.link, c.provider))
        .collect()
}

/// Puts the links of verdicts that could not be recorded back on the schedule, a while on.
fn ask_again_later(retry: Vec<(String, u32, Provider)>, schedule: &mut Schedule, table: &Table) {
    let later = now_s().saturating_add(RETRY_AFTER_S);
    for (monitor, link, provider) in retry {
        if let Some(&slot) = table.by_id.get(&monitor) {
            schedule.push(provider, later, slot, link);
        }
    }
}

/// Takes out of `results` those of the cluster's monitors (cluster mode); the rest are this
/// node's own (the target watch's hidden monitors, monitors from before the data dir joined).
fn the_clusters(store: &Store, table: &Table, results: &mut Vec<Checked>) -> Vec<Checked> {
    let mut theirs = Vec::new();
    results.retain(|checked| {
        let slot = table
            .by_id
            .get(&checked.monitor)
            .and_then(|&slot| table.slots[slot as usize].as_ref());
        let is_the_clusters = match slot {
            Some(slot) => slot.facts(store),
            // Paused or deleted since its check: as its record says.
            None => MonitorFacts::read(store, &checked.monitor),
        }
        .is_some_and(|f| f.cluster);
        if is_the_clusters {
            theirs.push(checked.clone());
        }
        !is_the_clusters
    });
    theirs
}
