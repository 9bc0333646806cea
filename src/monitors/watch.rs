//! Watching a share on behalf of another product (a short link whose target is a share): the
//! share becomes a link of its owner's hidden monitor, tagged with who watches it. The scheduler
//! checks it like any monitored link and hands each verdict to the [`TargetWatcher`] inside the
//! same write, so what the watcher records and the events it causes commit together.
//!
//! It must not know what a tag means: the watcher does.

use heed::RwTxn;
use tokio::sync::mpsc;

use super::command::Command;
use super::record::{self, LinkRecord, MonitorRecord, Run, StateCounts};
use crate::checker::share::{Provider, ShareRef};
use crate::checker::verdict::State;
use crate::store::{Dbs, StoreError};

/// A verdict on a watched share, as the watcher hears of it.
pub struct Verdict<'a> {
    /// The owner of the hidden monitor.
    pub owner: &'a str,
    /// The share's link in that monitor, with its new state and its watchers' tags.
    pub share: &'a LinkRecord,
    /// The state it left, if it changed.
    pub changed: Option<State>,
    pub now_ms: u64,
    /// Where the watcher puts the events it finds.
    pub events: crate::webhooks::EventSink,
}

/// Told of every verdict on a watched share, inside the scheduler's write.
pub trait TargetWatcher: Send + Sync {
    /// Records `verdict` for the share's watchers; answers the webhooks with new deliveries.
    fn checked(
        &self,
        txn: &mut RwTxn,
        dbs: &Dbs,
        verdict: &Verdict<'_>,
    ) -> Result<Vec<String>, StoreError>;

    /// After the commit: the tags whose records changed.
    fn committed(&self, tags: &[String]);

    /// Whether this process checks `share` when it is due; when not, another one does, and the
    /// scheduler only keeps its place on the schedule (the watcher learns its state elsewhere).
    fn checks_here(&self, share: &LinkRecord) -> bool {
        let _ = share;
        true
    }
}

/// The id of `owner`'s hidden monitor (never listed by the monitors API).
pub fn hidden_monitor_id(owner: &str) -> String {
    format!("mon_{owner}")
}

/// What a product needs to watch shares: the interval, and the scheduler's ear.
#[derive(Clone)]
pub struct WatchHandle {
    pub(super) commands: mpsc::UnboundedSender<Command>,
    pub interval_s: u32,
}

/// A share to watch: found in `url`, of `owner`, for `tag`.
pub struct Target<'a> {
    pub owner: &'a str,
    pub url: &'a str,
    pub share: &'a ShareRef,
    pub tag: &'a str,
}

impl Target<'_> {
    /// The owner's hidden monitor and the key of the share's link in it.
    fn place(&self) -> (String, u64) {
        let key =
            crate::jobs::record::match_key(Some((self.share.provider, &self.share.id)), self.url);
        (hidden_monitor_id(self.owner), key)
    }
}

/// A watched link to put on the schedule after the commit.
#[derive(Debug, Clone)]
pub struct Scheduled {
    monitor: String,
    link: u32,
    provider: Provider,
    due_s: u32,
}

impl WatchHandle {
    /// A handle for a process without a scheduler (the command line): what it watches is
    /// stored, and the server's scheduler loads it from storage when it starts.
    pub fn offline(interval_s: u32) -> WatchHandle {
        let (commands, _) = mpsc::unbounded_channel();
        WatchHandle {
            commands,
            interval_s,
        }
    }

    /// Puts links watched in a committed write on the schedule.
    pub fn schedule(&self, entries: Vec<Scheduled>) {
        for entry in entries {
            let _ = self.commands.send(Command::Schedule {
                monitor: entry.monitor,
                links: vec![(entry.link, entry.provider, entry.due_s)],
                run_from_ms: None,
            });
        }
    }

    /// Watches `target` in the caller's write: a new link of the owner's hidden monitor, due
    /// now, or a tag more on the link it has for that share. Answers what to schedule after the
    /// commit.
    pub fn watch(
        &self,
        txn: &mut RwTxn,
        dbs: &Dbs,
        target: &Target<'_>,
        now_ms: u64,
    ) -> Result<Option<Scheduled>, StoreError> {
        let Target {
            owner,
            url,
            share,
            tag,
        } = *target;
        let (id, key) = target.place();
        let mut monitor = match record::get_monitor(txn, dbs, &id)? {
            Some(m) => m,
            None => MonitorRecord {
                id: id.clone(),
                owner: owner.to_owned(),
                name: "短链接目标".into(),
                interval_s: self.interval_s,
                paused: false,
                hidden: true,
                cluster: false,
                webhook_ids: Vec::new(),
                created_at_ms: now_ms,
                updated_at_ms: now_ms,
                next_link_id: 1,
                links: 0,
                counts: StateCounts::default(),
                run: Run {
                    number: 1,
                    started_at_ms: now_ms,
                    checked: 0,
                    changed: 0,
                },
                last_run: None,
                run_requested_at_ms: None,
            },
        };
        monitor.interval_s = self.interval_s;
        if let Some(existing) = record::link_of_share(txn, dbs, &id, key)?
            && let Some(mut link) = record::get_link(txn, dbs, &id, existing)?
        {
            if !link.watchers.iter().any(|t| t == tag) {
                link.watchers.push(tag.to_owned());
                record::put_link(txn, dbs, &id, &link)?;
            }
            record::put_monitor(txn, dbs, &monitor)?;
            return Ok(None);
        }
        let mut link = LinkRecord::new(monitor.next_link_id, url.to_owned(), share.clone(), now_ms);
        link.watchers.push(tag.to_owned());
        record::add_link(txn, dbs, &id, &link)?;
        monitor.next_link_id += 1;
        monitor.links += 1;
        monitor.counts.add(State::Unknown);
        record::put_monitor(txn, dbs, &monitor)?;
        Ok(Some(Scheduled {
            monitor: id,
            link: link.id,
            provider: link.provider,
            due_s: link.next_due_s,
        }))
    }

    /// Stops watching `target`; the link goes when nobody watches it.
    pub fn unwatch(txn: &mut RwTxn, dbs: &Dbs, target: &Target<'_>) -> Result<(), StoreError> {
        let (id, key) = target.place();
        let tag = target.tag;
        let Some(link_id) = record::link_of_share(txn, dbs, &id, key)? else {
            return Ok(());
        };
        let (Some(mut link), Some(mut monitor)) = (
            record::get_link(txn, dbs, &id, link_id)?,
            record::get_monitor(txn, dbs, &id)?,
        ) else {
            return Ok(());
        };
        link.watchers.retain(|t| t != tag);
        if link.watchers.is_empty() {
            record::remove_link(txn, dbs, &id, &link)?;
            monitor.links = monitor.links.saturating_sub(1);
            monitor.counts.remove(link.state);
            record::put_monitor(txn, dbs, &monitor)?;
        } else {
            record::put_link(txn, dbs, &id, &link)?;
        }
        Ok(())
    }
}
