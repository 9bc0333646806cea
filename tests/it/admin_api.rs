//! The admin JSON API for keys, with and without the admin token.

use crate::harness::{ADMIN_TOKEN, Server};

#[test]
fn admin_api_needs_the_bearer_token() {
    let server = Server::start();
    server
        .get("/admin/api/keys", &[])
        .assert_error(401, "admin_unauthorized");
    server
        .get(
            "/admin/api/keys",
            &[("Authorization", "Bearer wrong-token-wrong-token")],
        )
        .assert_error(401, "admin_unauthorized");
    server
        .get("/admin/api/keys", &[("Authorization", ADMIN_TOKEN)])
        .assert_error(401, "admin_unauthorized");
    // An API key does not open the admin API.
    let (secret, _) = server.create_key(r#"{"name": "k"}"#);
    server
        .get("/admin/api/keys", &[("X-API-Key", &secret)])
        .assert_error(401, "admin_unauthorized");
    server
        .send("DELETE", "/admin/api/keys/abcdefghijkl", &[], None)
        .assert_error(401, "admin_unauthorized");
}

#[test]
fn create_list_patch_delete() {
    let server = Server::start();
    let created = server.admin(
        "POST",
        "/admin/api/keys",
        Some(r#"{"name": "站点 A", "points": 30}"#),
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let data = created.json()["data"].clone();
    let secret = data["key"].as_str().unwrap().to_owned();
    let id = data["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_") && secret.len() == 35, "{secret}");
    assert_eq!(data["name"], "站点 A");
    assert_eq!(data["plan"], "free");
    assert_eq!(data["points"], 30);
    assert_eq!(data["status"], "active");

    // The listing never shows a secret.
    let listing = server.admin("GET", "/admin/api/keys", None);
    assert_eq!(listing.status, 200);
    assert!(!listing.text().contains(&secret));
    assert!(!listing.text().contains(&secret[3..]));
    let json = listing.json();
    assert_eq!(json["data"]["total"], 1);
    assert_eq!(json["data"]["keys"][0]["id"], id.as_str());

    // Usage shows up (from the in-memory counters before they are flushed).
    server.get("/api/v1/me", &[("X-API-Key", &secret)]);
    server.get("/api/v1/me", &[("X-API-Key", &secret)]);
    let key = &server.admin("GET", "/admin/api/keys", None).json()["data"]["keys"][0];
    assert_eq!(key["requests"], 2);
    assert!(key["last_used_at"].is_string());

    let path = format!("/admin/api/keys/{id}");
    let patched = server.admin(
        "PATCH",
        &path,
        Some(r#"{"plan": "premium", "add_points": 70, "name": "B"}"#),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let data = patched.json()["data"].clone();
    assert_eq!(data["plan"], "premium");
    assert_eq!(data["points"], 100);
    assert_eq!(data["name"], "B");

    let negative = server.admin("PATCH", &path, Some(r#"{"add_points": -101}"#));
    negative.assert_error(409, "conflict");
    let still = server.get("/api/v1/me", &[("X-API-Key", &secret)]).json();
    assert_eq!(
        still["data"]["points"], 100,
        "a refused change changes nothing"
    );

    server
        .admin("PATCH", &path, Some("{}"))
        .assert_error(400, "invalid_field");
    server
        .admin("PATCH", &path, Some(r#"{"plan": "gold"}"#))
        .assert_error(400, "invalid_field");
    server
        .admin("POST", "/admin/api/keys", Some(r#"{"name": "   "}"#))
        .assert_error(400, "invalid_field");

    let deleted = server.admin("DELETE", &path, None);
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.json()["data"]["deleted"], true);
    server
        .get("/api/v1/me", &[("X-API-Key", &secret)])
        .assert_error(401, "invalid_api_key");
    server
        .admin("DELETE", &path, None)
        .assert_error(404, "not_found");
    server
        .admin(
            "PATCH",
            "/admin/api/keys/nonexistent1",
            Some(r#"{"disabled": true}"#),
        )
        .assert_error(404, "not_found");
    server
        .admin(
            "PATCH",
            "/admin/api/keys/bad!",
            Some(r#"{"disabled": true}"#),
        )
        .assert_error(404, "not_found");
}
