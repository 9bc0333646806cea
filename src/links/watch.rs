//! Short links whose target is a share: the links' side of watching it. The monitors' scheduler
//! checks the share on the background lane and calls [`LinkTargets::checked`] inside its write:
//! each link watching the share gets the new state in its record, and a change to or from dead
//! queues `shortlink.target_dead` / `shortlink.target_revived` in the same commit. After the
//! commit the links' cache entries are dropped, so the redirect sees the state at its next
//! lookup; the redirect's hot path itself reads nothing new (the state is in the cached record).
//!
//! In cluster mode every node has every link's share on its schedule, but checks it only if the
//! share falls to it among the live nodes ([`Membership::falls_here`]): one node checks each
//! share, and when it dies the share falls to another one node TTL later. After each commit
//! the checking node puts the links' new target states into the cluster's links bucket where
//! they differ from what the bucket has, so every node's copy (and redirect) learns them from
//! the bucket's follower. A write that failed is made at the next check.

use std::sync::Arc;

use heed::RwTxn;
use parking_lot::Mutex;

use super::cache::LinkCache;
use super::record::{LinkRecord, TargetState};
use super::repo;
use crate::checker::verdict::State;
use crate::cluster::Membership;
use crate::cluster::bucket::{Bucket, MAX_ATTEMPTS, WriteError};
use crate::monitors::watch::{Scheduled, Target, TargetWatcher, Verdict, WatchHandle};
use crate::store::{Dbs, StoreError, codec};
use crate::timefmt;
use crate::webhooks::{self, EventType};

/// The links' [`TargetWatcher`].
pub struct LinkTargets {
    pub cache: Arc<LinkCache>,
    /// The default domain's name for the events (`None`: no domains configured).
    pub default_domain: Option<String>,
    /// Cluster mode: where the states this node learns go, and who checks which share.
    pub shared: Option<SharedTargets>,
    /// Cluster mode: `(code, url, state)` of the links checked in the write under way, for the
    /// bucket after its commit.
    pub changed: Mutex<Vec<(String, String, TargetState)>>,
}

/// The cluster's side of watching targets.
pub struct SharedTargets {
    /// The links' bucket, where the states this node learns are put.
    pub links: Bucket,
    /// The live nodes: a share is checked by the one it falls to.
    pub membership: Membership,
}

impl TargetWatcher for LinkTargets {
    fn checked(
        &self,
        txn: &mut RwTxn,
        dbs: &Dbs,
        verdict: &Verdict<'_>,
    ) -> Result<Vec<String>, StoreError> {
        let Verdict {
            owner,
            share,
            changed,
            now_ms,
            events,
        } = *verdict;
        let mut woken = Vec::new();
        for code in &share.watchers {
            let Some(mut link) = repo::get(txn, dbs, code)?.filter(|l| l.owner == owner) else {
                continue;
            };
            let was = link.target.as_ref().map(|t| t.state);
            let since_ms = match (&link.target, changed) {
                (Some(t), None) if t.state == share.state => t.since_ms,
                _ => share.since_ms,
            };
            link.target = Some(Box::new(TargetState {
                provider: share.provider,
                state: share.state,
                reason: share.reason,
                share_name: share.share_name.clone(),
                checked_at_ms: now_ms,
                since_ms,
            }));
            dbs.links.put(txn, code.as_bytes(), &codec::encode(&link))?;
            if self.shared.is_some()
                && let Some(target) = &link.target
            {
                self.changed
                    .lock()
                    .push((code.clone(), link.url.clone(), (**target).clone()));
            }
            let kind = match (was, share.state) {
                (Some(State::Invalid), State::Invalid) => None,
                (_, State::Invalid) => Some(EventType::ShortlinkTargetDead),
                (Some(State::Invalid), _) => Some(EventType::ShortlinkTargetRevived),
                _ => None,
            };
            if let Some(kind) = kind {
                let data = serde_json::json!({
                    "code": link.short_code(),
                    "domain": link.domain().or(self.default_domain.as_deref()),
                    "url": link.url,
                    "title": link.title,
                    "fallback_url": link.fallback_url,
                    "provider": share.provider,
                    "state": share.state,
                    "reason": share.reason,
                    "share_name": share.share_name,
                    "since": timefmt::rfc3339_ms(since_ms),
                });
                let event = webhooks::record::Event {
                    kind,
                    data: &data,
                    at_ms: now_ms,
                };
                woken.extend(events.for_owner(txn, dbs, owner, &event, None)?);
            }
        }
        Ok(woken)
    }

    fn committed(&self, tags: &[String]) {
        for code in tags {
            self.cache.invalidate(code);
        }
        let changed = std::mem::take(&mut *self.changed.lock());
        if let (Some(shared), false) = (&self.shared, changed.is_empty()) {
            tokio::spawn(share_states(shared.links.clone(), changed));
        }
    }

    fn checks_here(&self, share: &crate::monitors::record::LinkRecord) -> bool {
        self.shared
            .as_ref()
            .is_none_or(|shared| shared.membership.falls_here(share.match_key()))
    }
}

/// Puts each link's target state into the cluster's bucket (by compare-and-set, retried when the
/// link changed meanwhile) where the bucket has another state, unless the link was retargeted or
/// the bucket's state is from a later check (two of these tasks may run at once).
async fn share_states(bucket: Bucket, changed: Vec<(String, String, TargetState)>) {
    for (code, url, target) in changed {
        for _ in 0..MAX_ATTEMPTS {
            let entry = match bucket.entry(&code).await {
                Ok(entry) => entry,
                Err(err) => {
                    tracing::warn!(code, error = %err, "sharing a link's target state failed");
                    break;
                }
            };
            let Some((bytes, revision)) = entry else {
                break;
            };
            let Ok(mut link) = codec::decode::<LinkRecord>(&bytes, "shared link") else {
                break;
            };
            if link.url != url
                || link.target.as_ref().is_some_and(|shared| {
                    shared.state == target.state || shared.checked_at_ms > target.checked_at_ms
                })
            {
                break;
            }
            link.target = Some(Box::new(target.clone()));
            match bucket.update(&code, codec::encode(&link), revision).await {
                Err(WriteError::Conflict) => continue,
                Err(err) => {
                    tracing::warn!(code, error = %err, "sharing a link's target state failed");
                    break;
                }
                Ok(_) => break,
            }
        }
    }
}

/// The share a link's target is, when the link watches it.
pub fn watched_share(link: &super::record::LinkRecord) -> Option<crate::checker::share::ShareRef> {
    if !link.watch_target {
        return None;
    }
    match crate::checker::providers::recognize(&link.url, None) {
        crate::checker::providers::Recognized::Share(share) => Some(share),
        _ => None,
    }
}

/// What the monitors watch for `link`: its share, tagged with its code.
fn target_of<'a>(
    link: &'a super::record::LinkRecord,
    share: &'a crate::checker::share::ShareRef,
) -> Target<'a> {
    Target {
        owner: &link.owner,
        url: &link.url,
        share,
        tag: &link.code,
    }
}

/// Starts watching `link`'s target in the caller's write (a new or changed link).
pub fn watch(
    handle: &WatchHandle,
    txn: &mut RwTxn,
    dbs: &Dbs,
    link: &super::record::LinkRecord,
    now_ms: u64,
) -> Result<Option<Scheduled>, StoreError> {
    match watched_share(link) {
        Some(share) => handle.watch(txn, dbs, &target_of(link, &share), now_ms),
        None => Ok(None),
    }
}

/// Stops watching `link`'s target in the caller's write (a deleted or changed link).
pub fn unwatch(
    txn: &mut RwTxn,
    dbs: &Dbs,
    link: &super::record::LinkRecord,
) -> Result<(), StoreError> {
    match watched_share(link) {
        Some(share) => WatchHandle::unwatch(txn, dbs, &target_of(link, &share)),
        None => Ok(()),
    }
}
