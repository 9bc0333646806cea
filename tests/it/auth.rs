//! `X-API-Key`: missing, unknown, malformed, disabled, rate limited.

use crate::harness::Server;

#[test]
fn missing_unknown_and_malformed_keys_are_401() {
    let server = Server::start();
    server
        .get("/api/v1/me", &[])
        .assert_error(401, "missing_api_key");
    server
        .get("/api/v1/me", &[("X-API-Key", "")])
        .assert_error(401, "missing_api_key");
    let unknown = format!("sk_{}", "Z".repeat(32));
    server
        .get("/api/v1/me", &[("X-API-Key", &unknown)])
        .assert_error(401, "invalid_api_key");
    server
        .get("/api/v1/me", &[("X-API-Key", "not-a-key")])
        .assert_error(401, "invalid_api_key");
    // The admin token is not an API key.
    server
        .get("/api/v1/me", &[("X-API-Key", crate::harness::ADMIN_TOKEN)])
        .assert_error(401, "invalid_api_key");
}

#[test]
fn a_valid_key_sees_its_account() {
    let server = Server::start();
    let (secret, id) = server.create_key(r#"{"name": "site a", "plan": "premium", "points": 120}"#);
    let response = server.get("/api/v1/me", &[("X-API-Key", &secret)]);
    assert_eq!(response.status, 200, "{}", response.text());
    let json = response.json();
    assert_eq!(json["code"], 0);
    assert_eq!(json["msg"], "Success");
    assert_eq!(json["request_id"], response.header("x-request-id").unwrap());
    assert_eq!(json["data"]["id"], id.as_str());
    assert_eq!(json["data"]["plan"], "premium");
    assert_eq!(json["data"]["points"], 120);
    assert_eq!(
        json["data"]["rate_per_s"], 100,
        "the configured default rate"
    );
}

#[test]
fn a_disabled_key_is_403_and_enabled_again_works() {
    let server = Server::start();
    let (secret, id) = server.create_key(r#"{"name": "x"}"#);
    let patch = server.admin(
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(r#"{"disabled": true}"#),
    );
    assert_eq!(patch.status, 200, "{}", patch.text());
    let json = server
        .get("/api/v1/me", &[("X-API-Key", &secret)])
        .assert_error(403, "key_disabled");
    assert_eq!(json["msg"], "账户已禁用");
    server.admin(
        "PATCH",
        &format!("/admin/api/keys/{id}"),
        Some(r#"{"disabled": false}"#),
    );
    assert_eq!(
        server.get("/api/v1/me", &[("X-API-Key", &secret)]).status,
        200
    );
}

#[test]
fn a_key_over_its_rate_gets_429_with_retry_after() {
    let server = Server::start();
    let (secret, _) = server.create_key(r#"{"name": "slow", "rate_per_s": 1, "burst": 3}"#);
    for _ in 0..3 {
        assert_eq!(
            server.get("/api/v1/me", &[("X-API-Key", &secret)]).status,
            200
        );
    }
    let limited = server.get("/api/v1/me", &[("X-API-Key", &secret)]);
    limited.assert_error(429, "rate_limited");
    let retry: u32 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "{retry}");
    // Another key is not affected.
    let (other, _) = server.create_key(r#"{"name": "other"}"#);
    assert_eq!(
        server.get("/api/v1/me", &[("X-API-Key", &other)]).status,
        200
    );
    // The bucket refills.
    crate::harness::wait_until(
        std::time::Duration::from_secs(5),
        "the key's bucket to refill",
        || (server.get("/api/v1/me", &[("X-API-Key", &secret)]).status == 200).then_some(()),
    );
}
