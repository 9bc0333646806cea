//! Links that expire after a number of clicks: exact under concurrent visitors, bots and HEAD
//! not counted, the count kept across a restart.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::{Value, json};

use crate::harness::{Response, Server, request};

fn create(server: &Server, key: &str, body: &Value) -> String {
    let answer = server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&body.to_string()),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"]["code"].as_str().unwrap().to_owned()
}

fn restore(server: &Server, key: &str, code: &str) -> Value {
    server
        .get(&format!("/api/v1/links/{code}"), &[("X-API-Key", key)])
        .json()["data"]
        .clone()
}

fn visit(server: &Server, code: &str) -> Response {
    server.get(
        &format!("/{code}"),
        &[("User-Agent", "Mozilla/5.0 (iPhone) Safari")],
    )
}

#[test]
fn max_clicks_is_exact_under_64_concurrent_visitors_and_bots_and_head_do_not_count() {
    let server = Server::start();
    let key = server.job_key("limits");
    let code = create(
        &server,
        &key,
        &json!({"url": "https://example.com/once", "max_clicks": 100}),
    );
    for _ in 0..5 {
        assert_eq!(
            server.send("HEAD", &format!("/{code}"), &[], None).status,
            302
        );
        let bot = server.get(&format!("/{code}"), &[("User-Agent", "Googlebot/2.1")]);
        assert_eq!(bot.status, 302);
    }
    let redirected = AtomicU32::new(0);
    let refused = AtomicU32::new(0);
    std::thread::scope(|scope| {
        for _ in 0..64 {
            scope.spawn(|| {
                loop {
                    let answer = request(
                        server.addr,
                        "GET",
                        &format!("/{code}"),
                        &[("User-Agent", "Mozilla/5.0 (Android) Chrome")],
                        None,
                    );
                    match answer.status {
                        302 => redirected.fetch_add(1, Ordering::Relaxed),
                        410 => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        other => panic!("unexpected {other}"),
                    };
                }
            });
        }
    });
    assert_eq!(redirected.load(Ordering::Relaxed), 100);
    assert_eq!(refused.load(Ordering::Relaxed), 64);
    // Used up: everyone is refused now, bots and HEAD too.
    assert_eq!(
        server.send("HEAD", &format!("/{code}"), &[], None).status,
        410
    );
    let link = restore(&server, &key, &code);
    assert_eq!(link["status"], "expired", "{link}");
    assert_eq!(link["expired_reason"], "max_clicks");
    assert_eq!(link["max_clicks"], 100);
    // A link past its date says so.
    let bad = server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(&json!({"url": "https://example.com/x", "max_clicks": 0}).to_string()),
    );
    bad.assert_error(400, "invalid_field");
}

#[test]
fn the_click_count_survives_a_restart() {
    let server = Server::start();
    let key = server.job_key("restart");
    let spent = create(
        &server,
        &key,
        &json!({"url": "https://example.com/spent", "max_clicks": 2}),
    );
    let partly = create(
        &server,
        &key,
        &json!({"url": "https://example.com/partly", "max_clicks": 5}),
    );
    for _ in 0..2 {
        assert_eq!(visit(&server, &spent).status, 302);
    }
    assert_eq!(visit(&server, &spent).status, 410);
    for _ in 0..3 {
        assert_eq!(visit(&server, &partly).status, 302);
    }
    let server = server.restart();
    assert_eq!(visit(&server, &spent).status, 410);
    assert_eq!(
        restore(&server, &key, &spent)["expired_reason"],
        "max_clicks"
    );
    assert_eq!(visit(&server, &partly).status, 302);
    assert_eq!(visit(&server, &partly).status, 302);
    assert_eq!(visit(&server, &partly).status, 410);
    // Raising the limit opens it again; removing it too.
    let patched = server.send(
        "PATCH",
        &format!("/api/v1/links/{partly}"),
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(&json!({"max_clicks": 6}).to_string()),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(visit(&server, &partly).status, 302);
    assert_eq!(visit(&server, &partly).status, 410);
    let patched = server.send(
        "PATCH",
        &format!("/api/v1/links/{partly}"),
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(&json!({"max_clicks": null}).to_string()),
    );
    assert_eq!(patched.status, 200);
    assert_eq!(visit(&server, &partly).status, 302);
}

#[test]
fn tags_filter_the_list_and_utm_parameters_join_the_target_at_redirect() {
    let server = Server::start();
    let key = server.job_key("tags");
    let other = server.job_key("other-tags");
    let tagged = create(
        &server,
        &key,
        &json!({"url": "https://example.com/p?a=1&utm_source=old", "tags": ["资源", "2026", "资源"],
                "utm": {"source": "论坛", "campaign": "winter"}}),
    );
    let plain = create(
        &server,
        &key,
        &json!({"url": "https://example.com/q", "tags": ["2026"]}),
    );
    create(
        &server,
        &other,
        &json!({"url": "https://example.com/r", "tags": ["资源"]}),
    );
    let link = restore(&server, &key, &tagged);
    assert_eq!(link["tags"], json!(["资源", "2026"]));
    assert_eq!(link["utm"], json!({"source": "论坛", "campaign": "winter"}));
    assert_eq!(link["url"], "https://example.com/p?a=1&utm_source=old");
    let answer = visit(&server, &tagged);
    assert_eq!(
        answer.header("location"),
        Some("https://example.com/p?a=1&utm_source=%E8%AE%BA%E5%9D%9B&utm_campaign=winter")
    );
    let list = |tag: &str| -> Vec<String> {
        server
            .get(&format!("/api/v1/links?tag={tag}"), &[("X-API-Key", &key)])
            .json()["data"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["code"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(list("%E8%B5%84%E6%BA%90"), std::slice::from_ref(&tagged));
    assert_eq!(list("2026"), [plain.clone(), tagged.clone()]);
    assert_eq!(list("none"), Vec::<String>::new());
    // Tags and UTM change by PATCH; the redirect follows at once.
    let patched = server.send(
        "PATCH",
        &format!("/api/v1/links/{tagged}"),
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(&json!({"tags": ["新"], "utm": null}).to_string()),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(list("2026"), [plain]);
    assert_eq!(list("%E6%96%B0"), std::slice::from_ref(&tagged));
    assert_eq!(
        visit(&server, &tagged).header("location"),
        Some("https://example.com/p?a=1&utm_source=old")
    );
    // Bounds name the field.
    for (body, field) in [
        (
            json!({"url": "https://example.com/", "tags": vec!["x"; 11]}),
            "tags",
        ),
        (
            json!({"url": "https://example.com/", "tags": ["a".repeat(33)]}),
            "tags[0]",
        ),
        (
            json!({"url": "https://example.com/", "utm": {"source": "a\nb"}}),
            "utm.source",
        ),
        (
            json!({"url": "https://example.com/", "utm": {"ref": "x"}}),
            "utm",
        ),
    ] {
        let answer = server.send(
            "POST",
            "/api/v1/links",
            &[("X-API-Key", &key), ("Content-Type", "application/json")],
            Some(&body.to_string()),
        );
        assert_eq!(answer.status, 400, "{body}: {}", answer.text());
        assert!(answer.text().contains(field), "{field}: {}", answer.text());
    }
}
