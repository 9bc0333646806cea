//! LMDB under pressure: a full map is a clear 507, not a crash, and loses nothing stored.

use crate::harness::Server;

#[test]
fn a_full_map_answers_507_and_keeps_what_was_stored() {
    let server = Server::start_with(&[("PANLINK_STORAGE_MAP_SIZE_MB", "1")]);
    let name = "n".repeat(64);
    let body = format!(r#"{{"name": "{name}"}}"#);
    let mut created = Vec::new();
    let mut full = None;
    for _ in 0..20_000 {
        let response = server.admin("POST", "/admin/api/keys", Some(&body));
        match response.status {
            201 => created.push(response.json()["data"]["key"].as_str().unwrap().to_owned()),
            _ => {
                full = Some(response);
                break;
            }
        }
    }
    let full = full.expect("a 1 MiB map fills up");
    let json = full.assert_error(507, "storage_full");
    assert!(json["msg"].as_str().unwrap().contains("存储空间已满"));
    assert!(created.len() > 100, "only {} keys fit", created.len());

    // Still serving, and everything acknowledged is there.
    assert_eq!(server.get("/health", &[]).status, 200);
    let listing = server.admin("GET", "/admin/api/keys", None).json();
    assert_eq!(listing["data"]["total"], created.len());
    let first = &created[0];
    let last = created.last().unwrap();
    for secret in [first, last] {
        assert_eq!(
            server.get("/api/v1/me", &[("X-API-Key", secret)]).status,
            200
        );
    }
    assert!(
        server.log().contains("map is full"),
        "no log line for the full map"
    );
}
