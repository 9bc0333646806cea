//! The application: every product's service, assembled once, and what the request pipeline
//! itself holds (configuration, the route table, credentials, metrics, the in-flight permits).

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::routes::{self, Route};
use crate::admin::AdminAuth;
use crate::checker::client::UpstreamClient;
use crate::config::Config;
use crate::http::router::{Router, RouterError};
use crate::http::slots::ConcurrencySlots;
use crate::jobs::Jobs;
use crate::jobs::engine::Engine;
use crate::keys::KeyGate;
use crate::links::{DataDirRole, LinkService};
use crate::monitors::Monitors;
use crate::observability::metrics::Metrics;
use crate::security::SecurityChecker;
use crate::store::Store;
use crate::timefmt;
use crate::web::Site;
use crate::webhooks::Webhooks;

pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub keys: KeyGate,
    pub admin: AdminAuth,
    pub router: Router<Route>,
    pub metrics: Metrics,
    /// Permits for requests being handled (`http.max_in_flight`).
    pub in_flight: Semaphore,
    /// Bodies being read per client address on routes without credentials
    /// (`http.max_public_body_reads_per_peer`).
    pub public_body_reads: Arc<ConcurrencySlots<IpAddr>>,
    pub started_at_ms: u64,
    /// Checker jobs: the engine and what their handlers need.
    pub jobs: Arc<Jobs>,
    /// Short links: cache, click counters, password attempts.
    pub links: Arc<LinkService>,
    /// The URL security check.
    pub security: SecurityChecker,
    /// Monitors: their records and the scheduler.
    pub monitors: Arc<Monitors>,
    /// Webhooks: their records, workers and the receiver client.
    pub webhooks: Arc<Webhooks>,
    /// The web pages, built once.
    pub site: Site,
    /// Cancelled on SIGINT/SIGTERM: long-lived work (SSE streams, dispatchers) ends on it.
    pub shutdown: CancellationToken,
    /// This node's cluster membership (`None`: single-node mode, `cluster.nats_urls` empty).
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    started: Instant,
}

/// Cluster mode's parts the app is built with: this node's membership and the products'
/// buckets, opened before the app (opening them waits on NATS).
pub struct Clustered {
    pub membership: Arc<crate::cluster::Cluster>,
    /// The keys' bucket (`keys::book`).
    pub keys: crate::cluster::bucket::Bucket,
    /// The links' and groups' buckets (`links::book`).
    pub links: crate::links::book::LinkBuckets,
    /// The jobs' log and work queue (`jobs::shared`).
    pub jobs: crate::jobs::shared::JobStreams,
    /// The webhooks' log (`webhooks::shared`).
    pub webhooks: crate::webhooks::shared::SharedHooks,
    /// The monitors' log (`monitors::shared`).
    pub monitors: crate::monitors::shared::SharedMonitors,
}

impl Clustered {
    /// Opens the buckets of `membership`'s cluster.
    pub async fn open(
        membership: Arc<crate::cluster::Cluster>,
    ) -> Result<Clustered, crate::cluster::ClusterError> {
        let keys = membership.bucket(crate::keys::book::KEYS_BUCKET).await?;
        let links = crate::links::book::LinkBuckets::open(&membership).await?;
        let jobs = crate::jobs::shared::JobStreams::open(&membership).await?;
        let webhooks = crate::webhooks::shared::SharedHooks::open(&membership).await?;
        let monitors = crate::monitors::shared::SharedMonitors::open(&membership).await?;
        Ok(Clustered {
            membership,
            keys,
            links,
            jobs,
            webhooks,
            monitors,
        })
    }
}

/// Why the app could not be built.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Router(#[from] RouterError),
    #[error(transparent)]
    Client(#[from] crate::checker::client::ClientError),
    #[error(transparent)]
    Security(#[from] crate::security::SecurityError),
    #[error("resuming jobs: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl App {
    /// Builds the app and starts the engine (on the current tokio runtime). It serves requests
    /// at once, but what only the server in charge of the data dir may do waits for
    /// [`App::take_over`].
    pub fn new(
        config: Config,
        store: Arc<Store>,
        admin_token: &str,
        shutdown: CancellationToken,
        cluster: Option<Clustered>,
    ) -> Result<Arc<App>, AppError> {
        let (cluster, keys_bucket, links_bucket, job_streams, shared_hooks, shared_monitors) =
            match cluster {
                Some(clustered) => (
                    Some(clustered.membership),
                    Some(clustered.keys),
                    Some(clustered.links),
                    Some(clustered.jobs),
                    Some(clustered.webhooks),
                    Some(clustered.monitors),
                ),
                None => (None, None, None, None, None, None),
            };
        let router = routes::router()?;
        let metrics = Metrics::install();
        let webhooks = Webhooks::new(
            Arc::clone(&store),
            &config.webhooks,
            config.checker.extra_root_ca.as_deref(),
            shutdown.clone(),
            shared_hooks,
        )?;
        let monitors = Arc::new(Monitors::new(
            Arc::clone(&store),
            &config.monitors,
            Arc::clone(&webhooks),
            shared_monitors,
        ));
        let links = Arc::new(LinkService::new(
            Arc::clone(&store),
            &config.links,
            &config.server,
            monitors.watch_handle(config.links.target_check_interval_s),
            links_bucket,
        ));
        let security = SecurityChecker::new(&config.security)?;
        let client = UpstreamClient::new(&config.checker)?;
        let engine = Engine::start(
            Arc::clone(&store),
            client,
            &config.checker,
            &config.drives,
            Arc::clone(&webhooks),
            shutdown.clone(),
        )?;
        // Until `take_over`, another server may still serve the same data dir.
        links.set_role(DataDirRole::Standby);
        let shared_jobs = job_streams.map(|streams| {
            Arc::new(crate::jobs::shared::SharedJobs::new(
                streams,
                Arc::clone(&engine),
                Arc::clone(&store),
                &config.cluster,
                &config.jobs,
            ))
        });
        let jobs = Arc::new(Jobs::new(
            engine,
            Arc::clone(&store),
            &config.jobs,
            &config.check,
            // Event streams also end on their own at a handover.
            shutdown.child_token(),
            shared_jobs,
        ));
        Ok(Arc::new(App {
            keys: KeyGate::new(Arc::clone(&store), &config.keys, keys_bucket),
            admin: AdminAuth::new(admin_token),
            router,
            jobs,
            shutdown,
            cluster,
            metrics,
            links,
            security,
            monitors,
            webhooks,
            site: Site::new(&config),
            in_flight: Semaphore::new(config.http.max_in_flight),
            public_body_reads: ConcurrencySlots::new(
                config.http.max_public_body_reads_per_peer as usize,
            ),
            started_at_ms: timefmt::now_ms(),
            started: Instant::now(),
            store,
            config,
        }))
    }

    /// Starts what only the one server in charge of the data dir may do, once it is: fold a click
    /// journal left behind, resume unfinished jobs, run the monitors' scheduler, deliver
    /// webhooks, and cache links again. (Before, a server it took over from may still be doing
    /// all of it.)
    pub fn take_over(&self) -> Result<(), AppError> {
        self.links.recover_clicks(&self.store)?;
        self.links.set_role(DataDirRole::InCharge);
        self.jobs.engine.resume()?;
        self.monitors.start(
            Arc::clone(&self.jobs.engine),
            Arc::clone(&self.webhooks),
            self.links.target_watcher(),
            self.shutdown.clone(),
        );
        self.webhooks.deliver();
        Ok(())
    }

    /// The listener went to a new server, which serves the same data dir from now on: links are
    /// read from storage on every redirect this server still answers (a change made through the
    /// new one counts here at once), and event streams end.
    pub fn hand_over(&self) {
        self.links.set_role(DataDirRole::HandedOver);
        // Clients reconnect to the new server with `Last-Event-ID`.
        self.jobs.shutdown.cancel();
    }

    /// Milliseconds since this server started (monotonic).
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
