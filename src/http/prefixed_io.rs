//! A socket with the bytes already read during protocol detection put back in front, which
//! also notes since when its writes have been blocked (the client stopped reading).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The HTTP/2 connection preface; its length bounds what detection reads.
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

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

/// A `TcpStream` that first yields `prefix`.
pub struct PrefixedIo {
    prefix: [u8; 24],
    start: usize,
    end: usize,
    inner: TcpStream,
    stall: Arc<WriteStall>,
}

impl PrefixedIo {
    pub fn new(prefix: &[u8], inner: TcpStream, stall: Arc<WriteStall>) -> PrefixedIo {
        let mut buf = [0u8; 24];
        let end = prefix.len().min(24);
        buf[..end].copy_from_slice(&prefix[..end]);
        PrefixedIo {
            prefix: buf,
            start: 0,
            end,
            inner,
            stall,
        }
    }
}

impl AsyncRead for PrefixedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start < this.end {
            let n = (this.end - this.start).min(buf.remaining());
            buf.put_slice(&this.prefix[this.start..this.start + n]);
            this.start += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for PrefixedIo {
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
