//! Webhooks: URLs a key registers to be told of events (a job finished, a monitored link died or
//! came back, a monitor's run ended), signed deliveries with retries, and the outbox that makes
//! them durable.
//!
//! Owns the webhook and delivery records, the delivery workers and the `/api/v1/webhooks` handlers.
//! It must not know what causes an event: jobs and monitors write deliveries into their own
//! write transactions ([`record::enqueue_for_owner`], [`record::enqueue_for_ids`]) and call
//! [`Webhooks::wake`] after the commit.

pub mod api;
pub mod deliver;
pub mod event;
pub mod record;
pub mod signature;
pub mod target;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::checker::client::{ClientError, Receivers, UpstreamClient};
use crate::config::WebhooksConfig;
use crate::store::Store;

pub use event::EventType;

/// How often old deliveries are purged.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// The webhooks service: storage, the receiver client and one worker per webhook.
pub struct Webhooks {
    store: Arc<Store>,
    pub config: WebhooksConfig,
    client: UpstreamClient,
    workers: Mutex<HashMap<String, Worker>>,
    shutdown: CancellationToken,
    /// Deliveries go out (see [`Webhooks::deliver`]); until then the outbox only fills.
    delivering: AtomicBool,
}

struct Worker {
    wake: Arc<Notify>,
    stop: CancellationToken,
}

impl Webhooks {
    /// Builds the service. Nothing is delivered until [`Webhooks::deliver`]: a server that is
    /// taking over a data dir must not send what the server before it is still sending.
    pub fn new(
        store: Arc<Store>,
        config: &WebhooksConfig,
        extra_root_ca: Option<&std::path::Path>,
        shutdown: CancellationToken,
    ) -> Result<Arc<Webhooks>, ClientError> {
        let user_agent = format!("panlink-webhooks/{}", env!("CARGO_PKG_VERSION"));
        let client = UpstreamClient::for_receivers(&Receivers {
            allow_private: config.allow_private,
            allow_http: config.allow_http,
            timeout: config.timeout,
            user_agent: &user_agent,
            extra_root_ca,
        })?;
        Ok(Arc::new(Webhooks {
            store,
            config: config.clone(),
            client,
            workers: Mutex::new(HashMap::new()),
            shutdown,
            delivering: AtomicBool::new(false),
        }))
    }

    /// Starts delivering: a worker for every stored webhook (pending deliveries left by a stop or
    /// a crash go out again), and the purge of old deliveries.
    pub fn deliver(self: &Arc<Self>) {
        if self.delivering.swap(true, Ordering::AcqRel) {
            return;
        }
        // After the flag: a delivery queued from now on wakes its worker itself.
        match self.store.read(record::all_webhook_ids) {
            Ok(ids) => self.wake(&ids),
            Err(err) => tracing::error!(error = %err, "reading webhooks at start failed"),
        }
        let purging = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                deliver::purge(&purging).await;
                tokio::select! {
                    () = tokio::time::sleep(PURGE_INTERVAL) => {}
                    () = purging.shutdown.cancelled() => return,
                }
            }
        });
    }

    /// Tells the workers of `ids` that deliveries may be due (starting workers that are not
    /// running). Call after the commit that queued them.
    pub fn wake(self: &Arc<Self>, ids: &[String]) {
        if ids.is_empty() || !self.delivering.load(Ordering::Acquire) {
            return;
        }
        let mut workers = self.workers.lock();
        for id in ids {
            if let Some(worker) = workers.get(id) {
                worker.wake.notify_one();
                continue;
            }
            let wake = Arc::new(Notify::new());
            let stop = self.shutdown.child_token();
            tokio::spawn(deliver::run_worker(
                Arc::clone(self),
                id.clone(),
                Arc::clone(&wake),
                stop.clone(),
            ));
            workers.insert(id.clone(), Worker { wake, stop });
        }
    }

    /// Stops the worker of a deleted webhook.
    fn forget(&self, id: &str) {
        if let Some(worker) = self.workers.lock().remove(id) {
            worker.stop.cancel();
        }
    }
}
