//! Monitors and their links in LMDB.
//!
//! Layout:
//! - `monitors`: monitor id → [`MonitorRecord`].
//! - `monitor_owner`: owner key id ++ 0x00 ++ monitor id → empty: a key's monitors.
//! - `monitor_links`: monitor id ++ 0x00 ++ link id (u32 BE) → [`LinkRecord`].
//! - `monitor_urls`: monitor id ++ 0x00 ++ match key (u64 BE) → link id (u32 BE): one link per
//!   share in a monitor (the same share with another pass code or host alias is the same link).
//!
//! A link's `next_due_s` is its schedule: the scheduler's memory is rebuilt from it at start-up,
//! and an entry in memory that no longer matches it is stale and dropped.

use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use serde::{Deserialize, Serialize};

use crate::checker::providers;
use crate::checker::share::{Provider, ShareRef};
use crate::checker::verdict::{Reason, State, Verdict};
use crate::store::keys::{borrowed, prefixed, under};
use crate::store::{Dbs, StoreError, codec};

/// Transitions kept per link.
pub const KEPT_TRANSITIONS: usize = 10;

/// Links per state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCounts {
    pub valid: u64,
    pub invalid: u64,
    pub locked: u64,
    pub unknown: u64,
}

impl StateCounts {
    fn slot(&mut self, state: State) -> &mut u64 {
        match state {
            State::Valid => &mut self.valid,
            State::Invalid => &mut self.invalid,
            State::Locked => &mut self.locked,
            State::Unknown => &mut self.unknown,
        }
    }

    pub fn add(&mut self, state: State) {
        *self.slot(state) += 1;
    }

    pub fn remove(&mut self, state: State) {
        let slot = self.slot(state);
        *slot = slot.saturating_sub(1);
    }

    pub fn total(&self) -> u64 {
        self.valid + self.invalid + self.locked + self.unknown
    }
}

/// The run in progress: every link checked once since it started completes it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Run {
    /// 1, 2, 3 …
    pub number: u32,
    pub started_at_ms: u64,
    pub checked: u64,
    /// Links whose state changed during the run.
    pub changed: u64,
}

/// The last run that completed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FinishedRun {
    pub number: u32,
    pub started_at_ms: u64,
    pub finished_at_ms: u64,
    pub checked: u64,
    pub changed: u64,
    pub counts: StateCounts,
}

/// A monitor as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MonitorRecord {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub interval_s: u32,
    #[serde(default)]
    pub paused: bool,
    /// Kept by the short links for their share targets (`watch.rs`): never listed by the
    /// monitors API, not counted in its limits.
    #[serde(default)]
    pub hidden: bool,
    /// Cluster mode: the monitor is the cluster's (made through its log); a monitor a data dir
    /// had before it joined is not, and stays that node's own.
    #[serde(default)]
    pub cluster: bool,
    #[serde(default)]
    pub webhook_ids: Vec<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    pub next_link_id: u32,
    pub links: u64,
    pub counts: StateCounts,
    pub run: Run,
    #[serde(default)]
    pub last_run: Option<FinishedRun>,
    /// When `POST …/run` last started a run (rate limit; after a restart, links not checked
    /// since are due at once).
    #[serde(default)]
    pub run_requested_at_ms: Option<u64>,
}

/// One change of a link's state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Transition {
    pub from: State,
    pub to: State,
    pub at_ms: u64,
    pub reason: Reason,
}

/// A monitored link as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkRecord {
    pub id: u32,
    pub url: String,
    pub provider: Provider,
    pub share_id: String,
    #[serde(default)]
    pub passcode: Option<String>,
    #[serde(default)]
    pub share_host: Option<String>,
    /// `unknown` until a verdict says otherwise; an `unknown` verdict never changes it.
    pub state: State,
    /// The reason of the verdict that set `state`.
    #[serde(default)]
    pub reason: Option<Reason>,
    #[serde(default)]
    pub share_name: Option<String>,
    /// When it entered `state` (when added, for `unknown`).
    pub since_ms: u64,
    pub added_at_ms: u64,
    #[serde(default)]
    pub last_checked_ms: Option<u64>,
    /// The last verdict's state and reason, `unknown` included.
    #[serde(default)]
    pub last_result: Option<(State, Reason)>,
    /// When it is next checked (unix seconds).
    pub next_due_s: u32,
    /// The run it was last counted in.
    #[serde(default)]
    pub run: u32,
    #[serde(default)]
    pub transitions: Vec<Transition>,
    /// Who else is told of its verdicts (short codes, for a hidden monitor; `watch.rs`).
    #[serde(default)]
    pub watchers: Vec<String>,
}

impl LinkRecord {
    /// A link just added: `unknown`, due now (new links are checked at once, then at their place
    /// in the interval).
    pub fn new(id: u32, url: String, share: ShareRef, now_ms: u64) -> LinkRecord {
        LinkRecord {
            id,
            url,
            provider: share.provider,
            share_id: share.id,
            passcode: share.passcode,
            share_host: share.host.map(str::to_owned),
            state: State::Unknown,
            reason: None,
            share_name: None,
            since_ms: now_ms,
            added_at_ms: now_ms,
            last_checked_ms: None,
            last_result: None,
            next_due_s: u32::try_from(now_ms / 1000).unwrap_or(u32::MAX),
            run: 0,
            transitions: Vec::new(),
            watchers: Vec::new(),
        }
    }

    pub fn share(&self) -> ShareRef {
        ShareRef {
            provider: self.provider,
            id: self.share_id.clone(),
            passcode: self.passcode.clone(),
            host: self
                .share_host
                .as_deref()
                .and_then(|host| providers::known_host(self.provider, host)),
        }
    }

    pub fn match_key(&self) -> u64 {
        crate::jobs::record::match_key(Some((self.provider, &self.share_id)), &self.url)
    }

    /// Takes a verdict reached at `now_ms`; answers the state it left when it changed. An
    /// `unknown` verdict (a rate limit, a timeout, an answer not understood) never changes the
    /// state: a link enters `invalid` only on an `invalid` verdict and leaves it only on `valid`
    /// or `locked`.
    pub fn apply(&mut self, verdict: &Verdict, now_ms: u64) -> Option<State> {
        self.last_checked_ms = Some(now_ms);
        self.last_result = Some((verdict.state, verdict.reason));
        if verdict.state == State::Unknown {
            return None;
        }
        if verdict.share_name.is_some() {
            self.share_name.clone_from(&verdict.share_name);
        }
        self.reason = Some(verdict.reason);
        if verdict.state == self.state {
            return None;
        }
        let from = self.state;
        self.transitions.push(Transition {
            from,
            to: verdict.state,
            at_ms: now_ms,
            reason: verdict.reason,
        });
        if self.transitions.len() > KEPT_TRANSITIONS {
            let extra = self.transitions.len() - KEPT_TRANSITIONS;
            self.transitions.drain(..extra);
        }
        self.state = verdict.state;
        self.since_ms = now_ms;
        Some(from)
    }
}

fn link_key(monitor: &str, link: u32) -> Vec<u8> {
    let mut key = prefixed(monitor);
    key.extend_from_slice(&link.to_be_bytes());
    key
}

fn url_key(monitor: &str, match_key: u64) -> Vec<u8> {
    let mut key = prefixed(monitor);
    key.extend_from_slice(&match_key.to_be_bytes());
    key
}

fn owner_key(owner: &str, monitor: &str) -> Vec<u8> {
    let mut key = prefixed(owner);
    key.extend_from_slice(monitor.as_bytes());
    key
}

pub fn put_monitor(txn: &mut RwTxn, dbs: &Dbs, m: &MonitorRecord) -> Result<(), StoreError> {
    dbs.monitors.put(txn, m.id.as_bytes(), &codec::encode(m))?;
    dbs.monitor_owner
        .put(txn, &owner_key(&m.owner, &m.id), &[])?;
    Ok(())
}

pub fn get_monitor(txn: &RoTxn, dbs: &Dbs, id: &str) -> Result<Option<MonitorRecord>, StoreError> {
    // LMDB refuses empty and very long keys; no such id was ever stored.
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    dbs.monitors
        .get(txn, id.as_bytes())?
        .map(|bytes| codec::decode(bytes, "monitor"))
        .transpose()
}

/// `owner`'s monitors, in id order.
pub fn monitors_of(txn: &RoTxn, dbs: &Dbs, owner: &str) -> Result<Vec<MonitorRecord>, StoreError> {
    let prefix = prefixed(owner);
    let range = under(&prefix);
    let mut out = Vec::new();
    for entry in dbs.monitor_owner.range(txn, &borrowed(&range))? {
        let (key, _) = entry?;
        let id = std::str::from_utf8(&key[prefix.len()..])
            .map_err(|_| StoreError::Corrupt("monitor owner index"))?;
        if let Some(m) = get_monitor(txn, dbs, id)? {
            out.push(m);
        }
    }
    Ok(out)
}

/// Every monitor (at start-up).
pub fn all_monitors(txn: &RoTxn, dbs: &Dbs) -> Result<Vec<MonitorRecord>, StoreError> {
    let mut out = Vec::new();
    for entry in dbs.monitors.iter(txn)? {
        let (_, value) = entry?;
        out.push(codec::decode(value, "monitor")?);
    }
    Ok(out)
}

pub fn delete_monitor(txn: &mut RwTxn, dbs: &Dbs, m: &MonitorRecord) -> Result<(), StoreError> {
    dbs.monitors.delete(txn, m.id.as_bytes())?;
    dbs.monitor_owner.delete(txn, &owner_key(&m.owner, &m.id))?;
    let range = under(&prefixed(&m.id));
    dbs.monitor_links.delete_range(txn, &borrowed(&range))?;
    dbs.monitor_urls.delete_range(txn, &borrowed(&range))?;
    Ok(())
}

pub fn put_link(
    txn: &mut RwTxn,
    dbs: &Dbs,
    monitor: &str,
    link: &LinkRecord,
) -> Result<(), StoreError> {
    dbs.monitor_links
        .put(txn, &link_key(monitor, link.id), &codec::encode(link))?;
    Ok(())
}

pub fn get_link(
    txn: &RoTxn,
    dbs: &Dbs,
    monitor: &str,
    link: u32,
) -> Result<Option<LinkRecord>, StoreError> {
    dbs.monitor_links
        .get(txn, &link_key(monitor, link))?
        .map(|bytes| codec::decode(bytes, "monitor link"))
        .transpose()
}

/// The link of `monitor` for a share's match key.
pub fn link_of_share(
    txn: &RoTxn,
    dbs: &Dbs,
    monitor: &str,
    match_key: u64,
) -> Result<Option<u32>, StoreError> {
    Ok(dbs
        .monitor_urls
        .get(txn, &url_key(monitor, match_key))?
        .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
        .map(u32::from_be_bytes))
}

/// Adds `link` unless the monitor has its share already; answers whether it was added.
pub fn add_link(
    txn: &mut RwTxn,
    dbs: &Dbs,
    monitor: &str,
    link: &LinkRecord,
) -> Result<bool, StoreError> {
    let key = url_key(monitor, link.match_key());
    if dbs.monitor_urls.get(txn, &key)?.is_some() {
        return Ok(false);
    }
    dbs.monitor_urls.put(txn, &key, &link.id.to_be_bytes())?;
    put_link(txn, dbs, monitor, link)?;
    Ok(true)
}

pub fn remove_link(
    txn: &mut RwTxn,
    dbs: &Dbs,
    monitor: &str,
    link: &LinkRecord,
) -> Result<(), StoreError> {
    dbs.monitor_urls
        .delete(txn, &url_key(monitor, link.match_key()))?;
    dbs.monitor_links.delete(txn, &link_key(monitor, link.id))?;
    Ok(())
}

/// Calls `visit` for the links of `monitor` from link id `from` on, in id order, until it
/// answers `false`.
pub fn walk_links(
    txn: &RoTxn,
    dbs: &Dbs,
    monitor: &str,
    from: u32,
    mut visit: impl FnMut(LinkRecord) -> bool,
) -> Result<(), StoreError> {
    let range = (
        Bound::Included(link_key(monitor, from)),
        under(&prefixed(monitor)).1,
    );
    for entry in dbs.monitor_links.range(txn, &borrowed(&range))? {
        let (_, value) = entry?;
        if !visit(codec::decode(value, "monitor link")?) {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_keys_sort_by_id_within_a_monitor() {
        assert!(link_key("mon_a", 2) < link_key("mon_a", 256));
        assert!(link_key("mon_a", u32::MAX) < link_key("mon_ab", 0));
        let (lo, hi) = under(&prefixed("mon_a"));
        let inside = |k: &Vec<u8>| {
            matches!(&lo, Bound::Included(l) if k >= l)
                && matches!(&hi, Bound::Excluded(h) if k < h)
        };
        assert!(inside(&link_key("mon_a", u32::MAX)));
        assert!(!inside(&link_key("mon_ab", 0)));
    }

    fn link() -> LinkRecord {
        LinkRecord {
            id: 1,
            url: "https://pan.quark.cn/s/abc".into(),
            provider: Provider::Quark,
            share_id: "abc".into(),
            passcode: None,
            share_host: None,
            state: State::Unknown,
            reason: None,
            share_name: None,
            since_ms: 0,
            added_at_ms: 0,
            last_checked_ms: None,
            last_result: None,
            next_due_s: 0,
            run: 0,
            transitions: Vec::new(),
            watchers: Vec::new(),
        }
    }

    #[test]
    fn unknown_never_moves_a_link_and_only_invalid_makes_it_dead() {
        let ok = Verdict::new(State::Valid, Reason::AllChecksPassed);
        let gone = Verdict::new(State::Invalid, Reason::ShareNotFound);
        let limited = Verdict::new(State::Unknown, Reason::RateLimited);
        let locked = Verdict::new(State::Locked, Reason::PasswordRequired);
        let mut l = link();
        assert_eq!(l.apply(&limited, 1), None);
        assert_eq!(l.state, State::Unknown);
        assert_eq!(l.apply(&ok, 2), Some(State::Unknown));
        assert_eq!(l.apply(&ok, 3), None);
        assert_eq!(l.apply(&limited, 4), None);
        assert_eq!((l.state, l.since_ms), (State::Valid, 2));
        assert_eq!(l.last_result, Some((State::Unknown, Reason::RateLimited)));
        assert_eq!(l.apply(&gone, 5), Some(State::Valid));
        assert_eq!(l.apply(&limited, 6), None);
        assert_eq!(l.state, State::Invalid);
        assert_eq!(l.apply(&locked, 7), Some(State::Invalid));
        assert_eq!(l.transitions.len(), 3);
        for n in 0..20 {
            l.apply(if n % 2 == 0 { &gone } else { &ok }, 10 + n);
        }
        assert_eq!(l.transitions.len(), KEPT_TRANSITIONS);
        assert_eq!(l.transitions.last().unwrap().at_ms, 29);
    }

    #[test]
    fn counts_follow_states() {
        let mut counts = StateCounts::default();
        counts.add(State::Unknown);
        counts.add(State::Unknown);
        counts.remove(State::Unknown);
        counts.add(State::Invalid);
        assert_eq!(counts.total(), 2);
        assert_eq!((counts.unknown, counts.invalid), (1, 1));
        counts.remove(State::Valid);
        assert_eq!(counts.valid, 0);
    }
}
