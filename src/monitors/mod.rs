//! Monitors (定时复检): named, durable sets of share links that panlink checks again on a
//! schedule, on the engine's background lanes, recording each link's state, its transitions,
//! and the webhook events they cause.
//!
//! Owns the monitor records, the scheduler task and the `/api/v1/monitors` handlers. Every change
//! of monitors is a [`change::Change`], applied by one function in single-node mode and, in
//! cluster mode, by every node from the cluster's log ([`shared`]). It must not deliver webhooks
//! itself: it hands their events to the webhooks' sink in its own transactions and wakes them.

pub mod api;
pub mod change;
pub mod command;
pub mod record;
pub mod schedule;
pub mod scheduler;
pub mod shared;
pub mod watch;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::MonitorsConfig;
use crate::error::ApiError;
use crate::jobs::engine::Engine;
use crate::store::Store;
use crate::webhooks::Webhooks;
use change::{Applied, Change, MonitorPatch};
use command::Command;
use scheduler::SchedulerStats;
use watch::{TargetWatcher, WatchHandle};

/// The monitors service.
pub struct Monitors {
    store: Arc<Store>,
    pub config: MonitorsConfig,
    /// Where the events of verdicts go, and whose workers to wake.
    webhooks: Arc<Webhooks>,
    /// Cluster mode: the log of the cluster's monitors and who checks which.
    pub shared: Option<Arc<shared::SharedMonitors>>,
    commands: mpsc::UnboundedSender<Command>,
    /// Taken by [`Monitors::start`].
    receiver: parking_lot::Mutex<Option<mpsc::UnboundedReceiver<Command>>>,
    pub stats: Arc<SchedulerStats>,
}

impl Monitors {
    /// The service, its scheduler not yet running (other products take a [`WatchHandle`] first).
    pub fn new(
        store: Arc<Store>,
        config: &MonitorsConfig,
        webhooks: Arc<Webhooks>,
        shared: Option<shared::SharedMonitors>,
    ) -> Monitors {
        let (commands, receiver) = mpsc::unbounded_channel();
        Monitors {
            store,
            config: config.clone(),
            webhooks,
            shared: shared.map(Arc::new),
            commands,
            receiver: parking_lot::Mutex::new(Some(receiver)),
            stats: Arc::new(SchedulerStats::default()),
        }
    }

    /// What another product needs to watch shares, checked every `interval_s`.
    pub fn watch_handle(&self, interval_s: u32) -> WatchHandle {
        WatchHandle {
            commands: self.commands.clone(),
            interval_s,
        }
    }

    /// Starts the scheduler (it loads the schedule from storage; what the API told it before is
    /// waiting in its channel); `watcher` hears of every verdict on a watched share. Once.
    pub fn start(
        &self,
        engine: Arc<Engine>,
        webhooks: Arc<Webhooks>,
        watcher: Arc<dyn TargetWatcher>,
        shutdown: CancellationToken,
    ) {
        let Some(receiver) = self.receiver.lock().take() else {
            return;
        };
        let parts = scheduler::Parts {
            store: Arc::clone(&self.store),
            engine,
            webhooks,
            watcher,
            stats: Arc::clone(&self.stats),
            shared: self.shared.clone(),
            shutdown,
        };
        tokio::spawn(scheduler::run(parts, receiver));
    }

    fn tell(&self, command: Command) {
        // The scheduler ends only at shutdown; what it misses then is rebuilt from storage.
        let _ = self.commands.send(command);
    }

    /// Applies an API's `change` in this node's write; what it did. The scheduler hears what it
    /// must after the commit.
    pub async fn change(&self, change: Change) -> Result<Applied, ApiError> {
        if let Some(shared) = &self.shared
            && self.is_the_clusters(&change)?
        {
            return shared.submit(change).await;
        }
        let events = self.webhooks.sink();
        let applied = self
            .store
            .write(move |txn, dbs| change::apply(txn, dbs, &change, events, None))
            .await?;
        self.after(&applied);
        Ok(applied)
    }

    /// Whether `change` is of a monitor of the cluster (in cluster mode, a new one is; a monitor
    /// this data dir had before it joined is not).
    fn is_the_clusters(&self, change: &Change) -> Result<bool, ApiError> {
        let id = match change {
            Change::Create(_) | Change::Verdicts { .. } => return Ok(true),
            Change::Patch(MonitorPatch { id, .. })
            | Change::Delete { id }
            | Change::Run { id, .. } => id,
        };
        Ok(self
            .store
            .read(|txn, dbs| record::get_monitor(txn, dbs, id))?
            .is_none_or(|monitor| monitor.cluster))
    }

    /// What a committed change asks of this node: the scheduler's commands, webhooks to wake.
    fn after(&self, applied: &Applied) {
        for command in &applied.commands {
            self.tell(command.clone());
        }
        self.webhooks.wake(&applied.woken);
    }
}
