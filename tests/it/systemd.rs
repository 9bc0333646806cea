//! Under systemd: the shipped unit passes `systemd-analyze verify`; the notify protocol
//! (READY=1, WATCHDOG=1, STOPPING=1) reaches a test `NOTIFY_SOCKET`; a socket passed by socket
//! activation (`LISTEN_FDS`, here through `systemd-socket-activate`) is served.

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::Server;

/// The datagrams received within `limit`, until one contains `until`.
fn datagrams_until(socket: &UnixDatagram, until: &str, limit: Duration) -> Vec<String> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        socket
            .set_read_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(10)),
            ))
            .unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = text.contains(until);
                got.push(text);
                if done {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    got
}

#[test]
fn the_notify_protocol_reaches_systemd_ready_watchdog_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut server = Server::start_with(&[
        ("NOTIFY_SOCKET", path.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
    ]);
    let ready = datagrams_until(&socket, "READY=1", Duration::from_secs(5));
    assert!(ready.iter().any(|d| d.contains("READY=1")), "{ready:?}");
    // The server answers by the time it says it is ready.
    assert_eq!(server.get("/health", &[]).status, 200);
    let watchdog = datagrams_until(&socket, "WATCHDOG=1", Duration::from_secs(2));
    assert!(
        watchdog.iter().any(|d| d.contains("WATCHDOG=1")),
        "{watchdog:?}"
    );
    server.sigterm();
    let stopping = datagrams_until(&socket, "STOPPING=1", Duration::from_secs(5));
    assert!(
        stopping.iter().any(|d| d.contains("STOPPING=1")),
        "{stopping:?}"
    );
    assert!(
        server
            .wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
}

#[test]
fn a_socket_passed_by_socket_activation_is_served() {
    let Some(activate) = [
        "/usr/bin/systemd-socket-activate",
        "/bin/systemd-socket-activate",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists()) else {
        panic!("systemd-socket-activate is missing: scripts/test.sh installs the systemd package");
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(activate)
        .args([
            "-l",
            &format!("127.0.0.1:{port}"),
            env!("CARGO_BIN_EXE_panlink"),
            "serve",
        ])
        .env_clear()
        .env("PANLINK_DATA_DIR", dir.path().join("data"))
        .env("PANLINK_STORAGE_MAP_SIZE_MB", "64")
        // Not the address served: the passed socket is.
        .env("PANLINK_LISTEN", "127.0.0.1:1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("systemd-socket-activate");
    // The first connection starts panlink on the passed socket.
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Ok(response) =
            std::panic::catch_unwind(|| crate::harness::request(addr, "GET", "/health", &[], None))
        {
            break response.status;
        }
        assert!(
            Instant::now() < deadline,
            "no answer on the activated socket"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(status, 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_shipped_unit_passes_systemd_analyze_verify() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/systemd/panlink.service"),
    )
    .unwrap();
    assert!(unit.contains("Type=notify"));
    // verify checks that ExecStart exists: point it at the binary under test.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("panlink.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/panlink", env!("CARGO_BIN_EXE_panlink")),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .args(["verify", path.to_str().unwrap()])
        .output()
        .expect("systemd-analyze (Debian's systemd package; scripts/test.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
}
