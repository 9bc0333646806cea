//! Every change of webhooks and their deliveries as a value ([`Change`]), and the one function
//! that applies a change to storage ([`apply`]). A change carries every input its application
//! needs (times, ids, the retry's jitter), so applying it is a function of the change and what is
//! stored: single-node mode applies it in the write that makes it, and in cluster mode every node
//! applies the same changes in the same order (`shared.rs`) and keeps the same copy, down to the
//! delivery ids.
//!
//! It must not send anything, nor read the clock or a random source.

use serde::{Deserialize, Serialize};

use super::event::EventType;
use super::record::{self, DeliveryRecord, DeliveryStatus, Event, WebhookRecord};
use crate::store::{Dbs, StoreError};

/// What one attempt came to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// It answered another status.
    Refused(u16),
    /// No answer: connection, TLS, timeout, or an address that may not be contacted.
    Failed(String),
}

/// The retry and disable rules, from the configuration (the same on every node of a cluster).
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub retry_base_ms: u64,
    pub retry_window_ms: u64,
    pub disable_after_ms: u64,
    /// `webhooks.max_stored_deliveries`.
    pub max_stored: u64,
}

impl Policy {
    /// When attempt `attempts + 1` is due after attempt `attempts` failed at `now`, with `jitter`
    /// in `[0, 1)`; `None` once the retry window (from `retry_from`) is over.
    pub fn next_attempt(
        &self,
        attempts: u32,
        retry_from: u64,
        now: u64,
        jitter: f64,
    ) -> Option<u64> {
        let end = retry_from.saturating_add(self.retry_window_ms);
        if now >= end {
            return None;
        }
        let exponent = attempts.saturating_sub(1).min(30);
        let wait = self.retry_base_ms.saturating_mul(1 << exponent);
        let wait = wait.saturating_add((wait as f64 * 0.25 * jitter) as u64);
        Some(now.saturating_add(wait).min(end))
    }
}

/// The fields a `PATCH` sets (`None`: unchanged; `description: Some(None)` clears it).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Patch {
    pub url: Option<String>,
    pub events: Option<Vec<EventType>>,
    pub description: Option<Option<String>>,
    pub disabled: Option<bool>,
}

/// Whom an event is for.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Audience {
    /// Every enabled webhook of the owner subscribed to the event.
    Owner,
    /// These webhooks (a monitor's), where they are the owner's, enabled and subscribed.
    Ids(Vec<String>),
}

/// One change of webhooks or deliveries.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new webhook, unless its owner has `limit` already.
    Create { hook: WebhookRecord, limit: usize },
    Patch {
        id: String,
        patch: Patch,
        at_ms: u64,
    },
    /// The webhook and its deliveries.
    Delete { id: String },
    /// A `ping` delivery.
    Ping { id: String, at_ms: u64 },
    /// The delivery is due again at once, with a new retry window.
    Redeliver { id: String, seq: u64, at_ms: u64 },
    /// An attempt of a delivery and what it came to.
    Attempted {
        id: String,
        seq: u64,
        outcome: Attempt,
        at_ms: u64,
        /// In `[0, 1)`: spreads the retries of deliveries that failed together.
        jitter: f64,
    },
    /// A delivery found due though no longer pending leaves the due index.
    Settled { id: String, seq: u64 },
    /// Finished deliveries of every webhook older than `cutoff_ms` go (at most `max` per
    /// webhook), and names of events older than it.
    Purge { cutoff_ms: u64, max: usize },
    /// An event a product found, for its owner's webhooks. A `name` makes it once-only: an event
    /// of a name seen before is dropped (every node of a cluster finds a job's completion).
    Event {
        owner: String,
        audience: Audience,
        kind: EventType,
        data: serde_json::Value,
        at_ms: u64,
        #[serde(default)]
        name: Option<String>,
    },
}

/// What applying a change did.
#[derive(Debug, Default)]
pub struct Applied {
    /// Webhooks whose workers should look for due deliveries (after the commit).
    pub wake: Vec<String>,
    /// A deleted webhook, whose worker stops.
    pub forget: Option<String>,
    /// The webhook as stored after a create or a patch (`None`: refused or gone).
    pub hook: Option<WebhookRecord>,
    /// The delivery a ping made or a redelivery changed (`None`: the webhook or delivery is gone).
    pub delivery: Option<DeliveryRecord>,
    /// The webhook an attempt's failure disabled.
    pub disabled: Option<WebhookRecord>,
    /// Deliveries a purge deleted.
    pub purged: usize,
}

/// The `meta` key of an event name seen.
fn name_key(name: &str) -> Vec<u8> {
    let mut key = b"webhooks/event/".to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

/// Applies `change` in the caller's write.
pub fn apply(
    txn: &mut heed::RwTxn,
    dbs: &Dbs,
    change: &Change,
    policy: &Policy,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    match change {
        Change::Create { hook, limit } => {
            if record::get_webhook(txn, dbs, &hook.id)?.is_none()
                && record::webhooks_of(txn, dbs, &hook.owner)?.len() < *limit
            {
                record::put_webhook(txn, dbs, hook)?;
                applied.wake.push(hook.id.clone());
                applied.hook = Some(hook.clone());
            }
        }
        Change::Patch { id, patch, at_ms } => {
            if let Some(mut hook) = record::get_webhook(txn, dbs, id)? {
                if let Some(url) = &patch.url {
                    hook.url.clone_from(url);
                }
                if let Some(events) = &patch.events {
                    hook.events.clone_from(events);
                }
                if let Some(description) = &patch.description {
                    hook.description.clone_from(description);
                }
                match patch.disabled {
                    Some(true) if !hook.disabled => {
                        hook.disabled = true;
                        hook.disabled_reason = Some("manual".into());
                    }
                    Some(false) => {
                        hook.disabled = false;
                        hook.disabled_reason = None;
                        hook.failing_since_ms = None;
                    }
                    _ => {}
                }
                hook.updated_at_ms = *at_ms;
                record::put_webhook(txn, dbs, &hook)?;
                applied.wake.push(hook.id.clone());
                applied.hook = Some(hook);
            }
        }
        Change::Delete { id } => {
            if let Some(hook) = record::get_webhook(txn, dbs, id)? {
                record::delete_webhook(txn, dbs, &hook)?;
            }
            applied.forget = Some(id.clone());
        }
        Change::Ping { id, at_ms } => {
            if let Some(mut hook) = record::get_webhook(txn, dbs, id)? {
                let data = serde_json::json!({ "webhook_id": hook.id });
                let event = Event {
                    kind: EventType::Ping,
                    data: &data,
                    at_ms: *at_ms,
                };
                applied.delivery = Some(record::enqueue(
                    txn,
                    dbs,
                    &mut hook,
                    &event,
                    policy.max_stored,
                )?);
                applied.wake.push(id.clone());
            }
        }
        Change::Redeliver { id, seq, at_ms } => {
            if let Some(mut d) = record::get_delivery(txn, dbs, id, *seq)? {
                d.status = DeliveryStatus::Pending;
                d.retry_from_ms = *at_ms;
                record::schedule(txn, dbs, &mut d, Some(*at_ms))?;
                applied.delivery = Some(d);
                applied.wake.push(id.clone());
            }
        }
        Change::Attempted {
            id,
            seq,
            outcome,
            at_ms,
            jitter,
        } => {
            applied.disabled =
                record_outcome(txn, dbs, id, *seq, outcome, *at_ms, *jitter, policy)?;
        }
        Change::Settled { id, seq } => {
            if let Some(mut d) = record::get_delivery(txn, dbs, id, *seq)?
                && d.status != DeliveryStatus::Pending
            {
                record::schedule(txn, dbs, &mut d, None)?;
            }
        }
        Change::Purge { cutoff_ms, max } => {
            for id in record::all_webhook_ids(txn, dbs)? {
                applied.purged += record::purge_finished(txn, dbs, &id, *cutoff_ms, *max)?;
            }
            let prefix = name_key("");
            let mut old = Vec::new();
            for entry in dbs.meta.prefix_iter(txn, &prefix)? {
                let (key, at) = entry?;
                let at = at.try_into().map(u64::from_be_bytes).unwrap_or(0);
                if at < *cutoff_ms {
                    old.push(key.to_vec());
                }
            }
            for key in old {
                dbs.meta.delete(txn, &key)?;
            }
        }
        Change::Event {
            owner,
            audience,
            kind,
            data,
            at_ms,
            name,
        } => {
            if let Some(name) = name {
                let key = name_key(name);
                if dbs.meta.get(txn, &key)?.is_some() {
                    return Ok(applied);
                }
                dbs.meta.put(txn, &key, &at_ms.to_be_bytes())?;
            }
            let event = Event {
                kind: *kind,
                data,
                at_ms: *at_ms,
            };
            applied.wake = match audience {
                Audience::Owner => {
                    record::enqueue_for_owner(txn, dbs, owner, &event, policy.max_stored)?
                }
                Audience::Ids(ids) => {
                    record::enqueue_for_ids(txn, dbs, owner, ids, &event, policy.max_stored)?
                }
            };
        }
    }
    Ok(applied)
}

/// Records an attempt of `seq`: the delivery's new state and next attempt, the webhook's health.
/// Answers the webhook when this failure disabled it.
#[allow(clippy::too_many_arguments)]
fn record_outcome(
    txn: &mut heed::RwTxn,
    dbs: &Dbs,
    id: &str,
    seq: u64,
    outcome: &Attempt,
    now: u64,
    jitter: f64,
    policy: &Policy,
) -> Result<Option<WebhookRecord>, StoreError> {
    let (Some(mut hook), Some(mut d)) = (
        record::get_webhook(txn, dbs, id)?,
        record::get_delivery(txn, dbs, id, seq)?,
    ) else {
        return Ok(None);
    };
    if d.status != DeliveryStatus::Pending {
        return Ok(None);
    }
    d.attempts += 1;
    d.last_attempt_at_ms = Some(now);
    let mut disabled = None;
    match outcome {
        Attempt::Delivered(status) => {
            d.status = DeliveryStatus::Delivered;
            d.delivered_at_ms = Some(now);
            d.last_status_code = Some(*status);
            d.last_error = None;
            record::schedule(txn, dbs, &mut d, None)?;
            hook.failing_since_ms = None;
            hook.last_success_ms = Some(now);
        }
        Attempt::Refused(_) | Attempt::Failed(_) => {
            match outcome {
                Attempt::Refused(status) => {
                    d.last_status_code = Some(*status);
                    d.last_error = Some(format!("HTTP {status}"));
                }
                Attempt::Failed(error) => {
                    d.last_status_code = None;
                    d.last_error = Some(error.chars().take(300).collect());
                }
                Attempt::Delivered(_) => {}
            }
            let next = policy.next_attempt(d.attempts, d.retry_from_ms, now, jitter);
            if next.is_none() {
                d.status = DeliveryStatus::Failed;
            }
            record::schedule(txn, dbs, &mut d, next)?;
            let since = *hook.failing_since_ms.get_or_insert(now);
            if !hook.disabled && now.saturating_sub(since) >= policy.disable_after_ms {
                hook.disabled = true;
                hook.disabled_reason = Some("failing".into());
                disabled = Some(hook.clone());
            }
        }
    }
    hook.updated_at_ms = hook.updated_at_ms.max(now);
    record::put_webhook(txn, dbs, &hook)?;
    Ok(disabled)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: u64 = 3_600_000;

    #[test]
    fn retries_double_within_the_window_then_stop() {
        let policy = Policy {
            retry_base_ms: 60_000,
            retry_window_ms: 24 * HOUR,
            disable_after_ms: 72 * HOUR,
            max_stored: 1000,
        };
        let mut now = 0;
        let mut attempts = 1;
        let mut waits = Vec::new();
        while let Some(next) = policy.next_attempt(attempts, 0, now, 0.0) {
            waits.push(next - now);
            now = next;
            attempts += 1;
        }
        assert_eq!(&waits[..4], &[60_000, 120_000, 240_000, 480_000]);
        // About ten retries in a day, the last one at the window's end.
        assert!((10..=13).contains(&waits.len()), "{waits:?}");
        assert_eq!(now, 24 * HOUR);
        // Jitter adds at most a quarter.
        let jittered = policy.next_attempt(1, 0, 0, 0.999).unwrap();
        assert!((60_000..=75_000).contains(&jittered));
    }
}
