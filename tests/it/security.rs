//! `POST /api/v1/tools/security-check`: rules, DNS answers, points debited atomically.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Response, Server};

/// A minimal DNS server on loopback: A records for the names it knows, NXDOMAIN for the rest.
struct FakeDns {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

impl FakeDns {
    fn start(records: &'static [(&'static str, [u8; 4])]) -> FakeDns {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !stopped.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                if let Some(answer) = answer(&buf[..len], records) {
                    let _ = socket.send_to(&answer, from);
                }
            }
        });
        FakeDns { addr, stop }
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(query: &[u8], records: &[(&str, [u8; 4])]) -> Option<Vec<u8>> {
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let len = usize::from(*query.get(at)?);
        at += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + len)?).to_ascii_lowercase());
        at += len;
    }
    let qtype = u16::from_be_bytes([*query.get(at)?, *query.get(at + 1)?]);
    let question_end = at + 4;
    let name = labels.join(".");
    let known = records.iter().find(|(n, _)| *n == name);
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&query[..2]);
    out.extend_from_slice(if known.is_some() {
        &[0x81, 0x80]
    } else {
        &[0x81, 0x83]
    });
    let answers: u16 = u16::from(known.is_some() && qtype == 1);
    out.extend_from_slice(&[0, 1]);
    out.extend_from_slice(&answers.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(query.get(12..question_end)?);
    if answers == 1 {
        let ip = known?.1;
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        out.extend_from_slice(&ip);
    }
    Some(out)
}

const RECORDS: &[(&str, [u8; 4])] = &[
    ("public.example", [93, 184, 216, 34]),
    ("intranet.corp-site.example", [10, 1, 2, 3]),
    ("metadata.cloud-site.example", [169, 254, 169, 254]),
];

fn server_with_dns(dns: &FakeDns) -> Server {
    let addr = dns.addr.to_string();
    Server::start_with(&[
        ("PANLINK_SECURITY_DNS_SERVER", &addr),
        ("PANLINK_SECURITY_DNS_TIMEOUT_MS", "800"),
        // The concurrency test fires 50 calls at once from one key.
        ("PANLINK_KEYS_DEFAULT_BURST", "1000"),
    ])
}

fn check(server: &Server, key: &str, url: &str) -> Response {
    server.send(
        "POST",
        "/api/v1/tools/security-check",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&json!({ "url": url }).to_string()),
    )
}

fn verdict(server: &Server, key: &str, url: &str) -> Value {
    let response = check(server, key, url);
    assert_eq!(response.status, 200, "{url}: {}", response.text());
    let json = response.json();
    assert_eq!(json["code"], 0);
    json["data"].clone()
}

fn points(server: &Server, key: &str) -> u64 {
    server.get("/api/v1/me", &[("X-API-Key", key)]).json()["data"]["points"]
        .as_u64()
        .unwrap()
}

#[test]
fn verdicts_cost_ten_points_and_refusals_cost_nothing() {
    let dns = FakeDns::start(RECORDS);
    let server = server_with_dns(&dns);
    let (key, _) = server.create_key(r#"{"name": "checker", "plan": "free", "points": 35}"#);

    let data = verdict(&server, &key, "https://public.example/page");
    assert_eq!(data["url"], "https://public.example/page");
    assert_eq!(data["safe"], true);
    assert_eq!(data["level"], "safe");
    assert_eq!(data["risk_codes"], json!([]));
    assert_eq!(data["reason"], "未发现风险");
    assert_eq!(data["points_deducted"], 10);
    assert_eq!(data["points_remaining"], 25);

    // A name that resolves into a private network is unsafe (the DNS answer is checked).
    let data = verdict(&server, &key, "https://intranet.corp-site.example/admin");
    assert_eq!(data["safe"], false);
    assert_eq!(data["level"], "unsafe");
    assert_eq!(data["risk_codes"], json!(["private_network"]));
    assert!(data["reason"].as_str().unwrap().contains("内网"));
    assert_eq!(data["points_remaining"], 15);

    // A name that does not resolve is a finding, not an error.
    let data = verdict(&server, &key, "https://nowhere.example/");
    assert_eq!(data["safe"], true);
    assert_eq!(data["level"], "suspicious");
    assert_eq!(data["risk_codes"], json!(["unresolvable_host"]));
    assert_eq!(data["points_remaining"], 5);

    // 5 points left: 403 积分不足, nothing deducted.
    let json =
        check(&server, &key, "https://public.example/").assert_error(403, "insufficient_points");
    assert_eq!(json["msg"], "积分不足");
    assert_eq!(points(&server, &key), 5);
    // Malformed requests are 400 and free.
    let (rich, _) = server.create_key(r#"{"name": "rich", "plan": "free", "points": 20}"#);
    for bad in [
        "",
        "not a url",
        "//no-scheme.example/x",
        "https://exa mple.com/",
    ] {
        check(&server, &rich, bad).assert_error(400, "invalid_field");
    }
    server
        .send(
            "POST",
            "/api/v1/tools/security-check",
            &[("X-API-Key", &rich), ("Content-Type", "application/json")],
            Some(r#"{"link": "https://public.example/"}"#),
        )
        .assert_error(400, "invalid_field");
    assert_eq!(points(&server, &rich), 20);
    check(&server, "", "https://public.example/").assert_error(401, "missing_api_key");
}

#[test]
fn each_rule_is_reported_through_http() {
    let dns = FakeDns::start(RECORDS);
    let server = server_with_dns(&dns);
    let (key, _) = server.create_key(r#"{"name": "rules", "plan": "free", "points": 100000}"#);
    let cases: &[(&str, &[&str], bool)] = &[
        (
            "javascript:alert(document.cookie)",
            &["disallowed_scheme"],
            false,
        ),
        (
            "https://paypal.com@public.example/",
            &["userinfo_trick"],
            false,
        ),
        ("http://93.184.216.34/", &["ip_literal_host"], true),
        (
            "http://127.0.0.1:8080/",
            &["private_network", "ip_literal_host"],
            false,
        ),
        (
            "http://0x7f000001/",
            &["private_network", "ip_literal_host"],
            false,
        ),
        (
            "http://[::ffff:192.168.0.1]/",
            &["private_network", "ip_literal_host"],
            false,
        ),
        (
            "https://metadata.cloud-site.example/latest",
            &["private_network"],
            false,
        ),
        ("http://localhost/", &["private_network"], false),
        (
            "http://test/abc123",
            &["private_network", "self_reference"],
            false,
        ),
        (
            "https://testsafebrowsing.appspot.com/s/malware.html",
            &["blocklisted_domain"],
            false,
        ),
        (
            "https://\u{430}\u{440}\u{440}\u{4cf}\u{435}.com/",
            &["idn_homograph"],
            false,
        ),
        ("https://bit.ly/3xyz", &["known_shortener"], true),
        (
            "https://paypal.public.example/",
            &["suspicious_keywords"],
            true,
        ),
        ("http://public.example:6379/", &["unusual_port"], true),
        (
            "https://public.example/download/setup.exe",
            &["executable_download"],
            true,
        ),
        (
            "https://public.example/cb?access_token=abc",
            &["credential_parameters"],
            true,
        ),
    ];
    for (url, codes, safe) in cases {
        let data = verdict(&server, &key, url);
        let got: Vec<&str> = data["risk_codes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        for code in *codes {
            assert!(got.contains(code), "{url}: {code} not in {got:?}");
        }
        assert_eq!(data["safe"], *safe, "{url}: {data}");
    }
    let long = format!("https://public.example/{}", "a".repeat(3000));
    assert_eq!(
        verdict(&server, &key, &long)["risk_codes"],
        json!(["excessive_length"])
    );
}

#[test]
fn fifty_concurrent_checks_on_a_hundred_points_spend_exactly_a_hundred() {
    let dns = FakeDns::start(RECORDS);
    let server = server_with_dns(&dns);
    let (key, _) = server.create_key(r#"{"name": "race", "plan": "free", "points": 100}"#);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| scope.spawn(|| check(&server, &key, "http://93.184.216.34/").status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|&&s| s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|&&s| s == 403).count(),
        40,
        "{statuses:?}"
    );
    assert_eq!(points(&server, &key), 0);
}
