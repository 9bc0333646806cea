//! `GET /health` (liveness with version, uptime and the pool counters) and `GET /` (what this server is and which
//! routes it has, from the route table itself).

use http::StatusCode;
use serde::Serialize;

use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::http::routes::Req;
use crate::timefmt;

/// `GET /health`: status, version, uptime, and the same fields as `/pool` (kept for old clients).
pub fn health(req: Req<'_>) -> Result<HttpResponse, ApiError> {
    #[derive(Serialize)]
    struct Health {
        status: &'static str,
        storage: crate::store::Condition,
        version: &'static str,
        uptime_seconds: f64,
        started_at: String,
        #[serde(flatten)]
        pool: crate::jobs::pool::Pool,
    }
    let app = req.app;
    let storage = app.store.condition();
    Ok(response::json(
        StatusCode::OK,
        &Health {
            status: if storage == crate::store::Condition::Ok {
                "ok"
            } else {
                "degraded"
            },
            storage,
            version: env!("CARGO_PKG_VERSION"),
            uptime_seconds: app.uptime_ms() as f64 / 1000.0,
            started_at: timefmt::rfc3339_ms(app.started_at_ms),
            pool: crate::jobs::pool::snapshot(app),
        },
    ))
}

/// `GET /`: the service's name, version and route list.
pub fn index(req: Req<'_>) -> Result<HttpResponse, ApiError> {
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
    let endpoints = req
        .app
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
