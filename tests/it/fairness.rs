//! One client must not degrade the service for the others, nor make the operator lose trust in
//! the data: quadratic text, slow bodies on the public password form, event streams that are
//! never read, a free key filling the disk, a truncated data file, two servers on one data dir,
//! user info and self-references in link targets, and a batch of password links. Each test
//! prints the figure it bounds.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Conn, Response, Server, serve_refused, wait_until};

/// Latencies of `/health` asked every 25 ms on fresh connections while `busy` runs; the worst.
fn worst_health_latency_while(server: &Server, busy: impl FnOnce() + Send) -> Duration {
    let addr = server.addr;
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        let prober = scope.spawn(|| {
            let mut worst = Duration::ZERO;
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                let asked = Instant::now();
                let response = crate::harness::request(addr, "GET", "/health", &[], None);
                assert_eq!(
                    response.status,
                    200,
                    "/health under load: {}",
                    response.text()
                );
                worst = worst.max(asked.elapsed());
                std::thread::sleep(Duration::from_millis(25));
            }
            worst
        });
        busy();
        done.store(true, std::sync::atomic::Ordering::Release);
        prober.join().unwrap()
    })
}

/// The heavy tier's mark: `cargo test` leaves these out, `scripts/test.sh` runs them and shows
/// the `figure:` lines they print.
#[test]
#[ignore = "heavy tier (scripts/test.sh): three 5 MB texts at once"]
fn forum_text_of_110_000_links_is_read_in_linear_time_off_the_workers() {
    let server = Server::start_with(&[
        ("PANLINK_JOBS_MAX_ITEMS", "200000"),
        ("PANLINK_JOBS_FREE_MAX_STORED_ITEMS", "1000000"),
        ("PANLINK_STORAGE_MAP_SIZE_MB", "2048"),
    ]);
    let key = server.job_key("forum");
    // ~5 MB of text: 110 000 distinct share links, each with its code after it.
    let mut text = String::with_capacity(6 << 20);
    for n in 0..110_000u32 {
        text.push_str(&format!(
            "资源{n} https://pan.quark.cn/s/{n:012x} 提取码：ab12\n"
        ));
    }
    let body = json!({ "text": text }).to_string();
    let started = Instant::now();
    let worst = worst_health_latency_while(&server, || {
        std::thread::scope(|scope| {
            let posts: Vec<_> = (0..3)
                .map(|_| {
                    scope.spawn(|| {
                        server.send(
                            "POST",
                            "/jobs",
                            &[("X-API-Key", &key), ("Content-Type", "application/json")],
                            Some(&body),
                        )
                    })
                })
                .collect();
            for post in posts {
                let created = post.join().unwrap();
                assert_eq!(created.status, 201, "{}", created.text());
                assert_eq!(created.json()["total"], 110_000);
            }
        });
    });
    let took = started.elapsed();
    crate::harness::figure(&format!(
        "three POST /jobs of 110 000-link texts (5 MB each) at once took {took:.1?}; worst /health meanwhile {worst:.1?} (debug build)"
    ));
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(
        worst < Duration::from_secs(2),
        "/health waited {worst:?} behind the extraction"
    );
}

/// A link to unlock with a password, and the server's key.
fn password_link(server: &Server) -> String {
    let (key, _) = server.create_key(r#"{"name": "links", "points": 0}"#);
    let created = server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(
            &json!({"url": "https://example.com/secret", "access_type": "password", "password": "s3cret"})
                .to_string(),
        ),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    created.json()["data"]["code"].as_str().unwrap().to_owned()
}

/// Opens `POST /<code>` announcing a 1 000-byte form and sends one byte of it.
fn slow_form(server: &Server, code: &str) -> Conn {
    let mut conn = Conn::open(server.addr);
    conn.write(
        format!(
            "POST /{code} HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\np"
        )
        .as_bytes(),
    );
    conn
}

#[test]
fn slow_password_form_bodies_hold_no_slot_and_are_cut_at_their_deadline() {
    let server = Server::start_with(&[
        ("PANLINK_HTTP_MAX_IN_FLIGHT", "8"),
        ("PANLINK_HTTP_BODY_TIMEOUT_MS", "1500"),
        ("PANLINK_HTTP_MAX_PUBLIC_BODY_READS_PER_PEER", "6"),
    ]);
    let code = password_link(&server);
    // Many more slow senders than there are in-flight slots, all from this one address.
    let mut slow: Vec<Conn> = (0..40).map(|_| slow_form(&server, &code)).collect();
    wait_until(
        Duration::from_secs(5),
        "the form's readers to fill up",
        || {
            (server.metric("panlink_http_shed_total{reason=\"peer_body_reads\"}") >= 1.0)
                .then_some(())
        },
    );
    // Everyone else is served at once: the redirect page, health, the API.
    let asked = Instant::now();
    assert_eq!(server.get("/health", &[]).status, 200);
    assert_eq!(server.get(&format!("/{code}"), &[]).status, 200);
    assert_eq!(server.get("/pool", &[]).status, 200);
    crate::harness::figure(&format!(
        "/health, a redirect page and /pool while 40 password forms trickle from one address: {:.1?}",
        asked.elapsed()
    ));
    assert!(asked.elapsed() < Duration::from_secs(1));
    let mut refused = 0;
    let mut cut = 0;
    for conn in &mut slow {
        let answer = conn
            .read_response(false)
            .expect("an answer to each slow form");
        match answer.status {
            429 => {
                answer.assert_error(429, "too_many_concurrent_requests");
                refused += 1;
            }
            408 => {
                answer.assert_error(408, "body_timeout");
                assert_eq!(answer.header("connection"), Some("close"));
                cut += 1;
            }
            other => panic!("a slow form got {other}: {}", answer.text()),
        }
    }
    crate::harness::figure(&format!(
        "40 slow password forms from one address: {refused} refused at once (429), {cut} cut at the body deadline (408)"
    ));
    assert_eq!(cut, 6, "the address's six readers ran out of time");
    assert_eq!(refused, 34);
    // A form sent whole still works.
    let mut conn = Conn::open(server.addr);
    let form = conn.send(
        "POST",
        &format!("/{code}"),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        Some(b"password=s3cret"),
    );
    assert_eq!(form.status, 303, "{}", form.text());
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): 8 000 sockets"]
fn eight_thousand_slow_password_forms_from_many_senders_leave_every_slot_free() {
    const SLOW: usize = 8_000;
    crate::hostile::raise_open_files(SLOW as u64 * 2 + 2_000);
    // Each sender might be a different address: no per-address limit helps here, only that a
    // body being read holds no in-flight slot.
    let server = Server::start_with(&[
        ("PANLINK_HTTP_MAX_IN_FLIGHT", "64"),
        ("PANLINK_HTTP_BODY_TIMEOUT_MS", "8000"),
        ("PANLINK_HTTP_MAX_PUBLIC_BODY_READS_PER_PEER", "100000"),
    ]);
    let code = password_link(&server);
    let mut slow: Vec<Conn> = (0..SLOW).map(|_| slow_form(&server, &code)).collect();
    let mut latencies = Vec::new();
    for _ in 0..100 {
        let asked = Instant::now();
        assert_eq!(server.get("/health", &[]).status, 200);
        assert_eq!(server.get(&format!("/{code}"), &[]).status, 200);
        latencies.push(asked.elapsed());
    }
    latencies.sort();
    crate::harness::figure(&format!(
        "/health + a redirect page while {SLOW} connections trickle password-form bodies: p50 {:.1?}, worst {:.1?}",
        latencies[50], latencies[99]
    ));
    assert!(
        latencies[99] < Duration::from_secs(2),
        "{:?}",
        latencies[99]
    );
    let cut = slow
        .iter_mut()
        .map(|conn| conn.read_response(false))
        .filter(|answer| answer.as_ref().is_some_and(|r| r.status == 408))
        .count();
    assert_eq!(cut, SLOW, "every slow form is cut at its deadline");
    server.report_peak_rss("8 000 slow password-form bodies", 1024);
}

#[test]
fn a_body_that_keeps_up_its_minimum_rate_is_read_whole() {
    let server = Server::start_with(&[
        ("PANLINK_HTTP_BODY_TIMEOUT_MS", "400"),
        ("PANLINK_HTTP_BODY_MIN_BYTES_PER_S", "200"),
    ]);
    let body = r#"{"name": "dripped but on time"}"#;
    let mut conn = Conn::open(server.addr);
    conn.write(
        format!(
            "POST /admin/api/keys HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            crate::harness::ADMIN_TOKEN,
            body.len()
        )
        .as_bytes(),
    );
    // 31 bytes at ~100 bytes/s after the grace: within 400 ms + bytes/200 at every step.
    for chunk in body.as_bytes().chunks(4) {
        std::thread::sleep(Duration::from_millis(15));
        conn.write(chunk);
    }
    let created = conn.read_response(false).unwrap();
    assert_eq!(created.status, 201, "{}", created.text());
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): 100 streams of a 100 000-event job"]
fn streams_that_are_never_read_hold_little_memory() {
    const SILENT: usize = 100;
    const LINKS: u32 = 100_000;
    let mock = crate::harness::Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_RATE_PER_S", "1000000"),
            ("PANLINK_CHECKER_CONCURRENCY", "64"),
            // They stay connected for the whole measurement.
            ("PANLINK_HTTP_WRITE_STALL_TIMEOUT_MS", "300000"),
            ("PANLINK_JOBS_MAX_STREAMS_PER_KEY", "200"),
            ("PANLINK_JOBS_FREE_MAX_STORED_ITEMS", "1000000"),
            ("PANLINK_STORAGE_MAP_SIZE_MB", "1024"),
        ],
    );
    let key = server.job_key("silent");
    // Most links are of no drive, answered at submission, so that the job is stored in seconds;
    // the rest are checked. The replay reads them all from storage alike.
    let items: Vec<String> = (0..LINKS)
        .map(|n| {
            if n % 100 == 0 {
                format!("https://pan.quark.cn/s/okMEM{n:07x}")
            } else {
                format!("https://example.com/files/mem-{n:07x}")
            }
        })
        .collect();
    let job = server.submit(&key, &json!({ "items": items }));
    wait_until(Duration::from_secs(300), "the job to finish", || {
        (server.job(&key, &job).json()["status"] == "done").then_some(())
    });
    let before = server.rss_kib();
    let path = format!("/jobs/{job}/events");
    let silent = crate::harness::silent_subscribers(server.addr, &path, &key, SILENT);
    // Every stream has filled its socket and stopped: its replay is blocked on the client.
    wait_until(Duration::from_secs(60), "the streams to stall", || {
        let events = server.metric("panlink_sse_events_total");
        std::thread::sleep(Duration::from_millis(300));
        (events > 0.0 && server.metric("panlink_sse_events_total") == events).then_some(())
    });
    let after = server.rss_kib();
    // The measure means something only if the streams are blocked part-way through the replay.
    let sent = server.metric("panlink_sse_events_total");
    assert!(
        sent < (SILENT as f64) * f64::from(LINKS) / 2.0,
        "{sent} events sent: the sockets took most of the replay"
    );
    let per_stream = after.saturating_sub(before) as f64 / SILENT as f64;
    crate::harness::figure(&format!(
        "{SILENT} streams of a {LINKS}-event job never read ({sent} events sent): RSS {:.1} → {:.1} MiB, {per_stream:.0} KiB per stream",
        before as f64 / 1024.0,
        after as f64 / 1024.0
    ));
    assert!(
        per_stream < 512.0,
        "{per_stream:.0} KiB held per stream that is not read"
    );
    // A reader still gets the whole job.
    let events = crate::harness::SseStream::open(server.addr, &path, &key, &[])
        .until_done(Duration::from_secs(180));
    assert_eq!(crate::harness::result_ids(&events).len(), LINKS as usize);
    drop(silent);
}

#[test]
fn event_streams_are_capped_per_key_and_per_connection() {
    let mock = crate::harness::Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_JOBS_MAX_STREAMS_PER_KEY", "3"),
            ("PANLINK_JOBS_MAX_STREAMS_PER_CONNECTION", "2"),
        ],
    );
    let key = server.job_key("streams");
    let other = server.job_key("other");
    let job = server.submit(&key, &json!({"items": ["https://pan.quark.cn/s/slowCAP1"]}));
    let path = format!("/jobs/{job}/events");
    let open: Vec<_> = (0..3)
        .map(|_| crate::harness::SseStream::open(server.addr, &path, &key, &[]))
        .collect();
    assert!(open.iter().all(|s| s.status == 200));
    let fourth = server.get(&path, &[("X-API-Key", &key)]);
    let json = fourth.assert_error(429, "too_many_streams");
    assert!(json["msg"].as_str().unwrap().contains("密钥"), "{json}");
    // Another key is not affected.
    let theirs = server.submit(
        &other,
        &json!({"items": ["https://pan.quark.cn/s/slowCAP2"]}),
    );
    let stream = crate::harness::SseStream::open(
        server.addr,
        &format!("/jobs/{theirs}/events"),
        &other,
        &[],
    );
    assert_eq!(stream.status, 200);
    drop(stream);
    // A stream closed gives its place back.
    drop(open);
    wait_until(Duration::from_secs(5), "a closed stream's place", || {
        let stream = crate::harness::SseStream::open(server.addr, &path, &key, &[]);
        (stream.status == 200).then_some(())
    });

    // Per connection: HTTP/2 carries many streams on one connection.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let statuses = rt.block_on(async {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        let mut held = Vec::new();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            // `other` may open three streams, but this connection only two.
            let request =
                http::Request::get(format!("http://{}/jobs/{theirs}/events", server.addr))
                    .header("x-api-key", &other)
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap();
            let response = sender.send_request(request).await.unwrap();
            statuses.push(response.status().as_u16());
            held.push(response);
        }
        statuses
    });
    assert_eq!(statuses, vec![200, 200, 429]);
}

/// `POST /jobs` of `n` unsupported URLs of about `url_len` bytes, each with `meta_len` of meta.
fn unsupported_job(
    server: &Server,
    key: &str,
    n: usize,
    url_len: usize,
    meta_len: usize,
) -> crate::harness::Response {
    let path = "p".repeat(url_len.saturating_sub(40));
    let pad = "m".repeat(meta_len.saturating_sub(10));
    let items: Vec<serde_json::Value> = (0..n)
        .map(|i| json!({"url": format!("https://files.example/{i:08}/{path}"), "meta": {"m": pad}}))
        .collect();
    server.create_job(key, &json!({ "items": items }))
}

#[test]
fn a_free_key_stores_no_more_items_than_its_plan_allows() {
    let server = Server::start_with(&[
        ("PANLINK_JOBS_FREE_MAX_STORED_ITEMS", "2000"),
        ("PANLINK_JOBS_PREMIUM_MAX_STORED_ITEMS", "5000"),
    ]);
    let free = server.job_key("free");
    let premium = server
        .create_key(
            r#"{"name": "premium", "plan": "premium", "rate_per_s": 10000, "burst": 10000}"#,
        )
        .0;
    // Jobs answered at once (every URL unsupported) count as much as any other.
    let size_before = std::fs::metadata(server.data_dir.join("lmdb/data.mdb"))
        .unwrap()
        .len();
    for _ in 0..2 {
        let created = unsupported_job(&server, &free, 1_000, 2_000, 1_000);
        assert_eq!(created.status, 201, "{}", created.text());
        assert_eq!(created.json()["status"], "done");
    }
    let refused = unsupported_job(&server, &free, 1, 100, 0);
    let json = refused.assert_error(429, "item_quota_exceeded");
    assert!(json["msg"].as_str().unwrap().contains("2000"), "{json}");
    assert!(refused.header("retry-after").is_some());
    // Another key, another plan: its own quota.
    let created = unsupported_job(&server, &premium, 1_000, 100, 0);
    assert_eq!(created.status, 201, "{}", created.text());
    // What one item may carry is bounded too.
    let oversized = server.create_job(
        &premium,
        &json!({"items": [
            format!("https://files.example/{}", "u".repeat(2100)),
            {"url": "https://files.example/meta", "meta": {"m": "m".repeat(1100)}},
            "https://files.example/ok",
        ]}),
    );
    assert_eq!(oversized.status, 201, "{}", oversized.text());
    let rejected = &oversized.json()["rejected"];
    assert_eq!(rejected[0]["reason"], "url_too_long");
    assert_eq!(rejected[1]["reason"], "meta_too_large");
    assert_eq!(oversized.json()["total"], 1);
    // The figure: what the largest items a free key may send cost on disk.
    wait_until(
        Duration::from_secs(10),
        "the writes to reach the file",
        || {
            let size = std::fs::metadata(server.data_dir.join("lmdb/data.mdb"))
                .unwrap()
                .len();
            (size > size_before).then_some(())
        },
    );
    let grown = std::fs::metadata(server.data_dir.join("lmdb/data.mdb"))
        .unwrap()
        .len()
        - size_before;
    let per_item = grown as f64 / 2_000.0;
    let default_quota = 100_000.0;
    crate::harness::figure(&format!(
        "a free key's largest items (2 KB URL, 1 KB meta) take {per_item:.0} bytes each on disk (with the premium key's small ones); \
         at the default quota of {default_quota} items a free key can store at most {:.0} MB per retention window",
        per_item * default_quota / 1e6
    ));
}

#[test]
fn a_truncated_data_file_is_refused_with_its_name_not_a_crash() {
    let mut server = Server::start();
    let key = server.job_key("truncated");
    for n in 0..300 {
        let created = server.send(
            "POST",
            "/api/v1/links",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(
                &json!({"url": format!("https://example.com/{n}/{}", "x".repeat(500))}).to_string(),
            ),
        );
        assert_eq!(created.status, 200, "{}", created.text());
    }
    server.stop();
    let copy = tempfile::tempdir().unwrap();
    let data_dir = copy.path().join("data");
    std::fs::create_dir_all(data_dir.join("lmdb")).unwrap();
    let file = data_dir.join("lmdb/data.mdb");
    std::fs::copy(server.data_dir.join("lmdb/data.mdb"), &file).unwrap();
    let len = std::fs::metadata(&file).unwrap().len();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let (status, output) = serve_refused(&data_dir, &[], Duration::from_secs(20));
    println!("{output}");
    assert_eq!(
        status.code(),
        Some(1),
        "a clean refusal, not a signal: {status}"
    );
    assert!(output.contains("truncated"), "{output}");
    assert!(output.contains(&file.display().to_string()), "{output}");
    // The original, intact, still opens.
    let restarted = server.restart();
    assert_eq!(restarted.get("/health", &[]).status, 200);
}

#[test]
fn a_second_server_on_a_data_dir_in_use_is_refused() {
    let server = Server::start();
    let (status, output) = serve_refused(&server.data_dir, &[], Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{output}");
    assert!(output.contains("already serving"), "{output}");
    assert!(
        output.contains(&server.data_dir.display().to_string()),
        "{output}"
    );
    // The CLI still works beside the running server, and the server is untouched.
    let listed = server.cli(&["keys", "list"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert_eq!(server.get("/health", &[]).status, 200);
}

#[test]
fn a_server_killed_with_sigkill_leaves_no_lock_behind() {
    let mut server = Server::start();
    server.kill9();
    let restarted = server.restart();
    assert_eq!(restarted.get("/health", &[]).status, 200);
}

fn create_link(server: &Server, key: &str, url: &str) -> crate::harness::Response {
    server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&json!({ "url": url }).to_string()),
    )
}

/// `POST /api/v1/links` for `url`, sent with `Host: host` (a name the client reached us by).
fn create_link_as(server: &Server, key: &str, host: &str, url: &str) -> Response {
    let body = json!({ "url": url }).to_string();
    let mut conn = Conn::open(server.addr);
    conn.write(
        format!(
            "POST /api/v1/links HTTP/1.1\r\nHost: {host}\r\nX-API-Key: {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    conn.read_response(false).unwrap()
}

#[test]
fn link_targets_with_user_info_or_pointing_back_here_are_refused() {
    let server = Server::start_with(&[("PANLINK_PUBLIC_BASE_URL", "https://s.example.com")]);
    let (key, _) = server.create_key(r#"{"name": "targets", "points": 0}"#);
    let json = create_link(&server, &key, "https://paypal.com@evil.example/login")
        .assert_error(400, "invalid_field");
    assert!(json["msg"].as_str().unwrap().contains("用户信息"), "{json}");
    for looping in [
        "https://s.example.com/x",
        "https://S.EXAMPLE.COM/x",
        "https://s.example.com./x",
        "https://s.example.com%2E/x",
    ] {
        let json = create_link(&server, &key, looping).assert_error(400, "invalid_field");
        assert!(
            json["msg"].as_str().unwrap().contains("本服务"),
            "{looping}: {json}"
        );
    }
    // Reached on loopback: every loopback name and address is this service.
    let port = server.addr.port();
    for looping in [
        format!("http://127.0.0.1:{port}/x"),
        format!("http://localhost:{port}/x"),
        format!("http://[::1]:{port}/x"),
    ] {
        let refused = create_link_as(&server, &key, &format!("127.0.0.1:{port}"), &looping);
        refused.assert_error(400, "invalid_field");
    }
    assert_eq!(
        create_link(&server, &key, "https://s.example.com.evil/x").status,
        200
    );
    // Editing a target is held to the same rules.
    let code = create_link(&server, &key, "https://example.org/").json()["data"]["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let edit = server.send(
        "PATCH",
        &format!("/api/v1/links/{code}"),
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(r#"{"url": "https://user@example.org/"}"#),
    );
    edit.assert_error(400, "invalid_field");
}

#[test]
fn the_documented_maximum_of_password_links_in_one_batch_is_created_within_the_deadline() {
    let server = Server::start();
    let (key, _) = server.create_key(r#"{"name": "batch", "points": 0, "plan": "premium"}"#);
    let batch = |n: usize| {
        let items: Vec<serde_json::Value> = (0..n)
            .map(|i| json!({"url": format!("https://example.com/{i}"), "access_type": "password", "password": format!("pw-{i:04}")}))
            .collect();
        server.send(
            "POST",
            "/api/v1/links/batch",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(&json!({ "items": items }).to_string()),
        )
    };
    let started = Instant::now();
    let created = batch(200);
    let took = started.elapsed();
    assert_eq!(created.status, 200, "{}", created.text());
    crate::harness::figure(&format!(
        "200 password links (each its own argon2id hash) in one batch: {took:.1?}"
    ));
    let links = created.json()["data"]["items"].as_array().unwrap().clone();
    assert_eq!(links.len(), 200);
    assert_eq!(created.json()["data"]["created"], 200);
    let json = batch(201).assert_error(400, "invalid_field");
    assert!(json["msg"].as_str().unwrap().contains("200"), "{json}");
    // Each link took its own password.
    let code = links[7]["data"]["code"].as_str().unwrap();
    let mut conn = Conn::open(server.addr);
    let mut unlock = |password: &str| {
        conn.send(
            "POST",
            &format!("/{code}"),
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(format!("password={password}").as_bytes()),
        )
        .status
    };
    assert_eq!(unlock("pw-0008"), 403);
    assert_eq!(unlock("pw-0007"), 303);
}

#[test]
fn a_mistyped_environment_variable_stops_start_up_and_a_foreign_one_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let (status, output) = serve_refused(
        &dir.path().join("data"),
        &[("PANLINK_HTTP_MAX_CONECTIONS", "5")],
        Duration::from_secs(20),
    );
    assert_eq!(status.code(), Some(2), "{output}");
    assert!(output.contains("PANLINK_HTTP_MAX_CONECTIONS"), "{output}");
    assert!(output.contains("PANLINK_HTTP_MAX_CONNECTIONS"), "{output}");
    let server = Server::start_with(&[("PANLINK_KEY", "sk_for_a_client_script")]);
    assert_eq!(server.get("/health", &[]).status, 200);
    assert!(
        server
            .log()
            .contains("PANLINK_KEY is not a configuration key"),
        "{}",
        server.log()
    );
}

#[test]
fn pages_carry_a_content_security_policy_and_refuse_framing() {
    let server = Server::start();
    for path in ["/", "/admin", "/docs", "/redoc", "/nosuchcode"] {
        let page = server.get(path, &[("Accept", "text/html")]);
        let csp = page
            .header("content-security-policy")
            .unwrap_or_else(|| panic!("{path} has no CSP"));
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert_eq!(page.header("x-frame-options"), Some("DENY"), "{path}");
    }
    // A password form's answer redirects to the link's target, wherever it is.
    let link_page = server.get("/nosuchcode", &[]);
    let csp = link_page.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self' http: https:"), "{csp}");
}

#[test]
fn loopback_alias_and_listen_hosts_are_this_service_whatever_the_request_says() {
    let server = Server::start_with(&[("PANLINK_LINKS_OWN_HOSTS", r#"["go.example.com"]"#)]);
    let (key, _) = server.create_key(r#"{"name": "aliases", "points": 0}"#);
    let port = server.addr.port();
    // Created through a LAN name: loopback names still lead back here, as do the alias and the
    // listen address.
    for looping in [
        format!("http://localhost:{port}/x"),
        format!("http://127.0.0.1:{port}/x"),
        format!("http://127.8.9.10:{port}/x"),
        format!("http://[::1]:{port}/x"),
        "https://go.example.com/abc".to_owned(),
        "https://GO.example.com./abc".to_owned(),
    ] {
        let refused = create_link_as(&server, &key, &format!("panlink.lan:{port}"), &looping);
        let json = refused.assert_error(400, "invalid_field");
        assert!(
            json["msg"].as_str().unwrap().contains("本服务"),
            "{looping}: {json}"
        );
    }
    assert_eq!(
        create_link(&server, &key, "https://example.org/").status,
        200
    );
}
