//! The container image (contrib/container/Containerfile, built FROM scratch by
//! scripts/build-container.sh with podman): it builds here with nothing pulled, starts, and
//! answers /health. Heavy tier: podman and runc come from Debian's packages (scripts/test.sh).

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
#[ignore = "heavy tier (scripts/test.sh): builds and runs a container image with podman"]
fn the_container_image_builds_starts_and_answers_health() {
    let root = env!("CARGO_MANIFEST_DIR");
    let tag = format!("panlink-test:{}", std::process::id());
    let build = Command::new(format!("{root}/scripts/build-container.sh"))
        .args([env!("CARGO_BIN_EXE_panlink"), &tag])
        .output()
        .expect("scripts/build-container.sh");
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let name = format!("panlink-test-{}", std::process::id());
    // This machine's sandbox: crun cannot use its cgroups and it may not raise rlimits, so runc
    // with cgroupfs, the host's network and limits it already has. A normal host needs none of
    // these flags (scripts/build-container.sh shows the usual `podman run`).
    let run = Command::new("podman")
        .args([
            "--runtime",
            "runc",
            "--cgroup-manager=cgroupfs",
            "run",
            "-d",
            "--rm",
            "--name",
            &name,
            "--network=host",
            "--ulimit",
            "nofile=1024:4096",
            "--ulimit",
            "nproc=1024:1024",
            "-e",
            &format!("PANLINK_LISTEN=127.0.0.1:{port}"),
            &tag,
        ])
        .output()
        .expect("podman run");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let health = loop {
        if let Ok(answer) =
            std::panic::catch_unwind(|| crate::harness::request(addr, "GET", "/health", &[], None))
        {
            break answer;
        }
        assert!(Instant::now() < deadline, "the container never answered");
        std::thread::sleep(Duration::from_millis(200));
    };
    let logs = Command::new("podman")
        .args(["logs", &name])
        .output()
        .unwrap();
    let _ = Command::new("podman").args(["rm", "-f", &name]).output();
    let _ = Command::new("podman").args(["rmi", "-f", &tag]).output();
    assert_eq!(
        health.status,
        200,
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    assert_eq!(health.json()["status"], "ok");
    // Inside the image the data dir is /data: the admin token was generated there.
    assert!(
        String::from_utf8_lossy(&logs.stderr).contains("admin token"),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
}
