//! Jobs, items and result events in LMDB.
//!
//! Layout: `jobs` job id → [`JobRecord`]; `items` job id ++ item id (u32 BE) → [`ItemRecord`];
//! `events` job id ++ event id (u32 BE) → the event's JSON (what SSE sends as `data:`). Keys sort
//! by job, then numerically, so an event range is one cursor walk. An item is done exactly when an
//! event for it exists; that is what a restart rebuilds progress from.

use std::collections::BTreeMap;
use std::ops::Bound;

use heed::{RoTxn, RwTxn};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::checker::providers;
use crate::checker::share::{Provider, ShareRef};
use crate::store::{Dbs, StoreError, codec};

/// Characters of a job id.
pub const JOB_ID_LEN: usize = 16;

/// A job's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Cancelled,
}

/// Results by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub done: u32,
    pub valid: u32,
    pub invalid: u32,
    pub locked: u32,
    pub unknown: u32,
}

/// Items and results of one provider in a job.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderTally {
    pub total: u32,
    pub done: u32,
}

/// A job as stored. Counts are written at creation and when the job ends; while it runs, the
/// engine holds them (and rebuilds them from the events after a restart).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    /// Hex SHA-256 of the owning key's secret.
    pub owner: String,
    pub created_at_ms: u64,
    pub finished_at_ms: Option<u64>,
    pub status: JobStatus,
    pub total: u32,
    pub counts: Counts,
    pub providers: BTreeMap<Provider, ProviderTally>,
    /// Items with no known provider (answered `unsupported_provider` at creation).
    #[serde(default)]
    pub unsupported: u32,
}

/// One URL of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemRecord {
    pub url: String,
    pub provider: Option<Provider>,
    pub share_id: Option<String>,
    pub passcode: Option<String>,
    /// [`ShareRef::host`], for the providers that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share_host: Option<String>,
    /// Exactly what the client sent as `meta`.
    #[serde(default)]
    pub meta: Option<Box<RawValue>>,
}

/// The part of an event a restart needs.
#[derive(Debug, Deserialize)]
struct EventHead {
    item_id: u32,
    state: String,
}

fn item_key(job_id: &str, item_id: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(job_id.len() + 4);
    key.extend_from_slice(job_id.as_bytes());
    key.extend_from_slice(&item_id.to_be_bytes());
    key
}

/// Calls `visit` with `(id, value)` for every key of `job_id` in `db` from id `from` on, in order,
/// until it returns `false`.
fn walk_job(
    db: &crate::store::RawDb,
    txn: &RoTxn,
    job_id: &str,
    from: u32,
    mut visit: impl FnMut(u32, &[u8]) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let start = item_key(job_id, from);
    let end = item_key(job_id, u32::MAX);
    let range = (
        Bound::Included(start.as_slice()),
        Bound::Included(end.as_slice()),
    );
    for entry in db.range(txn, &range)? {
        let (key, value) = entry?;
        let id = key
            .get(JOB_ID_LEN..)
            .and_then(|tail| <[u8; 4]>::try_from(tail).ok())
            .map(u32::from_be_bytes)
            .ok_or(StoreError::Corrupt("job key"))?;
        if !visit(id, value)? {
            break;
        }
    }
    Ok(())
}

/// The JSON of a stored event (after its version byte).
fn event_payload(value: &[u8]) -> Result<&[u8], StoreError> {
    match value.split_first() {
        Some((&1, json)) => Ok(json),
        _ => Err(StoreError::Corrupt("event")),
    }
}

pub fn put_job(txn: &mut RwTxn, dbs: &Dbs, job: &JobRecord) -> Result<(), StoreError> {
    dbs.jobs.put(txn, job.id.as_bytes(), &codec::encode(job))?;
    Ok(())
}

pub fn get_job(txn: &RoTxn, dbs: &Dbs, id: &str) -> Result<Option<JobRecord>, StoreError> {
    dbs.jobs
        .get(txn, id.as_bytes())?
        .map(|b| codec::decode(b, "job"))
        .transpose()
}

/// Every job not yet done or cancelled.
pub fn unfinished_jobs(txn: &RoTxn, dbs: &Dbs) -> Result<Vec<JobRecord>, StoreError> {
    let mut out = Vec::new();
    for entry in dbs.jobs.iter(txn)? {
        let (_, bytes) = entry?;
        let job: JobRecord = codec::decode(bytes, "job")?;
        if matches!(job.status, JobStatus::Queued | JobStatus::Running) {
            out.push(job);
        }
    }
    Ok(out)
}

pub fn put_item(
    txn: &mut RwTxn,
    dbs: &Dbs,
    job_id: &str,
    item_id: u32,
    item: &ItemRecord,
) -> Result<(), StoreError> {
    dbs.items
        .put(txn, &item_key(job_id, item_id), &codec::encode(item))?;
    Ok(())
}

pub fn get_item(
    txn: &RoTxn,
    dbs: &Dbs,
    job_id: &str,
    item_id: u32,
) -> Result<Option<ItemRecord>, StoreError> {
    dbs.items
        .get(txn, &item_key(job_id, item_id))?
        .map(|b| codec::decode(b, "item"))
        .transpose()
}

/// The providers of a job's items by item id, and its `(match key, item id)` pairs.
pub type ItemIndex = (Vec<Option<Provider>>, Vec<(u64, u32)>);

/// The provider of every item of a job by item id (1-based, index 0 unused), and the
/// `(match key, item id)` pairs of its urgent index.
pub fn item_index(
    txn: &RoTxn,
    dbs: &Dbs,
    job_id: &str,
    total: u32,
) -> Result<ItemIndex, StoreError> {
    let mut providers = vec![None; total as usize + 1];
    let mut index = Vec::with_capacity(total as usize);
    walk_job(&dbs.items, txn, job_id, 0, |id, bytes| {
        let item: ItemRecord = codec::decode(bytes, "item")?;
        index.push((item.match_key(), id));
        if let Some(slot) = providers.get_mut(id as usize) {
            *slot = item.provider;
        }
        Ok(true)
    })?;
    Ok((providers, index))
}

impl ItemRecord {
    /// The item of a recognized share link.
    pub fn of_share(url: String, share: ShareRef, meta: Option<Box<RawValue>>) -> ItemRecord {
        ItemRecord {
            url,
            provider: Some(share.provider),
            share_id: Some(share.id),
            passcode: share.passcode,
            share_host: share.host.map(str::to_owned),
            meta,
        }
    }

    /// The share this item asks about (`None` for an unsupported link), leaving the record whole:
    /// the result event still needs its URL and `meta`.
    pub fn share(&self) -> Option<ShareRef> {
        let provider = self.provider?;
        Some(ShareRef {
            provider,
            id: self.share_id.clone()?,
            passcode: self.passcode.clone(),
            host: self
                .share_host
                .as_deref()
                .and_then(|host| providers::known_host(provider, host)),
        })
    }

    /// The key `urgent` finds this item by.
    pub fn match_key(&self) -> u64 {
        let share = self.provider.zip(self.share_id.as_deref());
        match_key(share, &self.url)
    }
}

pub fn put_event(
    txn: &mut RwTxn,
    dbs: &Dbs,
    job_id: &str,
    event_id: u32,
    json: &[u8],
) -> Result<(), StoreError> {
    let mut value = Vec::with_capacity(json.len() + 1);
    value.push(codec::CURRENT_VERSION);
    value.extend_from_slice(json);
    dbs.events.put(txn, &item_key(job_id, event_id), &value)?;
    Ok(())
}

/// Events after `after`, in order, `(event id, JSON)`, until about `max_bytes` of JSON (at least
/// one event when there is one): a replay step holds a bounded amount of memory.
pub fn events_after(
    txn: &RoTxn,
    dbs: &Dbs,
    job_id: &str,
    after: u32,
    max_bytes: usize,
) -> Result<Vec<(u32, bytes::Bytes)>, StoreError> {
    let mut out = Vec::new();
    if after == u32::MAX {
        return Ok(out);
    }
    let mut bytes = 0;
    walk_job(&dbs.events, txn, job_id, after + 1, |id, value| {
        let payload = event_payload(value)?;
        bytes += payload.len();
        out.push((id, bytes::Bytes::copy_from_slice(payload)));
        Ok(bytes < max_bytes)
    })?;
    Ok(out)
}

/// For a restart: `(item id, state)` of every recorded event of a job, and the last event id.
pub fn recorded_results(
    txn: &RoTxn,
    dbs: &Dbs,
    job_id: &str,
) -> Result<(Vec<(u32, String)>, u32), StoreError> {
    let mut out = Vec::new();
    let mut last = 0;
    walk_job(&dbs.events, txn, job_id, 0, |id, value| {
        let head: EventHead = serde_json::from_slice(event_payload(value)?)
            .map_err(|_| StoreError::Corrupt("event"))?;
        out.push((head.item_id, head.state));
        last = id;
        Ok(true)
    })?;
    Ok((out, last))
}

/// Deletes up to `limit` jobs that finished before `cutoff_ms`, with their items and events;
/// returns how many were deleted.
pub fn purge_finished_before(
    txn: &mut RwTxn,
    dbs: &Dbs,
    cutoff_ms: u64,
    limit: usize,
) -> Result<usize, StoreError> {
    let mut expired = Vec::new();
    for entry in dbs.jobs.iter(txn)? {
        let (_, bytes) = entry?;
        let job: JobRecord = codec::decode(bytes, "job")?;
        if job.finished_at_ms.is_some_and(|at| at < cutoff_ms) {
            expired.push(job.id);
            if expired.len() >= limit {
                break;
            }
        }
    }
    for id in &expired {
        let start = item_key(id, 0);
        let end = item_key(id, u32::MAX);
        let range = (
            Bound::Included(start.as_slice()),
            Bound::Included(end.as_slice()),
        );
        dbs.items.delete_range(txn, &range)?;
        dbs.events.delete_range(txn, &range)?;
        dbs.jobs.delete(txn, id.as_bytes())?;
    }
    Ok(expired.len())
}

/// The key that matches a URL to a job's items: the normalized share (provider and id, so
/// `?pwd=` and host aliases do not matter) when recognized, else the URL as written.
pub fn match_key(share: Option<(Provider, &str)>, url: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = rustc_hash::FxHasher::default();
    match share {
        Some((provider, id)) => (provider.as_str(), id).hash(&mut hasher),
        None => url.trim().hash(&mut hasher),
    }
    hasher.finish()
}

/// The `meta` entry that says every job's `owner` is a key id.
const OWNERS_ARE_KEY_IDS: &[u8] = b"jobs/owners_are_key_ids";

/// Jobs stored before owners were key ids name theirs by the hex SHA-256 of the key's secret.
/// Rewrites each such owner to its key's id; a job whose key was deleted keeps the hash, and no
/// key can read it, as before. Runs once per data dir (a `meta` entry marks it done), in one
/// start-up transaction; returns how many jobs it rewrote.
pub fn migrate_owners_to_key_ids(txn: &mut RwTxn, dbs: &Dbs) -> Result<usize, StoreError> {
    if dbs.meta.get(txn, OWNERS_ARE_KEY_IDS)?.is_some() {
        return Ok(0);
    }
    let mut rewritten = Vec::new();
    for entry in dbs.jobs.iter(txn)? {
        let (_, bytes) = entry?;
        let mut job: JobRecord = codec::decode(bytes, "job")?;
        let Some(hash) = secret_hash_of_hex(&job.owner) else {
            continue;
        };
        if let Some(key) = crate::keys::repo::get_by_hash(txn, dbs, &hash)? {
            job.owner = key.id;
            rewritten.push(job);
        }
    }
    for job in &rewritten {
        put_job(txn, dbs, job)?;
    }
    dbs.meta.put(txn, OWNERS_ARE_KEY_IDS, b"1")?;
    Ok(rewritten.len())
}

/// The 32 bytes written as 64 lower-case hex digits, as old job records name their owner.
fn secret_hash_of_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::providers::{Recognized, recognize};

    #[test]
    fn an_item_gives_back_its_share_after_storage() {
        for url in [
            "https://www.123684.com/s/abCD-1234?pwd=x1y2",
            "https://pan.quark.cn/s/39749e1fb630",
            "https://cloud.189.cn/t/yYvIvyVfY7rm（访问码：ab12）",
        ] {
            let Recognized::Share(share) = recognize(url, None) else {
                panic!("{url}");
            };
            let item = ItemRecord::of_share(url.to_owned(), share.clone(), None);
            let stored: ItemRecord = codec::decode(&codec::encode(&item), "item").unwrap();
            assert_eq!(stored.share(), Some(share), "{url}");
        }
        // A stored host that is not one of the provider's is dropped, never used.
        let mut item = ItemRecord::of_share(
            "u".to_owned(),
            ShareRef {
                provider: Provider::Pan123,
                id: "abcd".to_owned(),
                passcode: None,
                host: None,
            },
            None,
        );
        item.share_host = Some("evil.example.com".to_owned());
        assert_eq!(item.share().unwrap().host, None);
    }
}
