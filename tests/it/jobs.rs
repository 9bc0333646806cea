//! The checker's job API through HTTP, against the real server and the mock upstream.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Mock, Server, SseEvent, result_ids, results};

const WAIT: Duration = Duration::from_secs(30);

/// `count` distinct share URLs `{prefix}{n:04}{suffix}`.
fn links(prefix: &str, count: usize, suffix: &str) -> Vec<String> {
    (0..count)
        .map(|n| format!("{prefix}{n:04}{suffix}"))
        .collect()
}

/// Every item has exactly one result and event ids are 1..=n without gaps.
fn assert_complete(events: &[SseEvent], total: usize) {
    let ids = result_ids(events);
    assert_eq!(ids, (1..=total as u32).collect::<Vec<_>>(), "event ids");
    let items: BTreeSet<u64> = results(events)
        .iter()
        .map(|r| r["item_id"].as_u64().unwrap())
        .collect();
    assert_eq!(items.len(), total, "one result per item");
    assert_eq!(events.last().unwrap().event, "done");
}

#[test]
fn a_mixed_job_streams_one_verdict_per_url_with_every_field() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, &[]);
    let key = server.job_key("mixed");
    let created = server.create_job(
        &key,
        &json!({
            "items": [
                {"url": "https://pan.quark.cn/s/okAAAA11", "meta": {"row": 1, "tags": ["a"]}},
                "https://pan.quark.cn/s/goneAA11",
                "https://pan.quark.cn/s/lockAA11?pwd=abcd",
                {"url": "https://pan.quark.cn/s/lockAA22", "passcode": "zzzz"},
                "https://pan.baidu.com/s/1emptyBB",
                "https://pan.baidu.com/s/1banBBBB",
                "https://example.com/not-a-drive",
                "https://pan.quark.cn/s/",
                "not a url",
                42,
                {"meta": 1}
            ],
            "text": "分享 https://pan.baidu.com/s/1lockCC1 提取码: abcd 和 https://pan.quark.cn/s/okexp7AA"
        }),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let body = created.json();
    let job = body["job_id"].as_str().unwrap().to_owned();
    assert_eq!(body["stream_url"], format!("/jobs/{job}/events"));
    assert_eq!(body["total"], 10);
    assert_eq!(body["providers"], json!({"quark": 5, "baidu": 3}));
    assert_eq!(body["unsupported"], 2);
    assert_eq!(
        body["rejected"],
        json!([{"index": 8, "reason": "not_a_url"}, {"index": 9, "reason": "not_a_url"}, {"index": 10, "reason": "missing_url"}])
    );

    let mut stream = server.events(&key, &job, &[]);
    assert_eq!(stream.status, 200);
    assert!(
        stream
            .header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert_eq!(stream.header("cache-control"), Some("no-cache"));
    let events = stream.until_done(WAIT);
    assert!(stream.retry_seen, "retry: is sent once");
    assert_complete(&events, 10);

    let by_url: BTreeMap<String, Value> = results(&events)
        .into_iter()
        .map(|r| (r["url"].as_str().unwrap().to_owned(), r))
        .collect();
    let expect = |url: &str, state: &str, reason: &str| {
        let r = &by_url[url];
        assert_eq!(
            (r["state"].as_str().unwrap(), r["reason"].as_str().unwrap()),
            (state, reason),
            "{url}: {r}"
        );
        assert_eq!(r["valid"], state == "valid", "{url}");
    };
    expect(
        "https://pan.quark.cn/s/okAAAA11",
        "valid",
        "all_checks_passed",
    );
    expect(
        "https://pan.quark.cn/s/goneAA11",
        "invalid",
        "share_cancelled",
    );
    expect(
        "https://pan.quark.cn/s/lockAA11?pwd=abcd",
        "valid",
        "all_checks_passed",
    );
    expect(
        "https://pan.quark.cn/s/lockAA22",
        "locked",
        "password_wrong",
    );
    expect("https://pan.baidu.com/s/1emptyBB", "invalid", "empty_share");
    expect(
        "https://pan.baidu.com/s/1banBBBB",
        "invalid",
        "share_violation",
    );
    expect(
        "https://example.com/not-a-drive",
        "unknown",
        "unsupported_provider",
    );
    expect("https://pan.quark.cn/s/", "unknown", "invalid_url");
    expect(
        "https://pan.baidu.com/s/1lockCC1",
        "valid",
        "all_checks_passed",
    );
    expect(
        "https://pan.quark.cn/s/okexp7AA",
        "valid",
        "all_checks_passed",
    );

    let ok = &by_url["https://pan.quark.cn/s/okAAAA11"];
    assert_eq!(ok["provider"], "quark");
    assert_eq!(ok["share_name"], "mock-okAAAA11");
    assert_eq!(ok["file_count"], 3);
    assert_eq!(ok["expiration_label"], "永久有效");
    assert_eq!(ok["provider_code"], "0");
    assert_eq!(ok["priority_used"], "normal");
    assert_eq!(ok["attempts"], 1);
    assert_eq!(ok["cached"], false);
    assert!(ok["elapsed_seconds"].as_f64().unwrap() >= 0.0);
    assert!(ok["checked_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        ok["meta"],
        json!({"row": 1, "tags": ["a"]}),
        "meta exactly as sent"
    );
    assert_eq!(
        by_url["https://pan.quark.cn/s/okexp7AA"]["expiration_label"],
        "剩余 7 天"
    );
    assert!(by_url["https://pan.quark.cn/s/okexp7AA"]["expires_at"].is_string());
    assert_eq!(
        by_url["https://example.com/not-a-drive"]["provider"],
        Value::Null
    );

    // The done event and GET /jobs/{id} agree with the stream.
    let done = events.last().unwrap().json();
    let overview = server.job(&key, &job).json();
    assert_eq!(done, overview);
    assert_eq!(overview["status"], "done");
    assert_eq!(
        overview["totals"],
        json!({"total": 10, "done": 10, "valid": 4, "invalid": 3, "locked": 1, "unknown": 2})
    );
    assert_eq!(overview["providers"]["quark"]["done"], 5);
    assert!(overview["finished_at"].is_string());
}

#[test]
fn job_creation_errors() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_JOBS_MAX_ITEMS", "3"),
            ("PANLINK_JOBS_MAX_BODY_BYTES", "2048"),
        ],
    );
    let key = server.job_key("errors");
    server
        .send(
            "POST",
            "/jobs",
            &[("Content-Type", "application/json")],
            Some("{}"),
        )
        .assert_error(401, "missing_api_key");
    server
        .create_job(&key, &json!({"items": []}))
        .assert_error(400, "invalid_field");
    server
        .create_job(&key, &json!({"items": ["nope"]}))
        .assert_error(400, "invalid_field");
    server
        .create_job(&key, &json!({"text": "没有链接"}))
        .assert_error(400, "invalid_field");
    let json = server
        .create_job(
            &key,
            &json!({"items": vec!["https://pan.quark.cn/s/okaaaa1"; 4]}),
        )
        .assert_error(400, "invalid_field");
    assert!(json["msg"].as_str().unwrap().contains("items"));
    server
        .create_job(&key, &json!({"items": "https://pan.quark.cn/s/okaaaa1"}))
        .assert_error(400, "invalid_field");
    server
        .create_job(&key, &json!({"urls": []}))
        .assert_error(400, "invalid_field");
    let big = "x".repeat(3000);
    server
        .create_job(&key, &json!({"items": [big]}))
        .assert_error(413, "payload_too_large");
    server
        .send(
            "POST",
            "/jobs",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some("{\"items\": ["),
        )
        .assert_error(400, "invalid_json");
}

#[test]
fn jobs_belong_to_their_key() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, &[]);
    let owner = server.job_key("owner");
    let other = server.job_key("other");
    let job = server.submit(
        &owner,
        &json!({"items": ["https://pan.quark.cn/s/okaaaa1"]}),
    );
    server.events(&owner, &job, &[]).until_done(WAIT);
    for (method, path) in [
        ("GET", format!("/jobs/{job}")),
        ("DELETE", format!("/jobs/{job}")),
        ("GET", format!("/jobs/{job}/events")),
    ] {
        server
            .send(method, &path, &[("X-API-Key", &other)], None)
            .assert_error(404, "not_found");
    }
    server
        .send(
            "POST",
            &format!("/jobs/{job}/urgent"),
            &[("X-API-Key", &other), ("Content-Type", "application/json")],
            Some(r#"{"urls": ["https://pan.quark.cn/s/okaaaa1"]}"#),
        )
        .assert_error(404, "not_found");
    server
        .get("/jobs/AAAAAAAAAAAAAAAA", &[("X-API-Key", &owner)])
        .assert_error(404, "not_found");
    server
        .get("/jobs/short", &[("X-API-Key", &owner)])
        .assert_error(404, "not_found");
}

#[test]
fn reconnecting_with_last_event_id_replays_the_rest() {
    let mock = Mock::start(20);
    let server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "1")]);
    let key = server.job_key("replay");
    let items = links("https://pan.quark.cn/s/ok", 12, "xx");
    let job = server.submit(&key, &json!({"items": items}));

    // Read a few events live, then drop the connection.
    let mut first = server.events(&key, &job, &[]);
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let event = first.next_event(WAIT).unwrap();
        seen.push(event.id.unwrap());
    }
    drop(first);
    // Resume in the middle: every later event exactly once, then done.
    let mut resumed = server.events(&key, &job, &[("Last-Event-ID", "4")]);
    let rest = resumed.until_done(WAIT);
    let ids: Vec<u32> = rest.iter().filter_map(|e| e.id).collect();
    assert_eq!(ids, (5..=12).collect::<Vec<_>>());

    // After the end: everything, from the query parameter too, then done.
    let all = server.events(&key, &job, &[]).until_done(WAIT);
    assert_complete(&all, 12);
    let path = format!("/jobs/{job}/events?last_event_id=10");
    let mut by_query = crate::harness::SseStream::open(server.addr, &path, &key, &[]);
    let tail: Vec<u32> = by_query
        .until_done(WAIT)
        .iter()
        .filter_map(|e| e.id)
        .collect();
    assert_eq!(tail, vec![11, 12]);
    let mut past_end = server.events(&key, &job, &[("Last-Event-ID", "12")]);
    let only_done = past_end.until_done(WAIT);
    assert_eq!(only_done.len(), 1);
    server
        .get(
            &format!("/jobs/{job}/events"),
            &[("X-API-Key", &key), ("Last-Event-ID", "x")],
        )
        .assert_error(400, "invalid_parameter");
}

#[test]
fn several_subscribers_all_get_every_event() {
    let mock = Mock::start(10);
    let server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "2")]);
    let key = server.job_key("fanout");
    let items = links("https://pan.baidu.com/s/1ok", 30, "x");
    let job = server.submit(&key, &json!({"items": items}));
    let streams: Vec<_> = (0..5).map(|_| server.events(&key, &job, &[])).collect();
    let handles: Vec<_> = streams
        .into_iter()
        .map(|mut s| std::thread::spawn(move || s.until_done(WAIT)))
        .collect();
    for handle in handles {
        assert_complete(&handle.join().unwrap(), 30);
    }
}

#[test]
fn cancel_answers_pending_items_as_cancelled_and_ends_the_stream() {
    let mock = Mock::start(50);
    let server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "1")]);
    let key = server.job_key("cancel");
    let items = links("https://pan.quark.cn/s/ok", 40, "cc");
    let job = server.submit(&key, &json!({"items": items}));
    let mut stream = server.events(&key, &job, &[]);
    stream.next_event(WAIT).unwrap();
    let cancelled = server.send(
        "DELETE",
        &format!("/jobs/{job}"),
        &[("X-API-Key", &key)],
        None,
    );
    assert_eq!(cancelled.status, 200, "{}", cancelled.text());
    assert_eq!(cancelled.json()["status"], "cancelled");
    let mut events = vec![];
    events.extend(stream.until_done(WAIT));
    let all = server.events(&key, &job, &[]).until_done(WAIT);
    assert_complete(&all, 40);
    let reasons: Vec<String> = results(&all)
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    let cancelled_count = reasons.iter().filter(|r| *r == "cancelled").count();
    assert!(cancelled_count >= 30, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r == "cancelled" || r == "all_checks_passed")
    );
    let overview = server.job(&key, &job).json();
    assert_eq!(overview["status"], "cancelled");
    assert_eq!(overview["totals"]["done"], 40);
    assert_eq!(all.last().unwrap().json()["status"], "cancelled");
}

#[test]
fn urgent_urls_jump_the_backlog() {
    let mock = Mock::start(20);
    let server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "1")]);
    let key = server.job_key("urgent");
    let items = links("https://pan.quark.cn/s/ok", 60, "uu");
    let job = server.submit(&key, &json!({"items": items}));
    let mut stream = server.events(&key, &job, &[]);
    stream.next_event(WAIT).unwrap();
    let hurry = server.send(
        "POST",
        &format!("/jobs/{job}/urgent"),
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        // Same shares written differently: host case and a pwd do not matter.
        Some(r#"{"urls": ["https://pan.quark.cn/s/ok0059uu", "https://PAN.QUARK.CN/s/ok0058uu?pwd=x1", "https://pan.quark.cn/s/ok0000uu", "https://pan.quark.cn/s/notInJob1"]}"#),
    );
    assert_eq!(hurry.status, 200, "{}", hurry.text());
    let counts = hurry.json();
    assert_eq!(counts["promoted"], 2, "{counts}");
    assert_eq!(counts["not_in_job"], 1, "{counts}");
    assert_eq!(
        counts["already_done"].as_u64().unwrap() + counts["in_flight"].as_u64().unwrap(),
        1,
        "{counts}"
    );
    let rest = stream.until_done(WAIT);
    let order: Vec<String> = results(&rest)
        .iter()
        .map(|r| r["url"].as_str().unwrap().to_owned())
        .collect();
    let position = |url: &str| order.iter().position(|u| u == url).unwrap();
    assert!(position("https://pan.quark.cn/s/ok0059uu") < 4, "{order:?}");
    assert!(position("https://pan.quark.cn/s/ok0058uu") < 4, "{order:?}");
    let urgent = results(&rest)
        .into_iter()
        .find(|r| r["url"] == "https://pan.quark.cn/s/ok0059uu")
        .unwrap();
    assert_eq!(urgent["priority_used"], "urgent");
}

#[test]
fn a_small_job_is_not_stuck_behind_a_big_one() {
    let mock = Mock::start(10);
    let server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "1")]);
    let big_key = server.job_key("big");
    let small_key = server.job_key("small");
    let items = links("https://pan.quark.cn/s/ok", 200, "bb");
    let big = server.submit(&big_key, &json!({"items": items}));
    let small_items = links("https://pan.quark.cn/s/ok", 3, "ss");
    let small = server.submit(&small_key, &json!({"items": small_items}));
    server.events(&small_key, &small, &[]).until_done(WAIT);
    let big_progress = server
        .get(&format!("/jobs/{big}"), &[("X-API-Key", &big_key)])
        .json();
    let done = big_progress["totals"]["done"].as_u64().unwrap();
    assert!(
        done < 50,
        "the small job waited for {done} checks of the big one"
    );
}

#[test]
fn transient_outcomes_are_retried_then_reported_unknown() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_MAX_ATTEMPTS", "3"),
            ("PANLINK_CHECKER_RETRY_BACKOFF_MS", "10"),
        ],
    );
    let key = server.job_key("retry");
    // limit… ids are refused twice, then answer: the third attempt succeeds.
    let job = server.submit(
        &key,
        &json!({"items": ["https://pan.quark.cn/s/limitAA1", "https://pan.quark.cn/s/errAAAA1"]}),
    );
    let events = server.events(&key, &job, &[]).until_done(WAIT);
    let by_url: BTreeMap<String, Value> = results(&events)
        .into_iter()
        .map(|r| (r["url"].as_str().unwrap().to_owned(), r))
        .collect();
    let limited = &by_url["https://pan.quark.cn/s/limitAA1"];
    assert_eq!(
        (limited["state"].as_str(), limited["attempts"].as_u64()),
        (Some("valid"), Some(3)),
        "{limited}"
    );
    let failing = &by_url["https://pan.quark.cn/s/errAAAA1"];
    assert_eq!(failing["state"], "unknown");
    assert_eq!(failing["reason"], "upstream_error");
    assert_eq!(failing["attempts"], 3);
    let pool = server.get("/pool/quark", &[]).json();
    assert_eq!(pool["retries_total"], 4, "{pool}");

    // With two attempts the limited link stays unknown: never reported dead.
    let mock2 = Mock::start(0);
    let server2 = Server::with_mock(
        &mock2,
        &[
            ("PANLINK_CHECKER_MAX_ATTEMPTS", "2"),
            ("PANLINK_CHECKER_RETRY_BACKOFF_MS", "10"),
        ],
    );
    let key2 = server2.job_key("retry2");
    let job2 = server2.submit(
        &key2,
        &json!({"items": ["https://pan.baidu.com/s/1limitB1"]}),
    );
    let events = server2.events(&key2, &job2, &[]).until_done(WAIT);
    let result = &results(&events)[0];
    assert_eq!(
        (result["state"].as_str(), result["reason"].as_str()),
        (Some("unknown"), Some("rate_limited"))
    );
    assert_eq!(result["attempts"], 2);
}

#[test]
fn pool_and_health_show_counts_and_never_a_url() {
    let mock = Mock::start(0);
    let server = Server::with_mock(&mock, &[]);
    let key = server.job_key("pool");
    let job = server.submit(&key, &json!({"items": ["https://pan.quark.cn/s/okSECRET1", "https://pan.baidu.com/s/1goneSECRET"]}));
    server.events(&key, &job, &[]).until_done(WAIT);
    for path in ["/pool", "/health"] {
        let response = server.get(path, &[]);
        assert_eq!(response.status, 200);
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
        let text = response.text();
        assert!(
            !text.contains("SECRET") && !text.contains(&job),
            "{path} leaks user data: {text}"
        );
        let json = response.json();
        assert_eq!(json["providers"]["quark"]["name"], "夸克网盘");
        assert_eq!(json["providers"]["quark"]["checked_total"], 1);
        assert_eq!(json["providers"]["quark"]["states"]["valid"], 1);
        assert_eq!(json["providers"]["baidu"]["states"]["invalid"], 1);
        assert!(json["providers"]["quark"]["concurrency"].as_u64().unwrap() > 0);
        assert_eq!(json["totals"]["checked_total"], 2);
        assert_eq!(
            json["providers"].as_object().unwrap().len(),
            panlink::drive::Provider::ALL.len()
        );
    }
    assert_eq!(server.get("/health", &[]).json()["status"], "ok");
    let one = server.get("/pool/baidu", &[]).json();
    assert_eq!(one["name"], "百度网盘");
    server
        .get("/pool/dropbox", &[])
        .assert_error(404, "not_found");
}

#[test]
fn a_job_survives_kill_9_and_completes_with_every_item_exactly_once() {
    let mock = Mock::start(15);
    let mut server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "2")]);
    let key = server.job_key("crash");
    let total = 60;
    let items = links("https://pan.quark.cn/s/ok", total, "kk");
    let job = server.submit(&key, &json!({"items": items}));
    let mut stream = server.events(&key, &job, &[]);
    let mut last = 0;
    while last < 10 {
        last = stream.next_event(WAIT).unwrap().id.unwrap();
    }
    drop(stream);
    server.kill9();
    let before = mock.stats()["requests"]["quark"].as_u64().unwrap();
    assert!(before >= 20, "{before}");

    let server = server.restart();
    let rest = server
        .events(&key, &job, &[("Last-Event-ID", &last.to_string())])
        .until_done(WAIT);
    let ids: Vec<u32> = rest.iter().filter_map(|e| e.id).collect();
    assert_eq!(
        ids,
        ((last + 1)..=total as u32).collect::<Vec<_>>(),
        "ids continue without gaps"
    );
    let all = server.events(&key, &job, &[]).until_done(WAIT);
    assert_complete(&all, total);
    let overview = server.job(&key, &job).json();
    assert_eq!(overview["status"], "done");
    assert_eq!(overview["totals"]["done"], total);
    assert_eq!(overview["totals"]["valid"], total);
    // Recorded results were not checked again: after the restart, two requests per check of
    // exactly the items that had no result (the restart logs how many had one).
    let log = server.log();
    let resumed = log
        .lines()
        .find(|line| line.contains("resuming job"))
        .unwrap_or_else(|| panic!("no resume in the log: {log}"));
    let recorded: u64 = resumed
        .split("done=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no done= in {resumed}"));
    assert!(recorded >= u64::from(last), "{resumed}");
    let after = mock.stats()["requests"]["quark"].as_u64().unwrap() - before;
    assert_eq!(
        after,
        2 * (total as u64 - recorded),
        "requests after the restart, with {recorded} of {total} recorded before the kill"
    );
}

#[test]
fn a_cold_lane_opens_one_connection_per_host_not_one_per_concurrent_check() {
    // 32 checks at a time on two providers with 50 ms answers and no rate spacing: without the
    // warm-up the first 32 of each start together and each opens a TLS connection (the client
    // learns the host speaks HTTP/2 only from the handshake): 65 here. With it, one check opens
    // the connection the rest share.
    let mock = Mock::start(50);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_CONCURRENCY", "32"),
            ("PANLINK_CHECKER_RATE_PER_S", "1000000"),
        ],
    );
    let key = server.job_key("warm");
    let items: Vec<String> = (0..128)
        .map(|n| {
            if n % 2 == 0 {
                format!("https://pan.quark.cn/s/okWARM{n:04}")
            } else {
                format!("https://www.alipan.com/s/okWARM{n:04}")
            }
        })
        .collect();
    let job = server.submit(&key, &json!({ "items": items }));
    let events = server.events(&key, &job, &[]).until_done(WAIT);
    let results = results(&events);
    assert_eq!(results.len(), 128);
    assert!(results.iter().all(|r| r["state"] == "valid"), "{results:?}");
    let stats = mock.stats();
    // quark: drive-pc.quark.cn; aliyun: its API host; and the connection of this stats request.
    assert_eq!(stats["tls_connections"], 2 + 1, "{stats}");
}

#[test]
fn the_same_share_is_checked_once_across_jobs_and_unknown_is_never_reused() {
    let mock = Mock::start(200);
    let server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "4")]);
    let (a, b, c) = (
        server.job_key("a"),
        server.job_key("b"),
        server.job_key("c"),
    );
    let url = "https://pan.quark.cn/s/okDEDUP1";
    let job_a = server.submit(&a, &json!({"items": [url]}));
    let job_b = server.submit(&b, &json!({"items": [url]}));
    let first = results(&server.events(&a, &job_a, &[]).until_done(WAIT)).remove(0);
    let second = results(&server.events(&b, &job_b, &[]).until_done(WAIT)).remove(0);
    assert_eq!(first["state"], "valid");
    assert_eq!(second["state"], "valid");
    assert_eq!(second["share_name"], "mock-okDEDUP1");
    let cached: Vec<bool> = [&first, &second]
        .iter()
        .map(|r| r["cached"].as_bool().unwrap())
        .collect();
    assert_eq!(
        cached.iter().filter(|c| **c).count(),
        1,
        "one asked, one shared: {cached:?}"
    );
    // One check: token + detail.
    assert_eq!(mock.stats()["requests"]["quark"], 2);

    // Later, a recent verdict is reused.
    let job_c = server.submit(&c, &json!({"items": [url]}));
    let third = results(&server.events(&c, &job_c, &[]).until_done(WAIT)).remove(0);
    assert_eq!(third["cached"], true);
    assert_eq!(third["state"], "valid");
    assert_eq!(mock.stats()["requests"]["quark"], 2);

    // Unknown verdicts are asked again every time.
    for key in [&a, &b] {
        let job = server
            .create_job(key, &json!({"items": ["https://pan.quark.cn/s/errXXXX1"]}))
            .json()["job_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let result = results(&server.events(key, &job, &[]).until_done(WAIT)).remove(0);
        assert_eq!(result["cached"], false);
        assert_eq!(result["attempts"], 3, "the default checker.max_attempts");
    }
    // Two jobs × three attempts, each a token request that fails with HTTP 500.
    assert_eq!(mock.stats()["requests"]["quark"], 2 + 2 * 3);
}

#[test]
fn shutdown_ends_sse_streams_cleanly_and_they_resume_after_restart() {
    let mock = Mock::start(40);
    let mut server = Server::with_mock(&mock, &[("PANLINK_CHECKER_CONCURRENCY", "1")]);
    let key = server.job_key("shutdown");
    let items = links("https://pan.baidu.com/s/1ok", 40, "zz");
    let job = server.submit(&key, &json!({"items": items}));
    let mut stream = server.events(&key, &job, &[]);
    let mut last = 0;
    while last < 3 {
        last = stream.next_event(WAIT).unwrap().id.unwrap();
    }
    server.sigterm();
    // The stream ends (no `done`: the job is not finished) instead of holding shutdown up, with
    // a `shutdown` event naming where to resume.
    let mut said = None;
    while let Some(event) = stream.next_event(Duration::from_secs(15)) {
        match event.event.as_str() {
            "result" => last = event.id.unwrap(),
            "shutdown" => said = Some(event.json()),
            other => panic!("unexpected {other} event"),
        }
    }
    let said = said.expect("a shutdown event");
    assert_eq!(said["last_event_id"], last, "{said}");
    assert_eq!(said["retry_ms"], 3000, "{said}");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits");
    assert!(status.success(), "{status:?}");

    let server = server.restart();
    let rest = server
        .events(&key, &job, &[("Last-Event-ID", &last.to_string())])
        .until_done(WAIT);
    let ids: Vec<u32> = rest.iter().filter_map(|e| e.id).collect();
    assert_eq!(ids, ((last + 1)..=40).collect::<Vec<_>>());
    assert_complete(&server.events(&key, &job, &[]).until_done(WAIT), 40);
}

#[test]
fn a_key_over_its_open_jobs_limit_gets_429() {
    // One check at a time, two requests of 150 ms each: the first job stays open about 1 s.
    let mock = Mock::start(150);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_JOBS_MAX_OPEN_JOBS_PER_KEY", "1"),
            ("PANLINK_CHECKER_CONCURRENCY", "1"),
        ],
    );
    let key = server.job_key("busy");
    let items = links("https://pan.quark.cn/s/ok", 3, "oo");
    let first = server.create_job(&key, &json!({"items": items}));
    assert_eq!(first.status, 201);
    let refused = server.create_job(&key, &json!({"items": ["https://pan.quark.cn/s/ok9999oo"]}));
    refused.assert_error(429, "too_many_open_jobs");
    assert!(refused.header("retry-after").is_some());
    let other = server.job_key("other");
    assert_eq!(
        server
            .create_job(
                &other,
                &json!({"items": ["https://pan.quark.cn/s/ok9999oo"]})
            )
            .status,
        201
    );
    // Once the first job ends, the key may submit again.
    let job = first.json()["job_id"].as_str().unwrap().to_owned();
    server.events(&key, &job, &[]).until_done(WAIT);
    assert_eq!(
        server
            .create_job(&key, &json!({"items": ["https://pan.quark.cn/s/ok9998oo"]}))
            .status,
        201
    );
}

#[test]
fn a_failing_provider_opens_its_circuit_and_is_not_hammered() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_BREAKER_FAILURES", "3"),
            ("PANLINK_CHECKER_BREAKER_COOLDOWN_MS", "60000"),
            ("PANLINK_CHECKER_CONCURRENCY", "1"),
            ("PANLINK_CHECKER_MAX_ATTEMPTS", "1"),
        ],
    );
    let key = server.job_key("breaker");
    let items = links("https://pan.quark.cn/s/err", 8, "bk");
    let job = server.submit(&key, &json!({"items": items}));
    let mut open = false;
    for _ in 0..100 {
        if server.get("/pool/quark", &[]).json()["circuit"] == "open" {
            open = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(open, "the circuit did not open");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        mock.stats()["requests"]["quark"],
        3,
        "no request while the circuit is open"
    );
    let overview = server.job(&key, &job).json();
    assert_eq!(overview["totals"]["done"], 3);
    assert_eq!(
        overview["providers"]["quark"]["pending"], 5,
        "pending links wait, they are not failed"
    );
    // Other providers are not affected.
    assert_eq!(server.get("/pool/baidu", &[]).json()["circuit"], "closed");
    server.send(
        "DELETE",
        &format!("/jobs/{job}"),
        &[("X-API-Key", &key)],
        None,
    );
    let events = server.events(&key, &job, &[]).until_done(WAIT);
    assert_complete(&events, 8);
}

#[test]
fn rate_limit_answers_lower_the_adaptive_concurrency() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_CONCURRENCY", "8"),
            ("PANLINK_CHECKER_MAX_ATTEMPTS", "1"),
        ],
    );
    let key = server.job_key("aimd");
    assert_eq!(server.get("/pool/quark", &[]).json()["concurrency"], 8);
    let items = links("https://pan.quark.cn/s/limit", 6, "ad");
    let job = server.submit(&key, &json!({"items": items}));
    let events = server.events(&key, &job, &[]).until_done(WAIT);
    assert!(
        results(&events)
            .iter()
            .all(|r| r["reason"] == "rate_limited" && r["state"] == "unknown")
    );
    let pool = server.get("/pool/quark", &[]).json();
    let limit = pool["concurrency"].as_u64().unwrap();
    assert!((1..8).contains(&limit), "{pool}");
    assert_eq!(pool["max_concurrency"], 8);
}

#[test]
fn finished_jobs_are_purged_after_the_retention() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_JOBS_RETENTION_S", "1"),
            ("PANLINK_JOBS_PURGE_INTERVAL_MS", "200"),
        ],
    );
    let key = server.job_key("retention");
    let job = server.submit(
        &key,
        &json!({"items": ["https://pan.quark.cn/s/okRETAIN1"]}),
    );
    server.events(&key, &job, &[]).until_done(WAIT);
    assert_eq!(server.job(&key, &job).status, 200);
    let mut gone = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(100));
        if server.job(&key, &job).status == 404 {
            gone = true;
            break;
        }
    }
    assert!(gone, "the finished job was not purged");
    server
        .get(&format!("/jobs/{job}/events"), &[("X-API-Key", &key)])
        .assert_error(404, "not_found");
}

#[test]
fn the_retry_budget_bounds_retries_during_an_outage() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_MAX_ATTEMPTS", "3"),
            ("PANLINK_CHECKER_RETRY_BACKOFF_MS", "1"),
            ("PANLINK_CHECKER_RETRY_BUDGET_RATIO", "0"),
            ("PANLINK_CHECKER_BREAKER_FAILURES", "1000"),
        ],
    );
    let key = server.job_key("budget");
    let items = links("https://pan.quark.cn/s/err", 30, "rb");
    let job = server.submit(&key, &json!({"items": items}));
    let events = server.events(&key, &job, &[]).until_done(WAIT);
    assert!(
        results(&events)
            .iter()
            .all(|r| r["state"] == "unknown" && r["reason"] == "upstream_error")
    );
    // Without the budget there would be 60 retries (30 links × 2); the allowance is 10.
    let pool = server.get("/pool/quark", &[]).json();
    assert_eq!(pool["retries_total"], 10, "{pool}");
    assert_eq!(mock.stats()["requests"]["quark"], 30 + 10);
}

#[test]
#[ignore = "heavy tier (scripts/test.sh): a 10 000-event job read late"]
fn a_subscriber_that_falls_behind_catches_up_from_storage() {
    let mock = Mock::start(0);
    let server = Server::with_mock(
        &mock,
        &[
            ("PANLINK_CHECKER_CONCURRENCY", "64"),
            ("PANLINK_CHECKER_RATE_PER_S", "1000000"),
            // This reader pauses for the whole job; the write-stall watchdog (which would drop
            // it, see hostile.rs) is out of the way so the catch-up from storage is what runs.
            ("PANLINK_HTTP_WRITE_STALL_TIMEOUT_MS", "600000"),
            // Its long links take more than the default map.
            ("PANLINK_STORAGE_MAP_SIZE_MB", "1024"),
        ],
    );
    let key = server.job_key("slow-reader");
    let total = 10_000;
    // Long links make events of about 2 KB, so the job is far more than the kernel holds for a
    // reader that stops (up to the 4 MiB send buffer on loopback) plus the live buffer.
    let padding = format!("?from={}", "x".repeat(1_900));
    let items = links("https://pan.quark.cn/s/ok", total, &format!("lg{padding}"));
    let job = server.submit(&key, &json!({"items": items}));
    let mut stream = server.events(&key, &job, &[]);
    let mut events = vec![stream.next_event(WAIT).unwrap()];
    // Stop reading until the job is over: far more than the socket buffers and the live buffer.
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        let status = server.job(&key, &job).json()["status"].clone();
        if status == "done" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not finish"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    events.extend(stream.until_done(Duration::from_secs(120)));
    assert_complete(&events, total);
    let lagged = server.metric("panlink_sse_lagged_total");
    assert!(
        lagged >= 1.0,
        "the slow subscriber never fell behind the live buffer; the test proves nothing"
    );
}

#[test]
fn jobs_stored_under_the_old_owner_form_stay_readable_by_their_key() {
    const SECRET: &str = "sk_nVYI11TAsaOcDyJWqE5XFsNfGDKpyNNi";
    const DONE: &str = "vJHzpcKQ4nx1a9WJ";
    const RUNNING: &str = "FEL4L9Xv6vvtJRVP";
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jobs-owned-by-secret-hash/lmdb/data.mdb");
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    std::fs::create_dir_all(data_dir.join("lmdb")).unwrap();
    std::fs::copy(&fixture, data_dir.join("lmdb/data.mdb")).unwrap();
    let mock = Mock::start(0);
    let server = Server::with_mock_at(&mock, &data_dir, &[]);
    assert!(
        server.log().contains("job owners rewritten"),
        "{}",
        server.log()
    );
    let done = server.job(SECRET, DONE);
    assert_eq!(done.status, 200, "{}", done.text());
    assert_eq!(done.json()["status"], "done");
    // The job that was running resumes under its key and finishes.
    let events = server
        .events(SECRET, RUNNING, &[])
        .until_done(Duration::from_secs(60));
    assert_eq!(result_ids(&events), vec![1, 2]);
    // Another key still sees neither.
    let other = server.job_key("other");
    server.job(&other, DONE).assert_error(404, "not_found");
    server.job(&other, RUNNING).assert_error(404, "not_found");
    // The key's open-job count works under the new form: a new job of its own is accepted.
    let created = server.create_job(SECRET, &json!({"items": ["https://pan.quark.cn/s/okNEW1"]}));
    assert_eq!(created.status, 201, "{}", created.text());
    // The rewrite runs once: a restart finds nothing to do.
    let server = server.restart();
    assert_eq!(server.job(SECRET, DONE).status, 200);
    assert_eq!(
        server.log().matches("job owners rewritten").count(),
        1,
        "{}",
        server.log()
    );
}

#[test]
fn an_unreachable_provider_is_named_as_such_and_the_override_is_logged() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let upstream = format!("127.0.0.1:{port}");
    let server = Server::start_with(&[
        ("PANLINK_CHECKER_UPSTREAM_OVERRIDE", &upstream),
        ("PANLINK_CHECKER_MAX_ATTEMPTS", "1"),
    ]);
    let key = server.job_key("unreachable");
    let job = server.submit(&key, &json!({"items": ["https://pan.quark.cn/s/abcd1234"]}));
    let events = server.events(&key, &job, &[]).until_done(WAIT);
    let result = &results(&events)[0];
    assert_eq!(
        (result["state"].as_str(), result["reason"].as_str()),
        (Some("unknown"), Some("upstream_unreachable")),
        "{result}"
    );
    let log = server.log();
    assert!(
        log.contains("checker.upstream_override is set") && log.contains(&upstream),
        "{log}"
    );
}
