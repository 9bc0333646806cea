//! Short links through HTTP: create, restore, redirect, password, expiry, clicks, batch, groups,
//! edits, statistics, QR codes, and durability across restarts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Response, Server};

const BROWSER: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

fn post(server: &Server, key: &str, path: &str, body: &Value) -> Response {
    server.send(
        "POST",
        path,
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&body.to_string()),
    )
}

fn patch(server: &Server, key: &str, code: &str, body: &Value) -> Response {
    server.send(
        "PATCH",
        &format!("/api/v1/links/{code}"),
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&body.to_string()),
    )
}

fn create(server: &Server, key: &str, body: &Value) -> Value {
    let response = post(server, key, "/api/v1/links", body);
    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["code"], 0, "{json}");
    assert_eq!(json["msg"], "Success");
    json["data"].clone()
}

fn restore(server: &Server, key: &str, code: &str) -> Response {
    server.get(&format!("/api/v1/links/{code}"), &[("X-API-Key", key)])
}

fn visit(server: &Server, code: &str, headers: &[(&str, &str)]) -> Response {
    server.get(&format!("/{code}"), headers)
}

fn keys(server: &Server) -> (String, String) {
    let (premium, _) =
        server.create_key(r#"{"name": "premium", "plan": "premium", "points": 100}"#);
    let (free, _) = server.create_key(r#"{"name": "free", "plan": "free", "points": 0}"#);
    (premium, free)
}

#[test]
fn create_restore_and_redirect() {
    let server = Server::start();
    let (key, other) = keys(&server);
    let data = create(
        &server,
        &key,
        &json!({"url": "https://example.com/a?b=1#c", "title": "示例"}),
    );
    let code = data["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(data["url"], "https://example.com/a?b=1#c");
    assert_eq!(data["title"], "示例");
    assert_eq!(data["access_type"], "open");
    assert_eq!(data["full_short_url"], format!("http://test/{code}"));
    assert_eq!(data["group_id"], 1);
    assert_eq!(data["expire_at"], Value::Null);
    assert_eq!(data["alias"], Value::Null);
    assert!(data["created_at"].as_str().unwrap().ends_with('Z'));

    let hop = visit(&server, &code, &[("User-Agent", BROWSER)]);
    assert_eq!(hop.status, 302);
    assert_eq!(hop.header("location"), Some("https://example.com/a?b=1#c"));
    assert_eq!(hop.header("cache-control"), Some("private, max-age=90"));

    // Any valid key may restore an open link.
    for caller in [&key, &other] {
        let json = restore(&server, caller, &code).json();
        assert_eq!(json["code"], 0);
        let data = &json["data"];
        assert_eq!(data["url"], "https://example.com/a?b=1#c");
        assert_eq!(data["status"], "active");
        assert_eq!(data["click"], 1);
        assert_eq!(data["code"], code.as_str());
    }
    // Codes are case-sensitive.
    let swapped: String = code
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect();
    if swapped != code {
        assert_eq!(visit(&server, &swapped, &[]).status, 404);
    }
}

#[test]
fn every_error_has_its_status_code_and_message() {
    let server = Server::start();
    let (key, free) = keys(&server);
    // 401 without or with a bad key.
    server
        .send(
            "POST",
            "/api/v1/links",
            &[("Content-Type", "application/json")],
            Some(r#"{"url": "https://example.com"}"#),
        )
        .assert_error(401, "missing_api_key");
    let bogus = format!("sk_{}", "A".repeat(32));
    post(
        &server,
        &bogus,
        "/api/v1/links",
        &json!({"url": "https://e.com"}),
    )
    .assert_error(401, "invalid_api_key");
    // 400: bad parameters.
    for body in [
        json!({"url": "example.com"}),
        json!({"url": "ftp://example.com/"}),
        json!({"url": "javascript:alert(1)"}),
        json!({"url": "https://"}),
        json!({"url": format!("https://e.com/{}", "a".repeat(5000))}),
        json!({"url": "https://e.com", "expire_at": "2001-01-01T00:00:00Z"}),
        json!({"url": "https://e.com", "expire_at": "tomorrow"}),
        json!({"url": "https://e.com", "access_type": "secret"}),
        json!({"url": "https://e.com", "access_type": "password"}),
        json!({"url": "https://e.com", "access_type": "password", "password": "ab"}),
        json!({"url": "https://e.com", "password": "abcdef"}),
        json!({"url": "https://e.com", "group_id": 99}),
        json!({"url": "https://e.com", "group_id": "one"}),
        json!({"url": "http://test/abc"}),
        json!({"title": "no url"}),
        json!({"url": "https://e.com", "colour": "red"}),
    ] {
        let response = post(&server, &key, "/api/v1/links", &body);
        let json = response.assert_error(400, "invalid_field");
        assert!(json["msg"].as_str().unwrap().contains("字段"), "{json}");
    }
    post(
        &server,
        &key,
        "/api/v1/links",
        &json!({"url": "https://e.com", "alias": "bad alias"}),
    )
    .assert_error(400, "invalid_field");
    // 403: plan gating, with nothing created.
    let json = post(
        &server,
        &free,
        "/api/v1/links",
        &json!({"url": "https://e.com", "alias": "mine"}),
    )
    .assert_error(403, "plan_not_allowed");
    assert!(json["msg"].as_str().unwrap().contains("自定义短码"));
    assert_eq!(visit(&server, "mine", &[]).status, 404);
    // Alias taken → 400 短码已存在.
    create(
        &server,
        &key,
        &json!({"url": "https://e.com/1", "alias": "mine"}),
    );
    let json = post(
        &server,
        &key,
        "/api/v1/links",
        &json!({"url": "https://e.com/2", "alias": "mine"}),
    )
    .assert_error(400, "alias_taken");
    assert_eq!(json["msg"], "短码已存在");
    assert_eq!(
        visit(&server, "mine", &[]).header("location"),
        Some("https://e.com/1")
    );
    // 404: unknown code.
    let json = restore(&server, &key, "nope404").assert_error(404, "not_found");
    assert!(json["msg"].as_str().unwrap().contains("不存在"));
    restore(&server, &key, "bad!code").assert_error(404, "not_found");
    // 403: account disabled.
    let (disabled, id) = server.create_key(r#"{"name": "off", "plan": "premium"}"#);
    let response = server.admin(
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(r#"{"disabled": true}"#),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let json = post(
        &server,
        &disabled,
        "/api/v1/links",
        &json!({"url": "https://e.com"}),
    )
    .assert_error(403, "key_disabled");
    assert_eq!(json["msg"], "账户已禁用");
}

#[test]
fn reserved_words_are_never_codes() {
    let server = Server::start();
    let (key, _) = keys(&server);
    for word in [
        "api",
        "admin",
        "docs",
        "redoc",
        "openapi.json",
        "jobs",
        "pool",
        "health",
        "metrics",
        "static",
        "Health",
        "API",
        "batch",
    ] {
        let response = post(
            &server,
            &key,
            "/api/v1/links",
            &json!({"url": "https://e.com", "alias": word}),
        );
        if word.contains('.') {
            response.assert_error(400, "invalid_field");
        } else {
            response.assert_error(400, "alias_reserved");
        }
    }
    // The routes still answer as themselves.
    assert_eq!(server.get("/health", &[]).status, 200);
    assert_eq!(server.get("/pool", &[]).status, 200);
}

#[test]
fn expired_and_disabled_links_are_gone() {
    let server = Server::start();
    let (key, _) = keys(&server);
    let soon = time::OffsetDateTime::now_utc() + time::Duration::milliseconds(1500);
    let soon = soon
        .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let data = create(
        &server,
        &key,
        &json!({"url": "https://e.com/x", "expire_at": soon}),
    );
    let code = data["code"].as_str().unwrap().to_owned();
    assert!(data["expire_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(visit(&server, &code, &[]).status, 302);
    let gone = crate::harness::wait_until(Duration::from_secs(5), "the link to expire", || {
        let answer = visit(&server, &code, &[]);
        (answer.status != 302).then_some(answer)
    });
    assert_eq!(gone.status, 410);
    assert!(gone.text().contains("已过期"));
    assert!(
        gone.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert_eq!(
        restore(&server, &key, &code).json()["data"]["status"],
        "expired"
    );

    let code = create(&server, &key, &json!({"url": "https://e.com/y"}))["code"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(visit(&server, &code, &[]).status, 302);
    let response = patch(&server, &key, &code, &json!({"status": "disabled"}));
    assert_eq!(response.json()["data"]["status"], "disabled");
    let gone = visit(&server, &code, &[]);
    assert_eq!(gone.status, 410);
    assert!(gone.text().contains("已停用"));
    patch(&server, &key, &code, &json!({"status": "active"}));
    assert_eq!(visit(&server, &code, &[]).status, 302);
    let missing = visit(&server, "zzzzzz9", &[]);
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("不存在"));
}

#[test]
fn password_links_ask_verify_and_limit_attempts() {
    let server = Server::start_with(&[("PANLINK_LINKS_PASSWORD_MAX_FAILURES", "3")]);
    let (key, other) = keys(&server);
    let data = create(
        &server,
        &key,
        &json!({"url": "https://secret.example/doc", "access_type": "password", "password": "芝麻开门", "title": "<b>年度报告</b>"}),
    );
    assert_eq!(data["access_type"], "password");
    assert!(data.get("password").is_none());
    let code = data["code"].as_str().unwrap().to_owned();
    let form = visit(&server, &code, &[("User-Agent", BROWSER)]);
    assert_eq!(form.status, 200);
    assert!(form.text().contains("此链接需要密码"));
    // The title says what the password opens, escaped.
    assert!(
        form.text().contains("&lt;b&gt;年度报告&lt;/b&gt;"),
        "{}",
        form.text()
    );
    assert!(form.text().contains(&format!("action=\"/{code}\"")));
    assert!(form.header("location").is_none());

    let submit = |password: &str| {
        let body = format!(
            "password={}",
            url::form_urlencoded::byte_serialize(password.as_bytes()).collect::<String>()
        );
        server.send(
            "POST",
            &format!("/{code}"),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("User-Agent", BROWSER),
            ],
            Some(&body),
        )
    };
    let wrong = submit("open sesame");
    assert_eq!(wrong.status, 403);
    assert!(wrong.text().contains("密码错误"));
    let right = submit("芝麻开门");
    assert_eq!(right.status, 303, "{}", right.text());
    assert_eq!(right.header("location"), Some("https://secret.example/doc"));

    // The owner sees the target; another key does not.
    let json = restore(&server, &key, &code).json();
    assert_eq!(json["data"]["url"], "https://secret.example/doc");
    assert_eq!(json["data"]["click"], 1, "only the unlocked visit counts");
    let json = restore(&server, &other, &code).assert_error(403, "password_protected");
    assert!(!json.to_string().contains("secret.example"));

    // Three wrong attempts (a right one forgot the earlier): then even the right password waits.
    for _ in 0..3 {
        assert_eq!(submit("nope").status, 403);
    }
    let limited = submit("芝麻开门");
    assert_eq!(limited.status, 429);
    assert!(limited.header("retry-after").is_some());
    assert!(limited.text().contains("次数过多"));
}

#[test]
fn clicks_exclude_head_and_bots_and_feed_the_stats() {
    let server = Server::start();
    let (key, other) = keys(&server);
    let code = create(&server, &key, &json!({"url": "https://e.com/c"}))["code"]
        .as_str()
        .unwrap()
        .to_owned();
    // Days are counted in the default `links.stats_timezone`, Asia/Shanghai
    // (UTC+8 all year); the clicks may straddle its midnight.
    let shanghai_today = || {
        time::OffsetDateTime::now_utc()
            .to_offset(time::macros::offset!(+8))
            .date()
            .to_string()
    };
    let day_of_clicks = shanghai_today();
    for referer in [
        "https://forum.example/t/1",
        "https://forum.example/t/2",
        "https://blog.example/",
    ] {
        let hop = visit(
            &server,
            &code,
            &[("User-Agent", BROWSER), ("Referer", referer)],
        );
        assert_eq!(hop.status, 302);
    }
    for _ in 0..2 {
        let head = server.send(
            "HEAD",
            &format!("/{code}"),
            &[("User-Agent", BROWSER)],
            None,
        );
        assert_eq!(head.status, 302);
        assert_eq!(head.header("location"), Some("https://e.com/c"));
    }
    for ua in [
        "Mozilla/5.0 (compatible; Googlebot/2.1)",
        "TelegramBot (like TwitterBot)",
    ] {
        assert_eq!(visit(&server, &code, &[("User-Agent", ua)]).status, 302);
    }
    assert_eq!(visit(&server, &code, &[]).status, 302);

    let data = restore(&server, &key, &code).json()["data"].clone();
    assert_eq!(data["click"], 3);
    assert_eq!(data["clicks"], json!({"human": 3, "bot": 3, "head": 2}));

    // After a flush the same figures come from storage.
    crate::harness::wait_until(Duration::from_secs(5), "the clicks' journal write", || {
        (server.metric("panlink_link_clicks_journaled_total") >= 8.0).then_some(())
    });
    let stats = server.get(
        &format!("/api/v1/links/{code}/stats"),
        &[("X-API-Key", &key)],
    );
    assert_eq!(stats.status, 200, "{}", stats.text());
    let stats = stats.json()["data"].clone();
    assert_eq!(stats["totals"], json!({"human": 3, "bot": 3, "head": 2}));
    let days = stats["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    let count = |field: &str| {
        days.iter()
            .map(|day| day[field].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((count("human"), count("head")), (3, 2));
    let date = days.last().unwrap()["date"].as_str().unwrap();
    assert!(
        date == day_of_clicks || date == shanghai_today(),
        "{date} is neither {day_of_clicks} nor today in Asia/Shanghai"
    );
    assert_eq!(
        stats["top_referrers"],
        json!([{"host": "forum.example", "clicks": 2}, {"host": "blog.example", "clicks": 1}])
    );
    // Statistics are the owner's.
    server
        .get(
            &format!("/api/v1/links/{code}/stats"),
            &[("X-API-Key", &other)],
        )
        .assert_error(404, "not_found");
}

#[test]
fn links_and_clicks_survive_restarts() {
    let server = Server::start();
    let (key, _) = keys(&server);
    let code = create(
        &server,
        &key,
        &json!({"url": "https://e.com/keep", "alias": "keep-me"}),
    )["code"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..4 {
        visit(&server, &code, &[("User-Agent", BROWSER)]);
    }
    // A clean stop flushes the clicks counted in memory.
    let mut server = server.restart();
    assert_eq!(restore(&server, &key, &code).json()["data"]["click"], 4);
    // A crash keeps every acknowledged link.
    let made = create(&server, &key, &json!({"url": "https://e.com/crash"}))["code"]
        .as_str()
        .unwrap()
        .to_owned();
    // Clicks journaled before a crash (one flush interval, 500 ms) are folded in at start-up.
    for _ in 0..3 {
        visit(&server, &made, &[("User-Agent", BROWSER)]);
    }
    crate::harness::wait_until(Duration::from_secs(5), "the clicks' journal write", || {
        (server.metric("panlink_link_clicks_journaled_total") >= 3.0).then_some(())
    });
    server.kill9();
    let server = server.restart();
    assert_eq!(
        visit(&server, &made, &[]).header("location"),
        Some("https://e.com/crash")
    );
    assert_eq!(visit(&server, "keep-me", &[]).status, 302);
    let data = restore(&server, &key, &made).json()["data"].clone();
    assert_eq!(data["click"], 3, "{data}");
    assert_eq!(restore(&server, &key, &code).json()["data"]["click"], 4);
}

#[test]
fn batch_creates_the_valid_items_in_order() {
    let server = Server::start();
    let (key, _) = keys(&server);
    let body = json!({"items": [
        {"url": "https://e.com/1"},
        {"url": "not a url"},
        {"url": "https://e.com/3", "alias": "batch-a"},
        {"url": "https://e.com/4", "alias": "batch-a"},
        {"url": "https://e.com/5", "group_id": 42},
        {"url": 5},
        {"url": "https://e.com/7", "access_type": "password", "password": "pw-1234"},
    ]});
    let response = post(&server, &key, "/api/v1/links/batch", &body);
    assert_eq!(response.status, 200, "{}", response.text());
    let data = response.json()["data"].clone();
    assert_eq!(data["total"], 7);
    assert_eq!(data["created"], 3);
    assert_eq!(data["failed"], 4);
    let items = data["items"].as_array().unwrap();
    let oks: Vec<bool> = items.iter().map(|i| i["ok"].as_bool().unwrap()).collect();
    assert_eq!(oks, [true, false, true, false, false, false, true]);
    assert_eq!(items[1]["error"]["code"], 400);
    assert!(
        items[1]["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("items[1].url")
    );
    assert_eq!(items[3]["error"]["error"], "alias_taken");
    assert_eq!(items[3]["error"]["msg"], "短码已存在");
    assert!(
        items[4]["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("group_id")
    );
    assert!(
        items[5]["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("items[5].url")
    );
    for (index, item) in items.iter().enumerate() {
        assert_eq!(item["index"], index);
        if item["ok"] == true {
            let code = item["data"]["code"].as_str().unwrap();
            assert_eq!(
                visit(&server, code, &[]).status,
                if index == 6 { 200 } else { 302 }
            );
        }
    }
    assert_eq!(
        visit(&server, "batch-a", &[]).header("location"),
        Some("https://e.com/3")
    );
    // Empty and oversized batches are refused whole.
    post(&server, &key, "/api/v1/links/batch", &json!({"items": []}))
        .assert_error(400, "invalid_field");
    let many: Vec<Value> = (0..1001)
        .map(|i| json!({"url": format!("https://e.com/{i}")}))
        .collect();
    post(
        &server,
        &key,
        "/api/v1/links/batch",
        &json!({"items": many}),
    )
    .assert_error(400, "invalid_field");
}

#[test]
fn groups_listing_edits_and_deletion() {
    let server = Server::start();
    let (key, other) = keys(&server);
    let groups =
        server.get("/api/v1/groups", &[("X-API-Key", &key)]).json()["data"]["items"].clone();
    assert_eq!(groups[0]["id"], 1);
    assert_eq!(groups[0]["name"], "默认分组");
    let response = post(&server, &key, "/api/v1/groups", &json!({"name": "论坛"}));
    assert_eq!(response.status, 200, "{}", response.text());
    let group = response.json()["data"]["id"].as_u64().unwrap();
    assert_eq!(group, 2);
    post(&server, &key, "/api/v1/groups", &json!({"name": ""})).assert_error(400, "invalid_field");
    // Another key's group is not ours.
    post(
        &server,
        &other,
        "/api/v1/links",
        &json!({"url": "https://e.com", "group_id": group}),
    )
    .assert_error(400, "invalid_field");

    let mut codes = Vec::new();
    for i in 0..5 {
        let body = if i % 2 == 0 {
            json!({"url": format!("https://e.com/{i}"), "group_id": group})
        } else {
            json!({"url": format!("https://e.com/{i}")})
        };
        codes.push(
            create(&server, &key, &body)["code"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
        std::thread::sleep(Duration::from_millis(3));
    }
    create(&server, &other, &json!({"url": "https://other.example/"}));
    let list = |query: &str| server.get(&format!("/api/v1/links{query}"), &[("X-API-Key", &key)]);
    let all = list("").json()["data"].clone();
    assert_eq!(all["total"], 5);
    let listed: Vec<&str> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = codes.iter().rev().map(String::as_str).collect();
    assert_eq!(listed, newest_first);
    let in_group = list(&format!("?group_id={group}")).json()["data"].clone();
    assert_eq!(in_group["total"], 3);
    let page = list("?page=2&page_size=2").json()["data"].clone();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["items"][0]["code"], codes[2].as_str());
    list("?page=0").assert_error(400, "invalid_parameter");
    list("?page_size=1000").assert_error(400, "invalid_parameter");

    // Edit: the redirect follows the change at once (the cache is invalidated).
    let code = &codes[1];
    assert_eq!(
        visit(&server, code, &[]).header("location"),
        Some("https://e.com/1")
    );
    let edited = patch(
        &server,
        &key,
        code,
        &json!({"url": "https://e.com/new", "title": "新标题", "group_id": group}),
    );
    assert_eq!(edited.status, 200, "{}", edited.text());
    assert_eq!(edited.json()["data"]["title"], "新标题");
    assert_eq!(
        visit(&server, code, &[]).header("location"),
        Some("https://e.com/new")
    );
    assert_eq!(
        list(&format!("?group_id={group}")).json()["data"]["total"],
        4
    );
    let cleared = patch(&server, &key, code, &json!({"title": null}));
    assert_eq!(cleared.json()["data"]["title"], Value::Null);
    // Password on, then off again.
    patch(&server, &key, code, &json!({"access_type": "password"}))
        .assert_error(400, "invalid_field");
    patch(
        &server,
        &key,
        code,
        &json!({"access_type": "password", "password": "abcd1234"}),
    );
    assert_eq!(visit(&server, code, &[]).status, 200);
    patch(&server, &key, code, &json!({"access_type": "open"}));
    assert_eq!(visit(&server, code, &[]).status, 302);
    patch(&server, &key, code, &json!({})).assert_error(400, "invalid_field");
    patch(&server, &key, code, &json!({"status": "expired"})).assert_error(400, "invalid_field");
    patch(&server, &other, code, &json!({"title": "x"})).assert_error(404, "not_found");

    // Delete: owner only; others get 404 and the link stays.
    let path = format!("/api/v1/links/{code}");
    server
        .send("DELETE", &path, &[("X-API-Key", &other)], None)
        .assert_error(404, "not_found");
    assert_eq!(visit(&server, code, &[]).status, 302);
    let deleted = server.send("DELETE", &path, &[("X-API-Key", &key)], None);
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(visit(&server, code, &[]).status, 404);
    restore(&server, &key, code).assert_error(404, "not_found");
    server
        .send("DELETE", &path, &[("X-API-Key", &key)], None)
        .assert_error(404, "not_found");
}

#[test]
fn qr_codes_and_public_base_url() {
    let server = Server::start_with(&[("PANLINK_SERVER_PUBLIC_BASE_URL", "https://s.example/")]);
    let (key, _) = keys(&server);
    let data = create(&server, &key, &json!({"url": "https://e.com/qr"}));
    let code = data["code"].as_str().unwrap();
    assert_eq!(data["full_short_url"], format!("https://s.example/{code}"));
    // A link to the service itself would loop.
    post(
        &server,
        &key,
        "/api/v1/links",
        &json!({"url": format!("https://s.example/{code}")}),
    )
    .assert_error(400, "invalid_field");
    let svg = server.get(&format!("/api/v1/links/{code}/qr"), &[("X-API-Key", &key)]);
    assert_eq!(svg.status, 200);
    assert_eq!(svg.header("content-type"), Some("image/svg+xml"));
    assert!(svg.text().contains("<svg"));
    let png = server.get(
        &format!("/api/v1/links/{code}/qr?format=png&size=128"),
        &[("X-API-Key", &key)],
    );
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type"), Some("image/png"));
    assert_eq!(&png.body[..4], b"\x89PNG");
    server
        .get(
            &format!("/api/v1/links/{code}/qr?format=gif"),
            &[("X-API-Key", &key)],
        )
        .assert_error(400, "invalid_parameter");
    server
        .get(
            &format!("/api/v1/links/{code}/qr?size=9"),
            &[("X-API-Key", &key)],
        )
        .assert_error(400, "invalid_parameter");
    server
        .get("/api/v1/links/nothere/qr", &[("X-API-Key", &key)])
        .assert_error(404, "not_found");
}

#[test]
fn redirect_status_is_configurable() {
    let server = Server::start_with(&[
        ("PANLINK_LINKS_REDIRECT_STATUS", "308"),
        ("PANLINK_LINKS_REDIRECT_MAX_AGE_S", "0"),
    ]);
    let (key, _) = keys(&server);
    let code = create(&server, &key, &json!({"url": "https://e.com/p"}))["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let hop = visit(&server, &code, &[]);
    assert_eq!(hop.status, 308);
    assert_eq!(hop.header("cache-control"), Some("private, max-age=0"));
}
