//! Online backup, restore and verify: a backup taken while links are being created holds every
//! link and key acknowledged before it started; a restore never writes into a served data dir.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use serde_json::json;

use crate::harness::{Server, cli};

fn create_batch(server: &Server, key: &str, tag: &str, n: usize) -> Vec<String> {
    let items: Vec<_> = (0..n)
        .map(|i| json!({"url": format!("https://example.com/{tag}/{i}")}))
        .collect();
    let answer = server.call(
        key,
        "POST",
        "/api/v1/links/batch",
        Some(&json!({"items": items})),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["data"]["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_backup_under_write_load_restores_every_acknowledged_link_and_key() {
    let server = Server::start();
    let key = server.job_key("backup");
    let before = create_batch(&server, &key, "before", 300);
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    // Writers keep creating links while the backup runs.
    let stop = AtomicBool::new(false);
    let written = AtomicU32::new(0);
    let backup = std::thread::scope(|scope| {
        for w in 0..2 {
            let (server, key, stop, written) = (&server, &key, &stop, &written);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    create_batch(server, key, &format!("during-{w}"), 50);
                    written.fetch_add(50, Ordering::Relaxed);
                }
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        let out = cli(
            &server.data_dir,
            &["backup", "--to", backup_dir.to_str().unwrap()],
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
        stop.store(true, Ordering::Relaxed);
        out
    });
    assert!(
        backup.status.success(),
        "{}",
        String::from_utf8_lossy(&backup.stderr)
    );
    assert!(
        written.load(Ordering::Relaxed) > 0,
        "no load during the backup"
    );
    // A second backup into the same (now non-empty) directory is refused.
    let again = cli(
        &server.data_dir,
        &["backup", "--to", backup_dir.to_str().unwrap()],
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    // A restore into the data dir the server is serving is refused, and changes nothing.
    let refused = cli(
        &server.data_dir,
        &[
            "restore",
            "--from",
            backup_dir.to_str().unwrap(),
            "--replace",
        ],
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("serving"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(server.get(&format!("/{}", before[0]), &[]).status, 302);

    // Restore into a new data dir, verify it, serve it.
    let restored_dir = dir.path().join("restored");
    let restore = cli(
        &restored_dir,
        &["restore", "--from", backup_dir.to_str().unwrap()],
    );
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    let over = cli(
        &restored_dir,
        &["restore", "--from", backup_dir.to_str().unwrap()],
    );
    assert!(!over.status.success(), "existing data needs --replace");
    let verify = cli(&restored_dir, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let table = String::from_utf8_lossy(&verify.stdout);
    assert!(table.contains("links"), "{table}");
    let restored = Server::start_at(&restored_dir, &[]);
    for code in &before {
        assert_eq!(
            restored.get(&format!("/{code}"), &[]).status,
            302,
            "link {code} acknowledged before the backup"
        );
    }
    let me = restored.call(&key, "GET", "/api/v1/me", None);
    assert_eq!(me.status, 200, "the key made before the backup");
}

#[test]
fn verify_reads_a_live_data_dir_and_backup_needs_data() {
    let server = Server::start();
    let key = server.job_key("verify");
    create_batch(&server, &key, "v", 10);
    let verify = cli(&server.data_dir, &["verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = cli(
        &dir.path().join("none"),
        &["backup", "--to", dir.path().join("b").to_str().unwrap()],
    );
    assert!(!empty.status.success());
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no panlink data"));
}
