//! Webhooks in cluster mode: the cluster's log `panlink_webhooks` holds every [`Change`] of
//! webhooks and deliveries, and every node applies it, in order, to its LMDB with the function
//! single-node mode uses ([`change::apply`]), so every node has every webhook and the same
//! deliveries under the same ids.
//!
//! - The API's changes are published by the node that takes the request, which answers once its
//!   own copy applied them (from what the apply made of them).
//! - Events found by a product (a job completed, a monitored link died …) are written to this
//!   node's outbox in the product's write, and published from there (so none is lost with a
//!   crash); a job's completion, which every node finds, carries a name and is applied once.
//! - A webhook's deliveries are sent by the live node the webhook falls to
//!   ([`Membership::falls_here`]); each attempt's outcome is a change like any other. When that
//!   node dies, the webhook falls to another one node TTL later, which sends what is still
//!   pending, under the same delivery ids.
//!
//! It must not change a webhook or delivery in LMDB other than by applying the log.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Webhooks;
use super::change::{self, Applied, Change};
use super::record;
use crate::cluster::changes::{ChangeLog, outbox_record};
use crate::cluster::log::Record;
use crate::cluster::{self, Cluster, ClusterError, Membership};
use crate::error::ApiError;
use crate::store::{Dbs, StoreError, outbox};

/// The cluster log of webhooks' changes.
pub const WEBHOOKS_LOG: &str = "panlink_webhooks";
/// How long the log keeps a change: a node down longer than this misses the changes of that time.
const KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a node waits for its own copy to apply a change it published.
const READ_OWN_WRITE: Duration = Duration::from_secs(5);
/// How often the outbox is looked at for events to publish.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);
/// A change's deliveries are numbered from its sequence shifted by this many bits: room for
/// 65 535 deliveries per change (an event reaches at most a key's webhooks).
const DELIVERIES_PER_CHANGE_BITS: u32 = 16;

/// The cluster's side of webhooks.
pub struct SharedHooks {
    changes: ChangeLog<Applied>,
    membership: Membership,
}

impl SharedHooks {
    /// Opens (creating it if needed) the webhooks' log.
    pub async fn open(cluster: &Cluster) -> Result<SharedHooks, ClusterError> {
        Ok(SharedHooks {
            changes: ChangeLog::new(cluster.log(WEBHOOKS_LOG, KEPT).await?),
            membership: cluster.membership(),
        })
    }

    /// Whether this node sends the deliveries of `webhook_id` now.
    pub fn delivers(&self, webhook_id: &str) -> bool {
        self.membership.falls_here(cluster::key_of(webhook_id))
    }

    /// Changes whenever [`delivers`](Self::delivers) may answer differently (the live nodes
    /// changed).
    pub fn senders_change(&self) -> tokio::sync::watch::Receiver<u64> {
        self.membership.changes()
    }

    /// Whether this node runs the purge of old deliveries now (one node does).
    pub fn purges(&self) -> bool {
        self.membership.falls_here(cluster::key_of("purge"))
    }

    /// Publishes `change` and waits until this node's copy applied it; what the apply made of it.
    pub async fn submit(&self, change: Change) -> Result<Applied, ApiError> {
        Ok(self.changes.submit(change, READ_OWN_WRITE).await?)
    }
}

/// Writes `change` (an event a product found) to this node's outbox, in the product's write.
pub fn push_event(txn: &mut heed::RwTxn, dbs: &Dbs, change: Change) -> Result<(), StoreError> {
    outbox::push(txn, dbs, WEBHOOKS_LOG, &outbox_record(change))?;
    Ok(())
}

/// Starts applying the log to this node's copy (from where it stopped) and publishing its
/// outbox; the log's last sequence now, which the copy must reach to be current.
pub async fn follower(hooks: &Arc<Webhooks>, stop: CancellationToken) -> Result<u64, String> {
    let Some(shared) = &hooks.shared else {
        return Ok(0);
    };
    let (followed, latest) = shared.changes.log().resume_point(&hooks.store).await?;
    spawn_tasks(hooks, followed, &stop);
    if followed == 0 {
        offer_local_webhooks(hooks, shared).await?;
    }
    Ok(latest)
}

/// A data dir that never followed the log offers the cluster its webhooks (each kept only if its
/// id is new there). Deliveries it queued before stay in its own copy: it sends them itself
/// while their webhooks fall to it.
async fn offer_local_webhooks(hooks: &Webhooks, shared: &SharedHooks) -> Result<(), String> {
    let ids = hooks
        .store
        .read(record::all_webhook_ids)
        .map_err(|err| err.to_string())?;
    let mut offered = 0;
    for id in ids {
        let found = hooks
            .store
            .read(|txn, dbs| record::get_webhook(txn, dbs, &id))
            .map_err(|err| err.to_string())?;
        if let Some(hook) = found {
            let create = Change::Create {
                hook: as_offered(hook),
                limit: usize::MAX,
            };
            shared.submit(create).await.map_err(|err| err.to_string())?;
            offered += 1;
        }
    }
    if offered > 0 {
        tracing::info!(
            webhooks = offered,
            "offered this node's webhooks to the cluster on its first join"
        );
    }
    Ok(())
}

/// A webhook as this node offers it to the cluster: the other nodes hold none of the deliveries
/// it stored before it joined, so their copies count from zero (with this node's count they
/// would reach `webhooks.max_stored_deliveries` early and drop the cluster's own deliveries
/// while this node drops its old ones). This node keeps its record and count: the offer's apply
/// skips a webhook a node already has.
fn as_offered(mut hook: record::WebhookRecord) -> record::WebhookRecord {
    hook.stored_deliveries = 0;
    hook
}

/// Whether this node's copy reached `sequence` within `timeout`.
pub async fn caught_up(hooks: &Webhooks, sequence: u64, timeout: Duration) -> bool {
    match &hooks.shared {
        Some(shared) => shared.changes.log().wait_applied(sequence, timeout).await,
        None => true,
    }
}

/// Spawns the apply and the outbox's publisher. Kept out of [`follower`]'s future: the tasks'
/// futures are large in debug builds.
#[inline(never)]
fn spawn_tasks(hooks: &Arc<Webhooks>, from: u64, stop: &CancellationToken) {
    let Some(shared) = &hooks.shared else {
        return;
    };
    let applying = Arc::clone(hooks);
    tokio::spawn(Box::pin(shared.changes.log().clone().follow(
        from,
        stop.clone(),
        move |records: Vec<Record>| {
            let hooks = Arc::clone(&applying);
            async move { apply(&hooks, records).await }
        },
    )));
    tokio::spawn(Box::pin(shared.changes.log().clone().publish_outbox(
        Arc::clone(&hooks.store),
        PUBLISH_EVERY,
        stop.clone(),
    )));
}

/// Applies records of the log to this node's copy, in one write, then does what they ask of
/// this node (workers to wake or stop) and keeps the outcomes of its own changes for their
/// waiters.
async fn apply(hooks: &Arc<Webhooks>, records: Vec<Record>) -> Result<(), StoreError> {
    let Some(shared) = &hooks.shared else {
        return Ok(());
    };
    let policy = hooks.policy();
    let applied = shared
        .changes
        .apply_in_order(
            &hooks.store,
            records,
            move |txn, dbs, sequence, change: &Change| {
                // Delivery ids from the change's place in the log: the same on every node.
                record::number_deliveries_from(txn, dbs, sequence << DELIVERIES_PER_CHANGE_BITS)?;
                change::apply(txn, dbs, change, &policy)
            },
        )
        .await?;
    for (sequence, reply, applied) in applied {
        hooks.after(&applied);
        if reply {
            shared.changes.answer(sequence, applied);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::webhooks::change::Policy;

    /// A node that stored two deliveries before it joined offers its webhook; then three pings
    /// reach every node through the log. Every node must hold the same deliveries of the
    /// cluster (with a limit of three, the joining node drops its own old ones, never the
    /// cluster's).
    #[test]
    fn an_offered_webhook_counts_only_the_deliveries_a_node_holds() {
        let policy = Policy {
            retry_base_ms: 60_000,
            retry_window_ms: 3_600_000,
            disable_after_ms: 3_600_000,
            max_stored: 3,
        };
        let hook = record::WebhookRecord {
            id: "hookPreJoin01".into(),
            owner: "owner".into(),
            url: "https://example.com/hook".into(),
            events: vec![crate::webhooks::event::EventType::Ping],
            description: None,
            secret: "secret".into(),
            disabled: false,
            disabled_reason: None,
            created_at_ms: 1,
            updated_at_ms: 1,
            failing_since_ms: None,
            last_success_ms: None,
            stored_deliveries: 0,
        };
        let ping = |at_ms| Change::Ping {
            id: hook.id.clone(),
            at_ms,
        };
        let (_a_dir, joining) = Store::temporary();
        let (_b_dir, other) = Store::temporary();
        joining
            .write_now(|txn, dbs| {
                change::apply(
                    txn,
                    dbs,
                    &Change::Create {
                        hook: hook.clone(),
                        limit: 10,
                    },
                    &policy,
                )?;
                change::apply(txn, dbs, &ping(2), &policy)?;
                change::apply(txn, dbs, &ping(3), &policy)
            })
            .unwrap();
        let offered = joining
            .read(|txn, dbs| record::get_webhook(txn, dbs, &hook.id))
            .unwrap()
            .map(as_offered)
            .unwrap();
        let in_order = [
            Change::Create {
                hook: offered,
                limit: usize::MAX,
            },
            ping(10),
            ping(11),
            ping(12),
        ];
        for store in [&joining, &other] {
            store
                .write_now(|txn, dbs| {
                    for (at, change) in in_order.iter().enumerate() {
                        let sequence = at as u64 + 1;
                        record::number_deliveries_from(
                            txn,
                            dbs,
                            sequence << DELIVERIES_PER_CHANGE_BITS,
                        )?;
                        change::apply(txn, dbs, change, &policy)?;
                    }
                    Ok(())
                })
                .unwrap();
        }
        let held = |store: &Store| -> Vec<bool> {
            (2..=4u64)
                .map(|sequence| {
                    store
                        .read(|txn, dbs| {
                            record::get_delivery(
                                txn,
                                dbs,
                                &hook.id,
                                sequence << DELIVERIES_PER_CHANGE_BITS,
                            )
                        })
                        .unwrap()
                        .is_some()
                })
                .collect()
        };
        assert_eq!(held(&joining), [true, true, true]);
        assert_eq!(held(&other), [true, true, true]);
    }
}
