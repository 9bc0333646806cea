//! A product's log of changes (a [`Log`] every node applies in order), whose publishers wait for
//! what their own node's apply made of each change: the replies of the API's writes in cluster
//! mode. It knows no product: changes are any serde value, outcomes any type.
//!
//! A change published for a reply is marked so in its envelope; one written to a node's outbox
//! (an event found in a product's write) is not, and nobody waits for it.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::bucket::WriteError;
use super::log::{Log, Record};
use crate::store::{Dbs, Store, StoreError, replica};

/// Outcomes kept for waiters at most (one that gave up leaves its outcome behind).
const MAX_OUTCOMES: usize = 4096;

/// A change as the log carries it.
#[derive(Serialize, Deserialize)]
struct Envelope<C> {
    /// Its publisher waits for what the apply made of it.
    reply: bool,
    change: C,
}

/// A log of changes with replies to their publishers.
pub struct ChangeLog<A> {
    log: Log,
    /// What the apply made of this node's own changes that someone waits for, by sequence.
    outcomes: Mutex<HashMap<u64, A>>,
}

impl<A> ChangeLog<A> {
    pub fn new(log: Log) -> ChangeLog<A> {
        ChangeLog {
            log,
            outcomes: Mutex::default(),
        }
    }

    pub fn log(&self) -> &Log {
        &self.log
    }

    /// Publishes `change` and waits, up to `wait`, until this node's apply made something of
    /// it; that outcome.
    pub async fn submit<C: Serialize>(&self, change: C, wait: Duration) -> Result<A, WriteError> {
        let payload = serde_json::to_vec(&Envelope {
            reply: true,
            change,
        })
        .map_err(|err| WriteError::Unavailable(format!("encoding a change: {err}")))?;
        let id = format!("{}-{:016x}", self.log.node(), rand::random::<u64>());
        let sequence = self
            .log
            .publish_named(self.log.node(), &id, payload.into())
            .await?;
        if !self.log.wait_applied(sequence, wait).await {
            return Err(WriteError::Unavailable(format!(
                "this node's copy did not apply change {sequence} within {wait:?}"
            )));
        }
        self.outcomes
            .lock()
            .remove(&sequence)
            .ok_or_else(|| WriteError::Unavailable(format!("no outcome of change {sequence}")))
    }

    /// The change `record` carries, and whether this node waits for its outcome
    /// ([`ChangeLog::answer`]).
    fn read<C: DeserializeOwned>(&self, record: &Record) -> Option<(C, bool)> {
        match serde_json::from_slice::<Envelope<C>>(&record.payload) {
            Ok(envelope) => Some((
                envelope.change,
                envelope.reply && record.node == self.log.node(),
            )),
            Err(err) => {
                tracing::error!(sequence = record.sequence, error = %err, "an unreadable change in a cluster log; skipped");
                None
            }
        }
    }

    /// Applies the changes `records` carry to this node's copy, in order, in one write of
    /// `store`, each by `apply` (given its sequence), and records the last sequence as applied;
    /// answers each change's sequence, whether this node waits for it, and its outcome.
    pub async fn apply_in_order<C, F>(
        &self,
        store: &Store,
        records: Vec<Record>,
        mut apply: F,
    ) -> Result<Vec<(u64, bool, A)>, StoreError>
    where
        C: DeserializeOwned + Send + 'static,
        A: Send + 'static,
        F: FnMut(&mut heed::RwTxn, &Dbs, u64, &C) -> Result<A, StoreError> + Send + 'static,
    {
        let Some(last) = records.last().map(|r| r.sequence) else {
            return Ok(Vec::new());
        };
        let changes: Vec<(u64, C, bool)> = records
            .iter()
            .filter_map(|record| {
                let (change, reply) = self.read::<C>(record)?;
                Some((record.sequence, change, reply))
            })
            .collect();
        let name = self.log.name;
        store
            .write(move |txn, dbs| {
                let mut out = Vec::with_capacity(changes.len());
                for (sequence, change, reply) in &changes {
                    out.push((*sequence, *reply, apply(txn, dbs, *sequence, change)?));
                }
                replica::set_followed(txn, dbs, name, last)?;
                Ok(out)
            })
            .await
    }

    /// Keeps what the apply made of this node's change `sequence` for its waiter.
    pub fn answer(&self, sequence: u64, outcome: A) {
        let mut outcomes = self.outcomes.lock();
        if outcomes.len() >= MAX_OUTCOMES {
            outcomes.clear();
        }
        outcomes.insert(sequence, outcome);
    }
}

/// `change` as an outbox record of a [`ChangeLog`]: nobody waits for its outcome.
pub fn outbox_record<C: Serialize>(change: C) -> Vec<u8> {
    serde_json::to_vec(&Envelope {
        reply: false,
        change,
    })
    .expect("changes serialize to JSON")
}
