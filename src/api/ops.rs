//! The meta endpoints, which read across the whole application: `GET /health` (liveness with
//! version, uptime, storage and the pool counters), `GET /metrics` (Prometheus text, with the
//! gauges refreshed at each scrape) and `GET /` as JSON (name, version and the route list, from
//! the route table itself).

use http::{HeaderValue, StatusCode};
use metrics::gauge;
use serde::Serialize;

use super::App;
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;
use crate::timefmt;

/// `GET /health`: status, version, uptime, and the same fields as `/pool` (kept for old clients).
pub fn health(app: &App, _req: Req<'_>) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Health<'a> {
        status: &'static str,
        storage: crate::store::Condition,
        version: &'static str,
        uptime_seconds: f64,
        started_at: String,
        /// The click statistics: their time zone, and whether an IP database gives them a
        /// country and a region.
        click_stats: ClickStats<'a>,
        /// The cluster as this node sees it; `null` in single-node mode.
        cluster: Option<crate::cluster::ClusterView>,
        #[serde(flatten)]
        pool: crate::jobs::pool::Pool,
    }
    #[derive(Serialize)]
    struct ClickStats<'a> {
        enabled: bool,
        timezone: &'a str,
        geo: bool,
        geo_database: Option<&'a str>,
    }
    let storage = app.store.condition();
    let cluster = app.cluster.as_ref().map(|cluster| cluster.view());
    let healthy = storage == crate::store::Condition::Ok
        && cluster.as_ref().is_none_or(|view| view.nats_connected);
    Ok(response::json(
        StatusCode::OK,
        &Health {
            status: if healthy { "ok" } else { "degraded" },
            storage,
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: app.uptime_ms() as f64 / 1000.0,
            started_at: timefmt::rfc3339_ms(app.started_at_ms),
            click_stats: ClickStats {
                enabled: app.links.config.analytics,
                timezone: app.links.clock.name(),
                geo: app.links.geo.is_some(),
                geo_database: app.links.geo.as_ref().map(|g| g.kind()),
            },
            cluster,
            pool: crate::jobs::pool::snapshot(&app.jobs.engine),
        },
    ))
}

/// `GET /pool`: the lanes' counters, and in cluster mode every node's lane totals as its last
/// heartbeat gave them.
pub fn pool(app: &App, _req: Req<'_>) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct PoolWithCluster {
        #[serde(flatten)]
        pool: crate::jobs::pool::Pool,
        /// `null` in single-node mode.
        cluster: Option<crate::cluster::ClusterView>,
    }
    Ok(response::json(
        StatusCode::OK,
        &PoolWithCluster {
            pool: crate::jobs::pool::snapshot(&app.jobs.engine),
            cluster: app.cluster.as_ref().map(|cluster| cluster.view()),
        },
    ))
}

/// `GET /`: the service's name, version and route list.
pub fn index(app: &App, _req: Req<'_>) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Endpoint<'a> {
        method: &'a str,
        path: &'static str,
    }
    #[derive(Serialize)]
    struct Index<'a> {
        name: &'static str,
        version: &'static str,
        description: &'static str,
        endpoints: Vec<Endpoint<'a>>,
    }
    let endpoints = app
        .router
        .routes()
        .map(|(method, path, _)| Endpoint {
            method: method.as_str(),
            path,
        })
        .collect();
    Ok(response::json(
        StatusCode::OK,
        &Index {
            name: "panlink",
            version: env!("CARGO_PKG_VERSION"),
            description: "网盘分享链接检测与短链接服务",
            endpoints,
        },
    ))
}

/// `GET /metrics`: Prometheus text format.
pub fn metrics(app: &App, _req: Req<'_>) -> Result<HttpResponse, ApiError> {
    gauge!("panlink_lmdb_disk_bytes").set(app.store.disk_size() as f64);
    gauge!("panlink_http_in_flight")
        .set((app.config.http.max_in_flight - app.in_flight.available_permits()) as f64);
    gauge!("panlink_uptime_seconds").set(app.uptime_ms() as f64 / 1000.0);
    // One series per condition, 1 for the current one: alerts ask `== 1` of the bad ones.
    let condition = app.store.condition();
    for (name, this) in [
        ("ok", crate::store::Condition::Ok),
        ("full", crate::store::Condition::Full),
        ("read_only", crate::store::Condition::ReadOnly),
        ("failing", crate::store::Condition::Failing),
    ] {
        gauge!("panlink_storage_condition", "condition" => name)
            .set(f64::from(u8::from(condition == this)));
    }
    let now_ms = app.jobs.engine.now_ms();
    if let Some(bytes) = crate::observability::metrics::heap_allocated() {
        gauge!("panlink_heap_allocated_bytes").set(bytes as f64);
    }
    for lane in &app.jobs.engine.lanes {
        let provider = lane.provider.as_str();
        let stats = &lane.stats;
        let load = |v: &std::sync::atomic::AtomicI64| {
            v.load(std::sync::atomic::Ordering::Relaxed).max(0) as f64
        };
        gauge!("panlink_checker_queued", "provider" => provider, "lane" => "normal")
            .set(load(&stats.queued));
        gauge!("panlink_checker_queued", "provider" => provider, "lane" => "urgent")
            .set(load(&stats.urgent_queued));
        gauge!("panlink_checker_queued", "provider" => provider, "lane" => "background")
            .set(load(&stats.background_queued));
        gauge!("panlink_checker_in_flight", "provider" => provider).set(load(&stats.in_flight));
        let open = lane.health.circuit(now_ms) != crate::jobs::health::Circuit::Closed;
        gauge!("panlink_checker_circuit_open", "provider" => provider)
            .set(f64::from(u8::from(open)));
    }
    let monitors = &app.monitors.stats;
    let read =
        |v: &std::sync::atomic::AtomicU64| v.load(std::sync::atomic::Ordering::Relaxed) as f64;
    gauge!("panlink_monitor_scheduled_links").set(read(&monitors.entries));
    gauge!("panlink_monitor_schedule_bytes").set(read(&monitors.heap_bytes));
    gauge!("panlink_monitor_checks_in_flight").set(read(&monitors.in_flight));
    gauge!("panlink_monitor_checks_recorded").set(read(&monitors.checked));
    Ok(response::with_body(
        StatusCode::OK,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        app.metrics.render_text(),
    ))
}
