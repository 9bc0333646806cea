//! Delivering: one worker task per webhook, which runs at most
//! `webhooks.concurrency_per_receiver` attempts at once, so a slow or silent receiver only delays
//! its own deliveries. The due index in storage is the queue: a worker reads what is due, attempts
//! it, and records the outcome (and the next attempt) in one write. Nothing is removed from the
//! queue before its outcome is committed, so a crash at any point re-sends, never loses, and the
//! delivery id stays the same.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::record::{self, DeliveryRecord, DeliveryStatus, WebhookRecord};
use super::{Webhooks, event, signature, target};
use crate::store::StoreError;
use crate::timefmt;

/// What one attempt came to.
#[derive(Debug)]
pub enum Attempt {
    /// The receiver answered 2xx.
    Delivered(u16),
    /// It answered another status.
    Refused(u16),
    /// No answer: connection, TLS, timeout, or an address that may not be contacted.
    Failed(String),
}

/// Runs the deliveries of webhook `id` until `stop` (deletion or shutdown).
pub async fn run_worker(
    hooks: Arc<Webhooks>,
    id: String,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let limit = hooks.config.concurrency_per_receiver;
    let mut running: JoinSet<()> = JoinSet::new();
    // Sequence numbers being attempted, by task.
    let mut in_flight: HashMap<tokio::task::Id, u64> = HashMap::with_capacity(limit);
    loop {
        let skip: Vec<u64> = in_flight.values().copied().collect();
        let now = timefmt::now_ms();
        let hook = hooks
            .store
            .read(|txn, dbs| record::get_webhook(txn, dbs, &id));
        let next_due = match hook {
            Ok(Some(hook)) if !hook.disabled => {
                let room = limit.saturating_sub(in_flight.len());
                match hooks
                    .store
                    .read(|txn, dbs| record::due(txn, dbs, &id, now, room, &skip))
                {
                    Ok((ready, next)) => {
                        for seq in ready {
                            let hooks = Arc::clone(&hooks);
                            let id = id.clone();
                            let task = running.spawn(async move {
                                deliver_one(&hooks, &id, seq).await;
                            });
                            in_flight.insert(task.id(), seq);
                        }
                        next
                    }
                    Err(err) => {
                        tracing::warn!(webhook = %id, error = %err, "reading due deliveries failed");
                        Some(now + 1_000)
                    }
                }
            }
            Ok(Some(_)) => None,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(webhook = %id, error = %err, "reading a webhook failed");
                Some(now + 1_000)
            }
        };
        // With every slot taken, only a finished attempt makes room.
        let next_due = next_due.filter(|_| in_flight.len() < limit);
        let sleep = async {
            match next_due {
                Some(at) => {
                    let wait = at.saturating_sub(timefmt::now_ms());
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(done) = running.join_next_with_id(), if !running.is_empty() => {
                let task = match done {
                    Ok((task, ())) => task,
                    Err(err) => err.id(),
                };
                in_flight.remove(&task);
            }
            () = wake.notified() => {}
            () = sleep => {}
            () = stop.cancelled() => return,
        }
    }
}

async fn deliver_one(hooks: &Webhooks, id: &str, seq: u64) {
    let read = hooks.store.read(|txn, dbs| {
        Ok((
            record::get_webhook(txn, dbs, id)?,
            record::get_delivery(txn, dbs, id, seq)?,
        ))
    });
    let (hook, delivery) = match read {
        Ok((Some(hook), Some(delivery))) => (hook, delivery),
        Ok(_) => return,
        Err(err) => {
            tracing::warn!(webhook = %id, error = %err, "reading a delivery failed");
            return;
        }
    };
    if delivery.status != DeliveryStatus::Pending {
        let _ = hooks
            .store
            .write(move |txn, dbs| {
                let mut d = delivery;
                record::schedule(txn, dbs, &mut d, None)
            })
            .await;
        return;
    }
    let outcome = send(hooks, &hook, &delivery).await;
    let now = timefmt::now_ms();
    match &outcome {
        Attempt::Delivered(status) => {
            tracing::debug!(webhook = %id, delivery = %event::delivery_id(seq), status, "delivered");
        }
        Attempt::Refused(status) => {
            tracing::info!(webhook = %id, delivery = %event::delivery_id(seq), status, "delivery refused by the receiver");
        }
        Attempt::Failed(error) => {
            tracing::info!(webhook = %id, delivery = %event::delivery_id(seq), error, "delivery failed");
        }
    }
    metrics::counter!("panlink_webhook_attempts_total", "outcome" => match outcome {
        Attempt::Delivered(_) => "delivered",
        Attempt::Refused(_) => "refused",
        Attempt::Failed(_) => "failed",
    })
    .increment(1);
    let policy = Policy::of(hooks);
    let id = id.to_owned();
    let recorded = hooks
        .store
        .write(move |txn, dbs| record_outcome(txn, dbs, &id, seq, &outcome, now, &policy))
        .await;
    match recorded {
        Ok(Some(disabled)) => {
            tracing::warn!(
                event = "webhook.disabled",
                webhook = %disabled.id,
                url = %disabled.url,
                failing_since = %disabled.failing_since_ms.map(timefmt::rfc3339_ms).unwrap_or_default(),
                "webhook.disabled: every delivery failed since then; PATCH disabled=false turns it back on"
            );
        }
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(error = %err, "recording a delivery attempt failed; it will be sent again");
        }
    }
}

/// One POST of the delivery's body, signed now.
async fn send(hooks: &Webhooks, hook: &WebhookRecord, delivery: &DeliveryRecord) -> Attempt {
    let url = match target::parse(&hook.url, hooks.config.allow_http) {
        Ok(url) => url,
        Err(why) => return Attempt::Failed(why),
    };
    if let Some(refusal) = target::literal_refusal(&url, hooks.config.allow_private) {
        return Attempt::Failed(refusal);
    }
    let t = timefmt::now_ms() / 1000;
    let signature = signature::header(&hook.secret, t, delivery.body.as_bytes());
    let delivery_id = event::delivery_id(delivery.seq);
    let headers = [
        ("x-panlink-event", delivery.event.as_str()),
        ("x-panlink-delivery", delivery_id.as_str()),
        ("x-panlink-signature", signature.as_str()),
    ];
    let body = Bytes::from(delivery.body.clone());
    match hooks
        .client
        .post_bytes(url.as_str(), &headers, "application/json", body)
        .await
    {
        Ok(exchange) if (200..300).contains(&exchange.status) => {
            Attempt::Delivered(exchange.status)
        }
        Ok(exchange) => Attempt::Refused(exchange.status),
        Err(err) => Attempt::Failed(err.to_string()),
    }
}

/// The retry and disable rules, from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub retry_base_ms: u64,
    pub retry_window_ms: u64,
    pub disable_after_ms: u64,
}

impl Policy {
    fn of(hooks: &Webhooks) -> Policy {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Policy {
            retry_base_ms: ms(hooks.config.retry_base),
            retry_window_ms: ms(hooks.config.retry_window),
            disable_after_ms: ms(hooks.config.disable_after),
        }
    }

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

/// Records an attempt of `seq`: the delivery's new state and next attempt, the webhook's health.
/// Answers the webhook when this failure disabled it.
fn record_outcome(
    txn: &mut heed::RwTxn,
    dbs: &crate::store::Dbs,
    id: &str,
    seq: u64,
    outcome: &Attempt,
    now: u64,
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
            let next = policy.next_attempt(d.attempts, d.retry_from_ms, now, rand::random());
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

/// Deletes finished deliveries older than `webhooks.delivery_retention_s`, webhook by webhook.
pub async fn purge(hooks: &Webhooks) {
    let retention = u64::try_from(hooks.config.delivery_retention.as_millis()).unwrap_or(u64::MAX);
    let cutoff = timefmt::now_ms().saturating_sub(retention);
    let Ok(ids) = hooks.store.read(record::all_webhook_ids) else {
        return;
    };
    let mut purged: HashMap<String, usize> = HashMap::new();
    for id in ids {
        loop {
            let hook_id = id.clone();
            match hooks
                .store
                .write(move |txn, dbs| record::purge_finished(txn, dbs, &hook_id, cutoff, 256))
                .await
            {
                Ok(0) => break,
                Ok(n) => *purged.entry(id.clone()).or_default() += n,
                Err(err) => {
                    tracing::warn!(error = %err, "purging old deliveries failed");
                    return;
                }
            }
        }
    }
    let total: usize = purged.values().sum();
    if total > 0 {
        tracing::info!(deliveries = total, "deleted old webhook deliveries");
    }
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
