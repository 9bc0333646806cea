//! Short links whose target is a share: watched in the background, a dead share answers 410 (or
//! the fallback), it comes back by itself, webhooks hear of both, and `unknown` never stops a
//! redirect.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Mock, Server, wait_until};
use crate::receiver::{Mode, Receiver};

const WAIT: Duration = Duration::from_secs(40);

const WATCH_FAST: &[(&str, &str)] = &[
    ("PANLINK_LINKS_TARGET_CHECK_INTERVAL_S", "1"),
    ("PANLINK_WEBHOOKS_ALLOW_PRIVATE", "true"),
    ("PANLINK_WEBHOOKS_ALLOW_HTTP", "true"),
];

fn create(server: &Server, key: &str, body: &Value) -> String {
    let answer = server.call(key, "POST", "/api/v1/links", Some(body));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"]["code"].as_str().unwrap().to_owned()
}

fn target(server: &Server, key: &str, code: &str) -> Value {
    server
        .call(key, "GET", &format!("/api/v1/links/{code}"), None)
        .json()["data"]["target"]
        .clone()
}

fn wait_state(server: &Server, key: &str, code: &str, state: &str) -> Value {
    wait_until(WAIT, &format!("{code} target {state}"), || {
        let t = target(server, key, code);
        (t["state"] == state).then_some(t)
    })
}

#[test]
fn a_dead_share_stops_the_redirect_and_a_revived_one_resumes_it() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, WATCH_FAST);
    let receiver = Receiver::start(Mode::Status(200));
    let key = server.job_key("targets");
    let hook = server.call(
        &key,
        "POST",
        "/api/v1/webhooks",
        Some(
            &json!({"url": receiver.url("/t"), "events": ["shortlink.target_dead", "shortlink.target_revived"]}),
        ),
    );
    assert_eq!(hook.status, 201);
    let dying = "https://pan.quark.cn/s/flip1shortdie";
    let code = create(&server, &key, &json!({"url": dying, "title": "资源合集"}));
    let valid = wait_state(&server, &key, &code, "valid");
    assert_eq!(valid["provider"], "quark");
    assert!(
        valid["checked_at"].is_string() && valid["share_name"].is_string(),
        "{valid}"
    );
    let answer = server.get(&format!("/{code}"), &[]);
    assert_eq!(answer.status, 302);
    assert_eq!(answer.header("location"), Some(dying));

    // The share dies: a Chinese page with the title, the drive and since when.
    wait_state(&server, &key, &code, "invalid");
    let page = server.get(&format!("/{code}"), &[]);
    assert_eq!(page.status, 410);
    let html = page.text();
    assert!(
        html.contains("该网盘分享已失效") && html.contains("资源合集") && html.contains("夸克网盘"),
        "{html}"
    );
    assert!(html.contains("北京时间"), "{html}");
    let dead = wait_until(WAIT, "shortlink.target_dead", || {
        receiver
            .of_event("shortlink.target_dead")
            .into_iter()
            .next()
    });
    assert_eq!(dead.json()["data"]["code"], code.as_str());
    assert_eq!(dead.json()["data"]["url"], dying);

    // With a fallback, visitors go there instead.
    let fallback = "https://example.com/mirror";
    let with_fallback = create(
        &server,
        &key,
        &json!({"url": "https://pan.quark.cn/s/flip1shortfb", "fallback_url": fallback}),
    );
    wait_state(&server, &key, &with_fallback, "invalid");
    let answer = server.get(&format!("/{with_fallback}"), &[]);
    assert_eq!(answer.status, 302);
    assert_eq!(answer.header("location"), Some(fallback));

    // A share that comes back: dead first, then the redirect resumes.
    let returning = create(
        &server,
        &key,
        &json!({"url": "https://pan.baidu.com/s/1back1shortrev"}),
    );
    wait_state(&server, &key, &returning, "invalid");
    assert_eq!(server.get(&format!("/{returning}"), &[]).status, 410);
    wait_state(&server, &key, &returning, "valid");
    assert_eq!(server.get(&format!("/{returning}"), &[]).status, 302);
    let revived = wait_until(WAIT, "shortlink.target_revived", || {
        receiver
            .of_event("shortlink.target_revived")
            .into_iter()
            .next()
    });
    assert_eq!(revived.json()["data"]["code"], returning.as_str());
    // The links' hidden monitor is nobody's business in the monitors API.
    let monitors = server.call(&key, "GET", "/api/v1/monitors", None).json();
    assert_eq!(monitors["data"]["items"], json!([]));
}

#[test]
fn unknown_answers_never_stop_a_redirect_and_unwatched_targets_are_not_checked() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, WATCH_FAST);
    let key = server.job_key("unknown");
    let broken = create(
        &server,
        &key,
        &json!({"url": "https://pan.xunlei.com/s/errshortx"}),
    );
    let junk = create(
        &server,
        &key,
        &json!({"url": "https://pan.quark.cn/s/junkshorty"}),
    );
    for code in [&broken, &junk] {
        wait_state(&server, &key, code, "unknown");
        assert_eq!(server.get(&format!("/{code}"), &[]).status, 302);
    }
    // Opted out, or no share at all: no target, and the drive is never asked.
    let before = mock.stats()["requests"]["pan123"].as_u64().unwrap_or(0);
    let quiet = create(
        &server,
        &key,
        &json!({"url": "https://www.123684.com/s/gonequiet", "watch_target": false}),
    );
    let plain = create(&server, &key, &json!({"url": "https://example.com/page"}));
    // Long enough for two checks at the 1 s interval, had they been watched.
    let watched = create(
        &server,
        &key,
        &json!({"url": "https://pan.quark.cn/s/okwatched"}),
    );
    wait_state(&server, &key, &watched, "valid");
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        mock.stats()["requests"]["pan123"].as_u64().unwrap_or(0),
        before
    );
    for code in [&quiet, &plain] {
        assert_eq!(target(&server, &key, code), Value::Null);
        assert_eq!(server.get(&format!("/{code}"), &[]).status, 302);
    }
    let restored = server
        .call(&key, "GET", &format!("/api/v1/links/{quiet}"), None)
        .json();
    assert_eq!(restored["data"]["watch_target"], false);
    // Pointing a watched link elsewhere forgets what was known of the old target.
    let patched = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/links/{watched}"),
        Some(&json!({"url": "https://example.com/elsewhere"})),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(patched.json()["data"]["target"], Value::Null);
    // A bad fallback names the field.
    let bad = server.call(
        &key,
        "POST",
        "/api/v1/links",
        Some(&json!({"url": "https://pan.quark.cn/s/okx", "fallback_url": "not a url"})),
    );
    let error = bad.assert_error(400, "invalid_field");
    assert!(
        error["msg"].as_str().unwrap().contains("fallback_url"),
        "{error}"
    );
}
