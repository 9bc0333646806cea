//! The accept loop and the life of one connection.
//!
//! Per connection: a permit from the connection cap (over the cap, a canned 503 and close), the
//! first-byte deadline (a socket that sends nothing is dropped), then hyper-util's `auto`
//! builder, which reads the HTTP/2 prior-knowledge preface itself (anything else is HTTP/1.1),
//! with both protocols' timers set. (A hand-made switch served the same redirect load at the
//! same CPU per request, within 1 %; the builder the mock uses too is kept.) An idle watchdog
//! closes connections with no request for `http.idle_timeout_ms`; a stall watchdog drops a connection whose client has taken none of
//! its bytes for `http.write_stall_timeout_ms` (a client that stopped reading holds no task,
//! buffer or stream forever). On shutdown every connection is told to finish its in-flight requests
//! and close; [`serve`] returns once all have, or when the grace period ends.
//!
//! After a handover (the listener now belongs to another server) the loop stops accepting and
//! each connection is closed without a request lost: HTTP/2 at once with GOAWAY (which tells the
//! client what was not served), HTTP/1.1 by `Connection: close` on its next response, and if it
//! stays idle, after `http.handover_linger_ms`. (Closing an idle HTTP/1.1 connection at once
//! races with a request its client may be sending into it.)

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::task::TaskTracker;

use super::connection::{self, ConnActivity};
use super::request::RequestId;
use super::response::{self, HttpResponse};
use super::signal::{Fired, Signal};

use super::watched_io::{WatchedIo, WriteStall};
use crate::config::HttpConfig;
use crate::error::ApiError;

/// What answers the requests of every connection: the application's request pipeline.
pub trait Handler: Send + Sync + 'static {
    /// Answers `req`, which came on `connection`. Never fails: errors are responses. The output
    /// is hyper's service result so that the server hands this future to hyper as it is (hyper
    /// moves it into the connection's state: keep it small, box what is large).
    fn handle(
        self: Arc<Self>,
        connection: Arc<ConnActivity>,
        req: hyper::Request<hyper::body::Incoming>,
    ) -> impl Future<Output = Result<HttpResponse, Infallible>> + Send;
}

/// Bytes an HTTP/2 stream may have waiting to be sent.
const H2_SEND_BUFFER_BYTES: usize = 64 * 1024;

/// hyper-util's builder, which reads the HTTP/2 prior-knowledge preface itself (anything else is
/// HTTP/1.1), with both protocols' settings.
fn builder(config: &HttpConfig) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(config.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        // Bytes a stream may have queued beyond what its client's window takes (hyper's
        // default is 400 KB): an event stream whose client stopped reading holds no more.
        .max_send_buf_size(H2_SEND_BUFFER_BYTES)
        .max_pending_accept_reset_streams(Some(64))
        .max_local_error_reset_streams(Some(256))
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    if config.http2 {
        builder
    } else {
        builder.http1_only()
    }
}

/// What ends the accept loop, and how its connections then close. Cheap to watch: every
/// connection polls it on each wake-up (see [`super::signal`]).
#[derive(Debug, Clone, Default)]
pub struct Stop {
    /// Shutting down: every connection finishes its in-flight requests and closes now.
    shutdown: Arc<Signal>,
    /// The listener was handed to another server, which accepts from now on: connections close
    /// as their clients learn of it (see the module doc).
    handed_over: Arc<Signal>,
    /// Whichever of the two came first: the one signal a connection polls until then.
    either: Arc<Signal>,
}

impl Stop {
    /// Shut down: stop accepting, close every connection once its in-flight requests are done.
    pub fn shut_down(&self) {
        self.shutdown.fire();
        self.either.fire();
    }

    /// The listener now belongs to another server: stop accepting, close connections as their
    /// clients learn of it.
    pub fn hand_over(&self) {
        self.handed_over.fire();
        self.either.fire();
    }

    pub fn is_shutting_down(&self) -> bool {
        self.shutdown.is_fired()
    }

    /// Completes once [`Stop::shut_down`] was called.
    pub fn shutting_down(&self) -> Fired {
        self.shutdown.fired()
    }

    /// Completes once [`Stop::hand_over`] was called.
    pub fn handing_over(&self) -> Fired {
        self.handed_over.fired()
    }
}

/// Accepts connections until `stop` fires, then drains them within the grace period. At most
/// `http.max_connections` are open at once; over it, a connection gets a canned 503.
pub async fn serve<H: Handler>(
    handler: Arc<H>,
    config: HttpConfig,
    listener: TcpListener,
    stop: Stop,
) {
    let config = Arc::new(config);
    let builder = Arc::new(builder(&config));
    let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections));
    let tracker = TaskTracker::new();
    let mut stopped = stop.either.fired();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stopped => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match Arc::clone(&connections).try_acquire_owned() {
            Ok(permit) => {
                tracker.spawn(connection(
                    Arc::clone(&handler),
                    Arc::clone(&config),
                    Arc::clone(&builder),
                    stream,
                    peer,
                    permit,
                    stop.clone(),
                ));
            }
            Err(_) => {
                count_shed("connections");
                tracker.spawn(refuse(config.retry_after_s, stream));
            }
        }
    }
    drop(listener);
    tracker.close();
    let grace = config.shutdown_grace;
    if tokio::time::timeout(grace, tracker.wait()).await.is_err() {
        tracing::warn!(
            open = tracker.len(),
            "connections still open after the shutdown grace period"
        );
    }
}

/// Over the connection cap: a complete 503 answer, then close.
async fn refuse(retry_after_s: u32, mut stream: TcpStream) {
    let body = response::error_body(
        &ApiError::Overloaded { retry_after_s },
        &RequestId::generate(),
    );
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: {retry_after_s}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    let write = async {
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}

async fn connection<H: Handler>(
    handler: Arc<H>,
    config: Arc<HttpConfig>,
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
    stop: Stop,
) {
    let _open = OpenConnection::count();
    // A socket that sends nothing within the deadline is dropped before hyper sees it.
    let mut head = [0u8; 3];
    let first = tokio::time::timeout(config.first_byte_timeout, stream.peek(&mut head)).await;
    let http2 = match first {
        // The start of HTTP/2's preface; only a handover needs to know.
        Ok(Ok(n)) if n > 0 => config.http2 && head[..n] == *b"PRI",
        Ok(_) => return,
        Err(_elapsed) => {
            tracing::debug!(%peer, "closing a connection that sent nothing in time");
            return;
        }
    };
    let stall = WriteStall::new();
    let io = TokioIo::new(WatchedIo::new(stream, Arc::clone(&stall)));
    let activity = Arc::new(ConnActivity::new(peer));
    activity.touch(connection::now_ms());
    let service = {
        let activity = Arc::clone(&activity);
        service_fn(move |req| Arc::clone(&handler).handle(Arc::clone(&activity), req))
    };
    let conn = builder.serve_connection(io, service);
    drive(
        conn,
        |c| c.graceful_shutdown(),
        &config,
        Watched {
            activity: &activity,
            stall: &stall,
            http2,
        },
        &stop,
        peer,
    )
    .await;
}

/// What a connection's watchdogs look at.
struct Watched<'a> {
    activity: &'a ConnActivity,
    stall: &'a WriteStall,
    /// The client spoke HTTP/2 (so a GOAWAY ends it without losing a request).
    http2: bool,
}

/// Runs a connection to its end, closing it gracefully on shutdown or when idle too long, and
/// dropping it when its client has taken none of its bytes for `http.write_stall_timeout`.
/// After a handover it closes as the module doc says.
async fn drive<E: std::fmt::Display, C: Future<Output = Result<(), E>>>(
    conn: C,
    begin_graceful_shutdown: impl Fn(Pin<&mut C>),
    config: &HttpConfig,
    watched: Watched<'_>,
    stop: &Stop,
    peer: SocketAddr,
) {
    let Watched {
        activity,
        stall,
        http2,
    } = watched;
    let mut conn = pin!(conn);
    let idle_ms = u64::try_from(config.idle_timeout.as_millis()).unwrap_or(u64::MAX);
    let watchdog = tokio::time::sleep(config.idle_timeout);
    let mut watchdog = pin!(watchdog);
    let stall_limit = config.write_stall_timeout;
    let stall_check = tokio::time::sleep(stall_limit);
    let mut stall_check = pin!(stall_check);
    let linger = tokio::time::sleep(Duration::MAX);
    let mut linger = pin!(linger);
    let mut lingering = false;
    let mut closing = false;
    let mut stopped = stop.either.fired();
    // Polled only after a handover, while lingering.
    let mut shutting_down = stop.shutting_down();
    loop {
        tokio::select! {
            () = &mut stall_check => match stall.blocked_for() {
                Some(blocked) if blocked >= stall_limit => {
                    tracing::debug!(%peer, ?blocked, "dropping a connection whose client stopped reading");
                    metrics::counter!("panlink_http_write_stalled_total").increment(1);
                    return;
                }
                Some(blocked) => stall_check.as_mut().reset(tokio::time::Instant::now() + (stall_limit - blocked)),
                None => stall_check.as_mut().reset(tokio::time::Instant::now() + stall_limit),
            },
            result = conn.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = &mut stopped, if !closing && !lingering => {
                if stop.is_shutting_down() || http2 {
                    begin_graceful_shutdown(conn.as_mut());
                    closing = true;
                } else {
                    // Handed over: this HTTP/1.1 connection's next answer closes it.
                    activity.begin_draining();
                    linger.as_mut().reset(tokio::time::Instant::now() + config.handover_linger);
                    lingering = true;
                }
            }
            () = &mut shutting_down, if lingering && !closing => {
                begin_graceful_shutdown(conn.as_mut());
                closing = true;
            }
            () = &mut linger, if lingering && !closing => {
                begin_graceful_shutdown(conn.as_mut());
                closing = true;
            }
            () = &mut watchdog, if !closing => {
                let now = connection::now_ms();
                match activity.idle_since(now) {
                    Some(idle) if idle >= idle_ms => {
                        begin_graceful_shutdown(conn.as_mut());
                        closing = true;
                    }
                    Some(idle) => watchdog.as_mut().reset(tokio::time::Instant::now() + Duration::from_millis(idle_ms - idle)),
                    None => watchdog.as_mut().reset(tokio::time::Instant::now() + config.idle_timeout),
                }
            }
        }
    }
}

/// Counts a request or connection refused to shed load, by `reason` (a bounded set: the callers'
/// literals), in `panlink_http_shed_total`.
pub fn count_shed(reason: &'static str) {
    metrics::counter!("panlink_http_shed_total", "reason" => reason).increment(1);
}

/// Counts an open connection in `panlink_http_open_connections` until dropped.
struct OpenConnection;

impl OpenConnection {
    fn count() -> OpenConnection {
        metrics::gauge!("panlink_http_open_connections").increment(1.0);
        OpenConnection
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        metrics::gauge!("panlink_http_open_connections").decrement(1.0);
    }
}
