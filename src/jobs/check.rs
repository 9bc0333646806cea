//! `POST /check`: the blocking check, for scripts that want JSON at once. The links become an
//! ordinary job (same verdicts, cache, rate limits and quota as `POST /jobs`) whose items all
//! start on the urgent queues; the answer waits until the job is done or `wait_s` runs out and carries
//! the results in input order, and the items still pending. The job goes on either way: a client
//! that stops waiting, or disconnects, loses nothing and can follow `stream_url` or fetch
//! `GET /jobs/{id}/results` later.

use std::time::Duration;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use tokio::sync::broadcast::error::RecvError;

use super::Jobs;
use super::api::{self, Rejected, SubmissionLimits};
use super::engine::Published;
use super::event::Priority;
use super::record;
use crate::error::ApiError;
use crate::http::response::{self, HttpResponse};
use crate::keys::KeyReq as Req;
use crate::timefmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default)]
    text: Option<String>,
    /// Seconds to wait for the results (default `check.default_wait_s`).
    #[serde(default)]
    wait_s: Option<f64>,
}

#[derive(Serialize)]
struct Answer {
    job_id: String,
    /// `done`, or `running` when `wait_s` ran out first.
    status: &'static str,
    stream_url: String,
    results_url: String,
    total: u32,
    /// Every result so far, in the order of the input.
    results: Vec<Box<RawValue>>,
    /// Item ids still being checked.
    pending: Vec<u32>,
    rejected: Vec<Rejected>,
}

/// `POST /check`.
pub async fn check(app: &Jobs, req: Req<'_>) -> Result<HttpResponse, ApiError> {
    let key = req.caller.clone().ok_or(ApiError::MissingApiKey)?;
    if !crate::http::request::is_json_content_type(&req.parts.headers) {
        return Err(ApiError::UnsupportedContentType);
    }
    let limits = SubmissionLimits {
        max_items: app.check.max_items,
        over_limit_hint: "；更多链接请用 POST /jobs（SSE 推送结果）",
        ..SubmissionLimits::of_jobs(&app.config)
    };
    let max_wait = app.check.max_wait;
    let default_wait = app.check.default_wait;
    let body = req.body.clone();
    let (items, rejected, wait) = tokio::task::spawn_blocking(move || {
        let body: CheckBody = crate::http::request::parse_json(&body)?;
        let wait = wait_of(body.wait_s, default_wait, max_wait)?;
        let (items, rejected) = api::parse_submission(body.items, body.text.as_deref(), limits)?;
        Ok::<_, ApiError>((items, rejected, wait))
    })
    .await
    .map_err(|_| ApiError::Internal)??;
    let job = api::submit(app, &key, items, timefmt::now_ms(), Priority::Urgent).await?;
    if let Some(live) = app.engine.job(&job.id) {
        // An end published before this subscription is seen by `is_finished`.
        let mut rx = live.subscribe();
        let _ = tokio::time::timeout(wait, async {
            while !live.is_finished() {
                match rx.recv().await {
                    Ok(Published::Done) | Err(RecvError::Closed) => break,
                    Ok(Published::Event(..)) | Err(RecvError::Lagged(_)) => {}
                }
            }
        })
        .await;
    }
    // Results are stored before they are published: storage has every one announced so far.
    let events = app
        .store
        .read(|txn, dbs| record::events_after(txn, dbs, &job.id, 0, usize::MAX))?;
    let mut by_item: Vec<Option<Box<RawValue>>> = vec![None; job.total as usize];
    for (_, json) in events {
        let Some(item_id) = item_id_of(&json) else {
            continue;
        };
        if let Some(slot) = by_item.get_mut(item_id as usize - 1) {
            *slot = std::str::from_utf8(&json)
                .ok()
                .and_then(|text| RawValue::from_string(text.to_owned()).ok());
        }
    }
    let pending: Vec<u32> = (1..=job.total)
        .filter(|id| by_item[*id as usize - 1].is_none())
        .collect();
    let finished = pending.is_empty();
    let id = job.id.clone();
    Ok(response::json(
        StatusCode::OK,
        &Answer {
            status: if finished { "done" } else { "running" },
            stream_url: format!("/jobs/{id}/events"),
            results_url: format!("/jobs/{id}/results"),
            job_id: id,
            total: job.total,
            results: by_item.into_iter().flatten().collect(),
            pending,
            rejected,
        },
    ))
}

/// `wait_s` as a duration: at least a tenth of a second, at most `check.max_wait_s`.
fn wait_of(wait_s: Option<f64>, default: Duration, max: Duration) -> Result<Duration, ApiError> {
    let Some(seconds) = wait_s else {
        return Ok(default.min(max));
    };
    if !seconds.is_finite() || seconds < 0.1 || seconds > max.as_secs_f64() {
        return Err(ApiError::field(
            "wait_s",
            format!("必须在 0.1 到 {} 秒之间", max.as_secs()),
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// The `item_id` of a stored result event (other events have none).
pub(super) fn item_id_of(json: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    struct ItemId {
        item_id: u32,
    }
    serde_json::from_slice::<ItemId>(json)
        .ok()
        .map(|e| e.item_id)
        .filter(|id| *id > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded() {
        let (default, max) = (Duration::from_secs(10), Duration::from_secs(30));
        assert_eq!(wait_of(None, default, max).unwrap(), default);
        assert_eq!(
            wait_of(Some(2.5), default, max).unwrap(),
            Duration::from_millis(2500)
        );
        for bad in [0.0, -1.0, 31.0, f64::NAN] {
            assert!(wait_of(Some(bad), default, max).is_err(), "{bad}");
        }
    }

    #[test]
    fn item_ids_are_read_from_events() {
        assert_eq!(item_id_of(br#"{"item_id":7,"url":"u"}"#), Some(7));
        assert_eq!(item_id_of(br#"{"item_id":0}"#), None);
        assert_eq!(item_id_of(b"nonsense"), None);
    }
}
