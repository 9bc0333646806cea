//! `/health`, `/`, and `/metrics` in Prometheus format with real histograms.

use crate::harness::Server;

#[test]
fn health_reports_status_version_uptime() {
    let server = Server::start();
    let json = server.get("/health", &[]).json();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert!(json["uptime_seconds"].as_f64().unwrap() >= 0.0);
}

#[test]
fn index_lists_the_route_table() {
    let server = Server::start();
    let json = server.get("/", &[("Accept", "application/json")]).json();
    assert_eq!(json["name"], "panlink");
    let endpoints = json["endpoints"].as_array().unwrap();
    assert!(
        endpoints
            .iter()
            .any(|e| e["method"] == "GET" && e["path"] == "/health")
    );
    assert!(
        endpoints
            .iter()
            .any(|e| e["method"] == "PATCH" && e["path"] == "/admin/api/keys/{id}")
    );
}

#[test]
fn metrics_are_prometheus_text_with_histograms_and_low_cardinality_labels() {
    let server = Server::start();
    let (secret, _) = server.create_key(r#"{"name": "m"}"#);
    server.get("/health", &[]);
    server.get("/api/v1/me", &[("X-API-Key", &secret)]);
    server.get("/does-not-exist-12345/x", &[]);
    // A one-segment path is a short code: its lookup is labelled by the route template.
    server.get("/does-not-exist-67890", &[]);
    let response = server.get("/metrics", &[]);
    assert_eq!(response.status, 200);
    assert!(
        response
            .header("content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text();
    for needle in [
        "panlink_http_requests_total{route=\"/health\",method=\"GET\",status=\"2xx\"}",
        "panlink_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"4xx\"}",
        "panlink_http_request_duration_seconds_bucket{route=\"/api/v1/me\",method=\"GET\",le=",
        "panlink_lmdb_commit_seconds_bucket",
        "panlink_lmdb_batch_ops_bucket",
        "panlink_lmdb_disk_bytes",
        "panlink_http_open_connections",
        "panlink_http_in_flight",
        "panlink_checker_queued{provider=\"quark\",lane=\"urgent\"}",
        "panlink_checker_in_flight{provider=\"baidu\"}",
        "panlink_http_requests_total{route=\"/{code}\",method=\"GET\",status=\"4xx\"}",
        "panlink_redirects_total{outcome=\"not_found\"} 1",
    ] {
        assert!(text.contains(needle), "metrics lack {needle}:\n{text}");
    }
    assert!(
        !text.contains("does-not-exist"),
        "a request path leaked into a label"
    );
    assert!(!text.contains(&secret[3..]), "a secret leaked into metrics");
    assert!(
        !text.contains("quantile="),
        "histograms must not be summaries"
    );
}

#[test]
fn json_log_format_writes_one_json_object_per_line() {
    let mut server = Server::start_with(&[("PANLINK_SERVER_LOG_FORMAT", "json")]);
    server.get("/health", &[]);
    server.stop();
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{log}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(
            value["level"].is_string() && value["timestamp"].is_string(),
            "{line}"
        );
    }
    assert!(log.contains("panlink started"));
}

#[test]
fn a_log_that_is_not_a_terminal_has_no_colour_codes_unless_asked() {
    // The harness sends stderr to a file, as journald or a shell redirect would.
    let mut plain = Server::start();
    plain.get("/health", &[]);
    plain.stop();
    let log = plain.log();
    assert!(log.contains("panlink started"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "an escape byte in a piped log: {log:?}"
    );
    let mut coloured = Server::start_with(&[("PANLINK_SERVER_LOG_COLOR", "always")]);
    coloured.stop();
    assert!(coloured.log().contains('\u{1b}'), "log_color = always");
}
