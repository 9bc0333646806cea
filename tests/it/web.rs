//! The web face over HTTP: the guide page and its Markdown, the admin, Swagger UI and ReDoc pages,
//! the embedded files (gzip, ETag, caching), and the two documents that must cover the route
//! table: the guide (every route named) and the OpenAPI document (the same paths both ways).

use std::collections::BTreeSet;
use std::io::Read;

use crate::harness::Server;

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .expect("a gzip body");
    out
}

/// Every `(method, pattern)` of the router except the implicit HEAD/OPTIONS.
fn route_table() -> BTreeSet<(String, String)> {
    panlink::api::routes::table()
        .into_iter()
        .map(|def| (def.method.to_string(), def.pattern.to_owned()))
        .collect()
}

#[test]
fn the_front_page_is_the_guide_and_json_clients_still_get_the_route_list() {
    let server = Server::start();
    let page = server.get("/", &[("Accept", "text/html,application/xhtml+xml")]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let html = page.text();
    for section in [
        "接口地址",
        "完整使用文档",
        "API 密钥",
        "快速开始",
        "端点清单",
        "代码示例",
        "结果字段速查",
        "系统状态",
        "记住 30 天",
        "▶ 在这里试一下",
    ] {
        assert!(html.contains(section), "the guide page lacks {section}");
    }
    // Without a configured base URL the page uses its own origin.
    assert!(html.contains(r#"name="panlink-public-base-url" content="""#));
    let json = server.get("/", &[("Accept", "application/json")]).json();
    assert_eq!(json["name"], "panlink");
}

#[test]
fn the_configured_public_base_url_reaches_the_guide_page() {
    let server = Server::start_with(&[("PANLINK_PUBLIC_BASE_URL", "https://s.example.com")]);
    let html = server.get("/", &[]).text();
    assert!(
        html.contains(r#"content="https://s.example.com""#),
        "{html}"
    );
}

#[test]
fn guide_markdown_is_the_repository_document_and_names_every_route() {
    let server = Server::start();
    let response = server.get("/guide.md", &[]);
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    let text = response.text();
    let in_repo =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/API.zh-CN.md")).unwrap();
    assert_eq!(text, in_repo);
    let mut missing = Vec::new();
    for (method, pattern) in route_table() {
        let row = format!("| {method} | `{pattern}` |");
        let heading = format!("`{method} {pattern}`");
        if !text.contains(&row) && !text.contains(&heading) {
            missing.push(format!("{method} {pattern}"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the guide: {missing:?}"
    );
}

#[test]
fn openapi_paths_are_the_route_table_both_ways() {
    let server = Server::start();
    let response = server.get("/openapi.json", &[]);
    assert_eq!(response.status, 200);
    let doc = response.json();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.insert((method.to_uppercase(), path.clone()));
        }
    }
    let routes = route_table();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty(),
        "routes not in openapi.json: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "openapi.json paths with no route: {unrouted:?}"
    );
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["ApiKey"]["name"], "X-API-Key");
    assert_eq!(schemes["ApiKey"]["in"], "header");
}

#[test]
fn embedded_files_are_gzipped_cached_and_revalidated() {
    let server = Server::start();
    let plain = server.get("/static/swagger-ui/swagger-ui-bundle.js", &[]);
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert_eq!(
        plain.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(plain.header("cache-control"), Some("public, max-age=86400"));
    assert_eq!(plain.header("vary"), Some("Accept-Encoding"));
    let etag = plain.header("etag").unwrap().to_owned();
    let gzipped = server.get(
        "/static/swagger-ui/swagger-ui-bundle.js",
        &[("Accept-Encoding", "gzip, deflate, br")],
    );
    assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
    assert!(
        gzipped.body.len() * 3 < plain.body.len(),
        "gzip shrinks the bundle"
    );
    assert_eq!(gunzip(&gzipped.body), plain.body);
    let again = server.get(
        "/static/swagger-ui/swagger-ui-bundle.js",
        &[("If-None-Match", &etag)],
    );
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // Pages are revalidated every time; a changed ETag is a full answer.
    let page = server.get("/docs", &[]);
    assert_eq!(page.header("cache-control"), Some("no-cache"));
    let stale = server.get("/docs", &[("If-None-Match", "\"other\"")]);
    assert_eq!(stale.status, 200);
    // The licenses ship with the bundles.
    assert!(
        server
            .get("/static/swagger-ui/LICENSE", &[])
            .text()
            .contains("Apache License")
    );
    assert!(
        server
            .get("/static/redoc/LICENSE", &[])
            .text()
            .contains("MIT")
    );
    server
        .get("/static/nope.js", &[])
        .assert_error(404, "not_found");
    server
        .get("/static/swagger-ui/..%2f..%2fCargo.toml", &[])
        .assert_error(404, "not_found");
}

#[test]
fn pages_load_nothing_from_other_origins() {
    let server = Server::start();
    for path in ["/", "/admin", "/docs", "/redoc"] {
        let html = server.get(path, &[]).text();
        assert!(html.starts_with("<!doctype html>"), "{path}");
        for attribute in ["src=\"", "href=\""] {
            for part in html.split(attribute).skip(1) {
                let target = part.split('"').next().unwrap();
                assert!(
                    target.starts_with('/') || target.starts_with('#') || target == "data:,",
                    "{path} loads {target} from elsewhere"
                );
            }
        }
    }
    for script in ["guide.js", "admin.js", "docs.js"] {
        let body = server.get(&format!("/static/{script}"), &[]).text();
        assert!(!body.contains("https://"), "{script} names another origin");
    }
}

#[test]
fn page_routes_are_reserved_words_for_short_links() {
    let server = Server::start();
    let (key, _) = server.create_key(r#"{"name": "w", "plan": "premium"}"#);
    for alias in [
        "admin",
        "docs",
        "redoc",
        "static",
        "guide.md",
        "openapi.json",
    ] {
        let body = format!(r#"{{"url": "https://example.com/", "alias": "{alias}"}}"#);
        let response = server.send(
            "POST",
            "/api/v1/links",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(&body),
        );
        assert_eq!(response.status, 400, "{alias}: {}", response.text());
    }
}
