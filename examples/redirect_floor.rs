//! The floor of the redirect under this stack: a bare hyper 1 server, built as panlink builds its
//! own (a multi-threaded tokio runtime of `WORKERS` threads, hyper-util's HTTP/1 + HTTP/2 builder,
//! the same header-read timeout, `TCP_NODELAY`), answering `302` from an `FxHashMap` of codes
//! loaded from an nginx `map` file (`/code "url";` lines, as `loadtest/create_links.py` writes).
//!
//! `loadtest/shortlinks.sh redirect` runs it beside panlink and nginx when `FLOOR=1`: panlink's
//! figures over this floor are what panlink adds to hyper; the floor's over nginx are what the
//! stack itself costs, which no change inside panlink can remove.
//!
//! Usage: `redirect_floor PORT MAP_FILE` (run with `cargo run --release --example redirect_floor`).

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustc_hash::FxHashMap;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(map_file)) = (args.next(), args.next()) else {
        eprintln!("usage: redirect_floor PORT MAP_FILE");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("a port number");
    let map: FxHashMap<Box<str>, http::HeaderValue> = std::fs::read_to_string(&map_file)
        .expect("the map file")
        .lines()
        .filter_map(|line| {
            let (code, rest) = line.trim().split_once(' ')?;
            let target = rest.trim().trim_end_matches(';').trim_matches('"');
            Some((
                code.trim_start_matches('/').into(),
                http::HeaderValue::from_str(target).ok()?,
            ))
        })
        .collect();
    let map = Arc::new(map);
    let workers = std::env::var("WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .keep_alive(true);
        let builder = Arc::new(builder);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind");
        eprintln!("redirect_floor: {} codes on port {port}", map.len());
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let map = Arc::clone(&map);
            let builder = Arc::clone(&builder);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<_>| {
                    let code = req.uri().path().trim_start_matches('/');
                    let response = match map.get(code) {
                        Some(target) => http::Response::builder()
                            .status(302)
                            .header(http::header::LOCATION, target.clone())
                            .header(
                                http::header::CACHE_CONTROL,
                                http::HeaderValue::from_static("private, max-age=90"),
                            )
                            .body(http_body_util::Empty::<bytes::Bytes>::new()),
                        None => http::Response::builder()
                            .status(404)
                            .body(http_body_util::Empty::<bytes::Bytes>::new()),
                    };
                    std::future::ready(response)
                });
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
}
