//! The `panlink` command line, including key commands against a running server.

use std::process::Command;

use crate::harness::{Server, cli};

#[test]
fn version_and_help() {
    let out = Command::new(env!("CARGO_BIN_EXE_panlink"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = Command::new(env!("CARGO_BIN_EXE_panlink"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["serve", "keys", "default-config", "--config", "PANLINK_"] {
        assert!(help.contains(word), "--help lacks {word}: {help}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_panlink"))
        .args(["keys", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for word in [
        "create",
        "list",
        "disable",
        "enable",
        "delete",
        "add-points",
        "set-plan",
        "set-scopes",
    ] {
        assert!(help.contains(word), "keys --help lacks {word}");
    }
}

#[test]
fn a_key_created_by_the_cli_works_at_once_and_a_disabled_one_is_refused_at_once() {
    let server = Server::start();
    let out = server.cli(&[
        "keys", "create", "--name", "from cli", "--plan", "premium", "--points", "40",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let secret = stdout.trim();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the key on stdout: {stdout:?}"
    );
    assert!(secret.starts_with("sk_"), "{secret}");

    let me = server.get("/api/v1/me", &[("X-API-Key", secret)]);
    assert_eq!(me.status, 200, "{}", me.text());
    let id = me.json()["data"]["id"].as_str().unwrap().to_owned();
    assert_eq!(me.json()["data"]["points"], 40);

    let listing = server.cli(&["keys", "list"]);
    let table = String::from_utf8(listing.stdout).unwrap();
    assert!(
        table.contains(&id) && table.contains("from cli") && table.contains("premium"),
        "{table}"
    );
    assert!(!table.contains(secret), "the list shows a secret");

    assert!(server.cli(&["keys", "disable", &id]).status.success());
    server
        .get("/api/v1/me", &[("X-API-Key", secret)])
        .assert_error(403, "key_disabled");
    assert!(server.cli(&["keys", "enable", &id]).status.success());
    assert_eq!(
        server.get("/api/v1/me", &[("X-API-Key", secret)]).status,
        200
    );

    assert!(
        server
            .cli(&["keys", "add-points", &id, "10"])
            .status
            .success()
    );
    assert!(
        server
            .cli(&["keys", "set-plan", &id, "free"])
            .status
            .success()
    );
    let me = server.get("/api/v1/me", &[("X-API-Key", secret)]).json();
    assert_eq!(me["data"]["points"], 50);
    assert_eq!(me["data"]["plan"], "free");
    let refused = server.cli(&["keys", "add-points", &id, "-51"]);
    assert!(!refused.status.success());

    // Scopes: narrowed by the CLI, felt at once; the list shows them.
    assert!(
        server
            .cli(&["keys", "set-scopes", &id, "links:read,stats"])
            .status
            .success()
    );
    server
        .send(
            "POST",
            "/api/v1/links",
            &[("X-API-Key", secret), ("Content-Type", "application/json")],
            Some(r#"{"url":"https://example.com/"}"#),
        )
        .assert_error(403, "scope_not_allowed");
    let table = String::from_utf8(server.cli(&["keys", "list"]).stdout).unwrap();
    assert!(table.contains("links:read,stats"), "{table}");
    let refused = server.cli(&["keys", "set-scopes", &id, "links:read,root"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("unknown scope"));
    let narrow = server.cli(&[
        "keys",
        "create",
        "--name",
        "reader",
        "--scopes",
        "links:read",
    ]);
    assert!(narrow.status.success());
    let narrow = String::from_utf8(narrow.stdout).unwrap();
    server
        .send(
            "POST",
            "/jobs",
            &[
                ("X-API-Key", narrow.trim()),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"items":["https://pan.quark.cn/s/abc"]}"#),
        )
        .assert_error(403, "scope_not_allowed");

    assert!(server.cli(&["keys", "delete", &id]).status.success());
    server
        .get("/api/v1/me", &[("X-API-Key", secret)])
        .assert_error(401, "invalid_api_key");
    assert!(!server.cli(&["keys", "delete", &id]).status.success());
}

#[test]
fn bad_cli_input_is_refused_with_a_message() {
    let temp = tempfile::tempdir().unwrap();
    let out = cli(
        temp.path(),
        &["keys", "create", "--name", "x", "--plan", "gold"],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("free or premium"));
    let out = cli(temp.path(), &["keys", "disable", "nosuchkey123", "--init"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no key"));
    // The CLI speaks English, the API Chinese.
    let out = cli(temp.path(), &["keys", "create", "--name", " "]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("--name must not be empty"), "{stderr}");
    let help = cli(temp.path(), &["keys", "set-plan", "--help"]);
    assert!(String::from_utf8_lossy(&help.stdout).contains("free|premium"));
}

#[test]
fn key_commands_name_their_data_dir_and_start_none_without_init() {
    let temp = tempfile::tempdir().unwrap();
    let elsewhere = temp.path().join("not-the-server");
    let out = cli(&elsewhere, &["keys", "create", "--name", "lost"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{stderr}");
    assert!(
        stderr.contains("holds no panlink data") && stderr.contains("--init"),
        "{stderr}"
    );
    assert!(!elsewhere.join("lmdb").exists(), "nothing is created");

    let out = cli(
        &elsewhere,
        &["keys", "create", "--name", "站点甲", "--init"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("data dir {}", elsewhere.display()))
    );
    assert!(
        cli(&elsewhere, &["keys", "create", "--name", "b"])
            .status
            .success()
    );
    // Columns line up in display width: the Chinese name takes two columns per character.
    let listing = cli(&elsewhere, &["keys", "list"]);
    let text = String::from_utf8(listing.stdout).unwrap();
    let plan_column: Vec<usize> = text
        .lines()
        .map(|line| {
            let at = line.find("PLAN").or_else(|| line.find("free")).unwrap();
            unicode_width::UnicodeWidthStr::width(&line[..at])
        })
        .collect();
    assert_eq!(plan_column.len(), 3, "{text}");
    assert!(plan_column.windows(2).all(|w| w[0] == w[1]), "{text}");
}

#[test]
fn invalid_configuration_stops_start_up_naming_the_key() {
    let temp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_panlink"))
        .arg("serve")
        .env_clear()
        .env("PANLINK_DATA_DIR", temp.path())
        .env("PANLINK_HTTP_MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("http.max_connections") && stderr.contains("between 1 and"),
        "{stderr}"
    );

    let config = temp.path().join("bad.toml");
    std::fs::write(&config, "[http]\nmax_conections = 3\n").unwrap();
    let out = serve_with_config(&config, temp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("max_conections"));
}

/// `panlink serve --config config` on `data_dir`, nothing else of the environment: for
/// configurations that must be refused.
fn serve_with_config(config: &std::path::Path, data_dir: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_panlink"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .env_clear()
        .env("PANLINK_DATA_DIR", data_dir)
        .output()
        .unwrap()
}

#[test]
fn default_config_prints_the_shipped_config_toml_and_serve_reads_an_edited_copy() {
    let out = Command::new(env!("CARGO_BIN_EXE_panlink"))
        .arg("default-config")
        .env_clear()
        .env("PANLINK_HTTP_MAX_CONNECTIONS", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "an invalid environment does not stop it"
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        printed,
        include_str!("../../config.toml"),
        "run `cargo run -- default-config > config.toml`"
    );
    // A file edited from the template is read: the key changed in it takes effect.
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("panlink.toml");
    std::fs::write(
        &config,
        printed.replace("max_connections = 20000", "max_connections = 0"),
    )
    .unwrap();
    let out = serve_with_config(&config, temp.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("http.max_connections"));
}

#[test]
fn the_generated_admin_token_is_shown_even_when_logging_is_off_and_bad_levels_are_refused() {
    let server = Server::start_with(&[
        ("PANLINK_ADMIN_TOKEN", ""),
        ("PANLINK_SERVER_LOG_LEVEL", "off"),
    ]);
    let token = std::fs::read_to_string(server.data_dir.join("admin_token")).unwrap();
    let log = server.log();
    assert!(
        log.contains(token.trim()) && log.contains("generated the admin token"),
        "{log}"
    );
    // tracing would read these as target names and log nothing at all.
    for level in ["warning", "verbose", "panlink=debugg"] {
        let temp = tempfile::tempdir().unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_panlink"))
            .arg("serve")
            .env_clear()
            .env("PANLINK_DATA_DIR", temp.path())
            .env("PANLINK_SERVER_LOG_LEVEL", level)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{level}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("server.log_level") && stderr.contains("warn"),
            "{stderr}"
        );
    }
}

#[test]
fn a_busy_port_is_named_by_mock_upstream() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = busy.local_addr().unwrap().to_string();
    let temp = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_panlink"))
        .args(["mock-upstream", "--listen", &addr, "--ca-out"])
        .arg(temp.path().join("ca.pem"))
        .env_clear()
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&addr) && stderr.contains("in use"),
        "{stderr}"
    );
}

/// `panlink check` runs the engine in its own process against the mock: results in input order,
/// exit status 0 / 1 / 2, and the three formats.
#[test]
fn check_reads_links_from_stdin_and_answers_in_input_order_with_an_exit_status() {
    use std::io::Write;
    let mock = crate::harness::Mock::start(0);
    let dir = tempfile::tempdir().unwrap();
    let run = |input: &str, args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_panlink"))
            .arg("check")
            .args(args)
            .env_clear()
            .envs(mock.server_env())
            // The configured data dir is never opened: a check uses a store of its own.
            .env("PANLINK_DATA_DIR", dir.path().join("never"))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let links = "https://pan.quark.cn/s/goneCLI1\n看这里 https://pan.baidu.com/s/1okCLIAA2 提取码: abcd\nhttps://pan.quark.cn/s/okCLI3\n";
    let out = run(links, &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["url"], "https://pan.quark.cn/s/goneCLI1");
    assert_eq!(lines[0]["state"], "invalid");
    assert_eq!(lines[1]["provider"], "baidu");
    assert_eq!(lines[1]["state"], "valid");
    assert_eq!(lines[2]["state"], "valid");
    assert!(
        !dir.path().join("never").exists(),
        "the configured data dir was opened"
    );
    // All valid: 0; csv and table.
    let out = run("https://pan.quark.cn/s/okCLI4\n", &["--format", "csv"]);
    assert_eq!(out.status.code(), Some(0));
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(
        csv.starts_with("\u{feff}item_id,url,provider,state"),
        "{csv}"
    );
    assert!(
        csv.contains("https://pan.quark.cn/s/okCLI4,quark,valid"),
        "{csv}"
    );
    let out = run("https://pan.quark.cn/s/okCLI5\n", &["--format", "table"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.starts_with("STATE"), "{table}");
    assert!(table.contains("all_checks_passed"), "{table}");
    // Nothing to check: 2.
    let out = run("no links here\n", &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no share link"));
}

#[test]
fn key_changes_are_refused_in_cluster_mode_and_listing_is_not() {
    let temp = tempfile::tempdir().unwrap();
    assert!(
        cli(
            temp.path(),
            &["keys", "create", "--name", "站点乙", "--init"]
        )
        .status
        .success()
    );
    let clustered = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_panlink"))
            .args(args)
            .env_clear()
            .env("PANLINK_DATA_DIR", temp.path())
            .env("PANLINK_STORAGE_MAP_SIZE_MB", "64")
            .env("PANLINK_CLUSTER_NATS_URLS", r#"["nats://127.0.0.1:1"]"#)
            .output()
            .unwrap()
    };
    let out = clustered(&["keys", "create", "--name", "b"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("cluster mode") && stderr.contains("/admin/api/keys"),
        "{stderr}"
    );
    let out = clustered(&["keys", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("站点乙"));
}

#[test]
fn commands_that_would_change_only_this_nodes_copy_are_refused_in_cluster_mode() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_panlink"))
            .args(args)
            .env_clear()
            .env("PANLINK_DATA_DIR", dir.path())
            .env("PANLINK_CLUSTER_NATS_URLS", r#"["nats://127.0.0.1:1"]"#)
            .output()
            .unwrap()
    };
    for args in [
        &["links", "import", "-", "--owner", "k1"][..],
        &["keys", "create", "--name", "x", "--init"][..],
    ] {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?}: {stderr}");
        assert!(
            stderr.contains("cluster mode") && stderr.contains("only this node's copy"),
            "{args:?}: {stderr}"
        );
    }
}
