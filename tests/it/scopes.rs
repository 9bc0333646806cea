//! Scoped keys: every key route is refused outside its scope (403 `scope_not_allowed` naming the
//! scope) and let through inside it, read from the route table itself so a new route cannot be
//! forgotten; keys made without scopes hold all of them; scopes are set by the admin API and the
//! CLI.

use panlink::api::routes::{Access, table};

use crate::harness::Server;

/// The route's pattern with every `{param}` filled in.
fn concrete(pattern: &str) -> String {
    let mut out = String::new();
    let mut rest = pattern;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |e| start + e + 1);
        out.push_str("x1");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[test]
fn every_key_route_is_refused_outside_its_scope_and_allowed_inside() {
    let server = Server::start();
    let routes: Vec<_> = table()
        .into_iter()
        .filter_map(|def| match def.handler.access {
            Access::ApiKey(Some(scope)) => Some((def.method, def.pattern, scope)),
            _ => None,
        })
        .collect();
    assert!(routes.len() >= 30, "the table lists the key routes");
    for scope in panlink::keys::Scope::ALL {
        let others: Vec<String> = panlink::keys::Scope::ALL
            .into_iter()
            .filter(|s| *s != scope)
            .map(|s| format!("\"{}\"", s.as_str()))
            .collect();
        let (without, _) = server.create_key(&format!(
            r#"{{"name":"without {}","plan":"premium","scopes":[{}]}}"#,
            scope.as_str(),
            others.join(",")
        ));
        let (only, _) = server.create_key(&format!(
            r#"{{"name":"only {}","plan":"premium","points":100,"scopes":["{}"]}}"#,
            scope.as_str(),
            scope.as_str()
        ));
        for (method, pattern, needed) in &routes {
            let path = concrete(pattern);
            let headers = [
                ("X-API-Key", without.as_str()),
                ("Content-Type", "application/json"),
            ];
            let answer = server.send(method.as_str(), &path, &headers, Some("{}"));
            let refused = answer.status == 403 && answer.json()["error"] == "scope_not_allowed";
            if *needed == scope {
                assert!(
                    refused,
                    "{method} {pattern} without {}: {}",
                    scope.as_str(),
                    answer.text()
                );
                let message = answer.json()["msg"].as_str().unwrap().to_owned();
                assert!(message.contains(scope.as_str()), "{message}");
            } else {
                assert!(
                    !refused,
                    "{method} {pattern} refused a key holding {}",
                    needed.as_str()
                );
            }
            let headers = [
                ("X-API-Key", only.as_str()),
                ("Content-Type", "application/json"),
            ];
            let answer = server.send(method.as_str(), &path, &headers, Some("{}"));
            let refused = answer.status == 403 && answer.json()["error"] == "scope_not_allowed";
            assert_eq!(
                refused,
                *needed != scope,
                "{method} {pattern} with only {}: {}",
                scope.as_str(),
                answer.text()
            );
        }
    }
}

#[test]
fn scopes_are_shown_set_and_checked_for_names() {
    let server = Server::start();
    let (all, id) = server.create_key(r#"{"name":"plain"}"#);
    let listing = server.admin("GET", "/admin/api/keys", None).json();
    let shown = &listing["data"]["keys"][0]["scopes"];
    assert_eq!(
        shown,
        &serde_json::json!([
            "links:read",
            "links:write",
            "checker",
            "webhooks",
            "security_check",
            "stats"
        ]),
        "a key made without scopes holds them all"
    );
    let me = server.get("/api/v1/me", &[("X-API-Key", &all)]);
    assert_eq!(me.status, 200, "{}", me.text());
    // Narrowed by the admin API: the next request already feels it.
    let patched = server.admin(
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(r#"{"scopes":["links:read"]}"#),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert_eq!(
        patched.json()["data"]["scopes"],
        serde_json::json!(["links:read"])
    );
    let listed = server.get("/api/v1/links", &[("X-API-Key", &all)]);
    assert_eq!(listed.status, 200, "{}", listed.text());
    let created = server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", &all), ("Content-Type", "application/json")],
        Some(r#"{"url":"https://example.com/"}"#),
    );
    created.assert_error(403, "scope_not_allowed");
    // /api/v1/me needs no scope.
    assert_eq!(server.get("/api/v1/me", &[("X-API-Key", &all)]).status, 200);
    for body in [
        r#"{"scopes":[]}"#,
        r#"{"scopes":["links:read","root"]}"#,
        r#"{"scopes":"stats"}"#,
    ] {
        let refused = server.admin("PATCH", &format!("/admin/api/keys/{id}"), Some(body));
        assert_eq!(refused.status, 400, "{body}: {}", refused.text());
    }
    let refused = server.admin(
        "POST",
        "/admin/api/keys",
        Some(r#"{"name":"x","scopes":["admin"]}"#),
    );
    refused.assert_error(400, "invalid_field");
    assert!(refused.text().contains("links:read"), "{}", refused.text());
}
