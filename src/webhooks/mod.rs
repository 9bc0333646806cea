//! Webhooks: URLs a key registers to be told of events (a job finished, a monitored link died or
//! came back, a monitor's run ended), signed deliveries with retries, and the outbox that makes
//! them durable.
//!
//! Owns the webhook and delivery records, the delivery workers and the `/api/v1/webhooks` handlers.
//! It must not know what causes an event: jobs, monitors and links hand their events to an
//! [`EventSink`] in their own write transactions and call [`Webhooks::wake`] after the commit.
//! Every change of webhooks and deliveries is a [`change::Change`], applied by one function in
//! single-node mode and, in cluster mode, by every node from the cluster's log ([`shared`]).

pub mod api;
pub mod change;
pub mod deliver;
pub mod event;
pub mod record;
pub mod shared;
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
use crate::error::ApiError;
use crate::store::{Dbs, Store, StoreError};
use change::{Applied, Audience, Change, Policy};
use record::Event;
use shared::SharedHooks;

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
    /// Cluster mode: the log of changes and who delivers what.
    pub shared: Option<SharedHooks>,
}

/// Where a product's events go, inside the product's own write: single-node, straight into the
/// deliveries (the caller wakes the webhooks answered after its commit); cluster mode, into this
/// node's outbox for the cluster's log, if the copy knows a webhook that wants the event.
#[derive(Debug, Clone, Copy)]
pub struct EventSink {
    max_stored: u64,
    shared: bool,
    /// The log and sequence of the change whose apply finds the events, when every node applies
    /// it and so finds them too: their names, so that they are sent once.
    found_in: Option<(&'static str, u64)>,
}

impl EventSink {
    /// Single-node, storing at most `max_stored` deliveries per webhook (tools and tests).
    pub fn local(max_stored: u64) -> EventSink {
        EventSink {
            max_stored,
            shared: false,
            found_in: None,
        }
    }

    /// `event` for every enabled webhook of `owner` that wants it; the webhooks to wake. An event
    /// with a `name` is sent once however many nodes of a cluster find it.
    pub fn for_owner(
        &self,
        txn: &mut heed::RwTxn,
        dbs: &Dbs,
        owner: &str,
        event: &Event<'_>,
        name: Option<String>,
    ) -> Result<Vec<String>, StoreError> {
        if !self.shared {
            return record::enqueue_for_owner(txn, dbs, owner, event, self.max_stored);
        }
        let hooks = record::webhooks_of(txn, dbs, owner)?;
        if hooks.iter().any(|h| !h.disabled && h.wants(event.kind)) {
            shared::push_event(txn, dbs, self.change(owner, Audience::Owner, event, name))?;
        }
        Ok(Vec::new())
    }

    /// `event` for the webhooks `ids` (a monitor's) that are `owner`'s, enabled and want it.
    pub fn for_ids(
        &self,
        txn: &mut heed::RwTxn,
        dbs: &Dbs,
        owner: &str,
        ids: &[String],
        event: &Event<'_>,
    ) -> Result<Vec<String>, StoreError> {
        if !self.shared {
            return record::enqueue_for_ids(txn, dbs, owner, ids, event, self.max_stored);
        }
        let mut wanted = false;
        for id in ids {
            wanted |= record::get_webhook(txn, dbs, id)?
                .is_some_and(|h| h.owner == owner && !h.disabled && h.wants(event.kind));
        }
        if wanted {
            let audience = Audience::Ids(ids.to_vec());
            shared::push_event(txn, dbs, self.change(owner, audience, event, None))?;
        }
        Ok(Vec::new())
    }

    /// The sink for the events found by applying change `sequence` of cluster log `log`, which
    /// every node applies: each event is named after the change, its kind and its data.
    pub fn found_in(self, log: &'static str, sequence: u64) -> EventSink {
        EventSink {
            found_in: Some((log, sequence)),
            ..self
        }
    }

    fn change(
        &self,
        owner: &str,
        audience: Audience,
        event: &Event<'_>,
        name: Option<String>,
    ) -> Change {
        let name = name.or_else(|| {
            self.found_in.map(|(log, sequence)| {
                use std::hash::{Hash, Hasher};
                let mut hasher = rustc_hash::FxHasher::default();
                event.data.to_string().hash(&mut hasher);
                format!(
                    "{log}/{sequence}/{}/{:x}",
                    event.kind.as_str(),
                    hasher.finish()
                )
            })
        });
        Change::Event {
            owner: owner.to_owned(),
            audience,
            kind: event.kind,
            data: event.data.clone(),
            at_ms: event.at_ms,
            name,
        }
    }
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
        shared: Option<SharedHooks>,
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
            shared,
        }))
    }

    /// Where products put the events they find.
    pub fn sink(&self) -> EventSink {
        EventSink {
            max_stored: self.config.max_stored_deliveries,
            shared: self.shared.is_some(),
            found_in: None,
        }
    }

    /// The retry, disable and storage rules.
    pub fn policy(&self) -> Policy {
        let ms = |d: std::time::Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Policy {
            retry_base_ms: ms(self.config.retry_base),
            retry_window_ms: ms(self.config.retry_window),
            disable_after_ms: ms(self.config.disable_after),
            max_stored: self.config.max_stored_deliveries,
        }
    }

    /// Applies `change`: in this node's write (single-node), or through the cluster's log once
    /// this node's copy has it; what it did. Workers are woken or stopped as it asks.
    pub async fn change(self: &Arc<Self>, change: Change) -> Result<Applied, ApiError> {
        if let Some(shared) = &self.shared {
            return shared.submit(change).await;
        }
        let policy = self.policy();
        let applied = self
            .store
            .write(move |txn, dbs| change::apply(txn, dbs, &change, &policy))
            .await?;
        self.after(&applied);
        Ok(applied)
    }

    /// What a committed change asks of this node: workers to wake or stop.
    fn after(self: &Arc<Self>, applied: &Applied) {
        self.wake(&applied.wake);
        if let Some(id) = &applied.forget {
            self.forget(id);
        }
        if let Some(disabled) = &applied.disabled {
            tracing::warn!(
                event = "webhook.disabled",
                webhook = %disabled.id,
                url = %disabled.url,
                failing_since = %disabled.failing_since_ms.map(crate::timefmt::rfc3339_ms).unwrap_or_default(),
                "webhook.disabled: every delivery failed since then; PATCH disabled=false turns it back on"
            );
        }
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
