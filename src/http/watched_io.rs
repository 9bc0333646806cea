//! A client socket that notes since when its writes have been blocked (the client stopped
//! reading), for the connection's stall watchdog.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Since when a connection's writes have been blocked, shared with its watchdog.
#[derive(Debug)]
pub struct WriteStall {
    origin: Instant,
    /// Milliseconds after `origin`, plus one, of the first write that found the socket full
    /// since the last write that went through; 0 while writes go through.
    blocked_at: AtomicU64,
}

impl WriteStall {
    pub fn new() -> Arc<WriteStall> {
        Arc::new(WriteStall {
            origin: Instant::now(),
            blocked_at: AtomicU64::new(0),
        })
    }

    /// How long writes have been blocked without a byte going out, if they are.
    pub fn blocked_for(&self) -> Option<std::time::Duration> {
        match self.blocked_at.load(Ordering::Relaxed) {
            0 => None,
            at => Some(
                self.origin
                    .elapsed()
                    .saturating_sub(std::time::Duration::from_millis(at - 1)),
            ),
        }
    }

    fn note<T>(&self, poll: &Poll<T>) {
        if poll.is_pending() {
            if self.blocked_at.load(Ordering::Relaxed) == 0 {
                let at = u64::try_from(self.origin.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
                self.blocked_at.store(at + 1, Ordering::Relaxed);
            }
        } else if self.blocked_at.load(Ordering::Relaxed) != 0 {
            self.blocked_at.store(0, Ordering::Relaxed);
        }
    }
}

/// A `TcpStream` whose writes report to a [`WriteStall`].
pub struct WatchedIo {
    inner: TcpStream,
    stall: Arc<WriteStall>,
}

impl WatchedIo {
    pub fn new(inner: TcpStream, stall: Arc<WriteStall>) -> WatchedIo {
        WatchedIo { inner, stall }
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.stall.note(&poll);
        poll
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.stall.note(&poll);
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
