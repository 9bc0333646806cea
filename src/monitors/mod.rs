//! Monitors (定时复检): named, durable sets of share links that panlink checks again on a
//! schedule, on the engine's background lanes, recording each link's state, its transitions,
//! and the webhook events they cause.
//!
//! Owns the monitor records, the scheduler task and the `/api/v1/monitors` handlers. It must not
//! deliver webhooks itself: it writes their deliveries into its own transactions and wakes them.

pub mod api;
pub mod record;
pub mod schedule;
pub mod scheduler;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::MonitorsConfig;
use crate::jobs::engine::Engine;
use crate::store::Store;
use crate::webhooks::Webhooks;
use scheduler::{Command, SchedulerStats};

/// The monitors service.
pub struct Monitors {
    store: Arc<Store>,
    pub config: MonitorsConfig,
    commands: mpsc::UnboundedSender<Command>,
    pub stats: Arc<SchedulerStats>,
}

impl Monitors {
    /// Builds the service and starts the scheduler (it loads the schedule from storage).
    pub fn start(
        store: Arc<Store>,
        config: &MonitorsConfig,
        engine: Arc<Engine>,
        webhooks: Arc<Webhooks>,
        shutdown: CancellationToken,
    ) -> Monitors {
        let (commands, receiver) = mpsc::unbounded_channel();
        let stats = Arc::new(SchedulerStats::default());
        tokio::spawn(scheduler::run(
            Arc::clone(&store),
            engine,
            webhooks,
            receiver,
            Arc::clone(&stats),
            shutdown,
        ));
        Monitors {
            store,
            config: config.clone(),
            commands,
            stats,
        }
    }

    fn tell(&self, command: Command) {
        // The scheduler ends only at shutdown; what it misses then is rebuilt from storage.
        let _ = self.commands.send(command);
    }
}
