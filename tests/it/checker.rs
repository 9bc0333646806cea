//! The quark and baidu adapters through the production client against the real
//! `panlink mock-upstream` binary: TLS with the real host names, verified against the mock's CA,
//! reached through `checker.upstream_override`.

use std::time::Duration;

use panlink::checker::client::UpstreamClient;
use panlink::checker::providers::{self, Recognized};
use panlink::checker::verdict::{Expiry, Reason, State, Verdict};

use crate::harness::Mock;

async fn check(client: &UpstreamClient, url: &str, passcode: Option<&str>) -> Verdict {
    let Recognized::Share(share) = providers::recognize(url, passcode) else {
        panic!("{url} not recognized");
    };
    providers::check(client, &share).await
}

/// The mock's `limit…` case: rate limited (with `code`) for two requests, then valid.
async fn assert_limited_then_valid(client: &UpstreamClient, url: &str, code: &str) {
    for _ in 0..2 {
        let limited = check(client, url, None).await;
        assert_verdict(&limited, State::Unknown, Reason::RateLimited, "limit");
        assert_eq!(limited.provider_code.as_deref(), Some(code));
    }
    let after = check(client, url, None).await;
    assert_verdict(
        &after,
        State::Valid,
        Reason::AllChecksPassed,
        "limit, third try",
    );
}

fn assert_verdict(verdict: &Verdict, state: State, reason: Reason, what: &str) {
    assert_eq!(
        (verdict.state, verdict.reason),
        (state, reason),
        "{what}: {verdict:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quark_every_case_of_the_mock_table() {
    let mock = Mock::start(0);
    let client = UpstreamClient::new(&mock.checker_config(Duration::from_secs(3))).unwrap();
    let base = "https://pan.quark.cn/s/";

    let ok = check(&client, &format!("{base}ok1a2b3c"), None).await;
    assert_verdict(&ok, State::Valid, Reason::AllChecksPassed, "ok");
    assert_eq!(ok.share_name.as_deref(), Some("mock-ok1a2b3c"));
    assert_eq!(ok.file_count, Some(3));
    assert_eq!(ok.expiry, Expiry::Permanent);
    assert_eq!(ok.expiry.label(0).as_deref(), Some("永久有效"));

    let expiring = check(&client, &format!("{base}okexp7abc"), None).await;
    assert_verdict(&expiring, State::Valid, Reason::AllChecksPassed, "okexp7");
    let now = panlink::timefmt::now_ms();
    assert_eq!(expiring.expiry.label(now).as_deref(), Some("剩余 7 天"));

    let cases = [
        ("empty1", None, State::Invalid, Reason::EmptyShare),
        ("gone1", None, State::Invalid, Reason::ShareCancelled),
        ("exp1a", None, State::Invalid, Reason::ShareExpired),
        ("none1", None, State::Invalid, Reason::ShareNotFound),
        ("ban1a", None, State::Invalid, Reason::ShareViolation),
        ("lock1", None, State::Locked, Reason::PasswordRequired),
        ("lock1", Some("zzzz"), State::Locked, Reason::PasswordWrong),
        ("lock1", Some("abcd"), State::Valid, Reason::AllChecksPassed),
        ("err1a", None, State::Unknown, Reason::UpstreamError),
        ("junk1", None, State::Unknown, Reason::UnrecognizedResponse),
    ];
    for (id, passcode, state, reason) in cases {
        let verdict = check(&client, &format!("{base}{id}"), passcode).await;
        assert_verdict(&verdict, state, reason, id);
    }
    // The pass code may come in the URL.
    let in_url = check(&client, &format!("{base}lock2?pwd=abcd"), None).await;
    assert_verdict(&in_url, State::Valid, Reason::AllChecksPassed, "lock ?pwd=");

    assert_limited_then_valid(&client, &format!("{base}limit1"), "HTTP 429").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baidu_every_case_of_the_mock_table() {
    let mock = Mock::start(0);
    let client = UpstreamClient::new(&mock.checker_config(Duration::from_secs(3))).unwrap();
    let base = "https://pan.baidu.com/s/1";

    let ok = check(&client, &format!("{base}okAAAA"), None).await;
    assert_verdict(&ok, State::Valid, Reason::AllChecksPassed, "ok");
    assert_eq!(ok.share_name.as_deref(), Some("mock-okAAAA"));
    assert_eq!(ok.file_count, Some(3));
    assert_eq!(ok.expiry, Expiry::Unknown, "baidu's list gives no expiry");

    let cases = [
        ("okexp3AA", None, State::Valid, Reason::AllChecksPassed),
        ("emptyA", None, State::Invalid, Reason::EmptyShare),
        // Without a pass code, shorturlinfo says -21 for every dead share.
        ("goneAA", None, State::Invalid, Reason::ShareNotFound),
        ("expAAA", None, State::Invalid, Reason::ShareNotFound),
        ("noneAA", None, State::Invalid, Reason::ShareNotFound),
        // With one, the list call tells them apart.
        (
            "goneAA",
            Some("abcd"),
            State::Invalid,
            Reason::ShareCancelled,
        ),
        ("expAAA", Some("abcd"), State::Invalid, Reason::ShareExpired),
        (
            "noneAA",
            Some("abcd"),
            State::Unknown,
            Reason::UnrecognizedResponse,
        ),
        ("banAAA", None, State::Invalid, Reason::ShareViolation),
        // Locked without a code: baidu cannot say whether it still exists.
        ("lockAA", None, State::Unknown, Reason::PasswordRequired),
        ("lockAA", Some("zzzz"), State::Locked, Reason::PasswordWrong),
        (
            "lockAA",
            Some("abcd"),
            State::Valid,
            Reason::AllChecksPassed,
        ),
        ("errAAA", None, State::Unknown, Reason::UpstreamError),
        ("junkAA", None, State::Unknown, Reason::UnrecognizedResponse),
    ];
    for (id, passcode, state, reason) in cases {
        let verdict = check(&client, &format!("{base}{id}"), passcode).await;
        assert_verdict(&verdict, state, reason, &format!("{id} {passcode:?}"));
    }
    let init_form = check(
        &client,
        "https://pan.baidu.com/share/init?surl=lockAB&pwd=abcd",
        None,
    )
    .await;
    assert_verdict(
        &init_form,
        State::Valid,
        Reason::AllChecksPassed,
        "share/init form",
    );

    assert_limited_then_valid(&client, &format!("{base}limitAA"), "-62").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_provider_is_a_timeout_never_a_verdict() {
    let mock = Mock::start(0);
    let client = UpstreamClient::new(&mock.checker_config(Duration::from_millis(500))).unwrap();
    let quark = check(&client, "https://pan.quark.cn/s/slow1abc", None).await;
    assert_verdict(&quark, State::Unknown, Reason::Timeout, "quark slow");
    let baidu = check(&client, "https://pan.baidu.com/s/1slowAAA", None).await;
    assert_verdict(&baidu, State::Unknown, Reason::Timeout, "baidu slow");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_is_verified_an_untrusted_upstream_is_never_believed() {
    let mock = Mock::start(0);
    let mut config = mock.checker_config(Duration::from_secs(3));
    config.extra_root_ca = None;
    let client = UpstreamClient::new(&config).unwrap();
    let verdict = check(&client, "https://pan.quark.cn/s/none1abc", None).await;
    assert_verdict(
        &verdict,
        State::Unknown,
        Reason::UpstreamError,
        "untrusted certificate",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_counts_requests_per_provider_and_keeps_connections_pooled() {
    let mock = Mock::start(0);
    let client = UpstreamClient::new(&mock.checker_config(Duration::from_secs(3))).unwrap();
    for n in 0..5 {
        check(&client, &format!("https://pan.quark.cn/s/ok{n}xyzw"), None).await;
    }
    for n in 0..3 {
        check(
            &client,
            &format!("https://pan.baidu.com/s/1okBBBB{n}"),
            None,
        )
        .await;
    }
    let stats = client
        .get("https://drive-pc.quark.cn/__mock/stats", &[])
        .await
        .unwrap();
    let stats: serde_json::Value = serde_json::from_slice(&stats.body).unwrap();
    // Two requests per quark check (token, detail). Baidu: one cookie warm-up for the client, then
    // two per public check (shorturlinfo, list): the BAIDUID cookie is reused.
    assert_eq!(stats["requests"]["quark"], 10, "{stats}");
    assert_eq!(stats["requests"]["baidu"], 1 + 3 * 2, "{stats}");
    // Sequential checks reuse pooled connections: one per host (quark, baidu), not one per request.
    let connections = stats["tls_connections"].as_u64().unwrap();
    assert!(
        connections <= 2,
        "{connections} TLS connections for 14 requests: {stats}"
    );
}

/// A minimal HTTP CONNECT proxy: every tunnel goes to `target` (whatever host it names); with
/// `auth`, a missing or wrong `Proxy-Authorization` gets 407. Counts the tunnels it opened.
fn start_proxy(
    target: std::net::SocketAddr,
    auth: &'static str,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::io::{BufRead, BufReader, Write};
    use std::sync::atomic::Ordering;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let tunnels = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&tunnels);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let counter = std::sync::Arc::clone(&counter);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut head = String::new();
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    head.push_str(&line);
                }
                let mut client = client;
                let authorized = head.lines().any(|l| {
                    l.to_ascii_lowercase().starts_with("proxy-authorization:") && l.ends_with(auth)
                });
                if !head.starts_with("CONNECT ") || !authorized {
                    let _ = client.write_all(
                        b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n",
                    );
                    return;
                }
                let Ok(upstream) = std::net::TcpStream::connect(target) else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n");
                let (mut up_read, mut up_write) = (upstream.try_clone().unwrap(), upstream);
                let mut client_write = client.try_clone().unwrap();
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut up_read, &mut client_write);
                });
                let _ = std::io::copy(&mut reader, &mut up_write);
            });
        }
    });
    (addr, tunnels)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_carry_the_chosen_providers_requests() {
    use std::sync::atomic::Ordering;
    let mock = Mock::start(0);
    // "user:pass" in Basic.
    let (proxy, tunnels) = start_proxy(mock.addr, "Basic dXNlcjpwYXNz");
    let mut config = mock.checker_config(Duration::from_secs(3));
    config.proxies = vec![format!("http://user:pass@{proxy}").parse().unwrap()];
    config.proxy_providers = vec![panlink::checker::share::Provider::Quark];
    let client = UpstreamClient::new(&config).unwrap();

    let quark = check(&client, "https://pan.quark.cn/s/okPROXY1", None).await;
    assert_verdict(
        &quark,
        State::Valid,
        Reason::AllChecksPassed,
        "quark through the proxy",
    );
    let through_proxy = tunnels.load(Ordering::SeqCst);
    assert!(through_proxy >= 1, "no tunnel was opened");
    let baidu = check(&client, "https://pan.baidu.com/s/1okPROXY", None).await;
    assert_verdict(
        &baidu,
        State::Valid,
        Reason::AllChecksPassed,
        "baidu direct",
    );
    assert_eq!(
        tunnels.load(Ordering::SeqCst),
        through_proxy,
        "baidu is not configured for the proxy"
    );

    // Wrong credentials: the proxy refuses, the verdict is unknown, never dead.
    config.proxies = vec![format!("http://user:wrong@{proxy}").parse().unwrap()];
    let refused = UpstreamClient::new(&config).unwrap();
    let verdict = check(&refused, "https://pan.quark.cn/s/noneAAA1", None).await;
    assert_verdict(
        &verdict,
        State::Unknown,
        Reason::UpstreamError,
        "proxy refused",
    );
}
