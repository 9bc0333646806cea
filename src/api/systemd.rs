//! Running under systemd: `READY=1` (and `MAINPID`) once the listener is bound and storage is
//! open, `STOPPING=1` when shutdown begins (not after a handover), `WATCHDOG=1` at half the unit's `WatchdogSec` while the runtime still
//! schedules tasks, and a listening socket handed over by socket activation (`LISTEN_FDS`).
//!
//! Everything here is a no-op outside systemd (no `NOTIFY_SOCKET`, no `LISTEN_FDS`).
//!
//! Must not: fail start-up because the notify socket is gone (a notification is best effort).

use std::time::Duration;

use crate::http::server::Stop;

/// The listening socket systemd passed (socket activation), if any: the first of `LISTEN_FDS`.
pub fn activated_listener() -> anyhow::Result<Option<std::net::TcpListener>> {
    let mut fds = listenfd::ListenFd::from_env();
    if fds.len() == 0 {
        return Ok(None);
    }
    let listener = fds.take_tcp_listener(0).map_err(|err| {
        anyhow::anyhow!("the socket systemd passed (LISTEN_FDS) is unusable: {err}")
    })?;
    Ok(listener)
}

/// Tells systemd the service is ready (with `MAINPID`: after a handover this process is the
/// service's main one, which the unit's `NotifyAccess=all` lets it say), and starts the watchdog
/// and stopping notifications. A server that handed over says nothing more: the service goes on
/// in the new one.
pub fn ready(stop: &Stop) {
    notify(&[
        sd_notify::NotifyState::MainPid(std::process::id()),
        sd_notify::NotifyState::Ready,
    ]);
    if let Some(usec) = watchdog_usec() {
        let every = Duration::from_micros(usec / 2);
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tokio::select! {
                    _ = tick.tick() => notify(&[sd_notify::NotifyState::Watchdog]),
                    () = stop.shutting_down() => return,
                    () = stop.handing_over() => return,
                }
            }
        });
    }
    let stop = stop.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = stop.shutting_down() => notify(&[sd_notify::NotifyState::Stopping]),
            () = stop.handing_over() => {}
        }
    });
}

/// `WATCHDOG_USEC`, unless `WATCHDOG_PID` names another process (sd_watchdog_enabled(3): an
/// absent `WATCHDOG_PID` does not disable it, which `sd_notify::watchdog_enabled` requires).
fn watchdog_usec() -> Option<u64> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    match std::env::var("WATCHDOG_PID").ok() {
        Some(pid) if pid.parse::<u32>().ok() != Some(std::process::id()) => None,
        _ => (usec > 0).then_some(usec),
    }
}

fn notify(state: &[sd_notify::NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(false, state) {
        tracing::warn!(error = %err, "systemd notification failed");
    }
}
