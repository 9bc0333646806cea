//! The pool's counters (what `GET /pool` and `/health` show of the lanes) and `GET
//! /pool/{provider}`: counts and static metadata per provider, never a URL or anything a user
//! sent.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use http::StatusCode;
use serde::Serialize;

use super::engine::Engine;
use super::engine::Lane;
use crate::checker::providers;
use crate::checker::share::Provider;
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;

/// One provider's pool.
#[derive(Debug, Serialize)]
pub struct ProviderPool {
    pub name: &'static str,
    pub hosts: &'static [&'static str],
    pub supports_passcode: bool,
    /// `drives.<name>.enabled`.
    pub enabled: bool,
    pub queued: u64,
    pub urgent_queued: u64,
    /// Monitors' re-checks waiting on the background lane.
    pub background_queued: u64,
    pub in_flight: u64,
    /// Of `in_flight`, the monitors' re-checks.
    pub background_in_flight: u64,
    /// The current (adaptive) concurrency limit.
    pub concurrency: usize,
    pub max_concurrency: usize,
    pub circuit: super::health::Circuit,
    pub rate_per_s: u32,
    pub checked_total: u64,
    pub retries_total: u64,
    pub states: States,
    pub latency_ms: Latency,
}

#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct States {
    pub valid: u64,
    pub invalid: u64,
    pub locked: u64,
    pub unknown: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Latency {
    pub p50: Option<u32>,
    pub p95: Option<u32>,
}

/// Sums over providers.
#[derive(Debug, Default, Serialize)]
pub struct Totals {
    pub queued: u64,
    pub urgent_queued: u64,
    pub background_queued: u64,
    pub in_flight: u64,
    pub background_in_flight: u64,
    pub concurrency: usize,
    pub checked_total: u64,
    pub retries_total: u64,
    pub states: States,
}

/// The whole pool.
#[derive(Debug, Serialize)]
pub struct Pool {
    pub providers: BTreeMap<Provider, ProviderPool>,
    pub totals: Totals,
}

fn load(value: &std::sync::atomic::AtomicI64) -> u64 {
    u64::try_from(value.load(Ordering::Relaxed)).unwrap_or(0)
}

fn provider_pool(engine: &Engine, lane: &Lane) -> ProviderPool {
    let stats = &lane.stats;
    let (p50, p95) = stats.latency_percentiles();
    let state = |i: usize| stats.by_state[i].load(Ordering::Relaxed);
    ProviderPool {
        name: lane.provider.display_name(),
        hosts: providers::share_hosts(lane.provider),
        supports_passcode: true,
        enabled: lane.enabled,
        queued: load(&stats.queued),
        urgent_queued: load(&stats.urgent_queued),
        background_queued: load(&stats.background_queued),
        in_flight: load(&stats.in_flight),
        background_in_flight: load(&stats.background_in_flight),
        concurrency: lane.health.limit(),
        max_concurrency: lane.concurrency,
        circuit: lane.health.circuit(engine.now_ms()),
        rate_per_s: lane.rate_per_s,
        checked_total: stats.checked_total.load(Ordering::Relaxed),
        retries_total: stats.retries_total.load(Ordering::Relaxed),
        states: States {
            valid: state(0),
            invalid: state(1),
            locked: state(2),
            unknown: state(3),
        },
        latency_ms: Latency { p50, p95 },
    }
}

/// The pool snapshot of every provider, with totals.
pub fn snapshot(engine: &Engine) -> Pool {
    let providers: BTreeMap<Provider, ProviderPool> = engine
        .lanes
        .iter()
        .map(|lane| (lane.provider, provider_pool(engine, lane)))
        .collect();
    let mut totals = Totals::default();
    for pool in providers.values() {
        totals.queued += pool.queued;
        totals.urgent_queued += pool.urgent_queued;
        totals.background_queued += pool.background_queued;
        totals.in_flight += pool.in_flight;
        totals.background_in_flight += pool.background_in_flight;
        totals.concurrency += pool.concurrency;
        totals.checked_total += pool.checked_total;
        totals.retries_total += pool.retries_total;
        totals.states.valid += pool.states.valid;
        totals.states.invalid += pool.states.invalid;
        totals.states.locked += pool.states.locked;
        totals.states.unknown += pool.states.unknown;
    }
    Pool { providers, totals }
}

/// `GET /pool/{provider}`.
pub fn one(engine: &Engine, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let provider = Provider::parse(req.param("provider")).ok_or(ApiError::NotFound("网盘"))?;
    let lane = &engine.lanes[provider.index()];
    Ok(response::json(StatusCode::OK, &provider_pool(engine, lane)))
}
