//! The state shared by every request: configuration, storage, key gate, admin access, router,
//! metrics and the load-shedding semaphores.

use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Instant;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::admin::AdminAuth;
use crate::checker::client::UpstreamClient;
use crate::config::Config;
use crate::http::router::{Router, RouterError};
use crate::http::routes::{self, Route};
use crate::http::slots::ConcurrencySlots;
use crate::jobs::engine::Engine;
use crate::keys::KeyGate;
use crate::links::LinkService;
use crate::observability::metrics::Metrics;
use crate::security::SecurityChecker;
use crate::store::Store;
use crate::timefmt;
use crate::web::Site;

pub struct App {
    pub config: Config,
    pub store: Arc<Store>,
    pub keys: KeyGate,
    pub admin: AdminAuth,
    pub router: Router<Route>,
    pub metrics: Metrics,
    /// Permits for requests being handled (`http.max_in_flight`).
    pub in_flight: Semaphore,
    /// Permits for open connections (`http.max_connections`).
    pub connections: Arc<Semaphore>,
    /// Bodies being read per client address on routes without credentials
    /// (`http.max_public_body_reads_per_peer`).
    pub public_body_reads: Arc<ConcurrencySlots<IpAddr>>,
    /// Event streams open per API key id (`jobs.max_streams_per_key`).
    pub key_streams: Arc<ConcurrencySlots<String>>,
    pub started_at_ms: u64,
    /// The checking engine.
    pub engine: Arc<Engine>,
    /// Short links: cache, click counters, password attempts.
    pub links: LinkService,
    /// The URL security check.
    pub security: SecurityChecker,
    /// The web pages, built once.
    pub site: Site,
    /// Cancelled on SIGINT/SIGTERM: long-lived work (SSE streams, dispatchers) ends on it.
    pub shutdown: CancellationToken,
    started: Instant,
    me: Weak<App>,
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
    /// Builds the app and starts the engine (on the current tokio runtime).
    pub fn new(
        config: Config,
        store: Arc<Store>,
        admin_token: &str,
        shutdown: CancellationToken,
    ) -> Result<Arc<App>, AppError> {
        let router = routes::router()?;
        let metrics = Metrics::install();
        LinkService::recover_clicks(&store)?;
        let links = LinkService::new(&config.links);
        let security = SecurityChecker::new(&config.security)?;
        let client = UpstreamClient::new(&config.checker)?;
        let engine = Engine::start(
            Arc::clone(&store),
            client,
            &config.checker,
            shutdown.clone(),
        )?;
        Ok(Arc::new_cyclic(|me| App {
            keys: KeyGate::new(Arc::clone(&store), &config.keys),
            admin: AdminAuth::new(admin_token),
            router,
            engine,
            shutdown,
            me: me.clone(),
            metrics,
            links,
            security,
            site: Site::new(&config),
            in_flight: Semaphore::new(config.http.max_in_flight),
            connections: Arc::new(Semaphore::new(config.http.max_connections)),
            public_body_reads: ConcurrencySlots::new(
                config.http.max_public_body_reads_per_peer as usize,
            ),
            key_streams: ConcurrencySlots::new(config.jobs.max_streams_per_key),
            started_at_ms: timefmt::now_ms(),
            started: Instant::now(),
            store,
            config,
        }))
    }

    /// An owning handle to the app, for tasks that outlive a request (SSE streams).
    pub fn self_arc(&self) -> Arc<App> {
        self.me.upgrade().expect("the app outlives its requests")
    }

    /// Milliseconds since this server started (monotonic).
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
