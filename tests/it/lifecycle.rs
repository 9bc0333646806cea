//! Restarts and graceful shutdown: nothing acknowledged is lost.

use std::time::Duration;

use crate::harness::{ADMIN_TOKEN, Conn, Server};

#[test]
fn keys_and_usage_survive_a_restart() {
    let server = Server::start();
    let (secret, id) = server.create_key(r#"{"name": "durable", "points": 7}"#);
    for _ in 0..3 {
        assert_eq!(
            server.get("/api/v1/me", &[("X-API-Key", &secret)]).status,
            200
        );
    }
    let server = server.restart();
    // The usage counted before the clean shutdown was flushed to the record.
    let listing = server.admin("GET", "/admin/api/keys", None).json();
    assert_eq!(listing["data"]["keys"][0]["requests"], 3, "{listing}");
    let me = server.get("/api/v1/me", &[("X-API-Key", &secret)]);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["data"]["id"], id.as_str());
    assert_eq!(me.json()["data"]["points"], 7);
}

#[test]
fn graceful_shutdown_finishes_an_in_flight_request() {
    let mut server = Server::start();
    let body = r#"{"name": "in flight", "points": 5}"#;
    let mut conn = Conn::open(server.addr);
    conn.write(
        format!(
            "POST /admin/api/keys HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    std::thread::sleep(Duration::from_millis(200));
    server.sigterm();
    std::thread::sleep(Duration::from_millis(300));
    // New connections are no longer accepted while the old one drains.
    assert!(
        std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(500)).is_err()
    );
    conn.write(body.as_bytes());
    let response = conn
        .read_response(false)
        .expect("the in-flight request is answered");
    assert_eq!(response.status, 201, "{}", response.text());
    let secret = response.json()["data"]["key"].as_str().unwrap().to_owned();
    let status = server
        .wait_exit(Duration::from_secs(20))
        .expect("the server exits");
    assert!(status.success(), "{status:?}: {}", server.log());

    // What was acknowledged is there after a restart.
    let server = server.restart();
    let me = server.get("/api/v1/me", &[("X-API-Key", &secret)]);
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.json()["data"]["name"], "in flight");
}

#[test]
fn a_generated_admin_token_is_stored_0600_and_logged_once() {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let run = || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_panlink"))
            .arg("serve")
            .env_clear()
            .env("PANLINK_LISTEN", "127.0.0.1:0")
            .env("PANLINK_DATA_DIR", &data)
            .env("PANLINK_STORAGE_MAP_SIZE_MB", "64")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        assert!(line.starts_with("panlink listening on"), "{line}");
        std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = run();
    let token_file = data.join("admin_token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert!(token.len() >= 16);
    assert_eq!(
        std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert!(
        first.contains(&token),
        "the generated token is printed once"
    );
    let second = run();
    assert!(
        !second.contains(&token),
        "the token is printed only when generated"
    );
}
