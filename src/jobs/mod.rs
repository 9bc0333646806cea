//! Checker jobs: the HTTP API, the engine that checks their links, durable records, and the
//! public pool counters.
//!
//! Invariant: a result is published (SSE, counts) only after the commit that stores it; every item
//! gets exactly one result event; event ids of a job are 1, 2, 3 … without gaps.

pub mod api;
pub mod engine;
pub mod health;
pub mod pool;
pub mod quota;
pub mod record;

/// Deletes finished jobs older than `jobs.retention_s`, in batches of a bounded size.
pub async fn purge_expired(app: &crate::app::App) {
    let retention = u64::try_from(app.config.jobs.retention.as_millis()).unwrap_or(u64::MAX);
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
