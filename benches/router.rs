//! Cost of routing one request: panlink's router against matchit 0.9 (a radix-tree router, the
//! reference) on the same ~40-route table, the shape of the full API. The README reports the
//! ratio panlink/matchit from one run of this bench.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use panlink::http::router::{Match, RouteDef, Router};

/// The full API's table: meta, jobs, pool, short links, groups, tools, admin, pages, redirect.
const TABLE: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/health"),
    ("GET", "/metrics"),
    ("GET", "/guide.md"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/admin"),
    ("GET", "/static/{file}"),
    ("GET", "/pool"),
    ("GET", "/pool/{provider}"),
    ("POST", "/jobs"),
    ("GET", "/jobs/{id}"),
    ("DELETE", "/jobs/{id}"),
    ("GET", "/jobs/{id}/events"),
    ("POST", "/jobs/{id}/urgent"),
    ("GET", "/api/v1/me"),
    ("POST", "/api/v1/links"),
    ("GET", "/api/v1/links"),
    ("POST", "/api/v1/links/batch"),
    ("GET", "/api/v1/links/{code}"),
    ("PATCH", "/api/v1/links/{code}"),
    ("DELETE", "/api/v1/links/{code}"),
    ("GET", "/api/v1/links/{code}/stats"),
    ("GET", "/api/v1/links/{code}/qr"),
    ("POST", "/api/v1/groups"),
    ("GET", "/api/v1/groups"),
    ("POST", "/api/v1/tools/security-check"),
    ("GET", "/admin/api/keys"),
    ("POST", "/admin/api/keys"),
    ("PATCH", "/admin/api/keys/{id}"),
    ("DELETE", "/admin/api/keys/{id}"),
    ("GET", "/admin/api/stats"),
    ("GET", "/docs/{asset}"),
    ("GET", "/redoc/{asset}"),
    ("GET", "/api/v1/jobs/{id}/results"),
    ("GET", "/api/v1/providers"),
    ("GET", "/api/v1/providers/{provider}"),
    ("GET", "/{code}"),
    ("POST", "/{code}"),
];

/// Request mix: hot paths (redirects, events, pool) plus a miss.
const REQUESTS: &[(&str, &str)] = &[
    ("GET", "/aZ3kQ9"),
    ("GET", "/jobs/7f3a9c2b1d4e/events"),
    ("GET", "/pool"),
    ("POST", "/api/v1/links"),
    ("GET", "/api/v1/links/aZ3kQ9/stats"),
    ("PATCH", "/admin/api/keys/Abc123def456"),
    ("GET", "/health"),
    ("GET", "/no/such/route/here"),
];

fn method(name: &str) -> Method {
    Method::from_bytes(name.as_bytes()).unwrap()
}

fn bench(c: &mut Criterion) {
    let ours: Router<usize> =
        Router::new(
            TABLE
                .iter()
                .enumerate()
                .map(|(index, (m, pattern))| RouteDef {
                    method: method(m),
                    pattern,
                    handler: index,
                }),
        )
        .unwrap();

    // matchit routes by path only; a method is then picked from the path's small list, which is
    // what a server built on matchit does.
    let mut reference: matchit::Router<Vec<(Method, usize)>> = matchit::Router::new();
    let mut by_path: Vec<(&str, Vec<(Method, usize)>)> = Vec::new();
    for (index, (m, pattern)) in TABLE.iter().enumerate() {
        match by_path.iter_mut().find(|(p, _)| p == pattern) {
            Some((_, methods)) => methods.push((method(m), index)),
            None => by_path.push((pattern, vec![(method(m), index)])),
        }
    }
    for (pattern, methods) in by_path {
        reference.insert(pattern, methods).unwrap();
    }
    let requests: Vec<(Method, &str)> = REQUESTS.iter().map(|(m, p)| (method(m), *p)).collect();

    // Both routers must agree on every request, or the comparison means nothing.
    for (m, path) in &requests {
        let a = match ours.find(m, path) {
            Match::Found { handler, .. } => Some(*handler),
            _ => None,
        };
        let b = reference
            .at(path)
            .ok()
            .and_then(|found| found.value.iter().find(|(mm, _)| mm == m).map(|(_, i)| *i));
        assert_eq!(a, b, "{m} {path}");
    }

    let mut group = c.benchmark_group("route_match_8_requests");
    group.bench_function("panlink", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for (m, path) in &requests {
                if let Match::Found {
                    handler, params, ..
                } = ours.find(black_box(m), black_box(path))
                {
                    hits += *handler + params.iter().count();
                }
            }
            hits
        })
    });
    group.bench_function("matchit_reference", |b| {
        b.iter(|| {
            let mut hits = 0usize;
            for (m, path) in &requests {
                if let Ok(found) = reference.at(black_box(path))
                    && let Some((_, index)) = found.value.iter().find(|(mm, _)| mm == black_box(m))
                {
                    hits += *index + found.params.iter().count();
                }
            }
            hits
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
