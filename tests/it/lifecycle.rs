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
    // New connections are no longer accepted while the old one drains.
    crate::harness::wait_until(Duration::from_secs(5), "the listener to close", || {
        std::net::TcpStream::connect_timeout(&server.addr, Duration::from_millis(500))
            .is_err()
            .then_some(())
    });
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

/// Creates links on one keep-alive connection until the server stops answering; returns the
/// `(code, n)` of every acknowledged link and how many were refused with `shutting_down`.
fn create_links_until_refused(
    addr: std::net::SocketAddr,
    key: &str,
    worker: usize,
) -> (Vec<(String, String)>, usize) {
    use std::io::Write;
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut conn = Conn::open(addr);
    for n in 0.. {
        let target = format!("https://example.com/w{worker}/{n}");
        let body = serde_json::json!({ "url": target }).to_string();
        let head = format!(
            "POST /api/v1/links HTTP/1.1\r\nHost: t\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if conn.stream.write_all(head.as_bytes()).is_err() {
            break;
        }
        let Some(response) = conn.read_response(false) else {
            break;
        };
        match response.status {
            200 => acknowledged.push((
                response.json()["data"]["code"].as_str().unwrap().to_owned(),
                target,
            )),
            503 => {
                assert_eq!(
                    response.json()["error"],
                    "shutting_down",
                    "{}",
                    response.text()
                );
                refused += 1;
            }
            other => panic!("unexpected {other}: {}", response.text()),
        }
        if response.header("connection") == Some("close") {
            break;
        }
    }
    (acknowledged, refused)
}

#[test]
fn sigterm_under_load_loses_no_acknowledged_write_and_streams_end_cleanly_then_resume() {
    use crate::harness::{Mock, SseStream};

    const LINKS: usize = 4_000;
    let mock = Mock::start(20);
    // 3 × 500 checks/s: the job of 4 000 runs for about 2.7 s, so the SIGTERM lands mid-job.
    let mut server = Server::with_mock(&mock, &[("PANLINK_CHECKER_RATE_PER_S", "500")]);
    let key = server.job_key("sigterm");
    let providers = [
        "https://pan.quark.cn/s/okTERM",
        "https://pan.baidu.com/s/1okTERM",
        "https://cloud.189.cn/t/okTERM",
    ];
    let items: Vec<String> = (0..LINKS)
        .map(|n| format!("{}{n:05}", providers[n % providers.len()]))
        .collect();
    let job = server.submit(&key, &serde_json::json!({ "items": items }));
    let path = format!("/jobs/{job}/events");

    let subscribers: Vec<_> = (0..2)
        .map(|_| {
            let (addr, path, key) = (server.addr, path.clone(), key.clone());
            std::thread::spawn(move || {
                let mut stream = SseStream::open(addr, &path, &key, &[]);
                let mut ids = Vec::new();
                let mut shutdown = None;
                while let Some(event) = stream.next_event(Duration::from_secs(30)) {
                    match event.event.as_str() {
                        "result" => ids.push(event.id.unwrap()),
                        "shutdown" => shutdown = Some(event.json()),
                        other => panic!("unexpected event {other} before the shutdown"),
                    }
                }
                (ids, shutdown)
            })
        })
        .collect();
    let writers: Vec<_> = (0..2)
        .map(|worker| {
            let (addr, key) = (server.addr, key.clone());
            std::thread::spawn(move || create_links_until_refused(addr, &key, worker))
        })
        .collect();

    std::thread::sleep(Duration::from_millis(800));
    server.sigterm();
    let status = server
        .wait_exit(Duration::from_secs(30))
        .expect("the server exits within its grace period");
    assert!(status.success(), "{status:?}: {}", server.log());

    let links: Vec<(String, String)> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap().0)
        .collect();
    assert!(links.len() > 50, "the load ran: {} links", links.len());
    let mut seen: Vec<Vec<u32>> = Vec::new();
    for subscriber in subscribers {
        let (ids, shutdown) = subscriber.join().unwrap();
        let shutdown = shutdown.expect("a `shutdown` event before the stream ended");
        assert_eq!(shutdown["reason"], "shutting_down");
        assert_eq!(
            shutdown["last_event_id"],
            ids.last().copied().unwrap_or(0),
            "{shutdown}"
        );
        assert_eq!(
            ids,
            (1..=ids.len() as u32).collect::<Vec<_>>(),
            "no gap before the end"
        );
        assert!(
            ids.len() < LINKS,
            "the job was still running at the SIGTERM"
        );
        seen.push(ids);
    }

    // After a restart: every acknowledged link, and each stream resumes where it ended.
    let server = server.restart();
    let mut conn = Conn::open(server.addr);
    for (code, target) in &links {
        let response = conn.send("GET", &format!("/{code}"), &[], None);
        assert_eq!(response.status, 302, "acknowledged link {code} lost");
        assert_eq!(response.header("location"), Some(target.as_str()));
    }
    for ids in &mut seen {
        let last = ids.last().copied().unwrap_or(0).to_string();
        let rest = SseStream::open(server.addr, &path, &key, &[("Last-Event-ID", &last)])
            .until_done(Duration::from_secs(120));
        ids.extend(crate::harness::result_ids(&rest));
        assert_eq!(
            *ids,
            (1..=LINKS as u32).collect::<Vec<_>>(),
            "every result once"
        );
    }
    let overview = server.job(&key, &job).json();
    assert_eq!(overview["totals"]["done"], LINKS, "{overview}");
}
