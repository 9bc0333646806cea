//! What the API and the watchers tell the scheduler after their commits.

use crate::checker::share::Provider;

/// What the API tells the scheduler after its commit.
#[derive(Debug, Clone)]
pub enum Command {
    /// Put links of a monitor on the schedule: `(link id, provider, due second)`. `run_from_ms`:
    /// a run was requested then, so entries due at its second are valid for links not checked
    /// since.
    Schedule {
        monitor: String,
        links: Vec<(u32, Provider, u32)>,
        run_from_ms: Option<u64>,
    },
    /// The monitor was paused or deleted: its entries are dropped as they come due.
    Forget { monitor: String },
}
