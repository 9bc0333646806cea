//! `panlink serve`: start-up, background tasks and the orderly shutdown.
//!
//! Shutdown order (SIGINT or SIGTERM): stop accepting → every connection finishes its in-flight
//! requests and closes (long-lived streams are told to end) within `http.shutdown_grace_ms` →
//! background tasks stop (only now: no request counts anything after their last flush), the key
//! usage and click counters are flushed → the writer commits what is queued and stops → LMDB is
//! synced → the data dir's lock is released. A request that was answered was committed first, so
//! nothing acknowledged is lost.
//!
//! After a handover (`handover.rs`) the same order follows, except that connections close as
//! their clients learn of it; a server started with `--take-over` serves at once but takes charge
//! of the data dir (`App::take_over`, the background tasks, its own handover offer) only once
//! the server before it has released the lock.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{App, handover};
use crate::config::Config;
use crate::store::Store;
use crate::store::backup::SERVE_LOCK_FILE;
use crate::{admin, http, timefmt};

/// Runs the server until a termination signal (or until it hands over to a new server), then
/// shuts down in order. `take_over`: a server already holds the data dir; take its listener and
/// its place (see [`super::handover`]).
pub fn run(config: Config, take_over: bool) -> anyhow::Result<()> {
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("panlink-worker");
    if config.server.worker_threads > 0 {
        runtime.worker_threads(config.server.worker_threads);
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;
    // Boxed: the server's whole life is one future, large in debug builds, and the thread that
    // blocks on it may have a small stack (a test or bench that runs the server on its own
    // thread).
    runtime.block_on(Box::pin(run_async(config, take_over)))
}

/// In cluster mode, starts following the cluster's keys, links, jobs, webhooks and monitors into this node's LMDB and
/// waits until its copies have what the cluster had when it started (up to
/// `cluster.connect_timeout_ms`); nothing in single-node mode.
async fn follow_cluster(app: &Arc<App>, shutdown: &CancellationToken) -> anyhow::Result<()> {
    let keys = app
        .keys
        .book()
        .follower(shutdown.clone())
        .await
        .map_err(|err| anyhow::anyhow!("following the cluster's keys: {err}"))?;
    let links = crate::links::book::follower(&app.links, shutdown.clone())
        .await
        .map_err(|err| anyhow::anyhow!("following the cluster's links: {err}"))?;
    let jobs = match &app.jobs.shared {
        Some(shared) => Some(
            crate::jobs::shared::follower(shared, shutdown.clone())
                .await
                .map_err(|err| anyhow::anyhow!("following the cluster's jobs: {err}"))?,
        ),
        None => None,
    };
    let webhooks_at = crate::webhooks::shared::follower(&app.webhooks, shutdown.clone())
        .await
        .map_err(|err| anyhow::anyhow!("following the cluster's webhooks: {err}"))?;
    let monitors_at = crate::monitors::shared::follower(&app.monitors, shutdown.clone())
        .await
        .map_err(|err| anyhow::anyhow!("following the cluster's monitors: {err}"))?;
    if let (Some(keys_at), Some(links_at), Some(jobs_at), Some(shared)) =
        (keys, links, jobs, &app.jobs.shared)
    {
        let wait = app.config.cluster.connect_timeout;
        let caught_up = tokio::join!(
            app.keys.book().caught_up(keys_at, wait),
            crate::links::book::caught_up(&app.links, links_at, wait),
            crate::jobs::shared::caught_up(shared, jobs_at, wait),
            crate::webhooks::shared::caught_up(&app.webhooks, webhooks_at, wait),
            crate::monitors::shared::caught_up(&app.monitors, monitors_at, wait),
        );
        if caught_up != (true, true, true, true, true) {
            tracing::warn!(
                ?wait,
                "this node's copies of the cluster's keys, links, jobs, webhooks and monitors are still behind; serving anyway (/health shows how far)"
            );
        }
    }
    Ok(())
}

async fn run_async(config: Config, take_over: bool) -> anyhow::Result<()> {
    let data_dir = config.storage.data_dir.clone();
    // Held until the process exits: the kernel releases it even after `kill -9`.
    let (lock, held) = lock_data_dir(&data_dir)?;
    let handover = match (held, take_over) {
        (true, _) => None,
        (false, true) => Some(handover::request(&data_dir)?),
        (false, false) => {
            let holder =
                std::fs::read_to_string(data_dir.join(SERVE_LOCK_FILE)).unwrap_or_default();
            anyhow::bail!(
                "another panlink server is already serving the data dir {} (pid {}, it holds {}); \
                 stop it first, give this server its own storage.data_dir, or start this one with \
                 `panlink serve --take-over` to replace it without downtime",
                data_dir.display(),
                holder.trim(),
                data_dir.join(SERVE_LOCK_FILE).display()
            );
        }
    };
    let store = Store::open(&config.storage)
        .with_context(|| format!("opening LMDB in {}", config.storage.lmdb_dir().display()))?;
    let admin_token = admin::token::resolve(&config).context("resolving the admin token")?;
    let listener = match &handover {
        Some(received) => {
            let listener = received.listener.try_clone()?;
            listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(listener)?;
            let at = listener.local_addr()?;
            let wanted = config.server.listen;
            if wanted.port() != 0 && wanted != at {
                tracing::warn!(%at, %wanted, "taking over the running server's address; server.listen is not used");
            }
            listener
        }
        None => match super::systemd::activated_listener()? {
            // Socket activation: systemd bound the address; `server.listen` is not used.
            Some(std) => {
                std.set_nonblocking(true)?;
                TcpListener::from_std(std)?
            }
            None => listen(config.server.listen, config.http.listen_backlog)
                .with_context(|| format!("binding {}", config.server.listen))?,
        },
    };
    let local = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let stop = http::server::Stop::default();
    let cluster = crate::cluster::Cluster::join(&config.cluster, local, timefmt::now_ms())
        .await
        .context("joining the cluster (cluster.nats_urls)")?;
    let clustered = match cluster {
        Some(membership) => Some(
            Box::pin(super::app::Clustered::open(membership))
                .await
                .context("opening the cluster's buckets")?,
        ),
        None => None,
    };
    let app = App::new(config, store, &admin_token, shutdown.clone(), clustered)?;
    Box::pin(follow_cluster(&app, &shutdown)).await?;
    let membership = app.cluster.clone().map(|cluster| {
        // Each heartbeat carries this node's lane totals, for the others' `/pool`.
        let engine = Arc::clone(&app.jobs.engine);
        tokio::spawn(cluster.run(shutdown.clone(), move || {
            serde_json::to_value(crate::jobs::pool::snapshot(&engine).totals).unwrap_or_default()
        }))
    });
    if handover.is_none() {
        app.take_over()?;
    }

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

    tokio::spawn(watch_signals(shutdown.clone(), stop.clone()));
    let duties = CancellationToken::new();
    let in_charge = tokio::spawn(take_charge(
        Arc::clone(&app),
        lock,
        handover,
        HandoverParts {
            listener: listener_fd(&listener)?,
            local,
            stop: stop.clone(),
            duties: duties.clone(),
        },
    ));
    super::systemd::ready(&stop);

    http::server::serve(
        Arc::clone(&app),
        app.config.http.clone(),
        listener,
        stop.clone(),
    )
    .await;
    // Connections are drained: now the rest stops (the engine, monitors, webhooks) and what is
    // counted in memory is written.
    shutdown.cancel();
    duties.cancel();
    tracing::info!("connections drained; flushing state");
    let in_charge = in_charge.await.ok().flatten();
    if let Some(membership) = membership {
        // Leaves the node list (a bounded wait: NATS may be the thing that is down).
        let _ = tokio::time::timeout(Duration::from_secs(2), membership).await;
    }
    app.store.close(Duration::from_secs(30));
    // Now a server taking over may begin (it waits for the lock this releases).
    drop(in_charge);
    tracing::info!("panlink stopped");
    Ok(())
}

/// What the server in charge of the data dir holds until it has closed storage.
struct InCharge {
    _offer: Option<handover::Offer>,
    _lock: std::fs::File,
}

/// What [`take_charge`] needs to offer this server's place to a next one.
struct HandoverParts {
    /// A duplicate of the listener: closed as soon as the server shuts down, so that the port
    /// refuses connections then, as it does without a handover.
    listener: std::os::fd::OwnedFd,
    local: std::net::SocketAddr,
    stop: http::server::Stop,
    /// Cancelled once the connections are drained: the background duties end (with their last
    /// flushes) and the handover offer is withdrawn.
    duties: CancellationToken,
}

/// Becomes the server in charge of the data dir: at once when nobody held it, else once the
/// server handing over has exited (its lock is released). Then runs the background duties until
/// `duties` ends them, and offers its own place to a next server meanwhile. Returns the lock and
/// the offer, to be dropped once storage is closed; `None` if this server never took charge.
async fn take_charge(
    app: Arc<App>,
    lock: std::fs::File,
    handover: Option<handover::Received>,
    parts: HandoverParts,
) -> Option<InCharge> {
    let data_dir = app.config.storage.data_dir.clone();
    let lock = match handover {
        None => lock,
        Some(received) => {
            if let Err(err) = received.ready() {
                tracing::error!(error = %err, "the running server did not take the handover; stopping");
                parts.stop.shut_down();
                return None;
            }
            tracing::info!("accepting connections; waiting for the server before to stop");
            let waited = tokio::select! {
                waited = tokio::task::spawn_blocking(move || wait_for_lock(lock)) => waited,
                () = parts.stop.shutting_down() => return None,
            };
            let Ok(Ok(lock)) = waited else {
                tracing::error!("waiting for the data dir's lock failed; stopping");
                parts.stop.shut_down();
                return None;
            };
            if let Err(err) = app.take_over() {
                tracing::error!(error = %err, "taking charge of the data dir failed; stopping");
                parts.stop.shut_down();
                return None;
            }
            tracing::info!("the server before has stopped; this one is in charge of the data dir");
            lock
        }
    };
    write_pid(&lock);
    let handing_over = Arc::clone(&app);
    let stop = parts.stop.clone();
    let on_handover = move || {
        handing_over.hand_over();
        stop.hand_over();
    };
    let offer = match handover::Offer::start(
        &data_dir,
        parts.listener,
        parts.local,
        Box::new(on_handover),
        parts.stop.clone(),
    ) {
        Ok(offer) => Some(offer),
        Err(err) => {
            tracing::warn!(error = %err, "no handover socket: `panlink serve --take-over` cannot replace this server");
            None
        }
    };
    background_tasks(Arc::clone(&app), parts.duties).await;
    Some(InCharge {
        _offer: offer,
        _lock: lock,
    })
}

fn listener_fd(listener: &TcpListener) -> anyhow::Result<std::os::fd::OwnedFd> {
    use std::os::fd::AsFd;
    Ok(listener.as_fd().try_clone_to_owned()?)
}

/// Opens `<data_dir>/serve.lock` and tries to take it: `(file, true)` when this server holds the
/// data dir now, `(file, false)` when another server does. Two servers on one data dir would each
/// keep their own caches (a link disabled through one would still redirect on the other) unless
/// they hand over. The CLI's `keys` commands do not take it: LMDB serialises their writes with
/// the server's.
fn lock_data_dir(data_dir: &std::path::Path) -> anyhow::Result<(std::fs::File, bool)> {
    use rustix::fs::{FlockOperation, flock};
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating the data dir {}", data_dir.display()))?;
    let path = data_dir.join(SERVE_LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening {}", path.display()))?;
    let held = flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok();
    Ok((file, held))
}

/// Blocks until the data dir's lock is free and takes it.
fn wait_for_lock(file: std::fs::File) -> std::io::Result<std::fs::File> {
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(file)
}

/// Writes this process's id into the lock file: only a courtesy for the message a second server
/// prints, so a full disk must not stop the server here.
fn write_pid(mut file: &std::fs::File) {
    let _ = file.set_len(0);
    let _ = writeln!(file, "{}", std::process::id());
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

/// On SIGINT or SIGTERM: cancels `shutdown` (streams end, the engine stops) and stops the
/// server. On SIGUSR2: starts a new server of the same executable and arguments with
/// `--take-over`, which takes this one's place (the upgrade path under systemd's `ExecReload`).
async fn watch_signals(shutdown: CancellationToken, stop: http::server::Stop) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int), Ok(mut usr2)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!("cannot install signal handlers; stop the server with SIGKILL");
        return;
    };
    let executable = std::env::current_exe();
    loop {
        tokio::select! {
            _ = term.recv() => {
                tracing::info!("SIGTERM: shutting down");
                break;
            }
            _ = int.recv() => {
                tracing::info!("SIGINT: shutting down");
                break;
            }
            _ = usr2.recv() => match &executable {
                Ok(path) => start_successor(path),
                Err(err) => tracing::error!(error = %err, "SIGUSR2: cannot tell this executable's path"),
            },
            () = stop.handing_over() => {
                // Streams end now (their clients reconnect to the new server); connections close
                // as the server module says.
                wait_for_termination(&mut term, &mut int, &stop).await;
                return;
            }
        }
    }
    shutdown.cancel();
    stop.shut_down();
}

/// After a handover, a SIGTERM or SIGINT still closes the remaining connections at once.
async fn wait_for_termination(
    term: &mut tokio::signal::unix::Signal,
    int: &mut tokio::signal::unix::Signal,
    stop: &http::server::Stop,
) {
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    stop.shut_down();
}

/// Starts `executable` with this process's arguments plus `--take-over`. Its output goes where
/// this one's goes; it is not waited for (it outlives this process).
fn start_successor(executable: &std::path::Path) {
    // A replaced binary leaves " (deleted)" on /proc/self/exe; the path now holds the new one.
    let path = executable
        .to_str()
        .and_then(|p| p.strip_suffix(" (deleted)"))
        .map_or_else(|| executable.to_path_buf(), std::path::PathBuf::from);
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|arg| arg == "--take-over") {
        args.push("--take-over".into());
    }
    match std::process::Command::new(&path).args(&args).spawn() {
        Ok(child) => {
            tracing::info!(pid = child.id(), path = %path.display(), "SIGUSR2: started a new server to take over")
        }
        Err(err) => {
            tracing::error!(error = %err, path = %path.display(), "SIGUSR2: could not start a new server")
        }
    }
}

/// Periodic work: key usage flushes, metrics upkeep, the purge of expired jobs, click flushes.
/// When `stop` fires (after the connections are drained, so no request counts anything later),
/// flushes once more.
async fn background_tasks(app: Arc<App>, stop: CancellationToken) {
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
            _ = purge.tick() => {
                crate::jobs::purge_expired(&app.jobs).await;
                crate::links::transfer::purge(&app.store).await;
            }
            _ = clicks.tick() => { let _ = app.links.flush_clicks(&app.store).await; }
            _ = compact.tick() => {
                let woken = app.links.compact_clicks(&app.store, app.webhooks.sink()).await;
                app.webhooks.wake(&woken);
            }
            () = stop.cancelled() => break,
        }
    }
    app.keys.flush_usage().await;
    flush_clicks_before_exit(&app).await;
    let woken = app
        .links
        .compact_clicks(&app.store, app.webhooks.sink())
        .await;
    app.webhooks.wake(&woken);
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
