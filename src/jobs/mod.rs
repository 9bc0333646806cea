//! Checker jobs: the HTTP API, the engine that checks their links, durable records, the public
//! pool counters, and in cluster mode the cluster's jobs ([`shared`]).
//!
//! Invariant: a result is published (SSE, counts) only after the commit that stores it; every item
//! gets exactly one result event; event ids of a job are 1, 2, 3 … without gaps.

pub mod api;
pub mod check;
pub mod engine;
pub mod event;
pub mod export;
pub mod health;
pub mod local;
pub mod pool;
pub mod quota;
pub mod record;
pub mod shared;
pub mod submission;

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::{CheckConfig, JobsConfig};
use crate::http::slots::ConcurrencySlots;
use crate::store::Store;

/// What the jobs' handlers need: the engine, the store, their configuration, the per-key count
/// of open event streams, and the shutdown signal that ends streams cleanly.
pub struct Jobs {
    pub engine: Arc<engine::Engine>,
    pub store: Arc<Store>,
    pub config: JobsConfig,
    /// `check.*`: the bounds of the blocking `POST /check`.
    pub check: CheckConfig,
    /// Event streams open per API key id (`jobs.max_streams_per_key`).
    pub key_streams: Arc<ConcurrencySlots<String>>,
    pub shutdown: CancellationToken,
    /// Cluster mode: jobs are the cluster's (`None`: this node's own).
    pub shared: Option<Arc<shared::SharedJobs>>,
}

impl Jobs {
    pub fn new(
        engine: Arc<engine::Engine>,
        store: Arc<Store>,
        config: &JobsConfig,
        check: &CheckConfig,
        shutdown: CancellationToken,
        shared: Option<Arc<shared::SharedJobs>>,
    ) -> Jobs {
        Jobs {
            engine,
            store,
            key_streams: ConcurrencySlots::new(config.max_streams_per_key),
            config: config.clone(),
            check: check.clone(),
            shutdown,
            shared,
        }
    }
}

/// Deletes finished jobs older than `jobs.retention_s`, in batches of a bounded size.
pub async fn purge_expired(app: &Jobs) {
    let retention = u64::try_from(app.config.retention.as_millis()).unwrap_or(u64::MAX);
    let cutoff = crate::timefmt::now_ms().saturating_sub(retention);
    loop {
        match app
            .store
            .write(move |txn, dbs| record::purge_finished_before(txn, dbs, cutoff, 64))
            .await
        {
            Ok(0) => return,
            Ok(purged) => {
                tracing::info!(purged, "deleted expired jobs");
                metrics::counter!("panlink_jobs_total", "event" => "purged")
                    .increment(purged as u64);
            }
            Err(err) => {
                tracing::warn!(error = %err, "purging expired jobs failed");
                return;
            }
        }
    }
}
