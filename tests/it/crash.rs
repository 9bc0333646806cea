//! Crashes: `kill -9` at moments spread through a 20 000-link job with SSE subscribers, ten times
//! in a row, and right after link creations and security checks were acknowledged. Nothing a
//! client was told is done may be lost or done twice.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::harness::{Mock, Server, SseEvent, SseStream, result_ids};

pub const TOTAL: usize = 20_000;

/// 20 000 share URLs of four providers, with outcomes that do not depend on timing.
pub fn mixed_links() -> Vec<String> {
    (0..TOTAL)
        .map(|n| match n % 4 {
            0 => format!("https://pan.quark.cn/s/okCrash{n:05}"),
            1 => format!("https://pan.baidu.com/s/1goneCrash{n:05}"),
            2 => format!("https://cloud.189.cn/t/noneCrash{n:05}"),
            _ => format!("https://www.alipan.com/s/okCrash{n:05}"),
        })
        .collect()
}

/// An SSE client that reconnects with `Last-Event-ID` whenever the stream breaks, to whatever
/// address the server has now, until `done`. Returns every event it saw, in order.
pub fn resilient_subscriber(
    addr: Arc<Mutex<SocketAddr>>,
    key: String,
    job: String,
) -> std::thread::JoinHandle<Vec<SseEvent>> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(240);
        let path = format!("/jobs/{job}/events");
        let mut seen: Vec<SseEvent> = Vec::new();
        while Instant::now() < deadline {
            let last = seen
                .iter()
                .rev()
                .find_map(|e| e.id)
                .unwrap_or(0)
                .to_string();
            let target = *addr.lock();
            let Some(mut stream) =
                SseStream::try_open(target, &path, &key, &[("Last-Event-ID", &last)])
            else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            if stream.status != 200 {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            while let Some(event) = stream.next_event(Duration::from_secs(20)) {
                let done = event.event == "done";
                seen.push(event);
                if done {
                    return seen;
                }
            }
        }
        panic!("the subscriber did not see `done` within 240 s");
    })
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): ten kill -9 during a 20 000-link job"]
fn ten_kill_9s_during_a_20000_link_job_lose_and_repeat_nothing() {
    let mock = Mock::start(1);
    let env = [
        ("PANLINK_CHECKER_CONCURRENCY", "16"),
        ("PANLINK_CHECKER_RATE_PER_S", "100000"),
    ];
    let mut server = Server::with_mock(&mock, &env);
    let key = server.job_key("crash-ten");
    let job = server.submit(&key, &json!({ "items": mixed_links() }));
    let addr = Arc::new(Mutex::new(server.addr));
    let subscribers: Vec<_> = (0..2)
        .map(|_| resilient_subscriber(Arc::clone(&addr), key.clone(), job.clone()))
        .collect();
    // Kill at moments spread over the job: after 150 to 600 ms of work each time.
    let pauses_ms = [350, 600, 150, 450, 250, 550, 200, 500, 300, 400];
    for (round, pause) in pauses_ms.iter().enumerate() {
        std::thread::sleep(Duration::from_millis(*pause));
        server.kill9();
        server = server.restart();
        *addr.lock() = server.addr;
        let overview = server.job(&key, &job).json();
        let done = overview["totals"]["done"].as_u64().unwrap();
        eprintln!("kill {}: {done} of {TOTAL} done after restart", round + 1);
    }
    for subscriber in subscribers {
        let events = subscriber.join().expect("the subscriber thread");
        assert_eq!(
            result_ids(&events),
            (1..=TOTAL as u32).collect::<Vec<_>>(),
            "a subscriber that reconnected across ten crashes saw every id once, in order"
        );
        assert_eq!(events.last().unwrap().event, "done");
    }
    // A fresh reader gets the whole stream, one result per item.
    let all = server
        .events(&key, &job, &[])
        .until_done(Duration::from_secs(60));
    assert_eq!(result_ids(&all), (1..=TOTAL as u32).collect::<Vec<_>>());
    let mut per_item: BTreeMap<u64, u32> = BTreeMap::new();
    let mut states: BTreeMap<String, u64> = BTreeMap::new();
    for event in all.iter().filter(|e| e.event == "result") {
        let result = event.json();
        *per_item
            .entry(result["item_id"].as_u64().unwrap())
            .or_default() += 1;
        *states
            .entry(result["state"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(per_item.len(), TOTAL, "every item has a result");
    assert!(per_item.values().all(|n| *n == 1), "no item answered twice");
    let overview = server.job(&key, &job).json();
    assert_eq!(overview["status"], "done");
    let totals = &overview["totals"];
    assert_eq!(totals["done"], TOTAL);
    for state in ["valid", "invalid", "locked", "unknown"] {
        assert_eq!(
            totals[state].as_u64().unwrap(),
            states.get(state).copied().unwrap_or(0),
            "GET /jobs/{{id}} agrees with the stream on {state}"
        );
    }
    assert_eq!(totals["valid"], TOTAL / 2, "{overview}");
    assert_eq!(totals["invalid"], TOTAL / 2, "{overview}");
}

#[test]
fn acknowledged_links_and_checks_survive_kill_9_exactly() {
    let mut server = Server::start();
    let (key, _) = server.create_key(r#"{"name": "crash", "plan": "premium", "points": 1000, "rate_per_s": 100000, "burst": 100000}"#);
    let headers = [
        ("X-API-Key", key.as_str()),
        ("Content-Type", "application/json"),
    ];
    let mut made: Vec<(String, String)> = Vec::new();
    for n in 0..40 {
        let url = format!("https://example.com/acknowledged/{n}");
        let body = json!({ "url": url }).to_string();
        let response = server.send("POST", "/api/v1/links", &headers, Some(&body));
        assert_eq!(response.status, 200, "{}", response.text());
        made.push((
            response.json()["data"]["code"].as_str().unwrap().to_owned(),
            url,
        ));
    }
    let items: Vec<Value> = (0..200)
        .map(|n| json!({ "url": format!("https://example.com/batch/{n}") }))
        .collect();
    let batch = server.send(
        "POST",
        "/api/v1/links/batch",
        &headers,
        Some(&json!({ "items": items }).to_string()),
    );
    assert_eq!(batch.status, 200);
    for item in batch.json()["data"]["items"].as_array().unwrap() {
        made.push((
            item["data"]["code"].as_str().unwrap().to_owned(),
            item["data"]["url"].as_str().unwrap().to_owned(),
        ));
    }
    // Seven paid checks (IP literals: no DNS look-up), each acknowledged with its balance.
    let mut remaining = 1000;
    for n in 0..7 {
        let body = json!({ "url": format!("https://203.0.113.{n}/x") }).to_string();
        let response = server.send(
            "POST",
            "/api/v1/tools/security-check",
            &headers,
            Some(&body),
        );
        assert_eq!(response.status, 200, "{}", response.text());
        let data = &response.json()["data"];
        assert_eq!(data["points_remaining"], remaining - 10);
        remaining -= 10;
    }
    server.kill9();
    let server = server.restart();
    for (code, url) in &made {
        let restored = server.get(&format!("/api/v1/links/{code}"), &[("X-API-Key", &key)]);
        assert_eq!(
            restored.status, 200,
            "{code} was acknowledged before the crash"
        );
        assert_eq!(restored.json()["data"]["url"], url.as_str());
    }
    let me = server.get("/api/v1/me", &[("X-API-Key", &key)]).json();
    assert_eq!(
        me["data"]["points"], remaining,
        "points spent = the answers given, no more, no less"
    );
}
