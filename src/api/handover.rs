//! Handing a running server's listener and data dir to a new server without refusing a
//! connection or losing a request (`panlink serve --take-over`, or SIGUSR2 to the running one).
//!
//! The server in charge of a data dir answers on a unix socket there (`handover.sock`, mode 0600;
//! a peer of another user is refused too). A new server that finds the data dir held connects
//! and receives the listening socket itself (`SCM_RIGHTS`): both processes then hold one kernel
//! socket, whose queue of connections is never closed, so no connection is refused or reset
//! while the two change places. (Two sockets bound with `SO_REUSEPORT` would each have their own
//! queue, and the connections waiting in the old one's are reset when it closes, unless the
//! root-only `net.ipv4.tcp_migrate_req` is set.)
//!
//! The exchange, one line each way, then the socket:
//! 1. new → old: `panlink-handover 1`
//! 2. old → new: `listen <address>` with the listening socket attached
//! 3. new → old: `ready` once it accepts connections (anything else, or a closed socket: the
//!    new server failed, and the old one goes on as if nothing happened)
//!
//! After `ready` the old server stops accepting, closes its connections as their clients learn of
//! it, finishes in-flight requests, writes what it counted and exits, which releases the data
//! dir's lock; the new one waits for that lock before it starts what only the server in charge
//! may do (see [`super::App::take_over`]).
//!
//! Must not: hand the listener to a process of another user, or to two new servers.

use std::io::{BufRead, BufReader, IoSlice, IoSliceMut, Write};
use std::mem::MaybeUninit;
use std::net::SocketAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::http::server::Stop;
use anyhow::{Context, bail};
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};

/// The socket's file name in the data dir.
pub const SOCKET_FILE: &str = "handover.sock";

const HELLO: &str = "panlink-handover 1";
const READY: &str = "ready";

/// How long either side waits for the other's next line. The new server's `ready` comes after it
/// opened storage and built its app: seconds at most.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the handover socket of `data_dir` is.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET_FILE)
}

/// The listener received from the running server, and the line back to it.
pub struct Received {
    pub listener: std::net::TcpListener,
    /// Where the running server listens (what it said).
    pub address: String,
    line: UnixStream,
}

impl Received {
    /// Tells the old server that this one accepts connections now: it stops accepting.
    pub fn ready(mut self) -> anyhow::Result<()> {
        writeln!(self.line, "{READY}").context("telling the running server to hand over")?;
        Ok(())
    }
}

/// Asks the server holding `data_dir` for its listener.
pub fn request(data_dir: &Path) -> anyhow::Result<Received> {
    let path = socket_path(data_dir);
    let mut line = UnixStream::connect(&path).with_context(|| {
        format!(
            "connecting to the running server's handover socket {} (is the server that holds the \
             data dir a panlink that can hand over, and is no other handover under way?)",
            path.display()
        )
    })?;
    line.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    writeln!(line, "{HELLO}")?;
    let mut text = [0u8; 256];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let received = rustix::net::recvmsg(
        &line,
        &mut [IoSliceMut::new(&mut text)],
        &mut control,
        RecvFlags::CMSG_CLOEXEC,
    )
    .context("reading the running server's answer")?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = message {
            fds.extend(rights);
        }
    }
    let answer = String::from_utf8_lossy(&text[..received.bytes]);
    let answer = answer.trim_end();
    let Some(address) = answer.strip_prefix("listen ") else {
        bail!("the running server refused the handover: {answer}");
    };
    let Some(fd) = fds.pop() else {
        bail!("the running server sent no listening socket");
    };
    Ok(Received {
        listener: std::net::TcpListener::from(fd),
        address: address.to_owned(),
        line,
    })
}

/// The running server's side: answers one new server on the handover socket and calls
/// `on_handover` once it says `ready`. Ends when the server shuts down or after a handover.
pub struct Offer {
    path: PathBuf,
}

impl Offer {
    /// Listens on the handover socket of `data_dir` (a stale file from a killed server is
    /// replaced: whoever calls this holds the data dir's lock). `listener` is what will be
    /// handed over (closed here when the server shuts down), `address` is where it listens.
    pub fn start(
        data_dir: &Path,
        listener: OwnedFd,
        address: SocketAddr,
        on_handover: Box<dyn FnOnce() + Send>,
        stop: Stop,
    ) -> anyhow::Result<Offer> {
        let path = socket_path(data_dir);
        let _ = std::fs::remove_file(&path);
        let socket = std::os::unix::net::UnixListener::bind(&path)
            .with_context(|| format!("listening on {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        let owner = std::fs::metadata(&path)?.uid();
        socket.set_nonblocking(true)?;
        let socket = tokio::net::UnixListener::from_std(socket)?;
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = socket.accept() => accepted,
                    () = stop.shutting_down() => return,
                };
                let Ok((peer, _)) = accepted else { continue };
                let Ok(peer) = peer.into_std() else { continue };
                let listener = match listener.try_clone() {
                    Ok(fd) => fd,
                    Err(err) => {
                        tracing::error!(error = %err, "cannot duplicate the listener for a handover");
                        continue;
                    }
                };
                let exchange = tokio::task::spawn_blocking(move || {
                    exchange(peer, owner, &listener, &address.to_string())
                });
                match exchange.await {
                    Ok(Ok(())) => {
                        tracing::info!(
                            "a new server took the listener; closing connections and stopping"
                        );
                        on_handover();
                        return;
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, "a handover did not complete; serving on");
                    }
                    Err(err) => tracing::error!(error = %err, "the handover exchange failed"),
                }
            }
        });
        Ok(Offer { path })
    }
}

impl Drop for Offer {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One new server: hello, the listener, then its `ready`.
fn exchange(peer: UnixStream, owner: u32, listener: &OwnedFd, address: &str) -> anyhow::Result<()> {
    peer.set_nonblocking(false)?;
    peer.set_read_timeout(Some(EXCHANGE_TIMEOUT))?;
    let credentials = rustix::net::sockopt::socket_peercred(&peer)?;
    if credentials.uid.as_raw() != owner {
        bail!(
            "refused: the process asking (pid {}) runs as another user",
            credentials.pid.as_raw_nonzero()
        );
    }
    let mut reader = BufReader::new(&peer);
    let mut hello = String::new();
    reader.read_line(&mut hello)?;
    if hello.trim_end() != HELLO {
        bail!("not a handover request: {:?}", hello.trim_end());
    }
    let text = format!("listen {address}\n");
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [listener.as_fd()];
    control.push(SendAncillaryMessage::ScmRights(&fds));
    rustix::net::sendmsg(
        &peer,
        &[IoSlice::new(text.as_bytes())],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    let mut answer = String::new();
    reader.read_line(&mut answer)?;
    if answer.trim_end() != READY {
        bail!(
            "the new server did not start (it said {:?})",
            answer.trim_end()
        );
    }
    Ok(())
}
