//! A one-shot signal that every connection waits for, cheap to poll on each of its wake-ups.
//!
//! A connection's task polls its stop signals every time it wakes (every request). A
//! `CancellationToken` locks its shared node on each poll, and its `Notify` locks its waiter list:
//! two locks on cache lines that every core's connections share. Here a poll is an atomic load
//! and a waker comparison; the lock is taken when a connection first waits (its waker is stored
//! once, in one of several shards) and when it stops waiting.
//!
//! Must not: lose a wake-up (a waiter registers, then reads the flag again).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use rustc_hash::FxHashMap;

const SHARDS: usize = 16;

/// The signal: fired once, never reset.
pub struct Signal {
    fired: AtomicBool,
    next_waiter: AtomicU64,
    waiters: Box<[Mutex<FxHashMap<u64, Waker>>]>,
}

impl std::fmt::Debug for Signal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signal")
            .field("fired", &self.is_fired())
            .finish_non_exhaustive()
    }
}

impl Default for Signal {
    fn default() -> Self {
        Signal {
            fired: AtomicBool::new(false),
            next_waiter: AtomicU64::new(0),
            waiters: (0..SHARDS).map(|_| Mutex::default()).collect(),
        }
    }
}

impl Signal {
    /// Fires the signal and wakes every waiter (once; later calls do nothing).
    pub fn fire(&self) {
        if self.fired.swap(true, Ordering::AcqRel) {
            return;
        }
        for shard in self.waiters.iter() {
            let woken: Vec<Waker> = shard.lock().drain().map(|(_, waker)| waker).collect();
            woken.into_iter().for_each(Waker::wake);
        }
    }

    pub fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    /// A future that completes once the signal has fired.
    pub fn fired(self: &Arc<Self>) -> Fired {
        Fired {
            signal: Arc::clone(self),
            id: None,
            waker: None,
        }
    }
}

/// Waits for a [`Signal`]; see the module doc for what a poll costs.
pub struct Fired {
    signal: Arc<Signal>,
    /// Where this waiter's waker is stored, once it waits.
    id: Option<u64>,
    /// The waker stored there (to tell whether a poll brings a new one).
    waker: Option<Waker>,
}

impl Future for Fired {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.signal.is_fired() {
            return Poll::Ready(());
        }
        if self.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            return Poll::Pending;
        }
        let signal = Arc::clone(&self.signal);
        let id = *self
            .id
            .get_or_insert_with(|| signal.next_waiter.fetch_add(1, Ordering::Relaxed));
        signal.waiters[shard_of(id)]
            .lock()
            .insert(id, cx.waker().clone());
        self.waker = Some(cx.waker().clone());
        // Fired between the first check and the registration: `fire` may have drained the shard
        // before this waker was in it.
        if signal.is_fired() {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl Drop for Fired {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            self.signal.waiters[shard_of(id)].lock().remove(&id);
        }
    }
}

fn shard_of(id: u64) -> usize {
    (id % SHARDS as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiters_wake_when_it_fires_and_later_ones_complete_at_once() {
        let signal = Arc::new(Signal::default());
        let waiters: Vec<_> = (0..40).map(|_| tokio::spawn(signal.fired())).collect();
        tokio::task::yield_now().await;
        assert!(waiters.iter().all(|w| !w.is_finished()));
        signal.fire();
        for waiter in waiters {
            waiter.await.unwrap();
        }
        signal.fired().await;
        signal.fire();
        assert!(signal.is_fired());
    }

    #[tokio::test]
    async fn a_dropped_waiter_leaves_no_waker_behind() {
        let signal = Arc::new(Signal::default());
        let mut waiting = Box::pin(signal.fired());
        let waker = futures_noop_waker();
        assert!(
            waiting
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        let stored = || signal.waiters.iter().map(|s| s.lock().len()).sum::<usize>();
        assert_eq!(stored(), 1);
        // Polled again with the same waker: nothing more is stored.
        assert!(
            waiting
                .as_mut()
                .poll(&mut Context::from_waker(&waker))
                .is_pending()
        );
        assert_eq!(stored(), 1);
        drop(waiting);
        assert_eq!(stored(), 0);
    }

    fn futures_noop_waker() -> Waker {
        Waker::noop().clone()
    }
}
