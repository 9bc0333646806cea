//! A submitted job laid out for storage and the engine: item ids, the items answered at once (no
//! known provider, or a provider's host with a malformed share path), per-provider tallies, the
//! provider of every item and the index that matches a URL to its items. Pure and linear in the
//! items; [`Engine::submit`](super::engine::Engine::submit) runs it off the async workers.

use std::collections::BTreeMap;

use super::quota;
use super::record::{self, ItemRecord, JOB_ID_LEN, JobRecord, JobStatus};
use crate::checker::providers;
use crate::checker::share::Provider;
use crate::checker::verdict::{Reason, State};
use crate::store::StoreError;

/// What a key may store, by its plan (see [`quota`]).
#[derive(Debug, Clone, Copy)]
pub struct StoredItemQuota {
    pub items: u64,
    pub window: quota::Window,
}

/// Why a submission was not taken.
#[derive(Debug)]
pub enum SubmitError {
    /// Storing it would pass the key's quota; `used` is what the key has stored now.
    OverQuota {
        used: u64,
    },
    Store(StoreError),
    /// The layout's task did not finish (the runtime is shutting down).
    Interrupted,
    /// Cluster mode: the cluster did not take the job (nothing of it is checked).
    Cluster(crate::cluster::bucket::WriteError),
}

impl From<StoreError> for SubmitError {
    fn from(err: StoreError) -> Self {
        SubmitError::Store(err)
    }
}

/// A job laid out: its record and what the engine and the store need of it.
pub struct Layout {
    pub job: JobRecord,
    /// `(item id, state, reason)` of the items answered at once.
    pub immediate: Vec<(u32, State, Reason)>,
    /// The provider of item `n` at `n` (index 0 unused).
    pub providers_of: Vec<Option<Provider>>,
    /// `(match key, item id)` of every item.
    pub index: Vec<(u64, u32)>,
}

/// Lays out a job of `items` for `owner` (a key id), created at `now`.
pub fn lay_out(items: &[ItemRecord], owner: String, now: u64) -> Layout {
    let id = crate::keys::secret::random_base62(JOB_ID_LEN);
    let total = items.len() as u32;
    let mut tallies: BTreeMap<Provider, record::ProviderTally> = BTreeMap::new();
    let mut immediate: Vec<(u32, State, Reason)> = Vec::new();
    let mut providers_of = vec![None; items.len() + 1];
    let mut index = Vec::with_capacity(items.len());
    for (position, item) in items.iter().enumerate() {
        let item_id = position as u32 + 1;
        index.push((item.match_key(), item_id));
        match item.provider {
            Some(provider) if item.share_id.is_some() => {
                tallies.entry(provider).or_default().total += 1;
                providers_of[item_id as usize] = Some(provider);
            }
            _ => {
                let reason = if is_provider_host(&item.url) {
                    Reason::InvalidUrl
                } else {
                    Reason::UnsupportedProvider
                };
                immediate.push((item_id, State::Unknown, reason));
            }
        }
    }
    let all_immediate = immediate.len() == items.len();
    let mut job = JobRecord {
        id,
        owner,
        created_at_ms: now,
        finished_at_ms: all_immediate.then_some(now),
        status: if all_immediate {
            JobStatus::Done
        } else {
            JobStatus::Queued
        },
        total,
        counts: Default::default(),
        providers: tallies,
        unsupported: immediate.len() as u32,
    };
    if all_immediate {
        job.counts.done = total;
        job.counts.unknown = total;
    }
    Layout {
        job,
        immediate,
        providers_of,
        index,
    }
}

/// [`lay_out`] on the blocking pool (it is linear in the items); the items come back with it.
pub async fn lay_out_off_workers(
    items: Vec<ItemRecord>,
    owner: String,
    now: u64,
) -> Result<(Vec<ItemRecord>, Layout), SubmitError> {
    tokio::task::spawn_blocking(move || {
        let layout = lay_out(&items, owner, now);
        (items, layout)
    })
    .await
    .map_err(|_| SubmitError::Interrupted)
}

/// Whether `url` is on a provider's share host (so an unrecognized path there is malformed, not
/// another site).
fn is_provider_host(url: &str) -> bool {
    let Some(host) = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
    else {
        return false;
    };
    Provider::ALL
        .iter()
        .any(|p| providers::share_hosts(*p).contains(&host.as_str()))
}
