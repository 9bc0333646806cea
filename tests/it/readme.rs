//! The README's paste-in block, run as written: from a fresh directory to real verdicts from the
//! mock drives. Only the build line is skipped (this binary is the build), and the two ports
//! become free ones so that the test runs beside others.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::wait_timeout;

/// A free port below Linux's ephemeral range (32768 and up), where the other tests' servers,
/// which bind port 0, never land between this check and the block's own bind.
fn free_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (0..1000)
        .map(|n| 20_000 + ((seed as usize + n * 7919) % 10_000) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .expect("a free port between 20000 and 30000")
}

/// The shell block between the README's quickstart markers.
fn quickstart_block() -> String {
    let readme = include_str!("../../README.md");
    let block = readme
        .split("<!-- quickstart:begin -->")
        .nth(1)
        .and_then(|rest| rest.split("<!-- quickstart:end -->").next())
        .expect("README has the quickstart markers");
    block
        .trim()
        .strip_prefix("```sh")
        .and_then(|b| b.strip_suffix("```"))
        .expect("the block is one sh code fence")
        .to_owned()
}

#[test]
fn the_readme_block_reaches_real_verdicts_from_the_mock() {
    let block = quickstart_block();
    assert!(block.contains("bin=./target/release/panlink"), "{block}");
    let script: String = block
        .lines()
        .filter(|line| !line.starts_with("cargo "))
        .collect::<Vec<_>>()
        .join("\n")
        .replace(
            "bin=./target/release/panlink",
            &format!("bin={}", env!("CARGO_BIN_EXE_panlink")),
        )
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{}", free_port()))
        .replace("127.0.0.1:9443", &format!("127.0.0.1:{}", free_port()));
    let dir = tempfile::tempdir().unwrap();
    // The block leaves the mock and the server running; the wrapper stops them at the end.
    let wrapped = format!("set -e\n{script}\nkill $(jobs -p)\nwait\n");
    // Its own process group: on a timeout the mock and the server it started go too (they hold
    // the output pipes open, so waiting for the output would wait for them).
    let mut child = Command::new("bash")
        .arg("-c")
        .arg(&wrapped)
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let status = wait_timeout(&mut child, Duration::from_secs(60));
    if status.is_none() {
        let _ = Command::new("kill")
            .args(["-KILL", &format!("-{}", child.id())])
            .status();
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        status.is_some(),
        "the block did not finish: {stdout}\n{stderr}"
    );
    let results: Vec<serde_json::Value> = stdout
        .split("\n\n")
        .filter(|event| event.contains("event: result"))
        .filter_map(|event| {
            let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
            serde_json::from_str(data).ok()
        })
        .collect();
    let states: Vec<(String, String)> = results
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap_or_default().to_owned(),
                format!(
                    "{}/{}",
                    r["state"].as_str().unwrap_or("?"),
                    r["reason"].as_str().unwrap_or("?")
                ),
            )
        })
        .collect();
    assert_eq!(results.len(), 3, "{stdout}\n{stderr}");
    for (url, expected) in [
        ("https://pan.quark.cn/s/ok1abc", "valid/"),
        ("https://pan.quark.cn/s/gone1abc", "invalid/share_cancelled"),
        ("https://pan.baidu.com/s/1lockabc?pwd=abcd", "valid/"),
    ] {
        let (_, got) = states
            .iter()
            .find(|(u, _)| u == url)
            .unwrap_or_else(|| panic!("no verdict for {url}: {stdout}"));
        assert!(got.starts_with(expected), "{url}: {got}");
    }
    assert!(stdout.contains("event: done"), "{stdout}");
}
