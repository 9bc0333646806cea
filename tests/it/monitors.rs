//! Monitors: scheduled re-checks on the background lane, transitions and their signed webhooks,
//! runs, limits, edits, and a schedule that survives `kill -9`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Mock, Server, wait_until};
use crate::receiver::{Mode, Receiver};

const WAIT: Duration = Duration::from_secs(40);

/// Short intervals allowed, loopback receivers, runs without a gap.
const FAST: &[(&str, &str)] = &[
    ("PANLINK_MONITORS_MIN_INTERVAL_S", "1"),
    ("PANLINK_MONITORS_RUN_MIN_GAP_S", "0"),
    ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
];

fn create_monitor(server: &Server, key: &str, body: &Value) -> Value {
    let answer = server.call(key, "POST", "/api/v1/monitors", Some(body));
    assert_eq!(answer.status, 201, "{}", answer.text());
    answer.json()["data"].clone()
}

fn links(server: &Server, key: &str, monitor: &str, query: &str) -> Vec<Value> {
    let answer = server.call(
        key,
        "GET",
        &format!("/api/v1/monitors/{monitor}/links{query}"),
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"]["items"].as_array().unwrap().clone()
}

fn link_by_url<'a>(all: &'a [Value], url: &str) -> &'a Value {
    all.iter()
        .find(|l| l["url"] == url)
        .unwrap_or_else(|| panic!("{url} in {all:?}"))
}

#[test]
fn a_monitor_sees_a_share_die_and_revive_and_says_so_in_signed_webhooks() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, FAST);
    let receiver = Receiver::start(Mode::Status(200));
    let key = server.job_key("monitor");
    let hook = server.call(
        &key,
        "POST",
        "/api/v1/webhooks",
        Some(&json!({"url": receiver.url("/m"), "events": ["link.dead", "link.revived", "monitor.run_completed"]})),
    )
    .json()["data"]
        .clone();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let dies = "https://pan.quark.cn/s/flip1mondie";
    let revives = "https://pan.baidu.com/s/1back1monrev";
    let limited = "https://cloud.189.cn/t/limitmon1";
    let broken = "https://pan.xunlei.com/s/errmonabc";
    let junk = "https://pan.quark.cn/s/junkmon1";
    let fine = "https://www.alipan.com/s/okmonfine1";
    let monitor = create_monitor(
        &server,
        &key,
        &json!({
            "name": "论坛资源",
            "urls": [dies, revives, limited, broken, junk, fine, "https://example.com/not-a-drive", dies],
            "interval_s": 2,
            "webhook_ids": [hook["id"]],
        }),
    );
    assert_eq!(monitor["added"], 6, "{monitor}");
    assert_eq!(monitor["duplicates"], 1);
    assert_eq!(monitor["rejected"][0]["reason"], "unsupported_provider");
    assert_eq!(monitor["rejected"][0]["index"], 6);
    assert_eq!(monitor["links"], 6);
    assert_eq!(monitor["counts"]["unknown"], 6);
    let id = monitor["id"].as_str().unwrap().to_owned();

    // The death is seen within an interval of the first check, signed.
    let dead = wait_until(WAIT, "link.dead of the dying share", || {
        receiver
            .of_event("link.dead")
            .into_iter()
            .find(|r| r.json()["data"]["url"] == dies)
    });
    assert!(
        dead.signed_by(&secret),
        "{}",
        dead.header("x-panlink-signature")
    );
    let data = dead.json()["data"].clone();
    assert_eq!(data["monitor_id"], id.as_str());
    assert_eq!(data["monitor_name"], "论坛资源");
    assert_eq!(data["provider"], "quark");
    assert_eq!(data["old_state"], "valid");
    assert_eq!(data["new_state"], "invalid");
    let reasons = [
        "share_not_found",
        "share_cancelled",
        "share_expired",
        "share_violation",
        "empty_share",
    ];
    assert!(
        reasons.contains(&data["reason"].as_str().unwrap()),
        "{data}"
    );
    // The other one comes back.
    let revived = wait_until(WAIT, "link.revived", || {
        receiver.of_event("link.revived").into_iter().next()
    });
    assert_eq!(revived.json()["data"]["url"], revives);
    assert_eq!(revived.json()["data"]["old_state"], "invalid");
    // Two runs completed; rate limits and errors never made a link dead.
    let run = wait_until(WAIT, "two runs", || {
        receiver
            .of_event("monitor.run_completed")
            .into_iter()
            .nth(1)
    });
    assert!(run.signed_by(&secret));
    assert_eq!(run.json()["data"]["checked"], 6);
    let dead_urls: Vec<Value> = receiver
        .of_event("link.dead")
        .iter()
        .map(|r| r.json()["data"]["url"].clone())
        .collect();
    for url in [limited, broken, junk] {
        assert!(!dead_urls.contains(&json!(url)), "{dead_urls:?}");
    }

    // The links' states, since, and transitions.
    let all = links(&server, &key, &id, "");
    let gone = link_by_url(&all, dies);
    assert_eq!(gone["state"], "invalid");
    let moves: Vec<(Value, Value)> = gone["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["from"].clone(), t["to"].clone()))
        .collect();
    assert_eq!(
        moves[..2],
        [
            (json!("unknown"), json!("valid")),
            (json!("valid"), json!("invalid"))
        ]
    );
    // A rate limit that lifts is valid; errors and pages not understood stay unknown.
    assert_ne!(link_by_url(&all, limited)["state"], "invalid");
    for url in [broken, junk] {
        let link = link_by_url(&all, url);
        assert_eq!(link["state"], "unknown", "{link}");
        assert_eq!(link["last_result"]["state"], "unknown");
        assert_eq!(link["transitions"], json!([]));
    }
    assert_eq!(link_by_url(&all, fine)["state"], "valid");
    let invalid = links(&server, &key, &id, "?state=invalid");
    assert_eq!(invalid.len(), 1, "{invalid:?}");
    let overview = server
        .call(&key, "GET", &format!("/api/v1/monitors/{id}"), None)
        .json()["data"]
        .clone();
    assert_eq!(overview["counts"]["invalid"], 1, "{overview}");
    assert_eq!(overview["counts"]["valid"], 3, "{overview}");
    assert_eq!(overview["counts"]["unknown"], 2);
    assert!(overview["last_run"]["number"].as_u64().unwrap() >= 1);
    assert!(overview["next_due_at"].is_string());
}

#[test]
fn a_monitor_check_never_answers_from_the_cache_but_refreshes_it() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, FAST);
    let key = server.job_key("cache");
    let url = "https://pan.quark.cn/s/flip1cachex";
    // A job's check is the share's first: valid, and cached.
    let job = server.submit(&key, &json!({"items": [url]}));
    wait_until(WAIT, "the job", || {
        (server.job(&key, &job).json()["status"] == "done").then_some(())
    });
    // The monitor asks the drive again (second check: gone) instead of the cached verdict.
    let monitor = create_monitor(
        &server,
        &key,
        &json!({"name": "m", "urls": [url], "interval_s": 3600}),
    );
    let id = monitor["id"].as_str().unwrap();
    wait_until(WAIT, "the monitor's verdict", || {
        (links(&server, &key, id, "")[0]["state"] == "invalid").then_some(())
    });
    // Its verdict replaced the cached one: a new job is answered from the cache, dead.
    let answer = server.send(
        "POST",
        "/check",
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(&json!({"items": [url]}).to_string()),
    );
    let result = &answer.json()["results"][0];
    assert_eq!(result["state"], "invalid", "{result}");
    assert_eq!(result["cached"], true, "{result}");
}

#[test]
fn a_run_can_be_started_now_at_most_once_per_gap() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_MONITORS_MIN_INTERVAL_S", "1"),
            ("PANLINK_MONITORS_RUN_MIN_GAP_S", "60"),
        ],
    );
    let key = server.job_key("run");
    let monitor = create_monitor(
        &server,
        &key,
        &json!({"name": "m", "urls": ["https://pan.quark.cn/s/okrun1", "https://pan.quark.cn/s/okrun2"], "interval_s": 86400}),
    );
    let id = monitor["id"].as_str().unwrap();
    let overview = |server: &Server| {
        server
            .call(&key, "GET", &format!("/api/v1/monitors/{id}"), None)
            .json()["data"]
            .clone()
    };
    wait_until(WAIT, "the first run", || {
        (overview(&server)["last_run"]["number"] == 1).then_some(())
    });
    let asked = |mock: &Mock| mock.stats()["requests"]["quark"].as_u64().unwrap();
    let after_first = asked(&mock);
    let run = server.call(&key, "POST", &format!("/api/v1/monitors/{id}/run"), None);
    assert_eq!(run.status, 202, "{}", run.text());
    assert_eq!(run.json()["data"]["run"], 2);
    assert_eq!(run.json()["data"]["links"], 2);
    wait_until(WAIT, "the run started now", || {
        (overview(&server)["last_run"]["number"] == 2).then_some(())
    });
    // Both links were asked again (quark takes two requests a check).
    assert_eq!(asked(&mock), after_first * 2);
    let refused = server.call(&key, "POST", &format!("/api/v1/monitors/{id}/run"), None);
    refused.assert_error(429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
}

#[test]
fn monitors_and_their_links_are_bounded_per_key_and_checked_on_input() {
    let server = Server::start_with(&[
        ("PANLINK_MONITORS_FREE_MAX_LINKS_PER_KEY", "3"),
        ("PANLINK_MONITORS_MAX_PER_KEY", "2"),
        ("PANLINK_MONITORS_MIN_INTERVAL_S", "600"),
    ]);
    let key = server.create_key(r#"{"name": "free"}"#).0;
    let other = server.job_key("other");
    let urls = |n: usize| -> Vec<String> {
        (0..n)
            .map(|i| format!("https://pan.quark.cn/s/oklimit{i}"))
            .collect()
    };
    let over = server.call(
        &key,
        "POST",
        "/api/v1/monitors",
        Some(&json!({"name": "a", "urls": urls(4)})),
    );
    let error = over.assert_error(400, "limit_reached");
    assert!(error["msg"].as_str().unwrap().contains('3'), "{error}");
    create_monitor(&server, &key, &json!({"name": "a", "urls": urls(2)}));
    let second = create_monitor(&server, &key, &json!({"name": "b", "urls": urls(1)}));
    // Two links of the first and one of the second: no room for another.
    let id = second["id"].as_str().unwrap();
    let patch = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/monitors/{id}"),
        Some(&json!({"add_urls": ["https://pan.quark.cn/s/okmore"]})),
    );
    patch.assert_error(400, "limit_reached");
    server
        .call(
            &key,
            "POST",
            "/api/v1/monitors",
            Some(&json!({"name": "c"})),
        )
        .assert_error(400, "limit_reached");
    // Input rules.
    for (body, field) in [
        (json!({"name": "x", "interval_s": 599}), "interval_s"),
        (json!({"name": ""}), "name"),
        (
            json!({"name": "x", "webhook_ids": ["wh_000000000000"]}),
            "webhook_ids[0]",
        ),
        (
            json!({"name": "x", "webhook_ids": ["wh_000000000000", ""]}),
            "webhook_ids[0]",
        ),
        (json!({"name": "x", "webhook_ids": [""]}), "webhook_ids[0]"),
    ] {
        let answer = server.call(&other, "POST", "/api/v1/monitors", Some(&body));
        let error = answer.assert_error(400, "invalid_field");
        assert!(error["msg"].as_str().unwrap().contains(field), "{error}");
    }
    // Another key sees none of them.
    server
        .call(&other, "GET", &format!("/api/v1/monitors/{id}"), None)
        .assert_error(404, "not_found");
    assert_eq!(
        server.call(&other, "GET", "/api/v1/monitors", None).json()["data"]["items"],
        json!([])
    );
}

#[test]
fn a_monitor_is_edited_paused_resumed_and_deleted() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, FAST);
    let key = server.job_key("edit");
    let monitor = create_monitor(
        &server,
        &key,
        &json!({"name": "旧名", "text": "资源：https://pan.quark.cn/s/okedit1 提取码见下\nhttps://pan.baidu.com/s/1okedit2?pwd=abcd", "interval_s": 3600}),
    );
    assert_eq!(monitor["added"], 2, "{monitor}");
    let id = monitor["id"].as_str().unwrap();
    let patched = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/monitors/{id}"),
        Some(&json!({
            "name": "新名",
            "add_urls": ["https://pan.quark.cn/s/okedit3", "https://pan.quark.cn/s/okedit1"],
            "remove_urls": ["https://pan.baidu.com/s/1okedit2", "https://pan.quark.cn/s/nothere"],
            "paused": true,
            "interval_s": 7200,
        })),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let data = patched.json()["data"].clone();
    assert_eq!(
        (data["added"].clone(), data["duplicates"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(
        (data["removed"].clone(), data["not_found"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(data["name"], "新名");
    assert_eq!(data["paused"], true);
    assert_eq!(data["interval_s"], 7200);
    assert_eq!(data["links"], 2);
    let urls: Vec<Value> = links(&server, &key, id, "")
        .iter()
        .map(|l| l["url"].clone())
        .collect();
    assert_eq!(
        urls,
        [
            json!("https://pan.quark.cn/s/okedit1"),
            json!("https://pan.quark.cn/s/okedit3")
        ]
    );
    // Paused: no run; resumed: every link gets checked.
    server
        .call(&key, "POST", &format!("/api/v1/monitors/{id}/run"), None)
        .assert_error(409, "conflict");
    let resumed = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/monitors/{id}"),
        Some(&json!({"paused": false})),
    );
    assert_eq!(resumed.status, 200);
    wait_until(WAIT, "checks after resuming", || {
        links(&server, &key, id, "")
            .iter()
            .all(|l| l["state"] == "valid")
            .then_some(())
    });
    let deleted = server.call(&key, "DELETE", &format!("/api/v1/monitors/{id}"), None);
    assert_eq!(deleted.status, 200);
    server
        .call(&key, "GET", &format!("/api/v1/monitors/{id}"), None)
        .assert_error(404, "not_found");
    server
        .call(&key, "GET", &format!("/api/v1/monitors/{id}/links"), None)
        .assert_error(404, "not_found");
}

#[test]
fn checks_cut_short_by_kill_9_are_made_after_the_restart() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    // Each check takes 1.5 s at the mock: the server dies while they are in flight.
    let mock = Mock::start(1_500);
    let mut server = Server::with_mock_at(&mock, &data_dir, FAST);
    let key = server.job_key("crash");
    let urls: Vec<String> = (0..3)
        .map(|n| format!("https://pan.quark.cn/s/okcrash{n}"))
        .collect();
    let monitor = create_monitor(
        &server,
        &key,
        &json!({"name": "m", "urls": urls, "interval_s": 86400}),
    );
    let id = monitor["id"].as_str().unwrap().to_owned();
    wait_until(WAIT, "checks in flight", || {
        (mock.stats()["requests"]["quark"].as_u64().unwrap_or(0) >= 1).then_some(())
    });
    // /pool shows them as the background lane's.
    let pool = server.get("/pool/quark", &[]).json();
    assert!(
        pool["background_in_flight"].as_u64().unwrap() >= 1,
        "{pool}"
    );
    assert_eq!(pool["queued"], 0);
    server.kill9();
    let server = Server::with_mock_at(&mock, &data_dir, FAST);
    let checked = wait_until(WAIT, "every link checked after the restart", || {
        let all = links(&server, &key, &id, "");
        all.iter().all(|l| l["state"] == "valid").then_some(all)
    });
    // Due again a day on, at each link's own place in the interval.
    for link in &checked {
        let next = link["next_check_at"].as_str().unwrap();
        assert!(next > link["last_checked_at"].as_str().unwrap(), "{link}");
    }
}

#[test]
fn a_link_dead_event_committed_before_kill_9_is_delivered_after_the_restart_with_its_id() {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let mock = Mock::start(0);
    let mut server = Server::with_mock_at(&mock, &data_dir, FAST);
    // The receiver reads the delivery and never answers: the transition is committed, its
    // delivery is in the air.
    let receiver = Receiver::start(Mode::Silent);
    let key = server.job_key("outbox");
    let hook = server
        .call(
            &key,
            "POST",
            "/api/v1/webhooks",
            Some(&json!({"url": receiver.url("/o"), "events": ["link.dead"]})),
        )
        .json()["data"]["id"]
        .clone();
    let url = "https://pan.quark.cn/s/flip1outbox";
    create_monitor(
        &server,
        &key,
        &json!({"name": "m", "urls": [url], "interval_s": 1, "webhook_ids": [hook]}),
    );
    let first = wait_until(WAIT, "the link.dead attempt", || {
        receiver.of_event("link.dead").into_iter().next()
    });
    server.kill9();
    receiver.set(Mode::Status(200));
    let _server = Server::with_mock_at(&mock, &data_dir, FAST);
    let again = wait_until(WAIT, "link.dead after the restart", || {
        receiver.of_event("link.dead").into_iter().nth(1)
    });
    assert_eq!(
        again.header("x-panlink-delivery"),
        first.header("x-panlink-delivery")
    );
    assert_eq!(again.body, first.body);
    assert_eq!(again.json()["data"]["url"], url);
}
