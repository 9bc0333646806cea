//! Webhooks: management, address rules, signed deliveries of `job.completed`, retries, the
//! deliveries API, redelivery, isolation between receivers, delivery after `kill -9`, and
//! disabling a receiver that always fails.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Mock, Server, wait_until};
use crate::receiver::{Mode, Receiver};

const WAIT: Duration = Duration::from_secs(30);

/// Settings under which a loopback `http://` receiver may be used, with fast retries.
const LOOPBACK_RECEIVERS: &[(&str, &str)] = &[
    ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
    ("PANLINK_WEBHOOKS_RETRY_BASE_MS", "100"),
];

fn create_webhook(server: &Server, key: &str, url: &str, events: &[&str]) -> (String, String) {
    let answer = server.call(
        key,
        "POST",
        "/api/v1/webhooks",
        Some(&json!({"url": url, "events": events})),
    );
    assert_eq!(answer.status, 201, "{}", answer.text());
    let data = &answer.json()["data"];
    (
        data["id"].as_str().unwrap().to_owned(),
        data["secret"].as_str().unwrap().to_owned(),
    )
}

fn deliveries(server: &Server, key: &str, hook: &str) -> Vec<Value> {
    let answer = server.call(
        key,
        "GET",
        &format!("/api/v1/webhooks/{hook}/deliveries"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"]["items"].as_array().unwrap().clone()
}

#[test]
fn webhooks_are_managed_per_key_and_the_secret_is_shown_once() {
    let server = Server::start_with(LOOPBACK_RECEIVERS);
    let key = server.job_key("hooks");
    let other = server.job_key("other");
    let (id, secret) = create_webhook(
        &server,
        &key,
        "http://127.0.0.1:9/hook",
        &["job.completed", "link.dead", "link.dead"],
    );
    assert!(
        id.starts_with("wh_") && secret.starts_with("whsec_"),
        "{id} {secret}"
    );
    let read = server
        .call(&key, "GET", &format!("/api/v1/webhooks/{id}"), None)
        .json();
    assert_eq!(
        read["data"]["events"],
        json!(["job.completed", "link.dead"])
    );
    assert!(read["data"].get("secret").is_none(), "{read}");
    let listed = server.call(&key, "GET", "/api/v1/webhooks", None).json();
    assert_eq!(listed["data"]["items"].as_array().unwrap().len(), 1);
    assert!(!listed.to_string().contains(&secret));
    // Another key sees nothing of it.
    server
        .call(&other, "GET", &format!("/api/v1/webhooks/{id}"), None)
        .assert_error(404, "not_found");
    assert_eq!(
        server.call(&other, "GET", "/api/v1/webhooks", None).json()["data"]["items"],
        json!([])
    );
    // Edits.
    let patched = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/webhooks/{id}"),
        Some(
            &json!({"events": ["monitor.run_completed"], "disabled": true, "description": "论坛"}),
        ),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let data = &patched.json()["data"];
    assert_eq!(data["events"], json!(["monitor.run_completed"]));
    assert_eq!(data["disabled"], true);
    assert_eq!(data["disabled_reason"], "manual");
    assert_eq!(data["description"], "论坛");
    // Bad input names the field.
    for body in [
        json!({"url": "http://127.0.0.1:9/", "events": []}),
        json!({"url": "http://127.0.0.1:9/", "events": ["ping"]}),
        json!({"url": "http://127.0.0.1:9/", "events": ["link.gone"]}),
        json!({"url": "ftp://example.com/", "events": ["link.dead"]}),
        json!({"url": "http://u:p@127.0.0.1:9/", "events": ["link.dead"]}),
    ] {
        let answer = server.call(&key, "POST", "/api/v1/webhooks", Some(&body));
        let error = answer.assert_error(400, "invalid_field");
        assert!(error["msg"].as_str().unwrap().contains('`'), "{error}");
    }
    // Delete.
    let deleted = server.call(&key, "DELETE", &format!("/api/v1/webhooks/{id}"), None);
    assert_eq!(deleted.status, 200);
    server
        .call(&key, "GET", &format!("/api/v1/webhooks/{id}"), None)
        .assert_error(404, "not_found");
}

#[test]
fn private_and_loopback_receivers_are_refused_unless_allowed() {
    let server = Server::start_with(&[("PANLINK_WEBHOOKS_ALLOW_HTTP", "true")]);
    let key = server.job_key("ssrf");
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.5/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://localhost/hook",
        "http://2130706433/hook",
    ] {
        let answer = server.call(
            &key,
            "POST",
            "/api/v1/webhooks",
            Some(&json!({"url": url, "events": ["link.dead"]})),
        );
        let error = answer.assert_error(400, "invalid_field");
        assert!(
            error["msg"].as_str().unwrap().contains("`url`"),
            "{url}: {error}"
        );
    }
    // https only unless allowed.
    let strict = Server::start();
    let key = strict.job_key("https");
    let answer = strict.call(
        &key,
        "POST",
        "/api/v1/webhooks",
        Some(&json!({"url": "http://1.1.1.1/hook", "events": ["link.dead"]})),
    );
    answer.assert_error(400, "invalid_field");
    // Allowed: the same loopback URL is taken.
    let open = Server::start_with(LOOPBACK_RECEIVERS);
    let key = open.job_key("open");
    create_webhook(&open, &key, "http://localhost:9/hook", &["link.dead"]);
}

#[test]
fn a_finished_job_is_delivered_signed_to_the_keys_subscribed_webhooks() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, LOOPBACK_RECEIVERS);
    let receiver = Receiver::start(Mode::Status(200));
    let key = server.job_key("jobs");
    let (hook, secret) = create_webhook(&server, &key, &receiver.url("/jobs"), &["job.completed"]);
    // A webhook of the same key that does not subscribe, and one of another key, get nothing.
    let quiet = Receiver::start(Mode::Status(200));
    create_webhook(&server, &key, &quiet.url("/x"), &["link.dead"]);
    let other = server.job_key("other");
    create_webhook(&server, &other, &quiet.url("/y"), &["job.completed"]);

    let job = server.submit(
        &key,
        &json!({"items": ["https://pan.quark.cn/s/ok1hook", "https://pan.baidu.com/s/1gone2hook"]}),
    );
    let got = wait_until(WAIT, "job.completed", || {
        receiver.of_event("job.completed").into_iter().next()
    });
    assert_eq!(got.path, "/jobs");
    assert!(
        got.signed_by(&secret),
        "signature {}",
        got.header("x-panlink-signature")
    );
    assert!(!got.signed_by("whsec_wrong"));
    let body = got.json();
    assert_eq!(body["type"], "job.completed");
    assert_eq!(body["id"], got.header("x-panlink-delivery"));
    assert_eq!(body["data"]["job_id"], job.as_str());
    assert_eq!(body["data"]["status"], "done");
    assert_eq!(body["data"]["counts"]["valid"], 1);
    assert_eq!(body["data"]["counts"]["invalid"], 1);
    assert_eq!(got.header("content-type"), "application/json");
    // The deliveries API shows it delivered.
    let list = wait_until(WAIT, "delivered", || {
        let list = deliveries(&server, &key, &hook);
        (list.first()?["status"] == "delivered").then_some(list)
    });
    assert_eq!(list[0]["id"], body["id"]);
    assert_eq!(list[0]["attempts"], 1);
    assert_eq!(list[0]["last_status_code"], 200);
    // A job answered at once (nothing to check) completes too.
    server.submit(&key, &json!({"items": ["https://example.com/not-a-drive"]}));
    wait_until(WAIT, "second job.completed", || {
        (receiver.of_event("job.completed").len() == 2).then_some(())
    });
    assert!(quiet.received().is_empty(), "{:?}", quiet.received());
}

#[test]
fn a_receiver_that_fails_gets_retries_then_succeeds_and_a_ping_can_be_redelivered() {
    let server = Server::start_with(LOOPBACK_RECEIVERS);
    let receiver = Receiver::start(Mode::Status(503));
    let key = server.job_key("retry");
    let (hook, secret) = create_webhook(&server, &key, &receiver.url("/r"), &["link.dead"]);
    let ping = server.call(&key, "POST", &format!("/api/v1/webhooks/{hook}/ping"), None);
    assert_eq!(ping.status, 202, "{}", ping.text());
    let delivery = ping.json()["data"]["id"].as_str().unwrap().to_owned();
    // Three refused attempts, each with the same delivery id, then the receiver recovers.
    wait_until(WAIT, "three attempts", || {
        (receiver.received().len() >= 3).then_some(())
    });
    let seen = server
        .call(
            &key,
            "GET",
            &format!("/api/v1/webhooks/{hook}/deliveries"),
            None,
        )
        .json();
    let first = &seen["data"]["items"][0];
    assert_eq!(first["status"], "pending", "{first}");
    assert_eq!(first["last_status_code"], 503);
    assert!(first["next_attempt_at"].is_string());
    receiver.set(Mode::Status(204));
    let list = wait_until(WAIT, "delivered after retries", || {
        let list = deliveries(&server, &key, &hook);
        (list[0]["status"] == "delivered").then_some(list)
    });
    assert!(list[0]["attempts"].as_u64().unwrap() >= 4, "{}", list[0]);
    assert_eq!(list[0]["last_status_code"], 204);
    assert!(list[0]["next_attempt_at"].is_null());
    let all = receiver.received();
    assert!(
        all.iter()
            .all(|r| r.header("x-panlink-delivery") == delivery)
    );
    assert!(all.iter().all(|r| r.signed_by(&secret)));
    assert_eq!(all[0].json()["type"], "ping");
    // Redelivery: the same id and body once more.
    let before = receiver.received().len();
    let again = server.call(
        &key,
        "POST",
        &format!("/api/v1/webhooks/{hook}/deliveries/{delivery}/redeliver"),
        None,
    );
    assert_eq!(again.status, 202, "{}", again.text());
    let repeat = wait_until(WAIT, "redelivery", || {
        receiver.received().get(before).cloned()
    });
    assert_eq!(repeat.header("x-panlink-delivery"), delivery);
    assert_eq!(repeat.body, all[0].body);
    server
        .call(
            &key,
            "POST",
            &format!("/api/v1/webhooks/{hook}/deliveries/dlv_00000000000fffff/redeliver"),
            None,
        )
        .assert_error(404, "not_found");
}

#[test]
fn a_silent_receiver_does_not_delay_another_receivers_deliveries() {
    let server = Server::start_with(&[
        ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
        ("PANLINK_WEBHOOKS_TIMEOUT_MS", "20000"),
    ]);
    let silent = Receiver::start(Mode::Silent);
    let lively = Receiver::start(Mode::Status(200));
    let key = server.job_key("iso");
    let (slow_hook, _) = create_webhook(&server, &key, &silent.url("/s"), &["link.dead"]);
    let (fast_hook, _) = create_webhook(&server, &key, &lively.url("/f"), &["link.dead"]);
    // Ten pings to the silent one first: four hang, six wait behind them.
    for _ in 0..10 {
        let answer = server.call(
            &key,
            "POST",
            &format!("/api/v1/webhooks/{slow_hook}/ping"),
            None,
        );
        assert_eq!(answer.status, 202);
    }
    wait_until(WAIT, "the silent receiver holding four", || {
        (silent.received().len() == 4).then_some(())
    });
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let answer = server.call(
            &key,
            "POST",
            &format!("/api/v1/webhooks/{fast_hook}/ping"),
            None,
        );
        assert_eq!(answer.status, 202);
    }
    wait_until(
        Duration::from_secs(5),
        "ten deliveries to the lively receiver",
        || (lively.received().len() == 10).then_some(()),
    );
    let took = started.elapsed();
    // Per-receiver concurrency: the silent one never had more than four at once.
    assert_eq!(silent.received().len(), 4);
    crate::harness::figure(&format!(
        "webhooks: 10 deliveries to a lively receiver beside a silent one: {} ms",
        took.as_millis()
    ));
    silent.set(Mode::Status(200));
}

#[test]
fn a_delivery_interrupted_by_kill_9_is_sent_again_with_the_same_id() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mut server = Server::start_at(&data_dir, LOOPBACK_RECEIVERS);
    let receiver = Receiver::start(Mode::Silent);
    let key = server.job_key("crash");
    let (hook, _) = create_webhook(&server, &key, &receiver.url("/c"), &["link.dead"]);
    let ping = server.call(&key, "POST", &format!("/api/v1/webhooks/{hook}/ping"), None);
    let delivery = ping.json()["data"]["id"].as_str().unwrap().to_owned();
    // The event is committed (202 came after the commit); the attempt is in the air.
    wait_until(WAIT, "the first attempt", || {
        receiver.received().first().cloned()
    });
    server.kill9();
    receiver.set(Mode::Status(200));
    let server = Server::start_at(&data_dir, LOOPBACK_RECEIVERS);
    wait_until(WAIT, "the attempt after restart", || {
        (receiver.received().len() >= 2).then_some(())
    });
    let all = receiver.received();
    assert!(
        all.iter()
            .all(|r| r.header("x-panlink-delivery") == delivery),
        "{all:?}"
    );
    let list = wait_until(WAIT, "delivered", || {
        let list = deliveries(&server, &key, &hook);
        (list[0]["status"] == "delivered").then_some(list)
    });
    assert_eq!(list[0]["id"], delivery.as_str());
}

#[test]
fn a_receiver_that_fails_every_delivery_long_enough_is_disabled() {
    let server = Server::start_with(&[
        ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
        ("PANLINK_WEBHOOKS_RETRY_BASE_MS", "100"),
        ("PANLINK_WEBHOOKS_DISABLE_AFTER_S", "1"),
    ]);
    let receiver = Receiver::start(Mode::Status(500));
    let key = server.job_key("dead");
    let (hook, _) = create_webhook(&server, &key, &receiver.url("/d"), &["link.dead"]);
    server.call(&key, "POST", &format!("/api/v1/webhooks/{hook}/ping"), None);
    let data = wait_until(WAIT, "disabled", || {
        let data = server
            .call(&key, "GET", &format!("/api/v1/webhooks/{hook}"), None)
            .json()["data"]
            .clone();
        (data["disabled"] == true).then_some(data)
    });
    assert_eq!(data["disabled_reason"], "failing");
    assert!(data["failing_since"].is_string());
    assert!(
        server.log().contains("webhook.disabled"),
        "{}",
        server.log()
    );
    // No attempt goes out while it is off; turning it on resumes the pending delivery.
    let attempts = receiver.received().len();
    receiver.set(Mode::Status(200));
    let on = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/webhooks/{hook}"),
        Some(&json!({"disabled": false})),
    );
    assert_eq!(on.json()["data"]["failing_since"], Value::Null);
    wait_until(WAIT, "delivered after re-enabling", || {
        let list = deliveries(&server, &key, &hook);
        (list[0]["status"] == "delivered").then_some(())
    });
    assert!(receiver.received().len() > attempts);
}

#[test]
fn a_webhook_keeps_a_bounded_number_of_deliveries_the_oldest_go_first() {
    let server = Server::start_with(&[
        ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
        ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
        ("PANLINK_WEBHOOKS_MAX_STORED_DELIVERIES", "3"),
    ]);
    let receiver = Receiver::start(Mode::Status(200));
    let key = server.job_key("bounded");
    let (hook, _) = create_webhook(&server, &key, &receiver.url("/b"), &["link.dead"]);
    let mut ids = Vec::new();
    for _ in 0..5 {
        let ping = server.call(&key, "POST", &format!("/api/v1/webhooks/{hook}/ping"), None);
        assert_eq!(ping.status, 202);
        ids.push(ping.json()["data"]["id"].as_str().unwrap().to_owned());
    }
    let kept: Vec<String> = deliveries(&server, &key, &hook)
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    let newest: Vec<String> = ids[2..].iter().rev().cloned().collect();
    assert_eq!(kept, newest);
}

#[test]
fn clicks_reach_a_webhook_as_one_delivery_per_key_and_fold() {
    let mut env = LOOPBACK_RECEIVERS.to_vec();
    env.push(("PANLINK_LINKS_CLICK_FLUSH_MS", "100"));
    env.push(("PANLINK_LINKS_CLICK_COMPACT_MS", "700"));
    let server = Server::start_with(&env);
    let receiver = Receiver::start(Mode::Status(200));
    let (key, _) = server.create_key(r#"{"name":"clicks","plan":"premium"}"#);
    let (_, secret) = create_webhook(&server, &key, &receiver.url("/clicks"), &["link.clicked"]);
    // Another key's clicks, without a webhook, go nowhere.
    let (other, _) = server.create_key(r#"{"name":"other","plan":"premium"}"#);
    for (k, alias) in [(&key, "hot-1"), (&key, "hot-2"), (&other, "else-1")] {
        let made = server.call(
            k,
            "POST",
            "/api/v1/links",
            Some(&json!({"url": "https://example.com/", "alias": alias})),
        );
        assert_eq!(made.status, 200, "{}", made.text());
    }
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
    for (code, n) in [("hot-1", 5), ("hot-2", 2), ("else-1", 3)] {
        for _ in 0..n {
            assert_eq!(
                server
                    .get(&format!("/{code}"), &[("User-Agent", ua)])
                    .status,
                302
            );
        }
    }
    server.get("/hot-1", &[]); // no user agent: a bot visit
    let got = wait_until(WAIT, "link.clicked", || {
        receiver.of_event("link.clicked").into_iter().next()
    });
    assert!(got.signed_by(&secret));
    let data = got.json()["data"].clone();
    assert_eq!(data["totals"]["human"], 7, "{data}");
    assert_eq!(data["totals"]["bot"], 1, "{data}");
    let links = data["links"].as_array().unwrap();
    assert_eq!(links.len(), 2, "only the key's own links: {data}");
    assert_eq!(
        (links[0]["code"].as_str(), links[0]["human"].as_u64()),
        (Some("hot-1"), Some(5))
    );
    assert_eq!(
        (links[1]["code"].as_str(), links[1]["human"].as_u64()),
        (Some("hot-2"), Some(2))
    );
    assert_eq!(data["more_links"], 0);
    // One delivery for all of it; a fold without clicks sends nothing.
    std::thread::sleep(Duration::from_millis(2000));
    assert_eq!(
        receiver.of_event("link.clicked").len(),
        1,
        "{:?}",
        receiver.received()
    );
    // The next period's clicks make the next delivery.
    server.get("/hot-2", &[("User-Agent", ua)]);
    let second = wait_until(WAIT, "second link.clicked", || {
        let all = receiver.of_event("link.clicked");
        (all.len() == 2).then(|| all[1].json())
    });
    assert_eq!(second["data"]["totals"]["human"], 1, "{second}");
    assert_eq!(second["data"]["since"], data["until"]);
}
