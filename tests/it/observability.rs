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
fn a_line_logged_while_handling_a_request_carries_its_request_id() {
    for format in ["json", "human"] {
        let mut server = Server::start_with(&[("PANLINK_SERVER_LOG_FORMAT", format)]);
        // Creating a key logs "API key created" from inside its handler.
        let response = server.admin("POST", "/admin/api/keys", Some(r#"{"name": "logged"}"#));
        assert_eq!(response.status, 201, "{}", response.text());
        let id = response.header("x-request-id").unwrap().to_owned();
        server.stop();
        let log = server.log();
        let line = log
            .lines()
            .find(|l| l.contains("API key created"))
            .unwrap_or_else(|| panic!("{log}"));
        if format == "json" {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(value["span"]["request_id"], id.as_str(), "{line}");
        } else {
            assert!(line.contains(&format!("request_id={id}")), "{line}");
        }
        // Lines outside a request carry none.
        let started = log.lines().find(|l| l.contains("panlink started")).unwrap();
        assert!(!started.contains("request_id"), "{started}");
    }
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

/// Every metric the shipped alert rules and Grafana dashboard ask for exists in a live /metrics
/// once the server has redirected, checked, committed and delivered a webhook (`up` is
/// Prometheus's own).
#[test]
fn the_shipped_alerts_and_dashboard_name_only_metrics_that_exist() {
    use crate::harness::{Mock, wait_until};
    use crate::receiver::{Mode, Receiver};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut wanted = std::collections::BTreeSet::new();
    let name = regex::Regex::new(r"panlink_[a-z_]+").unwrap();
    for file in [
        "contrib/prometheus/alerts.yml",
        "contrib/grafana/panlink.json",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for m in name.find_iter(&text) {
            let metric = m.as_str();
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| metric.strip_suffix(suffix))
                .unwrap_or(metric);
            wanted.insert(base.to_owned());
        }
    }
    assert!(wanted.len() >= 12, "{wanted:?}");
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
            ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
        ],
    );
    let key = server.job_key("metrics");
    let job = server.submit(
        &key,
        &serde_json::json!({"items": ["https://pan.quark.cn/s/okMETRIC1"]}),
    );
    server
        .events(&key, &job, &[])
        .until_done(std::time::Duration::from_secs(20));
    let link = server.call(
        &key,
        "POST",
        "/api/v1/links",
        Some(&serde_json::json!({"url": "https://example.com/m"})),
    );
    let code = link.json()["data"]["code"].as_str().unwrap().to_owned();
    assert_eq!(server.get(&format!("/{code}"), &[]).status, 302);
    let receiver = Receiver::start(Mode::Status(200));
    let hook = server.call(
        &key,
        "POST",
        "/api/v1/webhooks",
        Some(&serde_json::json!({"url": receiver.url("/m"), "events": ["link.dead"]})),
    );
    let hook = hook.json()["data"]["id"].as_str().unwrap().to_owned();
    server.call(&key, "POST", &format!("/api/v1/webhooks/{hook}/ping"), None);
    wait_until(
        std::time::Duration::from_secs(10),
        "the ping delivered",
        || (!receiver.received().is_empty()).then_some(()),
    );
    let text = wait_until(std::time::Duration::from_secs(10), "every metric", || {
        let text = server.get("/metrics", &[]).text();
        wanted
            .iter()
            .all(|m| text.lines().any(|l| l.starts_with(m.as_str())))
            .then_some(text)
    });
    for metric in &wanted {
        assert!(
            text.contains(metric.as_str()),
            "{metric} missing from /metrics"
        );
    }
}
