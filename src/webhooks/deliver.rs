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

use super::change::{Attempt, Change};
use super::record::{self, DeliveryRecord, DeliveryStatus, WebhookRecord};
use super::{Webhooks, event, signature, target};
use crate::timefmt;

/// Finished deliveries deleted per webhook in one write of the purge.
const PURGE_BATCH: usize = 256;

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
    // Cluster mode: the live nodes, which decide which node sends this webhook's deliveries.
    let mut senders = hooks.shared.as_ref().map(|shared| shared.senders_change());
    loop {
        if let Some(shared) = &hooks.shared
            && !shared.delivers(&id)
        {
            // Another node sends this webhook's deliveries; this one takes over when the live
            // nodes change so that it falls here (a deletion's apply stops this worker on every
            // node).
            tokio::select! {
                () = senders_changed(&mut senders) => {}
                () = wake.notified() => {}
                () = stop.cancelled() => return,
            }
            continue;
        }
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
            // A node that joined may take this webhook over: asked again at once.
            () = senders_changed(&mut senders) => {}
            () = stop.cancelled() => return,
        }
    }
}

/// Returns when the live nodes change (never in single-node mode, or once the cluster is gone).
async fn senders_changed(senders: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    let changed = match senders {
        Some(receiver) => receiver.changed().await.is_ok(),
        None => false,
    };
    if !changed {
        std::future::pending::<()>().await;
    }
}

async fn deliver_one(hooks: &Arc<Webhooks>, id: &str, seq: u64) {
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
            .change(Change::Settled {
                id: id.to_owned(),
                seq,
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
    let attempted = Change::Attempted {
        id: id.to_owned(),
        seq,
        outcome,
        at_ms: now,
        jitter: rand::random(),
    };
    if let Err(err) = hooks.change(attempted).await {
        tracing::warn!(error = %err, "recording a delivery attempt failed; it will be sent again");
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

/// Deletes finished deliveries older than `webhooks.delivery_retention_s` (in cluster mode on the
/// one node the purge falls to, through the log).
pub async fn purge(hooks: &Arc<Webhooks>) {
    if hooks.shared.as_ref().is_some_and(|shared| !shared.purges()) {
        return;
    }
    let retention = u64::try_from(hooks.config.delivery_retention.as_millis()).unwrap_or(u64::MAX);
    let cutoff_ms = timefmt::now_ms().saturating_sub(retention);
    let mut total = 0;
    loop {
        let purge = Change::Purge {
            cutoff_ms,
            max: PURGE_BATCH,
        };
        match hooks.change(purge).await {
            Ok(applied) if applied.purged > 0 => total += applied.purged,
            Ok(_) => break,
            Err(err) => {
                tracing::warn!(error = %err, "purging old deliveries failed");
                break;
            }
        }
    }
    if total > 0 {
        tracing::info!(deliveries = total, "deleted old webhook deliveries");
    }
}
