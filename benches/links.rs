//! The redirect's two steps, each against a reference in the same run:
//! - code lookup: panlink's `LinkCache` (sharded map, filled from LMDB) on 100 000 links, warm and
//!   with the cache off (one LMDB read transaction per lookup), against a plain `FxHashMap` of
//!   the same codes (what a bare hyper server with a HashMap does);
//! - building the 302: `links::redirect::redirect_response` against `http::Response::builder()`
//!   with the same headers parsed from strings.
//!
//! The README reports the ratios.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use http::{HeaderValue, StatusCode};
use panlink::config::{Config, RawConfig};
use panlink::links::cache::LinkCache;
use panlink::links::record::AccessType;
use panlink::links::redirect::redirect_response;
use panlink::links::repo::{self, InsertOutcome, NewLink};
use panlink::store::Store;
use rustc_hash::FxHashMap;

/// Links in the store when measuring.
const LINKS: usize = 100_000;

/// [`LINKS`] under `cargo bench`; a test run (`cargo test --all-targets`, no `--bench`) runs each
/// bench once, where a tenth sets up in a debug build in a second.
fn links() -> usize {
    if std::env::args().any(|arg| arg == "--bench") {
        LINKS
    } else {
        LINKS / 10
    }
}

fn store_with_links(dir: &std::path::Path) -> (Arc<Store>, Vec<String>) {
    let links = links();
    let mut config = Config::from_raw(RawConfig::default()).expect("defaults validate");
    config.storage.data_dir = dir.to_path_buf();
    let store = Store::open(&config.storage).expect("open LMDB");
    let codes = store
        .write_now(|txn, dbs| {
            let mut codes = Vec::with_capacity(links);
            for i in 0..links {
                let new = NewLink {
                    url: format!("https://example.com/target/{i}?ref=bench"),
                    title: None,
                    alias: None,
                    domain: None,
                    group_id: None,
                    expire_at_ms: None,
                    access: AccessType::Open,
                    password_hash: None,
                    fallback_url: None,
                    watch_target: true,
                    max_clicks: None,
                    tags: Vec::new(),
                    utm: None,
                    rules: Vec::new(),
                };
                if let InsertOutcome::Created(link) =
                    repo::insert(txn, dbs, "benchkey0001", new, 6, 1)?
                {
                    codes.push(link.code);
                }
            }
            Ok(codes)
        })
        .expect("insert links");
    (store, codes)
}

fn lookup(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, codes) = store_with_links(dir.path());
    let warm = LinkCache::new(codes.len() * 2);
    for code in &codes {
        warm.lookup(&store, code).unwrap();
    }
    let cold = LinkCache::new(0);
    let reference: FxHashMap<String, HeaderValue> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| {
            let url = format!("https://example.com/target/{i}?ref=bench");
            (code.clone(), HeaderValue::from_str(&url).unwrap())
        })
        .collect();
    let mut group = c.benchmark_group(format!("code lookup, {} links", codes.len()));
    let mut i = 0usize;
    let mut next = || {
        i = (i + 7919) % codes.len();
        codes[i].as_str()
    };
    group.bench_function("reference: FxHashMap get", |b| {
        b.iter(|| black_box(reference.get(black_box(next()))).is_some())
    });
    group.bench_function("LinkCache, warm", |b| {
        b.iter(|| black_box(warm.lookup(&store, black_box(next())).unwrap()).is_some())
    });
    group.bench_function("LinkCache off: LMDB read txn + decode", |b| {
        b.iter(|| black_box(cold.lookup(&store, black_box(next())).unwrap()).is_some())
    });
    group.finish();
    store.close(std::time::Duration::from_secs(5));
}

fn build_302(c: &mut Criterion) {
    let location = HeaderValue::from_static("https://example.com/target/12345?ref=bench");
    let cache_control = HeaderValue::from_static("private, max-age=90");
    let mut group = c.benchmark_group("302 response");
    group.bench_function("reference: Response::builder from strings", |b| {
        b.iter(|| {
            http::Response::builder()
                .status(302)
                .header(
                    "location",
                    black_box("https://example.com/target/12345?ref=bench"),
                )
                .header("cache-control", "private, max-age=90")
                .body(())
                .unwrap()
        })
    });
    group.bench_function("redirect_response", |b| {
        b.iter(|| redirect_response(StatusCode::FOUND, black_box(&location), &cache_control))
    });
    group.finish();
}

criterion_group!(benches, lookup, build_302);
criterion_main!(benches);
