//! The upstream misbehaving: resets, half-written bodies, endless bodies, stalls, wrong
//! content types and TLS failures. Each is `unknown` with its reason, never a verdict, and the
//! checker stays healthy: the next check through the same client (or server) is answered.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use panlink::checker::client::UpstreamClient;
use panlink::checker::share::Provider;
use panlink::checker::verdict::{Reason, State};
use serde_json::{Value, json};

use crate::checker::{assert_outcome, check, share_url};
use crate::harness::{Mock, Server, results};

/// Each fault of the mock (`src/mock/fault.rs`), by share id, and the reason it must give.
const FAULTS: [(&str, Reason); 5] = [
    ("resetA01", Reason::UpstreamError),
    ("halfAA01", Reason::UpstreamError),
    ("endlessA", Reason::UnrecognizedResponse),
    ("stallA01", Reason::Timeout),
    ("ctypeA01", Reason::UnrecognizedResponse),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_of_every_provider_is_unknown_with_its_reason_and_the_client_recovers() {
    let mock = Mock::start(0);
    let mut config = mock.checker_config(Duration::from_millis(800));
    // Small enough that the endless body overflows it fast; larger than every real answer.
    config.max_response_bytes = 256 * 1024;
    let client = UpstreamClient::new(&config).unwrap();
    // The drives one task each (their hosts share nothing), each drive's faults in turn.
    let drives = Provider::ALL.map(|provider| {
        let client = client.clone();
        tokio::spawn(async move {
            for (id, reason) in FAULTS {
                let started = Instant::now();
                let verdict = check(&client, &share_url(provider, id), None).await;
                assert_eq!(
                    (verdict.state, verdict.reason),
                    (State::Unknown, reason),
                    "{provider:?} {id}: {verdict:?}"
                );
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "{provider:?} {id} took {:?}: the deadline covers the body",
                    started.elapsed()
                );
                // The same client answers the next check of this provider.
                let next = check(&client, &share_url(provider, "okFAULT1"), None).await;
                assert_eq!(
                    (next.state, next.reason),
                    (State::Valid, Reason::AllChecksPassed),
                    "{provider:?} after {id}: {next:?}"
                );
            }
        })
    });
    for drive in drives {
        drive.await.unwrap();
    }
}

/// How a fake upstream treats one connection.
type Serve = fn(std::net::TcpStream);

/// A TCP listener that treats each connection with `serve` (on its own thread).
fn fake_upstream(serve: Serve) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_failures_are_unknown_never_a_verdict() {
    let mock = Mock::start(0);
    let cases: [(&str, Serve, Reason); 4] = [
        (
            "plain HTTP where TLS was expected",
            |mut s| {
                let mut hello = [0u8; 512];
                let _ = s.read(&mut hello);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}",
                );
            },
            Reason::UpstreamError,
        ),
        (
            "closed during the handshake",
            |mut s| {
                let mut hello = [0u8; 512];
                let _ = s.read(&mut hello);
            },
            Reason::UpstreamError,
        ),
        (
            "a TLS alert instead of a server hello",
            |mut s| {
                let mut hello = [0u8; 512];
                let _ = s.read(&mut hello);
                // Alert record, TLS 1.2, fatal handshake_failure.
                let _ = s.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]);
            },
            Reason::UpstreamError,
        ),
        (
            "a handshake that never answers",
            |mut s| {
                let mut hello = [0u8; 512];
                let _ = s.read(&mut hello);
                std::thread::sleep(Duration::from_secs(5));
            },
            Reason::Timeout,
        ),
    ];
    for (what, serve, reason) in cases {
        let mut config = mock.checker_config(Duration::from_millis(800));
        config.upstream_override = Some(fake_upstream(serve));
        let client = UpstreamClient::new(&config).unwrap();
        for provider in [Provider::Quark, Provider::Baidu, Provider::Cmcc] {
            let started = Instant::now();
            let verdict = check(&client, &share_url(provider, "noneTLS1"), None).await;
            assert_eq!(
                (verdict.state, verdict.reason),
                (State::Unknown, reason),
                "{what}, {provider:?}: {verdict:?}"
            );
            assert!(started.elapsed() < Duration::from_secs(3), "{what}");
        }
    }
}

#[test]
fn a_job_full_of_faults_ends_unknown_and_the_server_stays_healthy() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_REQUEST_TIMEOUT_MS", "700"),
            ("PANLINK_CHECKER_RETRY_BACKOFF_MS", "20"),
            ("PANLINK_CHECKER_MAX_RESPONSE_BYTES", "262144"),
        ],
    );
    let key = server.job_key("faults");
    let mut items = Vec::new();
    let mut expected = Vec::new();
    for provider in Provider::ALL {
        for (id, reason) in FAULTS {
            items.push(json!({"url": share_url(provider, id), "meta": {"row": items.len()}}));
            expected.push((provider, id, State::Unknown, reason));
        }
        items.push(json!({"url": share_url(provider, "okFAULT2"), "meta": {"row": items.len()}}));
        expected.push((provider, "okFAULT2", State::Valid, Reason::AllChecksPassed));
    }
    let job = server.submit(&key, &json!({ "items": items }));
    let answered = results(
        &server
            .events(&key, &job, &[])
            .until_done(Duration::from_secs(90)),
    );
    assert_eq!(answered.len(), expected.len(), "one result per item");
    for result in &answered {
        let (provider, id, state, reason) =
            expected[result["meta"]["row"].as_u64().unwrap() as usize];
        assert_outcome(
            result,
            state,
            reason,
            &format!("{provider:?} {id}: {result}"),
        );
        if reason.is_transient() {
            assert_eq!(
                result["attempts"], 3,
                "transient faults are retried: {result}"
            );
        }
    }
    // Healthy afterwards: readiness, the pool, and a fresh job answered in full.
    assert_eq!(server.get("/health", &[]).status, 200);
    let pool = server.get("/pool", &[]).json();
    for provider in Provider::ALL {
        let lane = &pool["providers"][provider.as_str()];
        assert_eq!(lane["in_flight"], 0, "{provider:?}: {lane}");
        assert_eq!(lane["circuit"], "closed", "{provider:?}: {lane}");
    }
    let again: Vec<Value> = Provider::ALL
        .iter()
        .map(|p| json!({"url": share_url(*p, "okFAULT3")}))
        .collect();
    let job = server.submit(&key, &json!({ "items": again }));
    let answered = results(
        &server
            .events(&key, &job, &[])
            .until_done(Duration::from_secs(30)),
    );
    assert_eq!(answered.len(), Provider::ALL.len());
    for result in answered {
        assert_eq!(result["state"], "valid", "{result}");
    }
}
