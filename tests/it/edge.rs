//! The HTTP edge: routing answers, error bodies, request ids, HEAD, CORS, body limits.

use crate::harness::{Conn, Server};

#[test]
fn unknown_path_is_404_json_with_request_id() {
    let server = Server::start();
    let response = server.get("/no/such/thing", &[]);
    response.assert_error(404, "route_not_found");
    assert_eq!(response.header("content-type"), Some("application/json"));
    // A browser navigating there gets the site's 404 page; an API client keeps its JSON.
    let browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let page = server.get("/no/such/thing", &[("Accept", browser)]);
    assert_eq!(page.status, 404);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("页面不存在") && page.text().contains("href=\"/\""));
    let api = server.get("/no/such/thing", &[("Accept", "application/json")]);
    api.assert_error(404, "route_not_found");
    let post = server.send("POST", "/no/such/thing", &[("Accept", browser)], None);
    post.assert_error(404, "route_not_found");
}

#[test]
fn wrong_method_is_405_with_allow() {
    let server = Server::start();
    let response = server.send("POST", "/health", &[], None);
    response.assert_error(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET, HEAD, OPTIONS"));
    let response = server.send("PUT", "/admin/api/keys", &[], None);
    response.assert_error(405, "method_not_allowed");
    assert_eq!(response.header("allow"), Some("GET, POST, HEAD, OPTIONS"));
}

#[test]
fn client_request_id_is_echoed_when_sane_and_replaced_otherwise() {
    let server = Server::start();
    let response = server.get("/no/such/route", &[("X-Request-Id", "trace-abc.123")]);
    assert_eq!(response.header("x-request-id"), Some("trace-abc.123"));
    assert_eq!(response.json()["request_id"], "trace-abc.123");

    let response = server.get("/health", &[("X-Request-Id", "has spaces and {braces}")]);
    let id = response.header("x-request-id").unwrap();
    assert_ne!(id, "has spaces and {braces}");
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
    // Two requests never share a generated id.
    assert_ne!(server.get("/health", &[]).header("x-request-id"), Some(id));
}

#[test]
fn head_is_answered_for_get_routes_without_a_body() {
    let server = Server::start();
    let get = server.get("/", &[]);
    let mut conn = Conn::open(server.addr);
    let head = conn.send("HEAD", "/", &[], None);
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), get.header("content-length"));
    // The connection is still usable: HEAD left no body bytes behind.
    let next = conn.send("GET", "/health", &[], None);
    assert_eq!(next.status, 200);
    assert_eq!(next.json()["status"], "ok");
}

#[test]
fn cors_preflight_for_public_apis_only() {
    let server = Server::start();
    let response = server.send(
        "OPTIONS",
        "/api/v1/me",
        &[
            ("Origin", "https://site.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
        None,
    );
    assert_eq!(response.status, 204);
    assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    assert!(
        response
            .header("access-control-allow-headers")
            .unwrap()
            .contains("X-API-Key")
    );
    assert_eq!(
        response.header("access-control-allow-methods"),
        Some("GET, HEAD, OPTIONS")
    );
    // Public JSON answers carry the origin header too.
    assert_eq!(
        server
            .get("/health", &[])
            .header("access-control-allow-origin"),
        Some("*")
    );
    // The admin API is not for other origins.
    let response = server.send(
        "OPTIONS",
        "/admin/api/keys",
        &[("Origin", "https://evil.example")],
        None,
    );
    assert_eq!(response.status, 204);
    assert_eq!(response.header("access-control-allow-origin"), None);
}

#[test]
fn oversized_bodies_are_413_by_length_and_by_reading() {
    let server = Server::start_with(&[("PANLINK_HTTP_MAX_BODY_BYTES", "2048")]);
    let auth = format!("Bearer {}", crate::harness::ADMIN_TOKEN);
    // Declared too large: refused before reading.
    let mut conn = Conn::open(server.addr);
    conn.write(
        format!(
            "POST /admin/api/keys HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nContent-Length: 999999\r\n\r\n"
        )
        .as_bytes(),
    );
    let response = conn.read_response(false).expect("a response");
    assert_eq!(response.status, 413, "{}", response.text());
    assert_eq!(response.json()["error"], "payload_too_large");

    // Chunked, no length: refused once the limit is crossed while reading.
    let mut conn = Conn::open(server.addr);
    let chunk = "a".repeat(4000);
    conn.write(
        format!(
            "POST /admin/api/keys HTTP/1.1\r\nHost: t\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
            chunk.len()
        )
        .as_bytes(),
    );
    let response = conn.read_response(false).expect("a response");
    response.assert_error(413, "payload_too_large");
    server.report_peak_rss("oversized bodies", 128);
}

#[test]
fn bad_bodies_are_400_naming_the_problem() {
    let server = Server::start();
    let malformed = server.admin("POST", "/admin/api/keys", Some("{\"name\": "));
    malformed.assert_error(400, "invalid_json");

    let wrong_type = server.admin(
        "POST",
        "/admin/api/keys",
        Some(r#"{"name": "a", "points": "many"}"#),
    );
    let json = wrong_type.assert_error(400, "invalid_field");
    assert!(json["msg"].as_str().unwrap().contains("points"), "{json}");

    let missing = server.admin("POST", "/admin/api/keys", Some(r#"{"plan": "free"}"#));
    let json = missing.assert_error(400, "invalid_field");
    assert!(json["msg"].as_str().unwrap().contains("`name`"), "{json}");

    let unknown = server.admin(
        "POST",
        "/admin/api/keys",
        Some(r#"{"name": "a", "colour": 1}"#),
    );
    let json = unknown.assert_error(400, "invalid_field");
    assert!(json["msg"].as_str().unwrap().contains("colour"), "{json}");

    let auth = format!("Bearer {}", crate::harness::ADMIN_TOKEN);
    let no_type = server.send(
        "POST",
        "/admin/api/keys",
        &[("Authorization", &auth), ("Content-Type", "text/plain")],
        Some(r#"{"name": "a"}"#),
    );
    no_type.assert_error(400, "unsupported_content_type");

    // Nothing was created by any of these.
    let listing = server.admin("GET", "/admin/api/keys", None).json();
    assert_eq!(listing["data"]["total"], 0);
}

#[test]
fn conflicting_length_headers_are_refused() {
    // Request smuggling shape: both Content-Length and Transfer-Encoding.
    let server = Server::start();
    let mut conn = Conn::open(server.addr);
    conn.write(
        b"POST /health HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    // hyper reads the body as chunked (Transfer-Encoding wins, as RFC 9112 says), answers this
    // one request (POST /health: 405), and closes the connection: what follows the chunked body
    // is never read as a second request.
    let first = conn.read_response(false).expect("an answer");
    first.assert_error(405, "method_not_allowed");
    assert!(
        conn.read_response(false).is_none(),
        "a smuggled request was served"
    );
    assert_eq!(server.get("/health", &[]).status, 200);
    server.report_peak_rss("request smuggling attempts", 128);
}
