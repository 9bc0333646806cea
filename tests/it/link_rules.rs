//! Visitor rules through the real binary: real user agents of phones, tablets, desktops and
//! in-app browsers (tests/fixtures/user_agents.tsv) each reach the rule written for them; errors
//! name the path of the bad value; rules meet passwords, UTM parameters and edits.

use serde_json::{Value, json};

use crate::harness::{Response, Server};

const FIXTURE: &str = include_str!("../fixtures/user_agents.tsv");

/// (os, device, app, user agent) of every fixture row.
fn user_agents() -> Vec<[&'static str; 4]> {
    FIXTURE
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            [cols[0], cols[1], cols[2], cols[3]]
        })
        .collect()
}

fn create(server: &Server, key: &str, body: &Value) -> Value {
    let answer = server.call(key, "POST", "/api/v1/links", Some(body));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"].clone()
}

fn visit(server: &Server, code: &str, user_agent: &str, language: Option<&str>) -> Response {
    let mut headers = vec![("User-Agent", user_agent)];
    if let Some(language) = language {
        headers.push(("Accept-Language", language));
    }
    server.get(&format!("/{code}"), &headers)
}

fn table_rules() -> Value {
    json!([
        {"if": {"app": ["wechat", "qq"]}, "action": "open_in_browser"},
        {"if": {"app": ["weibo", "alipay", "dingtalk", "douyin"]}, "url": "https://example.com/app"},
        {"if": {"os": ["ios"], "device": ["tablet"]}, "url": "https://example.com/ipad"},
        {"if": {"os": ["ios"]}, "url": "https://example.com/ios"},
        {"if": {"os": ["android"], "device": ["tablet"]}, "url": "https://example.com/android-tablet"},
        {"if": {"os": ["android"]}, "url": "https://example.com/android"},
        {"if": {"device": ["desktop"], "language": ["en"]}, "url": "https://example.com/desktop-en"},
        {"if": {"os": ["windows", "macos", "linux"]}, "url": "https://example.com/desktop"}
    ])
}

/// Where [`table_rules`] must send a visitor, or `None` for the open-in-browser page.
fn expected_target(os: &str, device: &str, app: &str, english: bool) -> Option<&'static str> {
    Some(match (os, device, app) {
        (_, _, "wechat" | "qq") => return None,
        (_, _, "weibo" | "alipay" | "dingtalk" | "douyin") => "https://example.com/app",
        ("ios", "tablet", _) => "https://example.com/ipad",
        ("ios", _, _) => "https://example.com/ios",
        ("android", "tablet", _) => "https://example.com/android-tablet",
        ("android", _, _) => "https://example.com/android",
        (_, "desktop", _) if english => "https://example.com/desktop-en",
        ("windows" | "macos" | "linux", _, _) => "https://example.com/desktop",
        _ => "https://example.com/default",
    })
}

#[test]
fn real_user_agents_each_reach_their_rule() {
    let server = Server::start();
    let key = server.job_key("rules");
    let link = create(
        &server,
        &key,
        &json!({"url": "https://example.com/default", "rules": table_rules()}),
    );
    let code = link["code"].as_str().unwrap();
    assert_eq!(link["rules"], table_rules());
    let rows = user_agents();
    assert!(rows.len() >= 30);
    for [os, device, app, ua] in rows {
        for (language, english) in [(None, false), (Some("en-US,en;q=0.9,zh;q=0.3"), true)] {
            let answer = visit(&server, code, ua, language);
            match expected_target(os, device, app, english) {
                Some(target) => {
                    assert_eq!(answer.status, 302, "{ua}");
                    assert_eq!(
                        answer.header("location"),
                        Some(target),
                        "{ua} ({language:?})"
                    );
                }
                None => {
                    assert_eq!(answer.status, 200, "{ua}");
                    let page = answer.text();
                    assert!(page.contains("请在浏览器中打开"), "{ua}");
                    assert!(page.contains(&format!("/{code}</code>")), "{page}");
                }
            }
        }
    }
    // No user agent at all: no rule on OS, device or app can match.
    let bare = server.get(&format!("/{code}"), &[]);
    assert_eq!(bare.status, 302);
    assert_eq!(bare.header("location"), Some("https://example.com/default"));
    let metrics = server.get("/metrics", &[]).text();
    assert!(metrics.contains("outcome=\"open_in_browser\""), "{metrics}");
    assert!(metrics.contains("outcome=\"rule\""), "{metrics}");
}

#[test]
fn bad_rules_are_refused_with_the_path_of_the_bad_value() {
    let server = Server::start();
    let key = server.job_key("rules-bad");
    let refused = |body: Value, path: &str| {
        let answer = server.call(&key, "POST", "/api/v1/links", Some(&body));
        let error = answer.assert_error(400, "invalid_field");
        assert!(
            error["msg"].as_str().unwrap().contains(path),
            "{path}: {error}"
        );
    };
    refused(
        json!({"url": "https://example.com/", "rules": [
            {"if": {"os": ["ios"]}, "url": "https://example.com/a"},
            {"if": {"os": ["symbian"]}, "url": "https://example.com/b"}
        ]}),
        "rules[1].if.os[0]",
    );
    refused(
        json!({"url": "https://example.com/", "rules": [{"if": {"browser": ["chrome"]}, "url": "https://example.com/a"}]}),
        "rules[0].if.browser",
    );
    refused(
        json!({"url": "https://example.com/", "rules": [{"if": {"country": ["CN"]}, "url": "https://example.com/a"}]}),
        "rules[0].if.country",
    );
    refused(
        json!({"url": "https://example.com/", "rules": [{"if": {"app": ["wechat"]}}]}),
        "rules[0]",
    );
    refused(
        json!({"url": "https://example.com/", "rules": [{"url": "javascript:alert(1)"}]}),
        "rules[0].url",
    );
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"url": format!("https://example.com/{i}")}))
        .collect();
    refused(
        json!({"url": "https://example.com/", "rules": eleven}),
        "rules",
    );
    // In a batch, the item's index comes first; the other items are still created.
    let batch = server.call(
        &key,
        "POST",
        "/api/v1/links/batch",
        Some(&json!({"items": [
            {"url": "https://example.com/ok"},
            {"url": "https://example.com/", "rules": [{"if": {"device": ["watch"]}, "url": "https://example.com/w"}]}
        ]})),
    );
    assert_eq!(batch.status, 200, "{}", batch.text());
    let items = batch.json()["data"]["items"].clone();
    assert_eq!(items[0]["ok"], true);
    assert_eq!(items[1]["ok"], false);
    assert!(
        items[1]["error"]["msg"]
            .as_str()
            .unwrap()
            .contains("items[1].rules[0].if.device[0]"),
        "{items}"
    );
}

#[test]
fn rules_meet_passwords_utm_and_edits() {
    let server = Server::start();
    let key = server.job_key("rules-mix");
    let iphone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
    let wechat = "Mozilla/5.0 (iPhone; CPU iPhone OS 9_0 like Mac OS X) AppleWebKit/601.1.46 (KHTML, like Gecko) Mobile/13A344 MicroMessenger/6.2.7 NetType/WIFI Language/zh_CN";
    let link = create(
        &server,
        &key,
        &json!({
            "url": "https://example.com/all",
            "access_type": "password",
            "password": "secret-42",
            "utm": {"source": "forum"},
            "rules": [
                {"if": {"app": ["wechat"]}, "action": "open_in_browser"},
                {"if": {"os": ["ios"]}, "url": "https://example.com/ios?x=1"}
            ]
        }),
    );
    let code = link["code"].as_str().unwrap();
    // In WeChat the page comes before the password form; elsewhere the form.
    let page = visit(&server, code, wechat, None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("请在浏览器中打开"));
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let form = visit(&server, code, iphone, None);
    assert_eq!(form.status, 200);
    assert!(form.text().contains("此链接需要密码"));
    // The right password sends the iPhone to its rule's URL, with the link's UTM parameters.
    let unlocked = server.send(
        "POST",
        &format!("/{code}"),
        &[
            ("User-Agent", iphone),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        Some("password=secret-42"),
    );
    assert_eq!(unlocked.status, 303, "{}", unlocked.text());
    assert_eq!(
        unlocked.header("location"),
        Some("https://example.com/ios?x=1&utm_source=forum")
    );
    // Neither the page nor the form was a click; the unlocked redirect was one.
    let restored = server.call(&key, "GET", &format!("/api/v1/links/{code}"), None);
    assert_eq!(restored.json()["data"]["click"], 1);
    // Edit: open access and one rule for Android; the iPhone now gets the link's own target.
    let patched = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/links/{code}"),
        Some(&json!({"access_type": "open", "rules": [{"if": {"os": ["android"]}, "url": "https://example.com/android"}]})),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(
        patched.json()["data"]["rules"],
        json!([{"if": {"os": ["android"]}, "url": "https://example.com/android"}])
    );
    let now = visit(&server, code, iphone, None);
    assert_eq!(now.status, 302);
    assert_eq!(
        now.header("location"),
        Some("https://example.com/all?utm_source=forum")
    );
    let bad = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/links/{code}"),
        Some(&json!({"rules": [{"if": {"os": "android"}, "url": "https://example.com/a"}]})),
    );
    bad.assert_error(400, "invalid_field");
    // `null` removes every rule.
    let cleared = server.call(
        &key,
        "PATCH",
        &format!("/api/v1/links/{code}"),
        Some(&json!({"rules": null})),
    );
    assert_eq!(cleared.json()["data"]["rules"], json!([]));
    let android = "Mozilla/5.0 (Linux; Android 15; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36";
    assert_eq!(
        visit(&server, code, android, None).header("location"),
        Some("https://example.com/all?utm_source=forum")
    );
}
