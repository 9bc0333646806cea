//! Monitors in cluster mode: the cluster's log `panlink_monitors` holds every [`Change`] of the
//! cluster's monitors (the API's writes and each batch of verdicts), and every node applies it,
//! in order, to its LMDB with the function single-node mode uses ([`change::apply`]), so every
//! node has every monitor, its links and their states, and every node's scheduler has every
//! link on it.
//!
//! - A monitor's links are checked by the live node the monitor falls to
//!   ([`Membership::falls_here`]); the other nodes keep each link's slot, so when that node dies
//!   the monitor falls to another one node TTL later, which checks each link at its slot.
//! - The events a verdict causes are found by every node's apply; each is named after its
//!   change, so the cluster's webhooks send it once.
//! - A monitor a data dir had before it joined stays that node's own (checked and changed there
//!   only), as do the hidden monitors of the links' target watch.
//!
//! It must not change a cluster monitor in LMDB other than by applying the log.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Monitors;
use super::change::{self, Applied, Change};
use crate::cluster::changes::ChangeLog;
use crate::cluster::log::Record;
use crate::cluster::{self, Cluster, ClusterError, Membership};
use crate::error::ApiError;
use crate::store::StoreError;

/// The cluster log of monitors' changes.
pub const MONITORS_LOG: &str = "panlink_monitors";
/// How long the log keeps a change: a node down longer than this misses the changes of that time.
const KEPT: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a node waits for its own copy to apply a change it published.
const READ_OWN_WRITE: Duration = Duration::from_secs(5);

/// The cluster's side of monitors.
pub struct SharedMonitors {
    changes: ChangeLog<Applied>,
    membership: Membership,
}

impl SharedMonitors {
    /// Opens (creating it if needed) the monitors' log.
    pub async fn open(cluster: &Cluster) -> Result<SharedMonitors, ClusterError> {
        Ok(SharedMonitors {
            changes: ChangeLog::new(cluster.log(MONITORS_LOG, KEPT).await?),
            membership: cluster.membership(),
        })
    }

    /// Whether this node checks the links of monitor `id` now.
    pub fn checks(&self, id: &str) -> bool {
        self.membership.falls_here(cluster::key_of(id))
    }

    /// Publishes `change` and waits until this node's copy applied it; what the apply made of it.
    pub async fn submit(&self, change: Change) -> Result<Applied, ApiError> {
        Ok(self.changes.submit(change, READ_OWN_WRITE).await?)
    }
}

/// Starts applying the log to this node's copy (from where it stopped); the log's last sequence
/// now, which the copy must reach to be current.
pub async fn follower(monitors: &Arc<Monitors>, stop: CancellationToken) -> Result<u64, String> {
    let Some(shared) = &monitors.shared else {
        return Ok(0);
    };
    let (followed, latest) = shared.changes.log().resume_point(&monitors.store).await?;
    spawn_apply(monitors, followed, &stop);
    Ok(latest)
}

/// Whether this node's copy reached `sequence` within `timeout`.
pub async fn caught_up(monitors: &Monitors, sequence: u64, timeout: Duration) -> bool {
    match &monitors.shared {
        Some(shared) => shared.changes.log().wait_applied(sequence, timeout).await,
        None => true,
    }
}

/// Kept out of [`follower`]'s future: the task's future is large in debug builds.
#[inline(never)]
fn spawn_apply(monitors: &Arc<Monitors>, from: u64, stop: &CancellationToken) {
    let Some(shared) = &monitors.shared else {
        return;
    };
    let applying = Arc::clone(monitors);
    tokio::spawn(Box::pin(shared.changes.log().clone().follow(
        from,
        stop.clone(),
        move |records: Vec<Record>| {
            let monitors = Arc::clone(&applying);
            async move { apply(&monitors, records).await }
        },
    )));
}

/// Applies records of the log to this node's copy, in one write, then tells this node's
/// scheduler what they ask and keeps the outcomes of its own changes for their waiters.
async fn apply(monitors: &Arc<Monitors>, records: Vec<Record>) -> Result<(), StoreError> {
    let Some(shared) = &monitors.shared else {
        return Ok(());
    };
    let events = monitors.webhooks.sink();
    let applied = shared
        .changes
        .apply_in_order(
            &monitors.store,
            records,
            move |txn, dbs, sequence, change: &Change| {
                let events = events.found_in(MONITORS_LOG, sequence);
                change::apply(txn, dbs, change, events, None)
            },
        )
        .await?;
    for (sequence, reply, applied) in applied {
        monitors.after(&applied);
        if reply {
            shared.changes.answer(sequence, applied);
        }
    }
    Ok(())
}
