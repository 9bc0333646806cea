//! Every change of monitors and their links as a value ([`Change`]), and the one function that
//! applies a change to storage ([`apply`]). A change carries every input its application needs
//! (times, a new monitor's id, links as the URLs found, a verdict as its facts), so applying it
//! is a function of the change and what is stored: single-node mode applies it in the write that
//! makes it, and in cluster mode every node applies the same changes in the same order
//! (`shared.rs`).
//!
//! It must not check anything, nor read the clock or a random source; what a change asks of the
//! scheduler after its commit it answers as [`Command`]s.

use std::collections::HashMap;

use heed::RwTxn;
use serde::{Deserialize, Serialize};

use super::command::Command;
use super::record::{self, FinishedRun, LinkRecord, MonitorRecord, Run, StateCounts};
use super::schedule;
use super::watch::TargetWatcher;
use crate::checker::providers::{self, Recognized};
use crate::checker::share::{Provider, ShareRef};
use crate::checker::verdict::{Reason, State, Verdict};
use crate::error::ApiError;
use crate::store::{Dbs, StoreError};
use crate::timefmt;
use crate::webhooks::{self, EventSink, EventType};

/// A verdict on a monitored link, as a change carries it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checked {
    pub monitor: String,
    pub link: u32,
    pub provider: Provider,
    pub state: State,
    pub reason: Reason,
    #[serde(default)]
    pub share_name: Option<String>,
}

impl Checked {
    /// The facts of `verdict` a monitored link keeps.
    pub fn of(monitor: String, link: u32, provider: Provider, verdict: &Verdict) -> Checked {
        Checked {
            monitor,
            link,
            provider,
            state: verdict.state,
            reason: verdict.reason,
            share_name: verdict.share_name.clone(),
        }
    }

    fn verdict(&self) -> Verdict {
        Verdict {
            share_name: self.share_name.clone(),
            ..Verdict::new(self.state, self.reason)
        }
    }
}

/// One change of monitors.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Create(NewMonitor),
    Patch(MonitorPatch),
    Delete {
        id: String,
    },
    /// Every link is due now, in a new run.
    Run {
        id: String,
        at_ms: u64,
    },
    /// Verdicts of checks.
    Verdicts {
        results: Vec<Checked>,
        at_ms: u64,
    },
}

/// A new monitor with the links of `urls`, unless its owner is over a limit.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewMonitor {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub interval_s: u32,
    pub webhook_ids: Vec<String>,
    pub urls: Vec<String>,
    pub max_monitors: u64,
    pub max_links: u64,
    pub at_ms: u64,
    /// Made through the cluster's log.
    #[serde(default)]
    pub cluster: bool,
}

/// What a `PATCH` changes of monitor `id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorPatch {
    pub id: String,
    pub owner: String,
    pub name: Option<String>,
    pub interval_s: Option<u32>,
    /// Links to add.
    pub urls: Vec<String>,
    /// Match keys of links to remove.
    pub removals: Vec<u64>,
    pub paused: Option<bool>,
    pub webhook_ids: Option<Vec<String>>,
    pub max_links: u64,
    pub at_ms: u64,
}

/// What applying a change did.
#[derive(Debug, Default)]
pub struct Applied {
    pub refused: Option<Refusal>,
    /// The monitor after the change (`None`: refused, gone or deleted).
    pub monitor: Option<MonitorRecord>,
    pub added: usize,
    pub duplicates: u64,
    pub removed: u64,
    pub not_found: u64,
    /// Links a run made due.
    pub run_links: usize,
    /// What the scheduler must hear after the commit.
    pub commands: Vec<Command>,
    /// Webhooks with new deliveries (single-node).
    pub woken: Vec<String>,
    /// Watchers' tags of watched shares checked (see `watch.rs`).
    pub tags: Vec<String>,
}

/// The shares of `urls` (each recognised again: the same on every node).
fn shares_of(urls: &[String]) -> Vec<(String, ShareRef)> {
    urls.iter()
        .filter_map(|url| match providers::recognize(url, None) {
            Recognized::Share(share) => Some((url.clone(), share)),
            _ => None,
        })
        .collect()
}

/// Applies `change` in the caller's write. `events` takes the events verdicts cause; `watcher`
/// hears of the watched shares' verdicts (`None` where no change can hold one).
pub fn apply(
    txn: &mut RwTxn,
    dbs: &Dbs,
    change: &Change,
    events: EventSink,
    watcher: Option<&dyn TargetWatcher>,
) -> Result<Applied, StoreError> {
    match change {
        Change::Create(new) => create(txn, dbs, new),
        Change::Patch(patch_of) => patch(txn, dbs, patch_of),
        Change::Delete { id } => {
            if let Some(monitor) = record::get_monitor(txn, dbs, id)? {
                record::delete_monitor(txn, dbs, &monitor)?;
            }
            Ok(Applied {
                commands: vec![Command::Forget {
                    monitor: id.clone(),
                }],
                ..Applied::default()
            })
        }
        Change::Run { id, at_ms } => run(txn, dbs, id, *at_ms),
        Change::Verdicts { results, at_ms } => {
            let recorded = record_results(txn, dbs, results, *at_ms, events, watcher)?;
            let mut by_monitor: HashMap<String, Vec<(u32, Provider, u32)>> = HashMap::new();
            for (monitor, link, provider, due) in recorded.next {
                by_monitor
                    .entry(monitor)
                    .or_default()
                    .push((link, provider, due));
            }
            let commands = by_monitor
                .into_iter()
                .map(|(monitor, links)| Command::Schedule {
                    monitor,
                    links,
                    run_from_ms: None,
                })
                .collect();
            Ok(Applied {
                commands,
                woken: recorded.woken,
                tags: recorded.tags,
                ..Applied::default()
            })
        }
    }
}

fn refused(refusal: Refusal) -> Result<Applied, StoreError> {
    Ok(Applied {
        refused: Some(refusal),
        ..Applied::default()
    })
}

fn create(txn: &mut RwTxn, dbs: &Dbs, new: &NewMonitor) -> Result<Applied, StoreError> {
    let NewMonitor {
        id,
        owner,
        name,
        interval_s,
        webhook_ids,
        urls,
        max_monitors,
        max_links,
        at_ms,
        cluster,
    } = new;
    let now = *at_ms;
    if record::get_monitor(txn, dbs, id)?.is_some() {
        return refused(Refusal::NotFound);
    }
    let existing: Vec<MonitorRecord> = record::monitors_of(txn, dbs, owner)?
        .into_iter()
        .filter(|m| !m.hidden)
        .collect();
    if existing.len() as u64 >= *max_monitors {
        return refused(Refusal::Monitors(*max_monitors));
    }
    let used: u64 = existing.iter().map(|m| m.links).sum();
    let (fresh, duplicates) = fresh_links(txn, dbs, id, shares_of(urls))?;
    if used + fresh.len() as u64 > *max_links {
        return refused(Refusal::Links(*max_links));
    }
    let mut monitor = MonitorRecord {
        id: id.clone(),
        owner: owner.clone(),
        name: name.clone(),
        interval_s: *interval_s,
        paused: false,
        hidden: false,
        cluster: *cluster,
        webhook_ids: webhook_ids.clone(),
        created_at_ms: now,
        updated_at_ms: now,
        next_link_id: 1,
        links: 0,
        counts: StateCounts::default(),
        run: Run {
            number: 1,
            started_at_ms: now,
            checked: 0,
            changed: 0,
        },
        last_run: None,
        run_requested_at_ms: None,
    };
    let added = add_links(txn, dbs, &mut monitor, fresh, now)?;
    record::put_monitor(txn, dbs, &monitor)?;
    Ok(Applied {
        added: added.len(),
        duplicates,
        commands: vec![Command::Schedule {
            monitor: monitor.id.clone(),
            links: added,
            run_from_ms: None,
        }],
        monitor: Some(monitor),
        ..Applied::default()
    })
}

fn patch(txn: &mut RwTxn, dbs: &Dbs, change: &MonitorPatch) -> Result<Applied, StoreError> {
    let MonitorPatch {
        id,
        owner,
        name,
        interval_s,
        urls,
        removals,
        paused,
        webhook_ids,
        max_links,
        at_ms,
    } = change;
    let now = *at_ms;
    let Some(mut monitor) = record::get_monitor(txn, dbs, id)? else {
        return refused(Refusal::NotFound);
    };
    if let Some(ids) = webhook_ids {
        monitor.webhook_ids.clone_from(ids);
    }
    if let Some(name) = name {
        monitor.name.clone_from(name);
    }
    let mut removed = 0;
    let mut not_found = 0;
    for key in removals {
        let link = match record::link_of_share(txn, dbs, id, *key)? {
            Some(link_id) => record::get_link(txn, dbs, id, link_id)?,
            None => None,
        };
        match link {
            Some(link) => {
                record::remove_link(txn, dbs, id, &link)?;
                monitor.links -= 1;
                monitor.counts.remove(link.state);
                removed += 1;
            }
            None => not_found += 1,
        }
    }
    let stored = record::get_monitor(txn, dbs, id)?.map_or(0, |m| m.links);
    let others = links_of_owner(txn, dbs, owner)?.saturating_sub(stored);
    let (fresh, duplicates) = fresh_links(txn, dbs, id, shares_of(urls))?;
    if !fresh.is_empty() && others + monitor.links + fresh.len() as u64 > *max_links {
        return refused(Refusal::Links(*max_links));
    }
    let added = add_links(txn, dbs, &mut monitor, fresh, now)?;
    let resumed = *paused == Some(false) && monitor.paused;
    if let Some(p) = paused {
        monitor.paused = *p;
    }
    let mut rescheduled = Vec::new();
    let interval_changed = interval_s.is_some_and(|i| i != monitor.interval_s);
    if let Some(i) = interval_s {
        monitor.interval_s = *i;
    }
    if interval_changed || resumed {
        let mut links = Vec::new();
        record::walk_links(txn, dbs, id, 0, |link| {
            links.push(link);
            true
        })?;
        for mut link in links {
            if interval_changed && let Some(checked) = link.last_checked_ms {
                let offset = schedule::offset(id, link.id, monitor.interval_s);
                let next = schedule::next_slot(checked / 1000, monitor.interval_s, offset);
                link.next_due_s = u32::try_from(next).unwrap_or(u32::MAX);
                record::put_link(txn, dbs, id, &link)?;
            }
            rescheduled.push((link.id, link.provider, link.next_due_s));
        }
    }
    monitor.updated_at_ms = now;
    record::put_monitor(txn, dbs, &monitor)?;
    let command = if monitor.paused {
        Command::Forget {
            monitor: id.clone(),
        }
    } else {
        rescheduled.extend(added.iter().copied());
        Command::Schedule {
            monitor: id.clone(),
            links: rescheduled,
            run_from_ms: None,
        }
    };
    Ok(Applied {
        added: added.len(),
        duplicates,
        removed,
        not_found,
        commands: vec![command],
        monitor: Some(monitor),
        ..Applied::default()
    })
}

fn run(txn: &mut RwTxn, dbs: &Dbs, id: &str, now: u64) -> Result<Applied, StoreError> {
    let Some(mut monitor) = record::get_monitor(txn, dbs, id)? else {
        return refused(Refusal::NotFound);
    };
    // A run that has checked nothing yet is started over, not abandoned.
    let number = if monitor.run.checked == 0 {
        monitor.run.number
    } else {
        monitor.run.number + 1
    };
    monitor.run = Run {
        number,
        started_at_ms: now,
        checked: 0,
        changed: 0,
    };
    monitor.run_requested_at_ms = Some(now);
    monitor.updated_at_ms = now;
    record::put_monitor(txn, dbs, &monitor)?;
    let due = u32::try_from(now / 1000).unwrap_or(u32::MAX);
    let mut links = Vec::new();
    record::walk_links(txn, dbs, id, 0, |link| {
        links.push((link.id, link.provider, due));
        true
    })?;
    Ok(Applied {
        run_links: links.len(),
        commands: vec![Command::Schedule {
            monitor: id.to_owned(),
            links,
            run_from_ms: Some(now),
        }],
        monitor: Some(monitor),
        ..Applied::default()
    })
}

/// Why a change was refused (the same on every node).
#[derive(Debug)]
pub enum Refusal {
    Monitors(u64),
    Links(u64),
    Webhook(usize),
    NotFound,
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        match refusal {
            Refusal::Monitors(limit) => ApiError::LimitReached {
                what: "每个密钥的监控",
                limit,
            },
            Refusal::Links(limit) => ApiError::LimitReached {
                what: "本密钥所有监控的链接合计",
                limit,
            },
            Refusal::Webhook(index) => {
                ApiError::field(format!("webhook_ids[{index}]"), "不是本密钥的 webhook")
            }
            Refusal::NotFound => ApiError::NotFound("监控"),
        }
    }
}

/// Links of all of `owner`'s monitors.
fn links_of_owner(
    txn: &heed::RoTxn,
    dbs: &crate::store::Dbs,
    owner: &str,
) -> Result<u64, crate::store::StoreError> {
    Ok(record::monitors_of(txn, dbs, owner)?
        .iter()
        .filter(|m| !m.hidden)
        .map(|m| m.links)
        .sum())
}

/// The links of `found` that `monitor` does not have yet (the same share twice in `found` counts
/// once), and how many it had or repeated.
fn fresh_links(
    txn: &heed::RoTxn,
    dbs: &crate::store::Dbs,
    monitor: &str,
    found: Vec<(String, ShareRef)>,
) -> Result<(Vec<(String, ShareRef)>, u64), crate::store::StoreError> {
    let mut seen = std::collections::HashSet::with_capacity(found.len());
    let mut fresh = Vec::with_capacity(found.len());
    let mut duplicates = 0;
    for (url, share) in found {
        let key = crate::jobs::record::match_key(Some((share.provider, &share.id)), &url);
        if !seen.insert(key) || record::link_of_share(txn, dbs, monitor, key)?.is_some() {
            duplicates += 1;
        } else {
            fresh.push((url, share));
        }
    }
    Ok((fresh, duplicates))
}

/// Stores `fresh` links (see [`fresh_links`]) in `monitor`; answers them for the schedule.
fn add_links(
    txn: &mut heed::RwTxn,
    dbs: &crate::store::Dbs,
    monitor: &mut MonitorRecord,
    fresh: Vec<(String, ShareRef)>,
    now_ms: u64,
) -> Result<Vec<(u32, Provider, u32)>, crate::store::StoreError> {
    let mut added = Vec::with_capacity(fresh.len());
    for (url, share) in fresh {
        let link = LinkRecord::new(monitor.next_link_id, url, share, now_ms);
        if record::add_link(txn, dbs, &monitor.id, &link)? {
            monitor.next_link_id += 1;
            monitor.links += 1;
            monitor.counts.add(State::Unknown);
            added.push((link.id, link.provider, link.next_due_s));
        }
    }
    Ok(added)
}

/// What a batch's write did.
#[derive(Debug, Default)]
pub struct Recorded {
    /// `(monitor, link, provider, next due second)` of links still scheduled.
    pub next: Vec<(String, u32, Provider, u32)>,
    /// Webhooks with new deliveries.
    pub woken: Vec<String>,
    /// Watchers' tags of the links checked (see `watch.rs`).
    pub tags: Vec<String>,
}

/// Records verdicts in the caller's write: link states, transitions, run counts, the events
/// they cause, and each link's next due second. `watcher` hears of the watched shares' verdicts
/// (`None`: there are none among `results`).
pub fn record_results(
    txn: &mut RwTxn,
    dbs: &Dbs,
    results: &[Checked],
    now_ms: u64,
    cap: EventSink,
    watcher: Option<&dyn TargetWatcher>,
) -> Result<Recorded, StoreError> {
    let mut monitors: HashMap<&str, MonitorRecord> = HashMap::new();
    let mut recorded = Recorded {
        next: Vec::with_capacity(results.len()),
        woken: Vec::new(),
        tags: Vec::new(),
    };
    let now_s = now_ms / 1000;
    for checked in results {
        let id = checked.monitor.as_str();
        if !monitors.contains_key(id) {
            let Some(m) = record::get_monitor(txn, dbs, id)? else {
                continue;
            };
            monitors.insert(id, m);
        }
        let Some(monitor) = monitors.get_mut(id) else {
            continue;
        };
        let Some(mut link) = record::get_link(txn, dbs, id, checked.link)? else {
            continue;
        };
        let changed = link.apply(&checked.verdict(), now_ms);
        if let Some(from) = changed {
            monitor.counts.remove(from);
            monitor.counts.add(link.state);
            monitor.run.changed += 1;
            let kind = if link.state == State::Invalid {
                Some(EventType::LinkDead)
            } else if from == State::Invalid {
                Some(EventType::LinkRevived)
            } else {
                None
            };
            if let Some(kind) = kind {
                let data = serde_json::json!({
                    "monitor_id": monitor.id,
                    "monitor_name": monitor.name,
                    "link_id": link.id,
                    "url": link.url,
                    "provider": link.provider,
                    "old_state": from,
                    "new_state": link.state,
                    "reason": link.reason,
                    "share_name": link.share_name,
                    "checked_at": timefmt::rfc3339_ms(now_ms),
                });
                let event = webhooks::record::Event {
                    kind,
                    data: &data,
                    at_ms: now_ms,
                };
                let woken = cap.for_ids(txn, dbs, &monitor.owner, &monitor.webhook_ids, &event)?;
                recorded.woken.extend(woken);
            }
        }
        if link.run != monitor.run.number {
            link.run = monitor.run.number;
            monitor.run.checked += 1;
        }
        if !link.watchers.is_empty() {
            let verdict = super::watch::Verdict {
                owner: &monitor.owner,
                share: &link,
                changed,
                now_ms,
                events: cap,
            };
            if let Some(watcher) = watcher {
                let woken = watcher.checked(txn, dbs, &verdict)?;
                recorded.woken.extend(woken);
                recorded.tags.extend(link.watchers.iter().cloned());
            }
        }
        let offset = schedule::offset(&monitor.id, link.id, monitor.interval_s);
        let next = schedule::next_slot(now_s, monitor.interval_s, offset);
        link.next_due_s = u32::try_from(next).unwrap_or(u32::MAX);
        record::put_link(txn, dbs, id, &link)?;
        if !monitor.paused {
            recorded.next.push((
                monitor.id.clone(),
                link.id,
                checked.provider,
                link.next_due_s,
            ));
        }
        if monitor.run.checked >= monitor.links {
            let woken = finish_run(txn, dbs, monitor, now_ms, cap)?;
            recorded.woken.extend(woken);
        }
    }
    for monitor in monitors.values() {
        record::put_monitor(txn, dbs, monitor)?;
    }
    recorded.woken.sort_unstable();
    recorded.woken.dedup();
    Ok(recorded)
}

/// Ends the monitor's run: keeps it as the last run, tells the webhooks, starts the next.
fn finish_run(
    txn: &mut RwTxn,
    dbs: &Dbs,
    monitor: &mut MonitorRecord,
    now_ms: u64,
    cap: EventSink,
) -> Result<Vec<String>, StoreError> {
    let finished = FinishedRun {
        number: monitor.run.number,
        started_at_ms: monitor.run.started_at_ms,
        finished_at_ms: now_ms,
        checked: monitor.run.checked,
        changed: monitor.run.changed,
        counts: monitor.counts,
    };
    let data = serde_json::json!({
        "monitor_id": monitor.id,
        "monitor_name": monitor.name,
        "run": finished.number,
        "checked": finished.checked,
        "changed": finished.changed,
        "counts": finished.counts,
        "started_at": timefmt::rfc3339_ms(finished.started_at_ms),
        "finished_at": timefmt::rfc3339_ms(now_ms),
    });
    monitor.last_run = Some(finished);
    monitor.run = Run {
        number: monitor.run.number + 1,
        started_at_ms: now_ms,
        checked: 0,
        changed: 0,
    };
    let event = webhooks::record::Event {
        kind: EventType::MonitorRunCompleted,
        data: &data,
        at_ms: now_ms,
    };
    cap.for_ids(txn, dbs, &monitor.owner, &monitor.webhook_ids, &event)
}
