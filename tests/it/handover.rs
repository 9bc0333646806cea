//! Zero-downtime restart: `panlink serve --take-over` (and SIGUSR2) replaces a running server on
//! the same address while clients keep sending redirects, creates and HTTP/2 requests, and
//! follow a job's event stream. Nothing fails, nothing acknowledged is missing afterwards, and
//! the stream resumes with `Last-Event-ID` without a gap or a duplicate.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Conn, Mock, Response, Server, wait_until};

/// What one client thread saw.
#[derive(Default, Debug)]
struct Seen {
    answered: u64,
    /// Requests that got no answer or an unexpected status, with what happened.
    failures: Vec<String>,
    /// Codes of the links whose creation was acknowledged.
    created: Vec<String>,
    /// Connections the server closed with `Connection: close` (the handover's way).
    closes: u64,
}

/// Sends requests over one keep-alive HTTP/1.1 connection until `stop`, reconnecting when an
/// answer says `Connection: close`, as HTTP/1.1 clients do. Never retries a request.
fn client(
    addr: std::net::SocketAddr,
    stop: &AtomicBool,
    mut next: impl FnMut(&mut Conn) -> Option<Response>,
    mut check: impl FnMut(&Response, &mut Seen) -> Result<(), String>,
) -> Seen {
    let mut seen = Seen::default();
    let mut conn = Conn::open(addr);
    while !stop.load(Ordering::Relaxed) {
        match next(&mut conn) {
            Some(response) => {
                seen.answered += 1;
                if let Err(err) = check(&response, &mut seen) {
                    seen.failures.push(err);
                }
                if response
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"))
                {
                    seen.closes += 1;
                    conn = Conn::open(addr);
                }
            }
            None => {
                seen.failures
                    .push("no answer: the connection closed or reset".into());
                conn = Conn::open(addr);
            }
        }
    }
    seen
}

/// Redirect requests over HTTP/2 with prior knowledge, one at a time, until `stop`; a new
/// connection when the server has closed the last one (GOAWAY). Never retries a request.
fn h2_client(addr: std::net::SocketAddr, stop: &AtomicBool, codes: &[String]) -> Seen {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut seen = Seen::default();
        let connect = || async {
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (sender, connection) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(stream),
            )
            .await
            .expect("h2 handshake");
            tokio::spawn(connection);
            sender
        };
        let mut sender = connect().await;
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            if sender.ready().await.is_err() {
                seen.closes += 1;
                sender = connect().await;
                continue;
            }
            i += 1;
            let request = http::Request::get(format!("http://{addr}/{}", codes[i % codes.len()]))
                .body(http_body_util::Empty::<bytes::Bytes>::new())
                .unwrap();
            match sender.send_request(request).await {
                Ok(response) if response.status() == 302 => seen.answered += 1,
                Ok(response) => seen
                    .failures
                    .push(format!("HTTP/2 redirect answered {}", response.status())),
                Err(err) => seen
                    .failures
                    .push(format!("HTTP/2 request failed: {err:?}")),
            }
        }
        seen
    })
}

#[test]
fn a_new_server_takes_over_while_clients_send_redirects_and_creates() {
    let mut old = Server::start_with(&[("PANLINK_HTTP_HANDOVER_LINGER_MS", "500")]);
    let (key, _) = old.create_key(
        r#"{"name": "load", "plan": "premium", "rate_per_s": 100000, "burst": 100000}"#,
    );
    let mut codes = Vec::new();
    for i in 0..20 {
        let response = old.send(
            "POST",
            "/api/v1/links",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(&json!({"url": format!("https://example.com/{i}")}).to_string()),
        );
        assert_eq!(response.status, 200, "{}", response.text());
        codes.push(response.json()["data"]["code"].as_str().unwrap().to_owned());
    }
    let addr = old.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let codes = Arc::new(codes);
    let mut threads = Vec::new();
    for t in 0..4 {
        let (stop, codes) = (Arc::clone(&stop), Arc::clone(&codes));
        threads.push(std::thread::spawn(move || {
            let mut i = t;
            client(
                addr,
                &stop,
                |conn| {
                    i += 1;
                    conn.try_send("GET", &format!("/{}", codes[i % codes.len()]), &[], None)
                },
                |response, _| match response.status {
                    302 => Ok(()),
                    other => Err(format!("redirect answered {other}: {}", response.text())),
                },
            )
        }));
    }
    for t in 0..2 {
        let (stop, key) = (Arc::clone(&stop), key.clone());
        threads.push(std::thread::spawn(move || {
            let mut i = 0;
            client(
                addr,
                &stop,
                |conn| {
                    i += 1;
                    let body = json!({"url": format!("https://example.org/{t}/{i}")}).to_string();
                    conn.try_send(
                        "POST",
                        "/api/v1/links",
                        &[("X-API-Key", &key), ("Content-Type", "application/json")],
                        Some(body.as_bytes()),
                    )
                },
                |response, seen| match response.status {
                    200 => {
                        let code = response.json()["data"]["code"].as_str().unwrap().to_owned();
                        seen.created.push(code);
                        Ok(())
                    }
                    other => Err(format!("create answered {other}: {}", response.text())),
                },
            )
        }));
    }
    // HTTP/2 with prior knowledge: the old server ends its connection with GOAWAY, and the
    // client goes on over a new one.
    let h2 = {
        let (stop, codes) = (Arc::clone(&stop), Arc::clone(&codes));
        std::thread::spawn(move || h2_client(addr, &stop, &codes))
    };
    std::thread::sleep(Duration::from_millis(400));
    let started = Instant::now();
    let mut new = old.take_over();
    assert_eq!(new.addr, addr, "the new server keeps the address");
    let status = old.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "the old server exits cleanly after the handover ({status:?}); log: {}",
        old.log()
    );
    let switch = started.elapsed();
    std::thread::sleep(Duration::from_millis(400));
    stop.store(true, Ordering::Relaxed);

    let mut answered = 0;
    let mut redirects = 0;
    let mut closes = 0;
    let mut created = Vec::new();
    for (n, thread) in threads.into_iter().enumerate() {
        let seen = thread.join().unwrap();
        assert!(seen.failures.is_empty(), "{:?}", seen.failures);
        if n < 4 {
            redirects += seen.answered;
        }
        answered += seen.answered;
        closes += seen.closes;
        created.extend(seen.created);
    }
    let h2 = h2.join().unwrap();
    assert!(h2.failures.is_empty(), "HTTP/2: {:?}", h2.failures);
    assert!(
        h2.closes >= 1,
        "the HTTP/2 client moved to a new connection"
    );
    // Every client connection moved by a `Connection: close` answer, not by a broken socket.
    assert!(closes >= 6, "{closes} connections closed by an answer");
    assert!(answered > 100, "{answered} requests answered");
    eprintln!(
        "handover: {answered} HTTP/1.1 and {} HTTP/2 answers, {} links created, switch {switch:?}",
        h2.answered,
        created.len()
    );

    // Every acknowledged link is there, and the new server serves the address alone.
    for code in created.iter().chain(codes.iter()) {
        let response = new.get(&format!("/api/v1/links/{code}"), &[("X-API-Key", &key)]);
        assert_eq!(response.status, 200, "{code}: {}", response.text());
    }
    // Every redirect either server answered was counted once: the old one wrote its counts
    // before it exited, the new one holds the rest.
    let visits: u64 = codes
        .iter()
        .map(|code| {
            let link = new.get(&format!("/api/v1/links/{code}"), &[("X-API-Key", &key)]);
            let clicks = &link.json()["data"]["clicks"];
            clicks["human"].as_u64().unwrap() + clicks["bot"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(visits, redirects + h2.answered, "visits counted");
    let log = new.log();
    assert!(log.contains("this one is in charge"), "{log}");
    // The new server offers its own place in turn: a third one takes over from it.
    let third = new.take_over();
    assert!(
        new.wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
    assert_eq!(third.get(&format!("/{}", codes[0]), &[]).status, 302);
}

#[test]
fn a_second_server_without_take_over_is_refused_and_names_the_flag() {
    let server = Server::start();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_panlink"))
        .arg("serve")
        .env_clear()
        .env("PANLINK_LISTEN", "127.0.0.1:0")
        .env("PANLINK_DATA_DIR", &server.data_dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--take-over"), "{stderr}");
    assert_eq!(server.get("/health", &[]).status, 200);
}

#[test]
fn an_event_stream_resumes_on_the_new_server_without_a_gap() {
    let mock = Mock::start(150);
    // An idle keep-alive connection holds the old server for the linger: the stream reconnects
    // while the new server is not yet in charge, and is told to come back.
    let mut old = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_CONCURRENCY", "2"),
            ("PANLINK_HTTP_HANDOVER_LINGER_MS", "2000"),
        ],
    );
    let key = old.job_key("stream");
    let urls: Vec<String> = (0..30)
        .map(|i| format!("https://pan.quark.cn/s/ok{i:04}"))
        .collect();
    let items: Vec<_> = urls.iter().map(|url| json!({ "url": url })).collect();
    let job = old.submit(&key, &json!({ "items": items }));
    let mut stream = old.events(&key, &job, &[]);
    let mut ids = Vec::new();
    // A few results from the old server first.
    while ids.len() < 3 {
        let event = stream
            .next_event(Duration::from_secs(10))
            .expect("an event");
        if event.event == "result" {
            ids.push(event.id.expect("results have ids"));
        }
    }
    let mut idle = Conn::open(old.addr);
    assert_eq!(idle.send("GET", "/health", &[], None).status, 200);
    let new = old.take_over();
    let mut reasons = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    'streams: loop {
        while let Some(event) = stream.next_event(Duration::from_secs(10)) {
            match event.event.as_str() {
                "result" => ids.push(event.id.expect("results have ids")),
                "shutdown" => reasons.push(event.json()["reason"].as_str().unwrap().to_owned()),
                "done" => break 'streams,
                _ => {}
            }
        }
        assert!(
            Instant::now() < deadline,
            "no done; ids {ids:?}, reasons {reasons:?}; old log: {}\nnew log: {}",
            old.log(),
            new.log()
        );
        let last = ids.last().copied().unwrap_or(0).to_string();
        std::thread::sleep(Duration::from_millis(100));
        stream = new.events(&key, &job, &[("Last-Event-ID", &last)]);
    }
    assert_eq!(
        ids,
        (1..=30).collect::<Vec<u32>>(),
        "every result once, in order"
    );
    assert_eq!(reasons[0], "shutting_down", "{reasons:?}");
    assert!(
        reasons[1..].iter().all(|r| r == "handover") && reasons.len() > 1,
        "{reasons:?}"
    );
    // The idle connection was closed by the old server at the end of its linger.
    assert!(idle.closed_within(Duration::from_secs(5)));
    assert!(
        old.wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success())
    );
    wait_until(
        Duration::from_secs(5),
        "the job done on the new server",
        || (new.job(&key, &job).json()["status"] == "done").then_some(()),
    );
}

#[test]
fn sigusr2_starts_a_successor_that_tells_systemd_its_pid() {
    use std::os::unix::net::UnixDatagram;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut main_pids = Vec::new();
    let mut next_main_pid = |socket: &UnixDatagram| -> u32 {
        let mut buf = [0u8; 4096];
        loop {
            let n = socket.recv(&mut buf).expect("a notification");
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if let Some(pid) = text
                .lines()
                .find_map(|l| l.strip_prefix("MAINPID="))
                .and_then(|p| p.parse::<u32>().ok())
                && text.contains("READY=1")
            {
                main_pids.push(pid);
                return pid;
            }
        }
    };
    let mut old = Server::start_with(&[("NOTIFY_SOCKET", path.to_str().unwrap())]);
    let first = next_main_pid(&socket);
    let (key, _) = old.create_key(r#"{"name": "reload", "plan": "premium"}"#);
    let link = old.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(r#"{"url": "https://example.com/reload"}"#),
    );
    let code = link.json()["data"]["code"].as_str().unwrap().to_owned();

    old.signal("USR2");
    let successor = next_main_pid(&socket);
    assert_ne!(successor, first, "the successor tells its own pid");
    assert!(
        old.wait_exit(Duration::from_secs(30))
            .is_some_and(|s| s.success()),
        "the old server exits after handing over; log: {}",
        old.log()
    );
    let response = crate::harness::request(old.addr, "GET", &format!("/{code}"), &[], None);
    assert_eq!(response.status, 302, "the successor serves the address");
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &successor.to_string()])
        .status();
    wait_until(Duration::from_secs(30), "the successor to exit", || {
        (!std::path::Path::new(&format!("/proc/{successor}")).exists()
            || std::fs::read_to_string(format!("/proc/{successor}/stat"))
                .is_ok_and(|stat| stat.contains(") Z ")))
        .then_some(())
    });
}
