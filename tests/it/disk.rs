//! A full disk and a read-only disk under the data dir: clear errors, reads go on,
//! nothing acknowledged is lost, and writes resume when the disk does.
//!
//! The disks are real file systems mounted for the test (the suite runs as root, like CI): a
//! small tmpfs that a ballast file fills, and an ext4 image on a loop device that the kernel
//! turns read-only through `trigger_fs_error` (what ext4 does itself on an I/O error with
//! `errors=remount-ro`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Mock, Server};

/// Runs `program args…`, which must succeed.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("{program} cannot run ({err}): this test needs root and util-linux")
        });
    assert!(
        output.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A file system mounted on a temp dir; unmounted (lazily) when dropped.
struct Mounted {
    dir: tempfile::TempDir,
    /// The ext4 image behind the mount, if any.
    image: Option<PathBuf>,
}

impl Mounted {
    fn tmpfs(size: &str) -> Mounted {
        let dir = tempfile::tempdir().unwrap();
        let mount = dir.path().join("disk");
        std::fs::create_dir(&mount).unwrap();
        run(
            "mount",
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                mount.to_str().unwrap(),
            ],
        );
        Mounted { dir, image: None }
    }

    fn ext4(size_mb: u64) -> Mounted {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("disk.img");
        std::fs::File::create(&image)
            .unwrap()
            .set_len(size_mb << 20)
            .unwrap();
        run("mkfs.ext4", &["-q", "-F", image.to_str().unwrap()]);
        let mounted = Mounted {
            dir,
            image: Some(image),
        };
        std::fs::create_dir(mounted.mount()).unwrap();
        mounted.mount_image();
        mounted
    }

    fn mount_image(&self) {
        let image = self.image.as_ref().unwrap();
        run(
            "mount",
            &[
                "-o",
                "loop,errors=remount-ro",
                image.to_str().unwrap(),
                self.mount().to_str().unwrap(),
            ],
        );
    }

    fn mount(&self) -> PathBuf {
        self.dir.path().join("disk")
    }

    /// The data dir: the mount point itself, so the server's log (`disk.log`, beside it) is
    /// off the disk.
    fn data_dir(&self) -> PathBuf {
        self.mount()
    }

    /// Makes the kernel turn this ext4 file system read-only, as an I/O error would.
    fn fail(&self) {
        let source = Command::new("findmnt")
            .args(["-n", "-o", "SOURCE"])
            .arg(self.mount())
            .output()
            .unwrap();
        let device = String::from_utf8(source.stdout).unwrap();
        let device = Path::new(device.trim()).file_name().unwrap().to_owned();
        let trigger = Path::new("/sys/fs/ext4")
            .join(device)
            .join("trigger_fs_error");
        std::fs::write(&trigger, "panlink test\n").unwrap();
    }

    /// Unmounts, repairs and mounts the image again: the operator's recovery.
    fn repair(&self) {
        run("umount", &[self.mount().to_str().unwrap()]);
        let image = self.image.as_ref().unwrap();
        // Exit codes 0–2 mean "no errors" or "errors corrected".
        let status = Command::new("e2fsck")
            .args(["-f", "-y"])
            .arg(image)
            .output()
            .unwrap()
            .status;
        assert!(status.code().is_some_and(|c| c <= 2), "e2fsck: {status}");
        self.mount_image();
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.mount()).status();
    }
}

/// Writes a ballast file on `dir` until the file system is full.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("ballast");
    let mut file = std::fs::File::create(&path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) => {
                assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
                break;
            }
        }
    }
    path
}

fn create_link(server: &Server, key: &str, n: usize) -> crate::harness::Response {
    server.send(
        "POST",
        "/api/v1/links",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&json!({"url": format!("https://example.com/page/{n}")}).to_string()),
    )
}

/// The short code of a created link.
fn code_of(created: &crate::harness::Response) -> String {
    created.json()["data"]["code"]
        .as_str()
        .expect("a created link's code")
        .to_owned()
}

/// Creates links `ns` (each must be acknowledged); their codes.
fn create_links(server: &Server, key: &str, ns: std::ops::Range<usize>) -> Vec<String> {
    ns.map(|n| {
        let response = create_link(server, key, n);
        assert_eq!(response.status, 200, "{}", response.text());
        code_of(&response)
    })
    .collect()
}

fn health(server: &Server) -> Value {
    let response = server.get("/health", &[]);
    assert_eq!(response.status, 200);
    response.json()
}

fn assert_redirects(server: &Server, code: &str, n: usize) {
    let response = server.get(&format!("/{code}"), &[]);
    assert_eq!(response.status, 302, "{code}");
    assert_eq!(
        response.header("location"),
        Some(format!("https://example.com/page/{n}").as_str())
    );
}

#[test]
fn a_full_disk_refuses_writes_with_507_keeps_results_and_recovers_when_space_returns() {
    if !crate::harness::root_or_skip(
        "a_full_disk_refuses_writes_with_507_keeps_results_and_recovers_when_space_returns",
    ) {
        return;
    }
    let disk = Mounted::tmpfs("16m");
    let mock = Mock::start(1500);
    let server = Server::with_mock_at(
        &mock,
        &disk.data_dir(),
        &[("PANLINK_CHECKER_RETRY_BACKOFF_MS", "20")],
    );
    let key = server.job_key("full-disk");
    let mut codes = create_links(&server, &key, 0..20);
    // A job whose checks (two mock round trips of 1.5 s) end after the disk is full.
    let items: Vec<String> = (0..12)
        .map(|n| format!("https://pan.quark.cn/s/okDISK{n:04}"))
        .collect();
    let job = server.submit(&key, &json!({ "items": items }));

    let ballast = fill(&disk.mount());
    // The file can still reuse its free pages for a while: new links grow it, until it cannot.
    let mut refused = None;
    for n in 20..20_000 {
        let response = create_link(&server, &key, n);
        match response.status {
            200 => codes.push(code_of(&response)),
            _ => {
                refused = Some(response);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses new links");
    refused.assert_error(507, "storage_full");
    let state = health(&server);
    assert_eq!(
        (state["status"].as_str(), state["storage"].as_str()),
        (Some("degraded"), Some("full")),
        "{state}"
    );
    // Reads go on.
    assert_redirects(&server, &codes[0], 0);
    assert_redirects(&server, codes.last().unwrap(), codes.len() - 1);
    assert_eq!(server.get("/api/v1/me", &[("X-API-Key", &key)]).status, 200);
    // Results that arrive meanwhile cannot be recorded; they are checked again, not lost.
    let started = Instant::now();
    while !server.log().contains("could not record results") {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no result was refused while the disk was full"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(server.log().contains("the disk under the data dir is full"));

    std::fs::remove_file(ballast).unwrap();
    let events = server
        .events(&key, &job, &[])
        .until_done(Duration::from_secs(60));
    let ids = crate::harness::result_ids(&events);
    assert_eq!(
        ids,
        (1..=12).collect::<Vec<_>>(),
        "every result once, in order"
    );
    let created = create_link(&server, &key, codes.len());
    assert_eq!(created.status, 200, "writes resume: {}", created.text());
    codes.push(code_of(&created));
    assert_eq!(health(&server)["storage"], "ok");

    // Nothing acknowledged was lost, and nothing is corrupt: every link after a restart.
    let server = server.restart();
    for (n, code) in codes.iter().enumerate() {
        assert_redirects(&server, code, n);
    }
    let overview = server.job(&key, &job).json();
    assert_eq!(overview["totals"]["done"], 12, "{overview}");
    assert_eq!(overview["totals"]["valid"], 12, "{overview}");
}

/// LMDB reports a write the file system took only part of as a bare `EIO` ("short write,
/// filesystem full?" in `mdb_page_flush`), not `ENOSPC`: a batch bigger than the space left
/// must still be refused as `storage_full`, not as an internal error.
#[test]
fn a_write_that_only_partly_fits_is_refused_with_507_not_500() {
    if !crate::harness::root_or_skip("a_write_that_only_partly_fits_is_refused_with_507_not_500") {
        return;
    }
    let disk = Mounted::tmpfs("8m");
    let server = Server::start_at(&disk.data_dir(), &[]);
    let key = server.job_key("short-write");
    let codes = create_links(&server, &key, 0..5);
    let ballast = fill(&disk.mount());
    // Leave 64 KiB: far less than the batch's 1.6 MB of new pages, which LMDB writes in one
    // `pwritev` run that the file system cuts short.
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&ballast)
        .unwrap();
    let len = file.metadata().unwrap().len();
    file.set_len(len - 64 * 1024).unwrap();
    // Closed now: tmpfs frees a removed file's pages only when no descriptor holds it.
    drop(file);
    let long = "x".repeat(3900);
    let items: Vec<Value> = (0..400)
        .map(|n| json!({"url": format!("https://example.com/{long}/{n}")}))
        .collect();
    let refused = server.send(
        "POST",
        "/api/v1/links/batch",
        &[("X-API-Key", &key), ("Content-Type", "application/json")],
        Some(&json!({ "items": items }).to_string()),
    );
    refused.assert_error(507, "storage_full");
    // The key-usage flush that follows (within a second) still fits in the last 64 KiB; its
    // commit must not clear `full`.
    let commits = server.metric("panlink_lmdb_commit_seconds_count");
    crate::harness::wait_until(Duration::from_secs(10), "the next commit", || {
        (server.metric("panlink_lmdb_commit_seconds_count") > commits).then_some(())
    });
    assert_eq!(health(&server)["storage"], "full");
    for (n, code) in codes.iter().enumerate() {
        assert_redirects(&server, code, n);
    }
    std::fs::remove_file(ballast).unwrap();
    let created = create_link(&server, &key, codes.len());
    assert_eq!(created.status, 200, "writes resume: {}", created.text());
    assert_eq!(health(&server)["storage"], "ok");
    // The pages the cut-short write left in the file are not part of any commit.
    let mut codes = codes;
    codes.push(code_of(&created));
    let server = server.restart();
    for (n, code) in codes.iter().enumerate() {
        assert_redirects(&server, code, n);
    }
}

#[test]
fn a_read_only_disk_refuses_writes_with_503_serves_reads_and_recovers_after_repair() {
    if !crate::harness::root_or_skip(
        "a_read_only_disk_refuses_writes_with_503_serves_reads_and_recovers_after_repair",
    ) {
        return;
    }
    let disk = Mounted::ext4(32);
    let data_dir = disk.data_dir();
    // The stop on the read-only disk retries its last writes for the whole grace: keep it short.
    let short_stop = [
        ("PANLINK_HTTP_SHUTDOWN_GRACE_MS", "1000"),
        ("PANLINK_HTTP_HANDOVER_LINGER_MS", "500"),
    ];
    let server = Server::start_at(&data_dir, &short_stop);
    let key = server.job_key("read-only");
    let codes = create_links(&server, &key, 0..50);

    disk.fail();
    let refused = create_link(&server, &key, 50);
    let json = refused.assert_error(503, "storage_read_only");
    assert!(json["msg"].as_str().unwrap().contains("只读"), "{json}");
    assert_eq!(refused.header("retry-after"), Some("30"));
    let state = health(&server);
    assert_eq!(
        (state["status"].as_str(), state["storage"].as_str()),
        (Some("degraded"), Some("read_only")),
        "{state}"
    );
    for (n, code) in codes.iter().enumerate() {
        assert_redirects(&server, code, n);
    }
    assert!(server.log().contains("read-only file system"));
    let mut server = server;
    server.stop();

    // Nothing can open the store on the read-only disk, and it says why.
    let output = crate::harness::cli(&data_dir, &["keys", "list"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("read-only"), "{stderr}");

    // After the operator's repair, everything acknowledged is there and writes go through.
    disk.repair();
    let server = Server::start_at(&data_dir, &[]);
    for (n, code) in codes.iter().enumerate() {
        assert_redirects(&server, code, n);
    }
    let created = create_link(&server, &key, codes.len());
    assert_eq!(created.status, 200, "{}", created.text());
    assert_eq!(health(&server)["storage"], "ok");
}

/// Creates `n` links in one batch and follows each once: `n` visits counted in memory only.
fn links_clicked_once(server: &Server, key: &str, n: usize) -> Vec<String> {
    let items: Vec<Value> = (0..n)
        .map(|i| json!({"url": format!("https://example.com/page/{i}")}))
        .collect();
    let created = server.send(
        "POST",
        "/api/v1/links/batch",
        &[("X-API-Key", key), ("Content-Type", "application/json")],
        Some(&json!({ "items": items }).to_string()),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let codes: Vec<String> = created.json()["data"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["data"]["code"].as_str().unwrap().to_owned())
        .collect();
    for (i, code) in codes.iter().enumerate() {
        assert_redirects(server, code, i);
    }
    codes
}

#[test]
fn clicks_pending_at_sigterm_are_retried_until_the_disk_has_room_and_counted_exactly_when_lost() {
    if !crate::harness::root_or_skip(
        "clicks_pending_at_sigterm_are_retried_until_the_disk_has_room_and_counted_exactly_when_lost",
    ) {
        return;
    }
    const LINKS: usize = 1000;
    let disk = Mounted::tmpfs("8m");
    let env = [
        // Clicks stay in memory until shutdown.
        ("PANLINK_LINKS_CLICK_FLUSH_MS", "3600000"),
        ("PANLINK_HTTP_SHUTDOWN_GRACE_MS", "4000"),
    ];
    let mut server = Server::start_at(&disk.data_dir(), &env);
    let key = server.job_key("clicks");
    let codes = links_clicked_once(&server, &key, LINKS);
    // The disk fills up; on SIGTERM the flush fails, and is tried again until space returns.
    let ballast = fill(&disk.mount());
    server.sigterm();
    crate::harness::wait_until(Duration::from_secs(10), "a failed flush", || {
        server
            .log()
            .contains("could not journal clicks")
            .then_some(())
    });
    std::fs::remove_file(&ballast).unwrap();
    assert!(
        server
            .wait_exit(Duration::from_secs(20))
            .is_some_and(|s| s.success())
    );
    assert!(!server.log().contains("not written"), "{}", server.log());
    let server = server.restart();
    for code in [&codes[0], &codes[LINKS - 1]] {
        let stats = server.get(
            &format!("/api/v1/links/{code}/stats"),
            &[("X-API-Key", &key)],
        );
        let totals = &stats.json()["data"]["totals"];
        assert_eq!(
            totals["human"].as_u64().unwrap() + totals["bot"].as_u64().unwrap(),
            1,
            "{totals}"
        );
    }
    // Refused until the deadline: the exact number of visits lost is logged. (A disk the kernel
    // turned read-only refuses every write; a full one may still take a write into the pages
    // earlier transactions freed.)
    let broken = Mounted::ext4(32);
    let mut server = Server::start_at(&broken.data_dir(), &env);
    let key = server.job_key("lost-clicks");
    links_clicked_once(&server, &key, LINKS);
    broken.fail();
    server.stop();
    let log = server.log();
    assert!(
        log.contains(&format!(
            "{LINKS} counted visits of {LINKS} links not written"
        )),
        "{log}"
    );
}
