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

use super::App;
use crate::config::Config;
use crate::store::Store;
use crate::store::backup::SERVE_LOCK_FILE;
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
    // Held until the process exits: the kernel releases it even after `kill -9`.
    let _serving = lock_data_dir(&config.storage.data_dir)?;
    let store = Store::open(&config.storage)
        .with_context(|| format!("opening LMDB in {}", config.storage.lmdb_dir().display()))?;
    let admin_token = admin::token::resolve(&config).context("resolving the admin token")?;
    let listener = match super::systemd::activated_listener()? {
        // Socket activation: systemd bound the address; `server.listen` is not used.
        Some(std) => {
            std.set_nonblocking(true)?;
            TcpListener::from_std(std)?
        }
        None => listen(config.server.listen, config.http.listen_backlog)
            .with_context(|| format!("binding {}", config.server.listen))?,
    };
    let local = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let app = App::new(config, store, &admin_token, shutdown.clone())?;

    // One stable line on stdout tells scripts and tests where the server listens.
    println!("panlink listening on http://{local}");
    let _ = std::io::stdout().flush();
    tracing::info!(%local, version = env!("CARGO_PKG_VERSION"), "panlink started");
    // Verdicts then come from the named server, not the drives: say so where an operator looks.
    if let Some(upstream) = app.config.checker.upstream_override {
        tracing::warn!(%upstream, "checker.upstream_override is set: every provider request goes to this address, not to the drives");
    }
    if let Some(ca) = &app.config.checker.extra_root_ca {
        tracing::info!(ca = %ca.display(), "checker.extra_root_ca: trusting these root certificates besides the built-in ones");
    }

    tokio::spawn(watch_signals(shutdown.clone()));
    super::systemd::ready(&shutdown);
    let background = tokio::spawn(background_tasks(Arc::clone(&app), shutdown.clone()));

    http::server::serve(
        Arc::clone(&app),
        app.config.http.clone(),
        listener,
        shutdown.clone(),
    )
    .await;
    tracing::info!("connections drained; flushing state");
    let _ = background.await;
    app.store.close(Duration::from_secs(30));
    tracing::info!("panlink stopped");
    Ok(())
}

/// Takes the data dir for this server: an exclusive `flock` on `<data_dir>/serve.lock`, or an
/// error naming the dir when another server holds it. Two servers on one data dir would each keep
/// their own caches (a link disabled through one would still redirect on the other). The CLI's
/// `keys` commands do not take it: LMDB serialises their writes with the server's.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<std::fs::File> {
    use rustix::fs::{FlockOperation, flock};
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    let path = data_dir.join(SERVE_LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        let holder = std::fs::read_to_string(&path).unwrap_or_default();
        anyhow::bail!(
            "another panlink server is already serving the data dir {} (pid {}, it holds {}); \
             stop it first, or give this server its own storage.data_dir",
            data_dir.display(),
            holder.trim(),
            path.display()
        );
    }
    // Only a courtesy for the message above: a full disk must not stop the server here.
    let _ = file.set_len(0);
    let _ = writeln!(file, "{}", std::process::id());
    Ok(file)
}

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

/// Cancels `shutdown` on SIGINT or SIGTERM.
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
            _ = purge.tick() => crate::jobs::purge_expired(&app.jobs).await,
            _ = clicks.tick() => { let _ = app.links.flush_clicks(&app.store).await; }
            _ = compact.tick() => app.links.compact_clicks(&app.store).await,
            () = shutdown.cancelled() => break,
        }
    }
    app.keys.flush_usage().await;
    flush_clicks_before_exit(&app).await;
    app.links.compact_clicks(&app.store).await;
}

/// The last click flush: retried (a full disk may free up) until `http.shutdown_grace_ms` has
/// passed, then the exact number of visits that could not be written is logged.
async fn flush_clicks_before_exit(app: &App) {
    let deadline = tokio::time::Instant::now() + app.config.http.shutdown_grace;
    loop {
        let Err(unflushed) = app.links.flush_clicks(&app.store).await else {
            return;
        };
        if tokio::time::Instant::now() >= deadline {
            tracing::error!(
                visits = unflushed.visits,
                links = unflushed.links,
                "shutting down with {} counted visits of {} links not written: storage refused them until the shutdown deadline",
                unflushed.visits,
                unflushed.links
            );
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
