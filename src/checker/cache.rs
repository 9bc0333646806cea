//! The result cache and in-flight de-duplication.
//!
//! The same share (provider + normalized id + pass code, [`ShareRef::key`]) asked by two jobs at
//! once is checked once: the first asker leads, the others wait for its verdict. A verdict is kept
//! for a while by state (valid for hours, invalid for days, locked for an hour; unknown never, so
//! a transient failure is never repeated from memory). The map is sharded and bounded: a full
//! shard drops an expired entry, or any one, before taking a new one.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::share::ShareRef;
use super::verdict::{State, Verdict};

const SHARDS: usize = 32;

pub use crate::config::CacheTtl;

impl CacheTtl {
    fn of(&self, state: State) -> Option<Duration> {
        let ttl = match state {
            State::Valid => self.valid,
            State::Invalid => self.invalid,
            State::Locked => self.locked,
            State::Unknown => return None,
        };
        (!ttl.is_zero()).then_some(ttl)
    }
}

enum Entry {
    Done { verdict: Verdict, expires: Instant },
    InFlight(watch::Receiver<Option<Verdict>>),
}

/// What a caller should do about a share.
pub enum Lookup {
    /// A recent verdict.
    Hit(Verdict),
    /// Another check of this share is running: wait for its verdict.
    Wait(watch::Receiver<Option<Verdict>>),
    /// Check it, then call [`Lead::finish`].
    Lead(Lead),
}

/// The duty to check a share and publish the verdict to waiters.
pub struct Lead {
    key: String,
    sender: watch::Sender<Option<Verdict>>,
}

/// The cache.
pub struct CheckCache {
    ttl: CacheTtl,
    max_per_shard: usize,
    shards: Box<[Mutex<Shard>]>,
}

/// Keys are share ids clients chose: the maps keep std's keyed hash, so that no client can fill
/// one bucket chain.
type Shard = HashMap<String, Entry>;

impl CheckCache {
    pub fn new(ttl: CacheTtl, max_entries: usize) -> CheckCache {
        CheckCache {
            ttl,
            max_per_shard: (max_entries / SHARDS).max(1),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }

    fn shard(&self, key: &str) -> &Mutex<Shard> {
        use std::hash::{Hash, Hasher};
        let mut hasher = rustc_hash::FxHasher::default();
        key.hash(&mut hasher);
        &self.shards[(hasher.finish() as usize) % SHARDS]
    }

    /// A recent verdict, a check to wait for, or the duty to check.
    pub fn lookup(&self, share: &ShareRef) -> Lookup {
        let key = share.key();
        let mut shard = self.shard(&key).lock();
        match shard.get(&key) {
            Some(Entry::Done { verdict, expires }) if *expires > Instant::now() => {
                return Lookup::Hit(verdict.clone());
            }
            // A leader that vanished (its task was dropped) leaves a closed channel: take over.
            Some(Entry::InFlight(receiver)) if receiver.has_changed().is_ok() => {
                return Lookup::Wait(receiver.clone());
            }
            _ => {}
        }
        let (sender, receiver) = watch::channel(None);
        if shard.len() >= self.max_per_shard
            && !shard.contains_key(&key)
            && let Some(victim) = eviction_victim(&shard, Instant::now())
        {
            shard.remove(&victim);
        }
        shard.insert(key.clone(), Entry::InFlight(receiver));
        Lookup::Lead(Lead { key, sender })
    }

    /// Publishes the leader's verdict to waiters and keeps it if its state is cacheable.
    pub fn finish(&self, lead: Lead, verdict: &Verdict) {
        let Lead { key, sender } = lead;
        let mut shard = self.shard(&key).lock();
        match self.ttl.of(verdict.state) {
            Some(ttl) => {
                let done = Entry::Done {
                    verdict: verdict.clone(),
                    expires: Instant::now() + ttl,
                };
                // The lead's own entry is where it left it (nothing evicts a check in flight):
                // replaced in place, with no new key.
                match shard.get_mut(key.as_str()) {
                    Some(entry) => *entry = done,
                    None => {
                        shard.insert(key, done);
                    }
                }
            }
            None => {
                shard.remove(key.as_str());
            }
        }
        drop(shard);
        let _ = sender.send(Some(verdict.clone()));
    }

    /// Keeps a verdict reached outside [`lookup`](Self::lookup) (a monitor's re-check, which
    /// never answers from the cache): a cacheable one replaces a kept verdict; a check in flight
    /// is left to finish; an `unknown` one changes nothing (it says nothing new).
    pub fn refresh(&self, share: &ShareRef, verdict: &Verdict) {
        let Some(ttl) = self.ttl.of(verdict.state) else {
            return;
        };
        let key = share.key();
        let mut shard = self.shard(&key).lock();
        if matches!(shard.get(&key), Some(Entry::InFlight(r)) if r.has_changed().is_ok()) {
            return;
        }
        if shard.len() >= self.max_per_shard
            && !shard.contains_key(&key)
            && let Some(victim) = eviction_victim(&shard, Instant::now())
        {
            shard.remove(&victim);
        }
        shard.insert(
            key,
            Entry::Done {
                verdict: verdict.clone(),
                expires: Instant::now() + ttl,
            },
        );
    }

    /// Entries held (for tests and metrics).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Entries a full shard looks at to choose the one to drop: a bounded look, so that a miss
/// costs the same when the cache is full (a scan of the whole shard would cost thousands of
/// probes per miss).
const EVICTION_PROBES: usize = 8;

/// The entry to drop from a full shard: among the first few in hash order (which is effectively
/// random), an expired verdict, else a live one; never a check in flight.
fn eviction_victim(shard: &Shard, now: Instant) -> Option<String> {
    let mut live = None;
    for (key, entry) in shard.iter().take(EVICTION_PROBES) {
        if let Entry::Done { expires, .. } = entry {
            if *expires <= now {
                return Some(key.clone());
            }
            live.get_or_insert(key);
        }
    }
    live.cloned()
}

/// Waits for a leader's verdict; `None` if the leader went away without one.
pub async fn wait(mut receiver: watch::Receiver<Option<Verdict>>) -> Option<Verdict> {
    loop {
        if let Some(verdict) = receiver.borrow_and_update().clone() {
            return Some(verdict);
        }
        if receiver.changed().await.is_err() {
            return receiver.borrow().clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::share::Provider;
    use crate::checker::verdict::Reason;

    fn share(id: &str) -> ShareRef {
        ShareRef {
            provider: Provider::Quark,
            id: id.into(),
            passcode: None,
            host: None,
        }
    }

    fn ttl() -> CacheTtl {
        CacheTtl {
            valid: Duration::from_secs(60),
            invalid: Duration::from_secs(60),
            locked: Duration::from_secs(60),
        }
    }

    #[tokio::test]
    async fn lead_wait_hit() {
        let cache = CheckCache::new(ttl(), 1000);
        let Lookup::Lead(lead) = cache.lookup(&share("a")) else {
            panic!("first asker leads")
        };
        let Lookup::Wait(receiver) = cache.lookup(&share("a")) else {
            panic!("second asker waits")
        };
        let valid = Verdict::new(State::Valid, Reason::AllChecksPassed);
        cache.finish(lead, &valid);
        assert_eq!(wait(receiver).await, Some(valid.clone()));
        assert!(matches!(cache.lookup(&share("a")), Lookup::Hit(v) if v == valid));
        // A different pass code is a different question.
        let mut with_code = share("a");
        with_code.passcode = Some("x".into());
        assert!(matches!(cache.lookup(&with_code), Lookup::Lead(_)));
    }

    #[tokio::test]
    async fn unknown_is_never_cached_and_a_vanished_leader_is_replaced() {
        let cache = CheckCache::new(ttl(), 1000);
        let Lookup::Lead(lead) = cache.lookup(&share("b")) else {
            panic!()
        };
        cache.finish(lead, &Verdict::new(State::Unknown, Reason::Timeout));
        assert!(
            matches!(cache.lookup(&share("b")), Lookup::Lead(_)),
            "unknown must be asked again"
        );
        let Lookup::Lead(lead) = cache.lookup(&share("c")) else {
            panic!()
        };
        drop(lead);
        assert!(matches!(cache.lookup(&share("c")), Lookup::Lead(_)));
    }

    #[tokio::test]
    async fn a_refresh_replaces_a_kept_verdict_but_not_a_check_in_flight_nor_with_unknown() {
        let cache = CheckCache::new(ttl(), 1000);
        let valid = Verdict::new(State::Valid, Reason::AllChecksPassed);
        let gone = Verdict::new(State::Invalid, Reason::ShareNotFound);
        cache.refresh(&share("r"), &valid);
        assert!(matches!(cache.lookup(&share("r")), Lookup::Hit(v) if v == valid));
        cache.refresh(&share("r"), &gone);
        assert!(matches!(cache.lookup(&share("r")), Lookup::Hit(v) if v == gone));
        cache.refresh(&share("r"), &Verdict::new(State::Unknown, Reason::Timeout));
        assert!(matches!(cache.lookup(&share("r")), Lookup::Hit(v) if v == gone));
        let Lookup::Lead(lead) = cache.lookup(&share("f")) else {
            panic!()
        };
        cache.refresh(&share("f"), &valid);
        assert!(matches!(cache.lookup(&share("f")), Lookup::Wait(_)));
        cache.finish(lead, &gone);
        assert!(matches!(cache.lookup(&share("f")), Lookup::Hit(v) if v == gone));
    }

    #[test]
    fn bounded() {
        let cache = CheckCache::new(ttl(), SHARDS * 2);
        for n in 0..1000 {
            if let Lookup::Lead(lead) = cache.lookup(&share(&format!("s{n}"))) {
                cache.finish(lead, &Verdict::new(State::Valid, Reason::AllChecksPassed));
            }
        }
        assert!(cache.len() <= SHARDS * 2 + SHARDS, "{}", cache.len());
    }

    #[test]
    fn a_full_shard_drops_an_expired_verdict_first_and_never_a_check_in_flight() {
        let now = Instant::now();
        let verdict = Verdict::new(State::Valid, Reason::AllChecksPassed);
        let done = |expires| Entry::Done {
            verdict: verdict.clone(),
            expires,
        };
        let (_sender, receiver) = watch::channel(None);
        let mut shard = Shard::default();
        shard.insert("flying".to_owned(), Entry::InFlight(receiver.clone()));
        assert_eq!(eviction_victim(&shard, now), None);
        shard.insert("live".to_owned(), done(now + Duration::from_secs(60)));
        assert_eq!(eviction_victim(&shard, now).as_deref(), Some("live"));
        shard.insert("stale".to_owned(), done(now - Duration::from_secs(1)));
        assert_eq!(eviction_victim(&shard, now).as_deref(), Some("stale"));
    }
}
