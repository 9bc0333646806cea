//! How hard a provider may be asked right now: an adaptive concurrency limit (AIMD), a circuit
//! breaker and a retry budget, per provider.
//!
//! AIMD (the shape of vector's adaptive request concurrency): a rate-limit answer halves the
//! limit (at most once a second), every `limit` non-transient answers add one, between 1 and the
//! configured concurrency. The breaker (linkerd's consecutive-failures shape): after
//! `breaker_failures` consecutive timeouts or upstream errors the lane stops starting checks for
//! the cool-down; then one probe goes through: success closes the breaker, failure reopens it with
//! twice the cool-down (at most 5 minutes). Pending links wait meanwhile; they are not reported
//! `unknown` just because the provider is having a bad minute. The retry budget (linkerd's idea):
//! every first attempt earns `retry_budget_ratio` of a retry, every retry spends one, so during an
//! outage retries add at most that fraction to the load.
//!
//! Warm-up: a lane that has had no answer for [`WARM_MS`] (its pooled connections may be gone)
//! runs one check at a time until an answer comes, at most [`WARMUP_MAX_MS`]. The client learns
//! a host speaks HTTP/2 only from the TLS handshake, so before that, C checks starting together
//! each open a connection (hyper keeps one and drops the rest): the mock counted 250 TLS
//! handshakes for a nine-provider job at C = 32. One check first opens the connection the rest
//! then share: one handshake per host, which is also gentler on providers that watch bursts.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

use serde::Serialize;

use crate::checker::verdict::Reason;

const MAX_COOLDOWN_MS: u64 = 5 * 60 * 1000;
/// `last_decrease_ms` before the first decrease.
const NEVER: u64 = u64::MAX;
/// How long after its last answer a lane counts as warm (the client keeps idle connections 90 s).
const WARM_MS: u64 = 60_000;
/// The longest a cold lane waits for its first answer before opening up anyway (a slow first
/// link must not hold the lane at one check).
const WARMUP_MAX_MS: u64 = 1_000;

/// The breaker as `/pool` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Circuit {
    Closed,
    Open,
    HalfOpen,
}

/// What the dispatcher may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    Go,
    /// Start only this one check (half-open probe).
    Probe,
    /// Wait until this time (ms on the engine clock).
    WaitUntil(u64),
}

/// A provider's adaptive limit and breaker.
#[derive(Debug)]
pub struct ProviderHealth {
    max: usize,
    limit: AtomicUsize,
    successes: AtomicUsize,
    last_decrease_ms: AtomicU64,
    failures: AtomicU32,
    threshold: u32,
    base_cooldown_ms: u64,
    cooldown_ms: AtomicU64,
    /// 0 when closed; else the time the breaker may let a probe through.
    open_until_ms: AtomicU64,
    probing: AtomicBool,
    /// Retry budget, in thousandths of a retry.
    retry_tokens_milli: AtomicU64,
    retry_earn_milli: u64,
    /// The last answer (any), on the engine clock; `NEVER` before the first.
    answered_ms: AtomicU64,
    /// When the current cold spell's warm-up began; `NEVER` when none has.
    warming_since_ms: AtomicU64,
}

/// Retries a provider may make before any first attempt has earned more.
const RETRY_ALLOWANCE: u64 = 10;

impl ProviderHealth {
    /// `retry_ratio`: retries earned per first attempt (the retry budget, e.g. 0.2).
    pub fn new(max: usize, threshold: u32, cooldown_ms: u64, retry_ratio: f64) -> ProviderHealth {
        ProviderHealth {
            max,
            limit: AtomicUsize::new(max),
            successes: AtomicUsize::new(0),
            last_decrease_ms: AtomicU64::new(NEVER),
            failures: AtomicU32::new(0),
            threshold,
            base_cooldown_ms: cooldown_ms,
            cooldown_ms: AtomicU64::new(cooldown_ms),
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            retry_tokens_milli: AtomicU64::new(RETRY_ALLOWANCE * 1000),
            retry_earn_milli: (retry_ratio.clamp(0.0, 1.0) * 1000.0) as u64,
            answered_ms: AtomicU64::new(NEVER),
            warming_since_ms: AtomicU64::new(NEVER),
        }
    }

    /// A first attempt earns part of a retry (capped at the allowance plus 100).
    pub fn earn_retry(&self) {
        let cap = (RETRY_ALLOWANCE + 100) * 1000;
        let _ = self
            .retry_tokens_milli
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| {
                Some((t + self.retry_earn_milli).min(cap))
            });
    }

    /// Spends one retry from the budget; false when the budget is empty (the retry is skipped and
    /// the transient outcome stands, reported `unknown`).
    pub fn spend_retry(&self) -> bool {
        self.retry_tokens_milli
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |t| t.checked_sub(1000))
            .is_ok()
    }

    /// The current concurrency limit.
    pub fn limit(&self) -> usize {
        self.limit.load(Ordering::Relaxed)
    }

    /// The limit the dispatcher applies at `now_ms` and, while the lane warms up (limit 1),
    /// when the warm-up ends at the latest. Called by the lane's one dispatcher.
    pub fn limit_at(&self, now_ms: u64) -> (usize, Option<u64>) {
        let answered = self.answered_ms.load(Ordering::Acquire);
        if answered != NEVER && now_ms.saturating_sub(answered) < WARM_MS {
            return (self.limit(), None);
        }
        let mut since = self.warming_since_ms.load(Ordering::Relaxed);
        if since == NEVER || (answered != NEVER && since <= answered) {
            // A new cold spell: its warm-up starts now.
            since = now_ms;
            self.warming_since_ms.store(since, Ordering::Relaxed);
        }
        let ends = since.saturating_add(WARMUP_MAX_MS);
        if now_ms < ends {
            (1, Some(ends))
        } else {
            (self.limit(), None)
        }
    }

    pub fn circuit(&self, now_ms: u64) -> Circuit {
        match self.open_until_ms.load(Ordering::Acquire) {
            0 => Circuit::Closed,
            until if now_ms < until => Circuit::Open,
            _ => Circuit::HalfOpen,
        }
    }

    /// Whether a check may start now.
    pub fn gate(&self, now_ms: u64) -> Gate {
        match self.circuit(now_ms) {
            Circuit::Closed => Gate::Go,
            Circuit::Open => Gate::WaitUntil(self.open_until_ms.load(Ordering::Acquire)),
            Circuit::HalfOpen => {
                if self.probing.swap(true, Ordering::AcqRel) {
                    Gate::WaitUntil(now_ms + 50)
                } else {
                    Gate::Probe
                }
            }
        }
    }

    /// Learns from one answered check (after its retries).
    pub fn record(&self, reason: Reason, now_ms: u64) {
        self.answered_ms.store(now_ms, Ordering::Release);
        match reason {
            Reason::RateLimited => {
                let last = self.last_decrease_ms.load(Ordering::Relaxed);
                if (last == NEVER || now_ms.saturating_sub(last) >= 1000)
                    && self
                        .last_decrease_ms
                        .compare_exchange(last, now_ms, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
                {
                    let _ = self
                        .limit
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                            Some((l / 2).max(1))
                        });
                    self.successes.store(0, Ordering::Relaxed);
                }
                self.close_if_probing();
            }
            Reason::Timeout
            | Reason::UpstreamError
            | Reason::UpstreamUnreachable
            | Reason::RequestRejected
            | Reason::AntiBotChallenge => {
                let failures = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
                if self.probing.load(Ordering::Acquire) {
                    // The probe failed: open again for longer.
                    let cooldown =
                        (self.cooldown_ms.load(Ordering::Relaxed) * 2).min(MAX_COOLDOWN_MS);
                    self.cooldown_ms.store(cooldown, Ordering::Relaxed);
                    self.open_until_ms
                        .store(now_ms + cooldown, Ordering::Release);
                    self.probing.store(false, Ordering::Release);
                } else if failures >= self.threshold
                    && self.open_until_ms.load(Ordering::Acquire) == 0
                {
                    self.open_until_ms.store(
                        now_ms + self.cooldown_ms.load(Ordering::Relaxed),
                        Ordering::Release,
                    );
                    tracing::warn!(failures, "provider failing: circuit open");
                }
            }
            _ => {
                self.failures.store(0, Ordering::Release);
                self.close_if_probing();
                let limit = self.limit.load(Ordering::Relaxed);
                if self.successes.fetch_add(1, Ordering::AcqRel) + 1 >= limit {
                    self.successes.store(0, Ordering::Relaxed);
                    let _ = self.limit.compare_exchange(
                        limit,
                        (limit + 1).min(self.max),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    );
                }
            }
        }
    }

    fn close_if_probing(&self) {
        if self.probing.swap(false, Ordering::AcqRel) {
            self.open_until_ms.store(0, Ordering::Release);
            self.failures.store(0, Ordering::Release);
            self.cooldown_ms
                .store(self.base_cooldown_ms, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_budget() {
        let health = ProviderHealth::new(4, 5, 1000, 0.2);
        for _ in 0..RETRY_ALLOWANCE {
            assert!(health.spend_retry());
        }
        assert!(!health.spend_retry(), "the allowance is spent");
        for _ in 0..4 {
            health.earn_retry();
        }
        assert!(
            !health.spend_retry(),
            "four first attempts earn 0.8 of a retry"
        );
        health.earn_retry();
        assert!(health.spend_retry(), "five earn one");
    }

    #[test]
    fn aimd() {
        let early = ProviderHealth::new(16, 5, 1000, 0.2);
        early.record(Reason::RateLimited, 0);
        assert_eq!(
            early.limit(),
            8,
            "the first rate limit counts, even at the clock's start"
        );
        let health = ProviderHealth::new(16, 5, 1000, 0.2);
        health.record(Reason::RateLimited, 10_000);
        assert_eq!(health.limit(), 8);
        health.record(Reason::RateLimited, 10_500);
        assert_eq!(health.limit(), 8, "at most one decrease a second");
        health.record(Reason::RateLimited, 11_000);
        assert_eq!(health.limit(), 4);
        for _ in 0..4 {
            health.record(Reason::AllChecksPassed, 12_000);
        }
        assert_eq!(health.limit(), 5, "+1 after `limit` answers");
        for n in 0..10 {
            health.record(Reason::RateLimited, 20_000 + n * 1000);
        }
        assert_eq!(health.limit(), 1, "never below 1");
    }

    #[test]
    fn a_cold_lane_runs_one_check_until_an_answer_or_the_warmup_cap() {
        let health = ProviderHealth::new(32, 5, 1000, 0.2);
        assert_eq!(
            health.limit_at(0),
            (1, Some(WARMUP_MAX_MS)),
            "cold at start"
        );
        assert_eq!(
            health.limit_at(10),
            (1, Some(WARMUP_MAX_MS)),
            "the warm-up keeps its start"
        );
        health.record(Reason::AllChecksPassed, 40);
        assert_eq!(
            health.limit_at(41),
            (32, None),
            "the first answer opens the lane"
        );
        assert_eq!(health.limit_at(40 + WARM_MS - 1), (32, None));
        let cold = 40 + WARM_MS;
        assert_eq!(
            health.limit_at(cold),
            (1, Some(cold + WARMUP_MAX_MS)),
            "idle past WARM_MS: a new warm-up"
        );
        assert_eq!(
            health.limit_at(cold + WARMUP_MAX_MS),
            (32, None),
            "no answer within the cap: open anyway"
        );
        health.record(Reason::Timeout, cold + 5_000);
        assert_eq!(
            health.limit_at(cold + 5_001),
            (32, None),
            "a failed answer counts too"
        );
    }

    #[test]
    fn breaker_opens_probes_and_closes() {
        let health = ProviderHealth::new(4, 3, 1000, 0.2);
        for _ in 0..2 {
            health.record(Reason::UpstreamError, 0);
        }
        assert_eq!(health.gate(0), Gate::Go);
        health.record(Reason::ShareNotFound, 0);
        for _ in 0..3 {
            health.record(Reason::Timeout, 100);
        }
        assert_eq!(health.circuit(500), Circuit::Open);
        assert_eq!(health.gate(500), Gate::WaitUntil(1100));
        assert_eq!(health.gate(1200), Gate::Probe);
        assert!(
            matches!(health.gate(1200), Gate::WaitUntil(_)),
            "one probe at a time"
        );
        health.record(Reason::UpstreamError, 1300);
        assert_eq!(
            health.circuit(2000),
            Circuit::Open,
            "a failed probe reopens for twice as long"
        );
        assert_eq!(health.gate(3400), Gate::Probe);
        health.record(Reason::AllChecksPassed, 3500);
        assert_eq!(health.circuit(3500), Circuit::Closed);
        assert_eq!(health.gate(3500), Gate::Go);
    }
}
