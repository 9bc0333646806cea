//! Several short-link domains (`links.domains`): the same code on two domains goes to two targets,
//! the redirect picks the domain from `Host`, `full_short_url` names the link's domain, the API
//! addresses a link with `?domain=`, and strict mode refuses unknown hosts.

use serde_json::{Value, json};

use crate::harness::{Response, Server};

const DOMAINS: &[(&str, &str)] = &[
    (
        "PANLINK_LINKS_DOMAINS",
        r#"["s.example.com", "go.example.cn"]"#,
    ),
    ("PANLINK_LINKS_DEFAULT_DOMAIN", "s.example.com"),
];

fn visit(server: &Server, host: &str, code: &str) -> Response {
    server.get(&format!("/{code}"), &[("Host", host)])
}

fn create(server: &Server, key: &str, body: Value) -> Value {
    let answer = server.call(key, "POST", "/api/v1/links", Some(&body));
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"].clone()
}

#[test]
fn the_same_code_on_two_domains_goes_to_two_targets() {
    let server = Server::start_with(DOMAINS);
    let key = server
        .create_key(r#"{"name": "domains", "plan": "premium"}"#)
        .0;
    let on_default = create(
        &server,
        &key,
        json!({"url": "https://example.com/default", "alias": "promo"}),
    );
    let on_other = create(
        &server,
        &key,
        json!({"url": "https://example.com/other", "alias": "promo", "domain": "GO.example.cn"}),
    );
    assert_eq!(on_default["domain"], "s.example.com");
    assert_eq!(on_default["full_short_url"], "https://s.example.com/promo");
    assert_eq!(on_other["code"], "promo");
    assert_eq!(on_other["alias"], "promo");
    assert_eq!(on_other["domain"], "go.example.cn");
    assert_eq!(on_other["full_short_url"], "https://go.example.cn/promo");
    // The alias is taken per domain.
    let again = server.call(
        &key,
        "POST",
        "/api/v1/links",
        Some(&json!({"url": "https://example.com/x", "alias": "promo", "domain": "go.example.cn"})),
    );
    again.assert_error(400, "alias_taken");
    // Each Host reaches its own link (with or without a port, any case); an unknown Host the
    // default domain's.
    let port = server.addr.port();
    for (host, target) in [
        ("s.example.com", "https://example.com/default"),
        ("go.example.cn", "https://example.com/other"),
        (
            &*format!("Go.Example.CN:{port}"),
            "https://example.com/other",
        ),
        ("unknown.example", "https://example.com/default"),
    ] {
        let answer = visit(&server, host, "promo");
        assert_eq!(answer.status, 302, "{host}");
        assert_eq!(answer.header("location"), Some(target), "{host}");
    }
    // A random code on the other domain is there only.
    let random = create(
        &server,
        &key,
        json!({"url": "https://example.com/random", "domain": "go.example.cn"}),
    );
    let code = random["code"].as_str().unwrap();
    assert_eq!(visit(&server, "go.example.cn", code).status, 302);
    assert_eq!(visit(&server, "s.example.com", code).status, 404);
    // The API addresses a link with ?domain= (absent: the default domain).
    let restored = server.call(
        &key,
        "GET",
        "/api/v1/links/promo?domain=go.example.cn",
        None,
    );
    assert_eq!(restored.json()["data"]["url"], "https://example.com/other");
    let restored = server.call(&key, "GET", "/api/v1/links/promo", None);
    assert_eq!(
        restored.json()["data"]["url"],
        "https://example.com/default"
    );
    server
        .call(&key, "GET", "/api/v1/links/promo?domain=nope.example", None)
        .assert_error(400, "invalid_parameter");
    let patched = server.call(
        &key,
        "PATCH",
        "/api/v1/links/promo?domain=go.example.cn",
        Some(&json!({"url": "https://example.com/other-2"})),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(
        visit(&server, "go.example.cn", "promo").header("location"),
        Some("https://example.com/other-2")
    );
    assert_eq!(
        visit(&server, "s.example.com", "promo").header("location"),
        Some("https://example.com/default")
    );
    // Statistics are per domain.
    let stats = server.call(
        &key,
        "GET",
        "/api/v1/links/promo/stats?domain=go.example.cn",
        None,
    );
    assert_eq!(stats.status, 200, "{}", stats.text());
    assert_eq!(stats.json()["data"]["code"], "promo");
    let listed = server.call(&key, "GET", "/api/v1/links?page_size=100", None);
    let urls: Vec<String> = listed.json()["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            format!(
                "{} {}",
                l["full_short_url"].as_str().unwrap(),
                l["url"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        urls.contains(&"https://go.example.cn/promo https://example.com/other-2".to_owned()),
        "{urls:?}"
    );
    assert!(
        urls.contains(&"https://s.example.com/promo https://example.com/default".to_owned()),
        "{urls:?}"
    );
    // Deleting one leaves the other.
    let deleted = server.call(
        &key,
        "DELETE",
        "/api/v1/links/promo?domain=go.example.cn",
        None,
    );
    assert_eq!(deleted.json()["data"]["domain"], "go.example.cn");
    assert_eq!(visit(&server, "go.example.cn", "promo").status, 404);
    assert_eq!(visit(&server, "s.example.com", "promo").status, 302);
    // A domain that is not configured is refused, naming the ones that are; a link may not point
    // at a short domain.
    let unknown = server.call(
        &key,
        "POST",
        "/api/v1/links",
        Some(&json!({"url": "https://example.com/", "domain": "evil.example"})),
    );
    let error = unknown.assert_error(400, "invalid_field");
    assert!(
        error["msg"].as_str().unwrap().contains("go.example.cn"),
        "{error}"
    );
    server
        .call(
            &key,
            "POST",
            "/api/v1/links",
            Some(&json!({"url": "https://go.example.cn/abc"})),
        )
        .assert_error(400, "invalid_field");
}

#[test]
fn strict_host_answers_404_to_unknown_hosts_and_one_domain_needs_no_field() {
    let mut env = DOMAINS.to_vec();
    env.push(("PANLINK_LINKS_STRICT_HOST", "true"));
    env.push(("PANLINK_LINKS_DOMAIN_SCHEME", "http"));
    let server = Server::start_with(&env);
    let key = server.job_key("strict");
    let link = create(&server, &key, json!({"url": "https://example.com/strict"}));
    let code = link["code"].as_str().unwrap();
    assert_eq!(
        link["full_short_url"],
        format!("http://s.example.com/{code}")
    );
    assert_eq!(visit(&server, "s.example.com", code).status, 302);
    assert_eq!(visit(&server, "127.0.0.1", code).status, 404);
    assert_eq!(visit(&server, "other.example", code).status, 404);
    drop(server);

    // Without links.domains: no domain field, and the short URL comes from the request's Host.
    let plain = Server::start();
    let key = plain.job_key("plain");
    let link = create(&plain, &key, json!({"url": "https://example.com/plain"}));
    assert_eq!(link["domain"], Value::Null);
    let code = link["code"].as_str().unwrap();
    assert_eq!(link["full_short_url"], format!("http://test/{code}"));
    plain
        .call(
            &key,
            "POST",
            "/api/v1/links",
            Some(&json!({"url": "https://example.com/", "domain": "s.example.com"})),
        )
        .assert_error(400, "invalid_field");
}

#[test]
fn a_default_domain_outside_the_list_stops_start_up_with_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_panlink"))
        .arg("serve")
        .env_clear()
        .env("PANLINK_DATA_DIR", dir.path())
        .env("PANLINK_LISTEN", "127.0.0.1:0")
        .env("PANLINK_LINKS_DOMAINS", r#"["a.example"]"#)
        .env("PANLINK_LINKS_DEFAULT_DOMAIN", "b.example")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("links.default_domain"), "{stderr}");
    assert!(stderr.contains("a.example"), "{stderr}");
}
