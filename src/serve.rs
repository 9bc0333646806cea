//! `panlink serve`: start-up, background tasks and the orderly shutdown.
//!
//! Shutdown order (SIGINT or SIGTERM): stop accepting → every connection finishes its in-flight
//! requests and closes (long-lived streams are told to end) within `http.shutdown_grace_ms` →
//! background tasks stop, the key usage counters are flushed → the writer commits what is queued
//! and stops → LMDB is synced. A request that was answered was committed first, so nothing
//! acknowledged is lost.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::store::Store;
use crate::{admin, http};

/// Runs the server until a termination signal, then shuts down in order.
pub fn run(config: Config) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("panlink-worker");
    if config.server.worker_threads > 0 {
        runtime.worker_threads(config.server.worker_threads);
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;
    runtime.block_on(run_async(config))
}

async fn run_async(config: Config) -> anyhow::Result<()> {
    let store = Store::open(&config.storage)
        .with_context(|| format!("opening LMDB in {}", config.storage.lmdb_dir().display()))?;
    let admin_token = admin::token::resolve(&config).context("resolving the admin token")?;
    let listener = listen(config.server.listen, config.http.listen_backlog)
        .with_context(|| format!("binding {}", config.server.listen))?;
    let local = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let app = App::new(config, store, &admin_token, shutdown.clone())?;

    // One stable line on stdout tells scripts and tests where the server listens.
    println!("panlink listening on http://{local}");
    let _ = std::io::stdout().flush();
    tracing::info!(%local, version = env!("CARGO_PKG_VERSION"), "panlink started");

    tokio::spawn(watch_signals(shutdown.clone()));
    let background = tokio::spawn(background_tasks(Arc::clone(&app), shutdown.clone()));

    http::server::serve(Arc::clone(&app), listener, shutdown.clone()).await;
    tracing::info!("connections drained; flushing state");
    let _ = background.await;
    app.store.close(Duration::from_secs(30));
    tracing::info!("panlink stopped");
    Ok(())
}

/// Cancels `shutdown` on SIGINT or SIGTERM.
/// The listening socket, with `backlog` queued connections at most (`TcpListener::bind` would
/// give tokio's fixed 1024: a burst of thousands of new connections then overflows the queue and
/// the rest wait for SYN retransmits, a second and more apart).
fn listen(addr: std::net::SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}

async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    shutdown.cancel();
}

/// Periodic work: key usage flushes, metrics upkeep, the purge of expired jobs. Flushes usage once
/// more on shutdown.
async fn background_tasks(app: Arc<App>, shutdown: CancellationToken) {
    let mut flush = tokio::time::interval(app.config.keys.usage_flush_interval);
    let mut upkeep = tokio::time::interval(Duration::from_secs(5));
    let mut purge = tokio::time::interval(app.config.jobs.purge_interval);
    let mut clicks = tokio::time::interval(app.config.links.click_flush_interval);
    clicks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut compact = tokio::time::interval(app.config.links.click_compact_interval);
    compact.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => app.keys.flush_usage().await,
            _ = upkeep.tick() => app.metrics.run_upkeep(),
            _ = purge.tick() => crate::jobs::purge_expired(&app).await,
            _ = clicks.tick() => app.links.flush_clicks(&app.store).await,
            _ = compact.tick() => app.links.compact_clicks(&app.store).await,
            () = shutdown.cancelled() => break,
        }
    }
    app.keys.flush_usage().await;
    app.links.flush_clicks(&app.store).await;
    app.links.compact_clicks(&app.store).await;
}
