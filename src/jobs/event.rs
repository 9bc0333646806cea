//! A check's result as clients see it: the JSON of a `result` event, which SSE sends and storage
//! keeps byte for byte, and what goes into it.

use std::time::Duration;

use serde::Serialize;

use super::record::ItemRecord;
use crate::checker::share::Provider;
use crate::checker::verdict::{Reason, State, Verdict};
use crate::timefmt;

/// Whether a result came from the normal or the urgent lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Priority {
    Normal,
    Urgent,
}

/// What checking one item produced.
#[derive(Debug, Clone)]
pub struct CheckResult {
    pub verdict: Verdict,
    /// From the cache or another job's check of the same share.
    pub cached: bool,
    pub attempts: u32,
    pub elapsed: Duration,
    pub priority: Priority,
}

impl CheckResult {
    /// A result no check produced (cancellation, an unreadable item).
    pub fn without_check(verdict: Verdict) -> CheckResult {
        CheckResult {
            verdict,
            cached: false,
            attempts: 0,
            elapsed: Duration::ZERO,
            priority: Priority::Normal,
        }
    }
}

/// The JSON of a result event: the `data:` of SSE `result` events.
pub fn event_json(item_id: u32, result: &CheckResult, item: Option<&ItemRecord>) -> Vec<u8> {
    let now = timefmt::now_ms();
    let verdict = &result.verdict;
    let body = ResultEvent {
        item_id,
        url: item.map_or("", |i| i.url.as_str()),
        provider: item.and_then(|i| i.provider),
        valid: verdict.is_valid(),
        state: verdict.state,
        reason: verdict.reason,
        share_name: verdict.share_name.as_deref(),
        expiration_label: verdict.expiry.label(now),
        expires_at: verdict.expiry.expires_at_ms().map(timefmt::rfc3339_ms),
        file_count: verdict.file_count,
        provider_code: verdict.provider_code.as_deref(),
        elapsed_seconds: (result.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        priority_used: result.priority,
        attempts: result.attempts,
        cached: result.cached,
        checked_at: timefmt::rfc3339_ms(now),
        meta: item.and_then(|i| i.meta.as_deref()),
    };
    serde_json::to_vec(&body).expect("events serialize")
}

/// A result as SSE and storage carry it.
#[derive(Serialize)]
pub struct ResultEvent<'a> {
    pub item_id: u32,
    pub url: &'a str,
    pub provider: Option<Provider>,
    pub valid: bool,
    pub state: State,
    pub reason: Reason,
    pub share_name: Option<&'a str>,
    pub expiration_label: Option<String>,
    pub expires_at: Option<String>,
    pub file_count: Option<u64>,
    pub provider_code: Option<&'a str>,
    pub elapsed_seconds: f64,
    pub priority_used: Priority,
    pub attempts: u32,
    pub cached: bool,
    pub checked_at: String,
    pub meta: Option<&'a serde_json::value::RawValue>,
}

/// The JSON of a result answered at job creation (unsupported provider, malformed share URL).
pub fn immediate_event_json(item_id: u32, item: &ItemRecord, reason: Reason) -> Vec<u8> {
    let result = CheckResult::without_check(Verdict::new(State::Unknown, reason));
    event_json(item_id, &result, Some(item))
}

/// A stored event's `state`, read back (anything unexpected is `unknown`).
pub fn parse_state(text: &str) -> State {
    match text {
        "valid" => State::Valid,
        "invalid" => State::Invalid,
        "locked" => State::Locked,
        _ => State::Unknown,
    }
}
