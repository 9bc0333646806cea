//! Key records in LMDB: transaction-level functions shared by the writer thread and the CLI.
//!
//! Layout: `keys` maps SHA-256(secret) → [`KeyRecord`]; `key_ids` maps id → SHA-256(secret). Both are
//! changed together in one transaction.

use heed::{PutFlags, RoTxn, RwTxn};

use super::record::{KeyRecord, Plan};
use super::scope::Scopes;
use super::secret::{self, SecretHash};
use crate::store::{Dbs, StoreError, codec};

const KIND: &str = "key";

/// What a new key starts with.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub plan: Plan,
    pub points: u64,
    pub rate_per_s: Option<u32>,
    pub burst: Option<u32>,
    pub scopes: Scopes,
}

/// A change to a key; absent fields stay as they are.
#[derive(Debug, Clone, Default)]
pub struct KeyPatch {
    pub name: Option<String>,
    pub plan: Option<Plan>,
    pub disabled: Option<bool>,
    pub add_points: Option<i64>,
    pub rate_per_s: Option<u32>,
    pub burst: Option<u32>,
    pub scopes: Option<Scopes>,
}

impl KeyPatch {
    /// Whether the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.plan.is_none()
            && self.disabled.is_none()
            && self.add_points.is_none()
            && self.rate_per_s.is_none()
            && self.burst.is_none()
            && self.scopes.is_none()
    }
}

/// The outcome of [`update`].
#[derive(Debug)]
pub enum UpdateOutcome {
    Updated {
        hash: SecretHash,
        record: KeyRecord,
    },
    NotFound,
    /// `add_points` would take the balance below zero; nothing changed.
    PointsWouldBeNegative {
        balance: u64,
    },
}

/// Creates a key and returns its secret (shown once) with the record.
pub fn create(
    txn: &mut RwTxn,
    dbs: &Dbs,
    new: NewKey,
    now_ms: u64,
) -> Result<(String, KeyRecord), StoreError> {
    loop {
        let (secret, hash, record) = fresh(&new, now_ms);
        // Ids and hashes are random; a collision is astronomically rare, but never overwrite.
        if dbs.key_ids.get(txn, record.id.as_bytes())?.is_some()
            || dbs.keys.get(txn, &hash)?.is_some()
        {
            continue;
        }
        dbs.keys
            .put_with_flags(txn, PutFlags::NO_OVERWRITE, &hash, &codec::encode(&record))?;
        dbs.key_ids
            .put_with_flags(txn, PutFlags::NO_OVERWRITE, record.id.as_bytes(), &hash)?;
        return Ok((secret, record));
    }
}

/// A new key's secret, the hash it is stored under, and its record (a random id).
pub fn fresh(new: &NewKey, now_ms: u64) -> (String, SecretHash, KeyRecord) {
    let secret = secret::generate_secret();
    let hash = secret::hash_secret(&secret);
    let record = KeyRecord {
        id: secret::generate_id(),
        name: new.name.clone(),
        plan: new.plan,
        points: new.points,
        disabled: false,
        created_at_ms: now_ms,
        last_used_at_ms: None,
        requests: 0,
        rate_per_s: new.rate_per_s,
        burst: new.burst,
        scopes: new.scopes,
    };
    (secret, hash, record)
}

/// Stores `record` under `hash` as another copy of it says it is (cluster mode), keeping this
/// node's usage counters; the record as stored.
pub fn put_copy(
    txn: &mut RwTxn,
    dbs: &Dbs,
    hash: &SecretHash,
    mut record: KeyRecord,
) -> Result<KeyRecord, StoreError> {
    if let Some(local) = get_by_hash(txn, dbs, hash)? {
        record.requests = local.requests;
        record.last_used_at_ms = local.last_used_at_ms;
    } else {
        record.requests = 0;
        record.last_used_at_ms = None;
    }
    dbs.keys.put(txn, hash, &codec::encode(&record))?;
    dbs.key_ids.put(txn, record.id.as_bytes(), hash)?;
    Ok(record)
}

/// The record stored under `hash`.
pub fn get_by_hash(
    txn: &RoTxn,
    dbs: &Dbs,
    hash: &SecretHash,
) -> Result<Option<KeyRecord>, StoreError> {
    dbs.keys
        .get(txn, hash)?
        .map(|bytes| codec::decode(bytes, KIND))
        .transpose()
}

/// The record with id `id`, with its hash.
pub fn get_by_id(
    txn: &RoTxn,
    dbs: &Dbs,
    id: &str,
) -> Result<Option<(SecretHash, KeyRecord)>, StoreError> {
    let Some(hash) = hash_of(txn, dbs, id)? else {
        return Ok(None);
    };
    Ok(get_by_hash(txn, dbs, &hash)?.map(|record| (hash, record)))
}

/// Every key, oldest first.
pub fn list(txn: &RoTxn, dbs: &Dbs) -> Result<Vec<(SecretHash, KeyRecord)>, StoreError> {
    let mut out = Vec::new();
    for entry in dbs.keys.iter(txn)? {
        let (hash, bytes) = entry?;
        let Ok(hash) = SecretHash::try_from(hash) else {
            return Err(StoreError::Corrupt(KIND));
        };
        out.push((hash, codec::decode::<KeyRecord>(bytes, KIND)?));
    }
    out.sort_by(|a, b| (a.1.created_at_ms, &a.1.id).cmp(&(b.1.created_at_ms, &b.1.id)));
    Ok(out)
}

/// Applies `patch` to the key `id`.
pub fn update(
    txn: &mut RwTxn,
    dbs: &Dbs,
    id: &str,
    patch: &KeyPatch,
) -> Result<UpdateOutcome, StoreError> {
    let Some((hash, mut record)) = get_by_id(txn, dbs, id)? else {
        return Ok(UpdateOutcome::NotFound);
    };
    if let Err(balance) = patch.apply(&mut record) {
        return Ok(UpdateOutcome::PointsWouldBeNegative { balance });
    }
    dbs.keys.put(txn, &hash, &codec::encode(&record))?;
    Ok(UpdateOutcome::Updated { hash, record })
}

impl KeyPatch {
    /// Changes `record` as the patch says; `Err(balance)`, with `record` unchanged, if
    /// `add_points` would take the balance below zero.
    pub fn apply(&self, record: &mut KeyRecord) -> Result<(), u64> {
        if let Some(delta) = self.add_points {
            let balance = i128::from(record.points) + i128::from(delta);
            if balance < 0 {
                return Err(record.points);
            }
            record.points = u64::try_from(balance).unwrap_or(u64::MAX);
        }
        if let Some(name) = &self.name {
            record.name.clone_from(name);
        }
        if let Some(plan) = self.plan {
            record.plan = plan;
        }
        if let Some(scopes) = self.scopes {
            record.scopes = scopes;
        }
        if let Some(disabled) = self.disabled {
            record.disabled = disabled;
        }
        if let Some(rate) = self.rate_per_s {
            record.rate_per_s = Some(rate);
        }
        if let Some(burst) = self.burst {
            record.burst = Some(burst);
        }
        Ok(())
    }
}

/// Deletes the key `id`; `false` if there was none.
pub fn delete(txn: &mut RwTxn, dbs: &Dbs, id: &str) -> Result<bool, StoreError> {
    let Some(hash) = hash_of(txn, dbs, id)? else {
        return Ok(false);
    };
    dbs.keys.delete(txn, &hash)?;
    dbs.key_ids.delete(txn, id.as_bytes())?;
    Ok(true)
}

/// The outcome of [`debit_points`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DebitOutcome {
    Debited { remaining: u64 },
    Insufficient,
    Disabled,
    KeyGone,
}

/// Takes `price` points from the key stored under `hash`, if it has that many. Runs in the
/// writer's transaction, so two debits never see the same balance.
pub fn debit_points(
    txn: &mut RwTxn,
    dbs: &Dbs,
    hash: &SecretHash,
    price: u64,
) -> Result<DebitOutcome, StoreError> {
    let Some(mut record) = get_by_hash(txn, dbs, hash)? else {
        return Ok(DebitOutcome::KeyGone);
    };
    let outcome = debit(&mut record, price);
    if let DebitOutcome::Debited { .. } = outcome {
        dbs.keys.put(txn, hash, &codec::encode(&record))?;
    }
    Ok(outcome)
}

/// Takes `price` points from `record` if it may spend them.
pub fn debit(record: &mut KeyRecord, price: u64) -> DebitOutcome {
    if record.disabled {
        return DebitOutcome::Disabled;
    }
    if record.points < price {
        return DebitOutcome::Insufficient;
    }
    record.points -= price;
    DebitOutcome::Debited {
        remaining: record.points,
    }
}

/// Usage observed in memory since the last flush, for one key.
#[derive(Debug, Clone, Copy)]
pub struct UsageDelta {
    pub hash: SecretHash,
    pub requests: u64,
    pub last_used_ms: u64,
}

/// Adds usage deltas to the stored records (keys deleted meanwhile are skipped).
pub fn apply_usage(txn: &mut RwTxn, dbs: &Dbs, deltas: &[UsageDelta]) -> Result<(), StoreError> {
    for delta in deltas {
        let Some(mut record) = get_by_hash(txn, dbs, &delta.hash)? else {
            continue;
        };
        record.requests += delta.requests;
        record.last_used_at_ms = Some(record.last_used_at_ms.unwrap_or(0).max(delta.last_used_ms));
        dbs.keys.put(txn, &delta.hash, &codec::encode(&record))?;
    }
    Ok(())
}

fn hash_of(txn: &RoTxn, dbs: &Dbs, id: &str) -> Result<Option<SecretHash>, StoreError> {
    match dbs.key_ids.get(txn, id.as_bytes())? {
        None => Ok(None),
        Some(bytes) => SecretHash::try_from(bytes)
            .map(Some)
            .map_err(|_| StoreError::Corrupt("key id")),
    }
}
