//! Exact holds for the mock's added latency (`--latency-ms`).
//!
//! tokio's timer has a one-millisecond grain and rounds a deadline up to the next tick, then
//! fires on the worker's next turn: `sleep(50 ms)` held the mock's requests 51.2 ms on average
//! under the latency scenario (`mean_hold_us` of `/__mock/stats`), 2.4 % more than the latency the
//! scenario's ideal is computed from. One thread here keeps the deadlines in a heap and wakes each
//! request at its deadline with the OS's sub-millisecond sleep, so the mock adds the latency it is
//! told to add, no more. `/__mock/stats` keeps reporting what it really held.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// A deadline and the request waiting for it; ordered by deadline, then arrival.
struct Waiting {
    at: Instant,
    seq: u64,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiting {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Waiting {}

impl PartialOrd for Waiting {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiting {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Holds requests `latency` from their arrival; hands the deadlines to the hold thread.
pub struct Holds {
    latency: Duration,
    to_thread: mpsc::Sender<(Instant, oneshot::Sender<()>)>,
}

impl Holds {
    /// Starts the hold thread; it ends when the `Holds` is dropped.
    pub fn start(latency: Duration) -> std::io::Result<Holds> {
        let (to_thread, from_callers) = mpsc::channel();
        std::thread::Builder::new()
            .name("mock-hold".into())
            .spawn(move || run(&from_callers))?;
        Ok(Holds { latency, to_thread })
    }

    /// Returns `latency` after `arrived` (within the OS's timer slack, about 50 µs).
    pub async fn from(&self, arrived: Instant) {
        self.until(arrived + self.latency).await;
    }

    async fn until(&self, at: Instant) {
        let (wake, woken) = oneshot::channel();
        if self.to_thread.send((at, wake)).is_err() {
            // The thread is gone (it never panics, but be safe): tokio's timer is close enough.
            tokio::time::sleep_until(at.into()).await;
            return;
        }
        let _ = woken.await;
    }
}

fn run(from_callers: &mpsc::Receiver<(Instant, oneshot::Sender<()>)>) {
    let mut waiting = BinaryHeap::new();
    let mut seq = 0u64;
    loop {
        let now = Instant::now();
        while waiting
            .peek()
            .is_some_and(|Reverse(first): &Reverse<Waiting>| first.at <= now)
        {
            if let Some(Reverse(due)) = waiting.pop() {
                let _ = due.wake.send(());
            }
        }
        let next = match waiting.peek() {
            Some(Reverse(first)) => from_callers
                .recv_timeout(first.at.saturating_duration_since(now))
                .map_err(|err| err == mpsc::RecvTimeoutError::Disconnected),
            None => from_callers.recv().map_err(|_| true),
        };
        match next {
            Ok((at, wake)) => {
                seq += 1;
                waiting.push(Reverse(Waiting { at, seq, wake }));
            }
            Err(false) => {}
            // `Holds` is gone, and with it every caller still waiting.
            Err(true) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn holds_wake_in_deadline_order_and_not_before_their_deadline() {
        let holds = std::sync::Arc::new(Holds::start(Duration::ZERO).unwrap());
        let start = Instant::now();
        let order = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (n, ms) in [30u64, 10, 20, 10].into_iter().enumerate() {
            let (holds, order) = (holds.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let at = start + Duration::from_millis(ms);
                holds.until(at).await;
                assert!(Instant::now() >= at, "woken before its deadline");
                order.lock().push((ms, n));
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let woken: Vec<u64> = order.lock().iter().map(|&(ms, _)| ms).collect();
        assert_eq!(woken, [10, 10, 20, 30]);
    }

    #[tokio::test]
    async fn a_deadline_already_past_returns_at_once() {
        let holds = Holds::start(Duration::ZERO).unwrap();
        let past = Instant::now();
        tokio::time::timeout(Duration::from_secs(1), holds.until(past))
            .await
            .expect("a past deadline must not wait");
    }
}
