//! Webhooks and deliveries in LMDB, and the outbox: a delivery is written in the same write
//! transaction as the change that causes it, so a committed change always has its deliveries.
//!
//! Layout:
//! - `webhooks`: webhook id → [`WebhookRecord`].
//! - `webhook_owner`: owner key id ++ 0x00 ++ webhook id → empty: a key's webhooks.
//! - `deliveries`: webhook id ++ 0x00 ++ sequence (u64 BE) → [`DeliveryRecord`]: a webhook's
//!   deliveries, oldest first.
//! - `delivery_due`: webhook id ++ 0x00 ++ due time (ms, u64 BE) ++ sequence (u64 BE) → empty:
//!   the pending attempts of a webhook, soonest first.
//! - `meta` `webhooks.delivery_seq`: the last sequence number given (ids are never reused).

use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use serde::{Deserialize, Serialize};

use super::event::{self, EventType};
use crate::store::keys::{borrowed, prefixed, under};
use crate::store::{Dbs, StoreError, codec};

const SEQ_KEY: &[u8] = b"webhooks.delivery_seq";

/// A webhook as stored. The secret is kept: every delivery is signed with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WebhookRecord {
    pub id: String,
    pub owner: String,
    pub url: String,
    pub events: Vec<EventType>,
    #[serde(default)]
    pub description: Option<String>,
    pub secret: String,
    #[serde(default)]
    pub disabled: bool,
    /// `manual` (PATCH) or `failing` (every delivery failed for `webhooks.disable_after_s`).
    #[serde(default)]
    pub disabled_reason: Option<String>,
    pub created_at_ms: u64,
    pub updated_at_ms: u64,
    /// The first failure since the last success.
    #[serde(default)]
    pub failing_since_ms: Option<u64>,
    #[serde(default)]
    pub last_success_ms: Option<u64>,
    /// Deliveries stored for it (bounded by `webhooks.max_stored_deliveries`).
    #[serde(default)]
    pub stored_deliveries: u64,
}

impl WebhookRecord {
    pub fn wants(&self, kind: EventType) -> bool {
        self.events.contains(&kind)
    }
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// One event on its way to one webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub seq: u64,
    pub webhook_id: String,
    pub event: EventType,
    pub created_at_ms: u64,
    /// The exact body every attempt sends.
    pub body: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Retries go on until this plus `webhooks.retry_window_s` (the event's time, or the time of
    /// a redelivery).
    pub retry_from_ms: u64,
    #[serde(default)]
    pub next_attempt_at_ms: Option<u64>,
    #[serde(default)]
    pub last_attempt_at_ms: Option<u64>,
    #[serde(default)]
    pub last_status_code: Option<u16>,
    #[serde(default)]
    pub last_error: Option<String>,
    #[serde(default)]
    pub delivered_at_ms: Option<u64>,
}

fn owner_key(owner: &str, id: &str) -> Vec<u8> {
    let mut key = prefixed(owner);
    key.extend_from_slice(id.as_bytes());
    key
}

fn delivery_key(webhook_id: &str, seq: u64) -> Vec<u8> {
    let mut key = prefixed(webhook_id);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn due_key(webhook_id: &str, due_ms: u64, seq: u64) -> Vec<u8> {
    let mut key = prefixed(webhook_id);
    key.extend_from_slice(&due_ms.to_be_bytes());
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// The `(due, seq)` of a `delivery_due` key of `webhook_id`.
fn parse_due(webhook_id: &str, key: &[u8]) -> Option<(u64, u64)> {
    let tail = key.get(webhook_id.len() + 1..)?;
    let due = u64::from_be_bytes(tail.get(..8)?.try_into().ok()?);
    let seq = u64::from_be_bytes(tail.get(8..16)?.try_into().ok()?);
    Some((due, seq))
}

fn seq_of(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

pub fn put_webhook(txn: &mut RwTxn, dbs: &Dbs, hook: &WebhookRecord) -> Result<(), StoreError> {
    dbs.webhooks
        .put(txn, hook.id.as_bytes(), &codec::encode(hook))?;
    dbs.webhook_owner
        .put(txn, &owner_key(&hook.owner, &hook.id), &[])?;
    Ok(())
}

pub fn get_webhook(txn: &RoTxn, dbs: &Dbs, id: &str) -> Result<Option<WebhookRecord>, StoreError> {
    // LMDB refuses empty and very long keys; no such id was ever stored.
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    dbs.webhooks
        .get(txn, id.as_bytes())?
        .map(|bytes| codec::decode(bytes, "webhook"))
        .transpose()
}

/// `owner`'s webhooks, in id order.
pub fn webhooks_of(txn: &RoTxn, dbs: &Dbs, owner: &str) -> Result<Vec<WebhookRecord>, StoreError> {
    let prefix = prefixed(owner);
    let range = under(&prefix);
    let mut out = Vec::new();
    for entry in dbs.webhook_owner.range(txn, &borrowed(&range))? {
        let (key, _) = entry?;
        let id = std::str::from_utf8(&key[prefix.len()..])
            .map_err(|_| StoreError::Corrupt("webhook owner index"))?;
        if let Some(hook) = get_webhook(txn, dbs, id)? {
            out.push(hook);
        }
    }
    Ok(out)
}

/// Every webhook (at start-up, to find pending deliveries).
pub fn all_webhook_ids(txn: &RoTxn, dbs: &Dbs) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for entry in dbs.webhooks.iter(txn)? {
        let (key, _) = entry?;
        out.push(String::from_utf8_lossy(key).into_owned());
    }
    Ok(out)
}

/// Deletes a webhook with its deliveries.
pub fn delete_webhook(txn: &mut RwTxn, dbs: &Dbs, hook: &WebhookRecord) -> Result<(), StoreError> {
    dbs.webhooks.delete(txn, hook.id.as_bytes())?;
    dbs.webhook_owner
        .delete(txn, &owner_key(&hook.owner, &hook.id))?;
    let range = under(&prefixed(&hook.id));
    dbs.deliveries.delete_range(txn, &borrowed(&range))?;
    dbs.delivery_due.delete_range(txn, &borrowed(&range))?;
    Ok(())
}

fn next_seq(txn: &mut RwTxn, dbs: &Dbs) -> Result<u64, StoreError> {
    let last = dbs
        .meta
        .get(txn, SEQ_KEY)?
        .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
        .map_or(0, u64::from_be_bytes);
    let next = last + 1;
    dbs.meta.put(txn, SEQ_KEY, &next.to_be_bytes())?;
    Ok(next)
}

/// Numbers the next deliveries `first`, `first + 1` … (cluster mode: from the log's sequence of
/// the change that makes them, the same on every node whatever each numbered before).
pub fn number_deliveries_from(txn: &mut RwTxn, dbs: &Dbs, first: u64) -> Result<(), StoreError> {
    dbs.meta
        .put(txn, SEQ_KEY, &first.saturating_sub(1).to_be_bytes())?;
    Ok(())
}

pub fn put_delivery(txn: &mut RwTxn, dbs: &Dbs, d: &DeliveryRecord) -> Result<(), StoreError> {
    dbs.deliveries
        .put(txn, &delivery_key(&d.webhook_id, d.seq), &codec::encode(d))?;
    Ok(())
}

pub fn get_delivery(
    txn: &RoTxn,
    dbs: &Dbs,
    webhook_id: &str,
    seq: u64,
) -> Result<Option<DeliveryRecord>, StoreError> {
    dbs.deliveries
        .get(txn, &delivery_key(webhook_id, seq))?
        .map(|bytes| codec::decode(bytes, "delivery"))
        .transpose()
}

/// Sets (or clears, with `None`) when `d` is next attempted, in the record and the due index.
pub fn schedule(
    txn: &mut RwTxn,
    dbs: &Dbs,
    d: &mut DeliveryRecord,
    at_ms: Option<u64>,
) -> Result<(), StoreError> {
    if let Some(old) = d.next_attempt_at_ms {
        dbs.delivery_due
            .delete(txn, &due_key(&d.webhook_id, old, d.seq))?;
    }
    d.next_attempt_at_ms = at_ms;
    if let Some(at) = at_ms {
        dbs.delivery_due
            .put(txn, &due_key(&d.webhook_id, at, d.seq), &[])?;
    }
    put_delivery(txn, dbs, d)
}

/// Deletes `hook`'s oldest stored delivery to make room for a new one: a finished one, or, when a
/// receiver has been down long enough for `cap` events to wait, the oldest waiting one (logged and
/// counted: the bound on stored bytes wins over keeping every event of a dead receiver).
fn evict_oldest(txn: &mut RwTxn, dbs: &Dbs, hook: &mut WebhookRecord) -> Result<(), StoreError> {
    let range = under(&prefixed(&hook.id));
    let oldest = match dbs.deliveries.range(txn, &borrowed(&range))?.next() {
        Some(entry) => codec::decode::<DeliveryRecord>(entry?.1, "delivery")?,
        None => {
            hook.stored_deliveries = 0;
            return Ok(());
        }
    };
    let status = match oldest.status {
        DeliveryStatus::Pending => {
            tracing::warn!(
                webhook = %hook.id,
                delivery = %event::delivery_id(oldest.seq),
                "webhook.delivery_dropped: the webhook holds as many deliveries as it may; the oldest, still waiting, is dropped"
            );
            "pending"
        }
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
    };
    metrics::counter!("panlink_webhook_deliveries_evicted_total", "status" => status).increment(1);
    let mut doomed = oldest;
    schedule(txn, dbs, &mut doomed, None)?;
    dbs.deliveries
        .delete(txn, &delivery_key(&hook.id, doomed.seq))?;
    hook.stored_deliveries = hook.stored_deliveries.saturating_sub(1);
    Ok(())
}

/// An event to queue: its kind, its `data`, when it happened.
pub struct Event<'a> {
    pub kind: EventType,
    pub data: &'a serde_json::Value,
    pub at_ms: u64,
}

/// Queues an event for one webhook, due at once: the outbox write. Keeps at most `cap`
/// deliveries per webhook (the oldest go first). Answers the delivery.
pub fn enqueue(
    txn: &mut RwTxn,
    dbs: &Dbs,
    hook: &mut WebhookRecord,
    event: &Event<'_>,
    cap: u64,
) -> Result<DeliveryRecord, StoreError> {
    let (kind, now_ms) = (event.kind, event.at_ms);
    while hook.stored_deliveries >= cap.max(1) {
        evict_oldest(txn, dbs, hook)?;
    }
    let seq = next_seq(txn, dbs)?;
    let mut delivery = DeliveryRecord {
        seq,
        webhook_id: hook.id.clone(),
        event: kind,
        created_at_ms: now_ms,
        body: event::body(seq, kind, now_ms, event.data),
        status: DeliveryStatus::Pending,
        attempts: 0,
        retry_from_ms: now_ms,
        next_attempt_at_ms: None,
        last_attempt_at_ms: None,
        last_status_code: None,
        last_error: None,
        delivered_at_ms: None,
    };
    schedule(txn, dbs, &mut delivery, Some(now_ms))?;
    hook.stored_deliveries += 1;
    put_webhook(txn, dbs, hook)?;
    Ok(delivery)
}

/// Queues an event for every enabled webhook of `owner` subscribed to it; answers their ids
/// (to wake their workers after the commit).
pub fn enqueue_for_owner(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    event: &Event<'_>,
    cap: u64,
) -> Result<Vec<String>, StoreError> {
    let hooks = webhooks_of(txn, dbs, owner)?;
    let mut woken = Vec::new();
    for mut hook in hooks
        .into_iter()
        .filter(|h| !h.disabled && h.wants(event.kind))
    {
        enqueue(txn, dbs, &mut hook, event, cap)?;
        woken.push(hook.id.clone());
    }
    Ok(woken)
}

/// Queues an event for the webhooks `ids` (a monitor's) that belong to `owner`, are enabled and
/// subscribed to it.
pub fn enqueue_for_ids(
    txn: &mut RwTxn,
    dbs: &Dbs,
    owner: &str,
    ids: &[String],
    event: &Event<'_>,
    cap: u64,
) -> Result<Vec<String>, StoreError> {
    let mut woken = Vec::new();
    for id in ids {
        let Some(mut hook) = get_webhook(txn, dbs, id)? else {
            continue;
        };
        if hook.owner == owner && !hook.disabled && hook.wants(event.kind) {
            enqueue(txn, dbs, &mut hook, event, cap)?;
            woken.push(hook.id);
        }
    }
    Ok(woken)
}

/// Up to `limit` deliveries of `webhook_id` due at `now_ms` or before, soonest first, skipping
/// the sequence numbers `skip` (attempts in flight); and the time the next one after those is due.
pub fn due(
    txn: &RoTxn,
    dbs: &Dbs,
    webhook_id: &str,
    now_ms: u64,
    limit: usize,
    skip: &[u64],
) -> Result<(Vec<u64>, Option<u64>), StoreError> {
    let range = under(&prefixed(webhook_id));
    let mut ready = Vec::new();
    for entry in dbs.delivery_due.range(txn, &borrowed(&range))? {
        let (key, _) = entry?;
        let (due, seq) = parse_due(webhook_id, key).ok_or(StoreError::Corrupt("delivery due"))?;
        if skip.contains(&seq) {
            continue;
        }
        if due > now_ms || ready.len() == limit {
            return Ok((ready, Some(due)));
        }
        ready.push(seq);
    }
    Ok((ready, None))
}

/// A page of `webhook_id`'s deliveries, newest first, older than `before` (a sequence number);
/// `status` filters.
pub fn deliveries_page(
    txn: &RoTxn,
    dbs: &Dbs,
    webhook_id: &str,
    before: Option<u64>,
    status: Option<DeliveryStatus>,
    limit: usize,
) -> Result<(Vec<DeliveryRecord>, Option<u64>), StoreError> {
    let prefix = prefixed(webhook_id);
    let start = Bound::Included(prefix.clone());
    let end = match before {
        Some(seq) => Bound::Excluded(delivery_key(webhook_id, seq)),
        None => under(&prefix).1,
    };
    let range = (start, end);
    let mut out = Vec::new();
    for entry in dbs.deliveries.rev_range(txn, &borrowed(&range))? {
        let (key, value) = entry?;
        if out.len() == limit {
            return Ok((out, seq_of(key).map(|seq| seq + 1)));
        }
        let d: DeliveryRecord = codec::decode(value, "delivery")?;
        if status.is_none_or(|s| s == d.status) {
            out.push(d);
        }
    }
    Ok((out, None))
}

/// Deletes `webhook_id`'s finished deliveries whose event is older than `cutoff_ms`, at most
/// `max` of them; answers how many.
pub fn purge_finished(
    txn: &mut RwTxn,
    dbs: &Dbs,
    webhook_id: &str,
    cutoff_ms: u64,
    max: usize,
) -> Result<usize, StoreError> {
    let range = under(&prefixed(webhook_id));
    let mut doomed = Vec::new();
    for entry in dbs.deliveries.range(txn, &borrowed(&range))? {
        let (key, value) = entry?;
        let d: DeliveryRecord = codec::decode(value, "delivery")?;
        if d.created_at_ms >= cutoff_ms || doomed.len() == max {
            break;
        }
        if d.status != DeliveryStatus::Pending {
            doomed.push(key.to_vec());
        }
    }
    for key in &doomed {
        dbs.deliveries.delete(txn, key)?;
    }
    if !doomed.is_empty()
        && let Some(mut hook) = get_webhook(txn, dbs, webhook_id)?
    {
        hook.stored_deliveries = hook.stored_deliveries.saturating_sub(doomed.len() as u64);
        put_webhook(txn, dbs, &hook)?;
    }
    Ok(doomed.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_keys_sort_by_time_within_a_webhook_and_parse_back() {
        let a = due_key("wh_a", 5, 9);
        let b = due_key("wh_a", 6, 1);
        let c = due_key("wh_b", 1, 1);
        assert!(a < b && b < c);
        assert_eq!(parse_due("wh_a", &a), Some((5, 9)));
        assert_eq!(seq_of(&delivery_key("wh_a", 77)), Some(77));
        // A webhook id that is a prefix of another does not share its range.
        let (lo, hi) = under(&prefixed("wh_a"));
        let other = due_key("wh_ab", 1, 1);
        let inside = |k: &Vec<u8>| {
            matches!(&lo, Bound::Included(l) if k >= l)
                && matches!(&hi, Bound::Excluded(h) if k < h)
        };
        assert!(inside(&a) && !inside(&other));
        assert!(inside(&due_key("wh_a", u64::MAX, u64::MAX)));
    }
}
