//! Checking links in this process, without a server (`panlink check`): the same engine, lanes,
//! providers, retries and verdict rules as `POST /jobs`, on a private store in a temporary
//! directory that is removed afterwards, so a server running on the configured data dir is never
//! touched.
//!
//! Must not: open the configured data dir, or leave its temporary directory behind.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;

use super::check::item_id_of;
use super::engine::{Engine, Published};
use super::event::Priority;
use super::quota::Window;
use super::record::{self, ItemRecord};
use super::submission::StoredItemQuota;
use crate::checker::client::UpstreamClient;
use crate::checker::extract;
use crate::config::Config;
use crate::store::Store;
use crate::webhooks::Webhooks;

/// The owner of the command line's job in its private store.
const OWNER: &str = "cli";

/// An engine of its own on a temporary store.
pub struct LocalChecker {
    store: Arc<Store>,
    engine: Arc<Engine>,
    shutdown: CancellationToken,
    dir: PathBuf,
}

impl LocalChecker {
    /// Starts the engine; call inside a tokio runtime.
    pub fn start(config: &Config) -> anyhow::Result<LocalChecker> {
        let dir = std::env::temp_dir().join(format!(
            "panlink-check-{}-{}",
            std::process::id(),
            crate::keys::secret::random_base62(8)
        ));
        let mut storage = config.storage.clone();
        storage.data_dir = dir.clone();
        // Small: it holds one job's items and results.
        storage.map_size_bytes = storage.map_size_bytes.min(1 << 30);
        let store = Store::open(&storage)?;
        let shutdown = CancellationToken::new();
        // A private store has no webhooks: nothing is ever delivered from here.
        let webhooks = Webhooks::new(
            Arc::clone(&store),
            &config.webhooks,
            config.checker.extra_root_ca.as_deref(),
            shutdown.clone(),
            None,
        )?;
        let client = UpstreamClient::new(&config.checker)?;
        let engine = Engine::start(
            Arc::clone(&store),
            client,
            &config.checker,
            &config.drives,
            webhooks,
            shutdown.clone(),
        )?;
        Ok(LocalChecker {
            store,
            engine,
            shutdown,
            dir,
        })
    }

    /// Checks every share link found in `text` (links one per line, or forum text) and returns
    /// the stored results in input order; `progress(done, total)` is told as they come.
    pub async fn check_text(
        &self,
        text: &str,
        mut progress: impl FnMut(u32, u32),
    ) -> anyhow::Result<Vec<(u32, Vec<u8>)>> {
        let items: Vec<ItemRecord> = extract::shares_in_text(text)
            .into_iter()
            .map(|found| ItemRecord::of_share(found.url, found.share, None))
            .collect();
        if items.is_empty() {
            anyhow::bail!("no share link of a supported drive in the input");
        }
        let quota = StoredItemQuota {
            items: u64::MAX,
            window: Window {
                retention_ms: u64::MAX,
            },
        };
        let job = self
            .engine
            .submit(
                OWNER.to_owned(),
                items,
                quota,
                crate::timefmt::now_ms(),
                Priority::Urgent,
            )
            .await
            .map_err(|err| anyhow::anyhow!("starting the check: {err:?}"))?;
        if let Some(live) = self.engine.job(&job.id) {
            let mut rx = live.subscribe();
            let mut done = 0;
            while !live.is_finished() {
                match rx.recv().await {
                    Ok(Published::Done) | Err(RecvError::Closed) => break,
                    Ok(Published::Event(..)) => {
                        done += 1;
                        progress(done.min(job.total), job.total);
                    }
                    Err(RecvError::Lagged(_)) => {}
                }
            }
        }
        progress(job.total, job.total);
        // Stored results, in the order of the input (they were stored as they finished).
        let events = self
            .store
            .read(|txn, dbs| record::events_after(txn, dbs, &job.id, 0, usize::MAX))?;
        let mut results: Vec<(u32, u32, Vec<u8>)> = events
            .into_iter()
            .filter_map(|(event_id, json)| Some((item_id_of(&json)?, event_id, json.to_vec())))
            .collect();
        results.sort_by_key(|(item_id, _, _)| *item_id);
        Ok(results
            .into_iter()
            .map(|(_, event_id, json)| (event_id, json))
            .collect())
    }

    /// Stops the engine, closes the store and removes the temporary directory.
    pub fn close(self) {
        self.shutdown.cancel();
        self.store.close(std::time::Duration::from_secs(5));
        drop(self.engine);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
