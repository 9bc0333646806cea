//! What the server knows of one connection while it lives: its client's address, the requests
//! running on it (for the idle watchdog), when it was last active, and the event streams open on
//! it (a per-connection cap: HTTP/2 carries many streams on one connection), and whether it is
//! being closed after a handover (its next HTTP/1.1 response then says `Connection: close`).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Instant;

/// Milliseconds on the connections' clock (monotonic, from the first use in this process).
pub fn now_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    u64::try_from(START.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Activity of one connection, read by its idle watchdog.
#[derive(Debug)]
pub struct ConnActivity {
    /// The connection's client address.
    pub peer: std::net::SocketAddr,
    in_flight: AtomicU32,
    /// Milliseconds since the server started, at the end of the last request.
    last_active_ms: AtomicU64,
    /// Event streams open on this connection.
    streams: AtomicUsize,
    /// The listener went to another server: answer what comes, then close.
    draining: AtomicBool,
}

/// One event stream counted on its connection, until dropped.
pub struct ConnStream(Arc<ConnActivity>);

impl Drop for ConnStream {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl ConnActivity {
    pub fn new(peer: std::net::SocketAddr) -> ConnActivity {
        ConnActivity {
            peer,
            in_flight: AtomicU32::new(0),
            last_active_ms: AtomicU64::new(0),
            streams: AtomicUsize::new(0),
            draining: AtomicBool::new(false),
        }
    }

    /// From now on, this connection's responses should end it (`Connection: close` on HTTP/1.1):
    /// a client then learns of the close from a response, never from a request it sent into a
    /// closing socket.
    pub fn begin_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Whether the connection is being closed after a handover.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Counts one more event stream on this connection, unless it already has `limit`.
    pub fn open_stream(self: &Arc<Self>, limit: usize) -> Option<ConnStream> {
        self.streams
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .ok()
            .map(|_| ConnStream(Arc::clone(self)))
    }

    /// Whether no request is running and none ended within `idle_ms` before `now_ms`.
    pub fn idle_since(&self, now_ms: u64) -> Option<u64> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        Some(now_ms.saturating_sub(self.last_active_ms.load(Ordering::Acquire)))
    }

    /// Marks a request as running on this connection until the guard is dropped.
    pub fn running_request(&self) -> RunningRequest<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        RunningRequest(self)
    }

    pub fn touch(&self, now_ms: u64) {
        self.last_active_ms.store(now_ms, Ordering::Release);
    }
}

/// A request running on its connection (see [`ConnActivity::running_request`]).
pub struct RunningRequest<'a>(&'a ConnActivity);

impl Drop for RunningRequest<'_> {
    fn drop(&mut self) {
        self.0.touch(now_ms());
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
