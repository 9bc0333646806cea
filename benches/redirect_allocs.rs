//! Heap allocations per redirect, counted by dhat's global allocator, against references in the
//! same run:
//! - panlink: the real server (`panlink::api::serve::run`, one worker thread) started in this
//!   process on a temporary data dir, its links made through its own API, click analytics on;
//! - bare hyper: a hyper 1 server on one tokio thread answering the same `302`s from an
//!   `FxHashMap` of the same codes (what hyper itself allocates for a request and its answer);
//! - bare hyper with panlink's header-read timeout (a hostile-client limit hyper implements with a
//!   timer per request head).
//!
//! The difference to the last is what panlink allocates beyond hyper on its hottest path. The
//! client writes requests prepared beforehand over one kept-alive connection and reads the answers
//! into a fixed buffer, so it allocates nothing per request; everything the process allocates
//! meanwhile (the server's background tasks too: click flushes, timers) is counted.
//!
//! `cargo bench --bench redirect_allocs` measures `REQUESTS` (default 20 000). Run as a test
//! (`cargo test --all-targets`, which passes no `--bench`), it sends 1 000 and fails if panlink
//! allocates half an allocation per redirect or more beyond hyper: a regression check.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Links made when measuring; a test run (no `--bench`) makes a tenth, quick to set up in a
/// debug build.
const LINKS: usize = 10_000;
const ADMIN_TOKEN: &str = "bench-admin-token-000000";
const USER_AGENT: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) \
    AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.40";

fn free_port() -> SocketAddr {
    let probe = TcpListener::bind("127.0.0.1:0").expect("bind a probe");
    probe.local_addr().expect("probe address")
}

/// One request over a new connection (setup only: allocates freely); the body of the answer.
fn call(at: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut stream = TcpStream::connect(at).expect("connect");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.1 20"),
        "{method} {path} answered {head}"
    );
    // Chunked bodies: the API's JSON answers are small; strip the chunk framing if present.
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let size = usize::from_str_radix(size.trim(), 16).expect("chunk size");
            if size == 0 {
                break;
            }
            out.push_str(&tail[..size]);
            rest = &tail[size + 2..];
        }
        return out;
    }
    body.to_owned()
}

/// Starts panlink in this process and makes `links` links; their codes.
fn start_panlink(dir: &std::path::Path, at: SocketAddr, links: usize) -> Vec<String> {
    let mut raw = panlink::config::RawConfig::default();
    raw.server.listen = at.to_string();
    raw.server.worker_threads = 1;
    raw.storage.data_dir = dir.display().to_string();
    raw.admin.token = ADMIN_TOKEN.to_owned();
    let config = panlink::config::Config::from_raw(raw).expect("a valid configuration");
    std::thread::spawn(move || panlink::api::serve::run(config, false));
    for _ in 0..200 {
        if TcpStream::connect(at).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let admin = format!("Bearer {ADMIN_TOKEN}");
    let created = call(
        at,
        "POST",
        "/admin/api/keys",
        &[
            ("Authorization", &admin),
            ("Content-Type", "application/json"),
        ],
        r#"{"name": "bench", "plan": "premium", "rate_per_s": 1000000, "burst": 1000000}"#,
    );
    let created: serde_json::Value = serde_json::from_str(&created).expect("JSON");
    let key = created["key"]
        .as_str()
        .or_else(|| created["data"]["key"].as_str())
        .expect("the new key")
        .to_owned();
    let mut codes = Vec::with_capacity(links);
    for start in (0..links).step_by(1000) {
        let items: Vec<serde_json::Value> = (start..(start + 1000).min(links))
            .map(
                |i| serde_json::json!({"url": format!("https://example.com/target/{i}?ref=bench")}),
            )
            .collect();
        let answer = call(
            at,
            "POST",
            "/api/v1/links/batch",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            &serde_json::json!({ "items": items }).to_string(),
        );
        let answer: serde_json::Value = serde_json::from_str(&answer).expect("JSON");
        for item in answer["data"]["items"].as_array().expect("items") {
            codes.push(item["data"]["code"].as_str().expect("a code").to_owned());
        }
    }
    codes
}

/// Starts a bare hyper server answering `302` to the codes' targets from a hash map; with
/// `header_timer`, under the same limit on reading a request head as panlink (hyper arms a timer
/// per request head for it).
fn start_bare_hyper(at: SocketAddr, codes: &[String], header_timer: bool) {
    let map: Arc<FxHashMap<String, http::HeaderValue>> = Arc::new(
        codes
            .iter()
            .enumerate()
            .map(|(i, code)| {
                let target = format!("https://example.com/target/{i}?ref=bench");
                (
                    code.clone(),
                    http::HeaderValue::from_str(&target).expect("a header"),
                )
            })
            .collect(),
    );
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind(at).await.expect("bind");
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                let map = Arc::clone(&map);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                        let code = req.uri().path().trim_start_matches('/');
                        let response = match map.get(code) {
                            Some(target) => http::Response::builder()
                                .status(302)
                                .header(http::header::LOCATION, target.clone())
                                .body(http_body_util::Empty::<bytes::Bytes>::new()),
                            None => http::Response::builder()
                                .status(404)
                                .body(http_body_util::Empty::<bytes::Bytes>::new()),
                        };
                        async move { response }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let mut builder = hyper::server::conn::http1::Builder::new();
                    if header_timer {
                        // panlink's own limit on a slow request head (`http.header_read_timeout`).
                        builder
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(Duration::from_secs(10));
                    }
                    let _ = builder.serve_connection(io, service).await;
                });
            }
        });
    });
    for _ in 0..200 {
        if TcpStream::connect(at).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `requests` over one connection, answers read into a fixed buffer; heap blocks allocated
/// by the whole process meanwhile, per request.
fn allocations_per_request(at: SocketAddr, requests: &[Vec<u8>]) -> f64 {
    let mut stream = TcpStream::connect(at).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let mut buffer = [0u8; 4096];
    let mut run = |requests: &[Vec<u8>]| {
        for request in requests {
            stream.write_all(request).expect("send");
            let mut filled = 0;
            loop {
                let n = stream.read(&mut buffer[filled..]).expect("read");
                assert!(n > 0, "the server closed the connection");
                filled += n;
                // No body: every answer here is a 302 with Content-Length 0.
                if buffer[..filled].windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
            assert!(
                buffer.starts_with(b"HTTP/1.1 302"),
                "{}",
                String::from_utf8_lossy(&buffer[..filled])
            );
        }
    };
    // A first pass fills caches and per-thread tables and opens pools.
    run(requests);
    let before = dhat::HeapStats::get().total_blocks;
    run(requests);
    let after = dhat::HeapStats::get().total_blocks;
    (after - before) as f64 / requests.len() as f64
}

fn main() {
    // DHAT_FILE=path: also write dhat's profile (every allocation site, for `dh_view.html`).
    let _profiler = match std::env::var("DHAT_FILE") {
        Ok(path) => dhat::Profiler::builder().file_name(path).build(),
        Err(_) => dhat::Profiler::builder().testing().build(),
    };
    let measuring = std::env::args().any(|arg| arg == "--bench");
    let total: usize = std::env::var("REQUESTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if measuring { 20_000 } else { 1_000 });
    let dir = tempfile::tempdir().expect("a temporary directory");
    let panlink_at = free_port();
    let links = if measuring { LINKS } else { LINKS / 10 };
    let codes = start_panlink(dir.path(), panlink_at, links);
    let hyper_at = free_port();
    start_bare_hyper(hyper_at, &codes, false);
    let requests = |at: SocketAddr| -> Vec<Vec<u8>> {
        (0..total)
            .map(|i| {
                format!(
                    "GET /{} HTTP/1.1\r\nHost: {at}\r\nUser-Agent: {USER_AGENT}\r\n\
                     Accept-Language: zh-CN,zh;q=0.9\r\nReferer: https://weibo.com/u/1\r\n\r\n",
                    codes[i * 7919 % codes.len()]
                )
                .into_bytes()
            })
            .collect()
    };
    let timed_at = free_port();
    start_bare_hyper(timed_at, &codes, true);
    let bare = allocations_per_request(hyper_at, &requests(hyper_at));
    let timed = allocations_per_request(timed_at, &requests(timed_at));
    let ours = allocations_per_request(panlink_at, &requests(panlink_at));
    println!(
        "heap allocations per redirect ({total} requests over one connection, {links} links, \
         analytics on): panlink {ours:.2}; bare hyper {bare:.2}, with panlink's header-read \
         timeout {timed:.2}; panlink's own {:.2}",
        ours - timed
    );
    // Beyond hyper's own: the background flushes' share, a few hundredths when measuring.
    assert!(
        ours - timed < 0.5,
        "panlink allocates {:.2} per redirect beyond hyper",
        ours - timed
    );
    // The profile is written when the profiler drops; the servers' threads are left running.
    drop(_profiler);
    std::process::exit(0);
}
