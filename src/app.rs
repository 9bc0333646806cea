//! The state shared by every request: configuration, storage, key gate, admin access, router,
//! metrics and the load-shedding semaphores.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::admin::AdminAuth;
use crate::config::Config;
use crate::http::router::{Router, RouterError};
use crate::http::routes::{self, Route};
use crate::keys::KeyGate;
use crate::observability::metrics::Metrics;
use crate::store::Store;
use crate::timefmt;

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
    pub started_at_ms: u64,
    started: Instant,
}

impl App {
    pub fn new(
        config: Config,
        store: Arc<Store>,
        admin_token: &str,
    ) -> Result<Arc<App>, RouterError> {
        Ok(Arc::new(App {
            keys: KeyGate::new(Arc::clone(&store), &config.keys),
            admin: AdminAuth::new(admin_token),
            router: routes::router()?,
            metrics: Metrics::install(),
            in_flight: Semaphore::new(config.http.max_in_flight),
            connections: Arc::new(Semaphore::new(config.http.max_connections)),
            started_at_ms: timefmt::now_ms(),
            started: Instant::now(),
            store,
            config,
        }))
    }

    /// Milliseconds since this server started (monotonic).
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
