//! The command line: `panlink serve`, the `panlink keys …` operator commands, `panlink backup`,
//! `restore` and `verify`, and `panlink default-config`.
//!
//! The key commands open the same LMDB environment as a running server (LMDB serialises writers
//! across processes), so a key created here is accepted by the server at once and a disabled one
//! is refused at once.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use unicode_width::UnicodeWidthStr;

use crate::config::Config;
use crate::keys::repo::{self, KeyPatch, NewKey, UpdateOutcome};
use crate::keys::{Plan, Scopes, validate};
use crate::store::Store;
use crate::timefmt;

#[derive(Debug, Parser)]
#[command(
    name = "panlink",
    version,
    about = "Share-link checker for Chinese cloud drives, and a short-link service",
    long_about = "panlink: one binary that checks cloud-drive share links (the \
drives GET /pool lists) and serves short links, over an HTTP API backed by LMDB.\n\n\
Configuration comes from --config PATH, else ./config.toml if present, else built-in defaults; \
every key can be overridden with an environment variable PANLINK_<SECTION>_<KEY> \
(for example PANLINK_HTTP_MAX_CONNECTIONS=5000), plus the short forms PANLINK_LISTEN, \
PANLINK_DATA_DIR, PANLINK_ADMIN_TOKEN and PANLINK_PUBLIC_BASE_URL."
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./config.toml if present, else built-in defaults.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server until SIGINT or SIGTERM (or until a new server takes over).
    Serve {
        /// A server already serves this data dir: take over its listener and its place without
        /// refusing a connection or losing a request; it finishes what it is doing and exits.
        /// (SIGUSR2 to a running server starts one like this.)
        #[arg(long)]
        take_over: bool,
    },
    /// Manage API keys (works while a server runs on the same data dir).
    Keys(KeysArgs),
    /// Export or import a key's short links (works while a server runs on the same data dir).
    Links {
        #[command(subcommand)]
        command: LinksCommand,
    },
    /// Print a config.toml with every key at its built-in default, each with its doc and what it
    /// accepts (the shipped config.toml is this output).
    DefaultConfig,
    /// Copy the data dir into DIR (new or empty) while the server runs: one consistent,
    /// compacted LMDB copy and the admin token.
    Backup {
        /// Where to write the backup.
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
    },
    /// Put a backup into the data dir. Refuses while a server serves it, and over existing data
    /// unless --replace.
    Restore {
        /// The backup to restore (a directory `panlink backup` wrote).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Overwrite the data dir's existing data (never while a server serves it).
        #[arg(long)]
        replace: bool,
    },
    /// Read every table of the data dir and decode every record; exit 1 if any does not decode.
    Verify,
    /// Check share links without a server: the links (one per line, or forum text) from FILE or
    /// `-` (stdin), one result per link. Exit status 0 when every link is valid, 1 when some are
    /// not, 2 on an error.
    Check {
        /// The file to read, or `-` for standard input.
        #[arg(default_value = "-")]
        input: String,
        /// `jsonl` (one JSON object per line, as the results export), `csv` (UTF-8 with BOM) or
        /// `table`.
        #[arg(long, default_value = "jsonl", value_parser = ["jsonl", "csv", "table"])]
        format: String,
    },
    /// Serve the providers' web APIs on one TLS port, for tests and load runs (see
    /// checker.upstream_override and checker.extra_root_ca).
    MockUpstream {
        /// Address to listen on (port 0 picks a free one; the chosen address is printed).
        #[arg(long, default_value = "127.0.0.1:9443")]
        listen: std::net::SocketAddr,
        /// Where to write the generated CA certificate (PEM).
        #[arg(long, default_value = "mock-ca.pem")]
        ca_out: PathBuf,
        /// Delay added to every answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Offer and speak HTTP/1.1 only (no h2 in ALPN), as some providers' hosts and CDNs do.
        #[arg(long)]
        http1_only: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    /// Create the data dir if it holds no panlink data yet. Without it, a data dir without data
    /// is an error: a key made there would not be the running server's.
    #[arg(long, global = true)]
    pub init: bool,
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print its secret (only the secret) on stdout.
    Create {
        /// A name for the key's owner.
        #[arg(long)]
        name: String,
        /// free or premium.
        #[arg(long, default_value = "free", value_parser = parse_plan, value_name = "free|premium")]
        plan: Plan,
        /// Starting points balance.
        #[arg(long, default_value_t = 0)]
        points: u64,
        /// What the key may do, comma-separated (links:read, links:write, checker, webhooks,
        /// security_check, stats); every scope when omitted.
        #[arg(long, value_parser = parse_scopes, value_name = "SCOPE,…")]
        scopes: Option<Scopes>,
    },
    /// List keys as a table (never the secrets).
    List,
    /// Refuse the key from now on (403).
    Disable {
        /// The key's id (the ID column of `keys list`).
        id: String,
    },
    /// Accept the key again.
    Enable {
        /// The key's id (the ID column of `keys list`).
        id: String,
    },
    /// Delete the key for good.
    Delete {
        /// The key's id (the ID column of `keys list`).
        id: String,
    },
    /// Add points to the key's balance (negative to take them away).
    AddPoints {
        /// The key's id (the ID column of `keys list`).
        id: String,
        /// Points to add, e.g. 500 or -200; the balance cannot go below zero.
        #[arg(allow_negative_numbers = true)]
        points: i64,
    },
    /// Change what the key may do.
    SetScopes {
        /// The key's id (the ID column of `keys list`).
        id: String,
        /// Comma-separated scopes (links:read, links:write, checker, webhooks, security_check,
        /// stats).
        #[arg(value_parser = parse_scopes, value_name = "SCOPE,…")]
        scopes: Scopes,
    },
    /// Change the key's plan.
    SetPlan {
        /// The key's id (the ID column of `keys list`).
        id: String,
        /// free or premium.
        #[arg(value_parser = parse_plan, value_name = "free|premium")]
        plan: Plan,
    },
}

#[derive(Debug, Subcommand)]
pub enum LinksCommand {
    /// Write every link of a key, oldest first, as CSV (the default) or JSON lines.
    Export {
        /// The key whose links to export (the ID column of `keys list`).
        #[arg(long)]
        owner: String,
        #[arg(long, default_value = "csv", value_parser = ["csv", "jsonl"])]
        format: String,
        /// Where to write; standard output when omitted.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Import links from a CSV file (panlink's export, or Shlink's, YOURLS's or Kutt's) for a
    /// key; prints the report (one line of JSON) and exits 1 if some rows failed.
    Import {
        /// The CSV file, or `-` for standard input.
        file: String,
        /// The key the links will belong to (the ID column of `keys list`).
        #[arg(long)]
        owner: String,
        /// Run again with the same key after a failure: rows already imported are not made twice.
        #[arg(long)]
        idempotency_key: Option<String>,
    },
}

fn parse_scopes(text: &str) -> Result<Scopes, String> {
    Scopes::parse(text.split(',')).map_err(|unknown| {
        if unknown.is_empty() {
            "name at least one scope".to_owned()
        } else {
            format!("unknown scope {unknown:?}: use {}", Scopes::known())
        }
    })
}

fn parse_plan(text: &str) -> Result<Plan, String> {
    Plan::parse(text).ok_or_else(|| format!("unknown plan {text:?}: use free or premium"))
}

/// Runs a `panlink links …` command against the configured data dir (which must hold data).
pub fn run_links(config: &Config, command: LinksCommand) -> anyhow::Result<bool> {
    if !config.cluster.nats_urls.is_empty() && matches!(command, LinksCommand::Import { .. }) {
        bail!(
            "cluster mode (cluster.nats_urls is set): links belong to the cluster; import through \
             POST /api/v1/links/import on any node; this command would change only this node's copy"
        );
    }
    let database = config.storage.lmdb_dir().join("data.mdb");
    eprintln!("panlink: data dir {}", config.storage.data_dir.display());
    if !database.exists() {
        bail!(
            "{} holds no panlink data",
            config.storage.data_dir.display()
        );
    }
    let store = Store::open(&config.storage)
        .with_context(|| format!("opening LMDB in {}", config.storage.lmdb_dir().display()))?;
    let result = match command {
        LinksCommand::Export { owner, format, out } => {
            export_links(config, &store, &owner, &format, out.as_deref()).map(|()| true)
        }
        LinksCommand::Import {
            file,
            owner,
            idempotency_key,
        } => import_links(config, &store, &file, &owner, idempotency_key.as_deref()),
    };
    store.close(std::time::Duration::from_secs(5));
    result
}

fn key_record(store: &Store, id: &str) -> anyhow::Result<crate::keys::KeyRecord> {
    store
        .read(|txn, dbs| repo::get_by_id(txn, dbs, id))?
        .map(|(_, record)| record)
        .ok_or_else(|| anyhow::anyhow!("no key with id {id}"))
}

fn export_links(
    config: &Config,
    store: &Store,
    owner: &str,
    format: &str,
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    use crate::links::transfer::{self, ExportContext, ExportFormat};
    use std::io::Write as _;
    key_record(store, owner)?;
    let format = ExportFormat::parse(format).expect("clap checks the format");
    let mut sink: Box<dyn std::io::Write> = match out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let domains = crate::links::domains::Domains::new(&config.links);
    // Offline there are no clicks in memory: the stored counts are the whole count.
    let pending = |_: &str| crate::links::record::ClickTotals::default();
    let ctx = ExportContext {
        owner,
        format,
        default_domain: domains.default_name(),
        pending: &pending,
    };
    let groups = store.read(|txn, dbs| transfer::group_names(txn, dbs, owner))?;
    sink.write_all(&format.prologue())?;
    let mut cursor: Option<Vec<u8>> = None;
    loop {
        let mut page = Vec::new();
        let next = store.read(|txn, dbs| {
            transfer::export_page(txn, dbs, &ctx, &groups, cursor.as_deref(), &mut page)
        })?;
        sink.write_all(&page)?;
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    sink.flush()?;
    Ok(())
}

fn import_links(
    config: &Config,
    store: &Store,
    file: &str,
    owner: &str,
    idempotency: Option<&str>,
) -> anyhow::Result<bool> {
    use crate::links::transfer::{self, Batch, ImportReport};
    use std::io::Read as _;
    let key = key_record(store, owner)?;
    let idempotency = idempotency
        .map(transfer::idempotency_key)
        .transpose()
        .map_err(|_| {
            anyhow::anyhow!("--idempotency-key must be 1 to 128 visible ASCII characters")
        })?;
    let mut body = Vec::new();
    if file == "-" {
        std::io::stdin().read_to_end(&mut body)?;
    } else {
        body = std::fs::read(file).with_context(|| format!("reading {file}"))?;
    }
    let domains = crate::links::domains::Domains::new(&config.links);
    let own_hosts = crate::links::own_hosts(&config.server, &config.links);
    let ctx = crate::links::api::Context {
        plan: key.plan,
        max_url_len: config.links.max_url_len,
        own_hosts: own_hosts.iter().map(String::as_str).collect(),
        domains: &domains,
    };
    let (source, rows) = transfer::parse(&body, &ctx, config.links.import_max_rows)
        .map_err(|err| anyhow::anyhow!("{}", err.spec().message))?;
    let (batches, mut outcomes) = transfer::batches(rows);
    // Offline there is no scheduler: watched targets are stored, and the server schedules them
    // when it starts.
    let watch = crate::monitors::watch::WatchHandle::offline(config.links.target_check_interval_s);
    let batch = Batch {
        owner,
        idempotency: idempotency.as_deref(),
        code_len: config.links.code_length,
        watch: &watch,
    };
    let mut groups = std::collections::HashMap::new();
    for rows in batches {
        let (done, _) = store
            .write_now(|txn, dbs| transfer::commit_batch(txn, dbs, &batch, rows, &mut groups))?;
        outcomes.extend(done);
    }
    outcomes.sort_by_key(|(row, _)| *row);
    let report = ImportReport { source, outcomes };
    println!("{}", transfer::report_json(&report));
    let created = report.created();
    eprintln!(
        "imported {created} of {} rows ({} format) for key {owner}",
        report.outcomes.len(),
        source.as_str()
    );
    Ok(created == report.outcomes.len())
}

/// Runs a `panlink keys …` command against the configured data dir, which it names on stderr
/// first. A data dir without panlink data is refused unless `--init` is given.
pub fn run_keys(config: &Config, args: KeysArgs) -> anyhow::Result<()> {
    if !config.cluster.nats_urls.is_empty() && !matches!(args.command, KeysCommand::List) {
        bail!(
            "cluster mode (cluster.nats_urls is set): keys belong to the cluster and change through \
             the admin API (/admin/api/keys) of any node; this command would change only this \
             node's copy"
        );
    }
    let data_dir = std::path::absolute(&config.storage.data_dir)
        .unwrap_or_else(|_| config.storage.data_dir.clone());
    eprintln!("panlink: data dir {}", data_dir.display());
    let database = config.storage.lmdb_dir().join("data.mdb");
    if !args.init && !database.exists() {
        bail!(
            "{} holds no panlink data ({} is missing). Run the command where the server runs, or \
             name its data dir with --config or PANLINK_DATA_DIR; add --init to start a new one",
            data_dir.display(),
            database.display()
        );
    }
    let store = Store::open(&config.storage)
        .with_context(|| format!("opening LMDB in {}", config.storage.lmdb_dir().display()))?;
    let result = run_keys_on(&store, args.command);
    store.close(std::time::Duration::from_secs(5));
    result
}

fn run_keys_on(store: &Store, command: KeysCommand) -> anyhow::Result<()> {
    let patch = match command {
        KeysCommand::Create {
            name,
            plan,
            points,
            scopes,
        } => {
            let new = NewKey {
                name: validate::name(&name)
                    .map_err(|why| anyhow::anyhow!("--name {}", why.en()))?,
                plan,
                points: validate::points(points)
                    .map_err(|why| anyhow::anyhow!("--points {}", why.en()))?,
                rate_per_s: None,
                burst: None,
                scopes: scopes.unwrap_or_default(),
            };
            let now = timefmt::now_ms();
            let (secret, _record) = store.write_now(|txn, dbs| repo::create(txn, dbs, new, now))?;
            println!("{secret}");
            return Ok(());
        }
        KeysCommand::List => {
            let keys = store.read(repo::list)?;
            print_table(&keys);
            return Ok(());
        }
        KeysCommand::Delete { id } => {
            if !store.write_now(|txn, dbs| repo::delete(txn, dbs, &id))? {
                bail!("no key with id {id}");
            }
            eprintln!("deleted key {id}");
            return Ok(());
        }
        KeysCommand::Disable { id } => (
            id,
            KeyPatch {
                disabled: Some(true),
                ..KeyPatch::default()
            },
        ),
        KeysCommand::Enable { id } => (
            id,
            KeyPatch {
                disabled: Some(false),
                ..KeyPatch::default()
            },
        ),
        KeysCommand::AddPoints { id, points } => (
            id,
            KeyPatch {
                add_points: Some(
                    validate::points_delta(points)
                        .map_err(|why| anyhow::anyhow!("POINTS {}", why.en()))?,
                ),
                ..KeyPatch::default()
            },
        ),
        KeysCommand::SetScopes { id, scopes } => (
            id,
            KeyPatch {
                scopes: Some(scopes),
                ..KeyPatch::default()
            },
        ),
        KeysCommand::SetPlan { id, plan } => (
            id,
            KeyPatch {
                plan: Some(plan),
                ..KeyPatch::default()
            },
        ),
    };
    let (id, patch) = patch;
    match store.write_now(|txn, dbs| repo::update(txn, dbs, &id, &patch))? {
        UpdateOutcome::Updated { record, .. } => {
            eprintln!(
                "key {}: plan {}, points {}, {}, scopes {}",
                record.id,
                record.plan.as_str(),
                record.points,
                if record.disabled {
                    "disabled"
                } else {
                    "active"
                },
                record.scopes.names().join(",")
            );
            Ok(())
        }
        UpdateOutcome::NotFound => bail!("no key with id {id}"),
        UpdateOutcome::PointsWouldBeNegative { balance } => {
            bail!("key {id} has {balance} points; the balance cannot go below zero")
        }
    }
}

fn print_table(keys: &[(crate::keys::secret::SecretHash, crate::keys::KeyRecord)]) {
    let rows: Vec<[String; 9]> = keys
        .iter()
        .map(|(_, k)| {
            [
                k.id.clone(),
                k.name.clone(),
                k.plan.as_str().to_owned(),
                k.points.to_string(),
                if k.disabled { "yes" } else { "no" }.to_owned(),
                timefmt::rfc3339_ms(k.created_at_ms),
                k.last_used_at_ms
                    .map_or_else(|| "-".to_owned(), timefmt::rfc3339_ms),
                k.requests.to_string(),
                if k.scopes == Scopes::ALL {
                    "all".to_owned()
                } else {
                    k.scopes.names().join(",")
                },
            ]
        })
        .collect();
    let header = [
        "ID",
        "NAME",
        "PLAN",
        "POINTS",
        "DISABLED",
        "CREATED",
        "LAST USED",
        "REQUESTS",
        "SCOPES",
    ];
    print_columns(header, &rows);
}

/// Rows under a header, each column as wide as its widest cell.
fn print_columns<const N: usize>(header: [&str; N], rows: &[[String; N]]) {
    // Display columns, not characters: a Chinese name takes two columns per character.
    let mut widths = header.map(UnicodeWidthStr::width);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let line = |cells: &[&str]| {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell}{}", " ".repeat(width - cell.width())))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(&header);
    for row in rows {
        line(&row.each_ref().map(String::as_str));
    }
}

/// Files of a data dir that are not LMDB's and belong in a backup.
const DATA_DIR_FILES: &[&str] = &[crate::admin::token::TOKEN_FILE];

/// `panlink backup --to DIR`.
pub fn run_backup(config: &Config, to: &std::path::Path) -> anyhow::Result<()> {
    let copied = crate::store::backup::backup(&config.storage, to, DATA_DIR_FILES)
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "backed up {} into {}: {} bytes of LMDB (compacted){}",
        config.storage.data_dir.display(),
        to.display(),
        copied.data_bytes,
        extra_files_note(&copied.extra_files)
    );
    Ok(())
}

/// `panlink restore --from DIR [--replace]`.
pub fn run_restore(config: &Config, from: &std::path::Path, replace: bool) -> anyhow::Result<()> {
    let copied = crate::store::backup::restore(&config.storage, from, DATA_DIR_FILES, replace)
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "restored {} into {}: {} bytes of LMDB{}",
        from.display(),
        config.storage.data_dir.display(),
        copied.data_bytes,
        extra_files_note(&copied.extra_files)
    );
    Ok(())
}

fn extra_files_note(files: &[String]) -> String {
    if files.is_empty() {
        String::new()
    } else {
        format!(", and {}", files.join(", "))
    }
}

/// `panlink verify`: every table read, every record of the record tables decoded.
pub fn run_verify(config: &Config) -> anyhow::Result<()> {
    use crate::store::codec::decode;
    let storage = &config.storage;
    let lmdb = storage.lmdb_dir();
    if !lmdb.join("data.mdb").exists() {
        bail!("{} holds no panlink data", storage.data_dir.display());
    }
    let tables = crate::store::backup::read_all(
        &lmdb,
        storage.map_size_bytes,
        storage.max_readers,
        &crate::store::TABLES,
        |table, value| match table {
            "keys" => decode::<crate::keys::record::KeyRecord>(value, "key").is_ok(),
            "links" => decode::<crate::links::record::LinkRecord>(value, "link").is_ok(),
            "link_groups" => decode::<crate::links::record::GroupRecord>(value, "group").is_ok(),
            "jobs" => decode::<crate::jobs::record::JobRecord>(value, "job").is_ok(),
            "items" => decode::<crate::jobs::record::ItemRecord>(value, "item").is_ok(),
            "webhooks" => {
                decode::<crate::webhooks::record::WebhookRecord>(value, "webhook").is_ok()
            }
            "deliveries" => {
                decode::<crate::webhooks::record::DeliveryRecord>(value, "delivery").is_ok()
            }
            "monitors" => {
                decode::<crate::monitors::record::MonitorRecord>(value, "monitor").is_ok()
            }
            "monitor_links" => {
                decode::<crate::monitors::record::LinkRecord>(value, "monitored link").is_ok()
            }
            // Index and counter tables: read, not decoded (their values are keys or numbers).
            _ => true,
        },
    )?;
    let mut refused_total = 0;
    for (name, entries, refused) in &tables {
        println!(
            "{name:<16} {entries:>10} entries{}",
            if *refused > 0 {
                format!(", {refused} do not decode")
            } else {
                String::new()
            }
        );
        refused_total += refused;
    }
    if refused_total > 0 {
        bail!("{refused_total} records do not decode");
    }
    eprintln!(
        "verified {}: every table read, every record decoded",
        storage.data_dir.display()
    );
    Ok(())
}

/// `panlink check [FILE|-] [--format jsonl|csv|table]`: 0 when every link is valid, 1 when some
/// are not, 2 on an error.
pub fn run_check(config: &Config, input: &str, format: &str) -> std::process::ExitCode {
    use std::io::{IsTerminal, Read, Write};
    let text = if input == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map(|_| text)
    } else {
        std::fs::read_to_string(input)
    };
    let text = match text {
        Ok(text) => text,
        Err(err) => {
            eprintln!("panlink: reading {input}: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("panlink: starting the runtime: {err}");
            return std::process::ExitCode::from(2);
        }
    };
    let interactive = std::io::stderr().is_terminal();
    let results = runtime.block_on(async {
        let checker = crate::jobs::local::LocalChecker::start(config)?;
        let results = checker
            .check_text(&text, |done, total| {
                // A progress line only where a person watches.
                if interactive {
                    eprint!("\rchecked {done}/{total}");
                    let _ = std::io::stderr().flush();
                }
            })
            .await;
        checker.close();
        if interactive {
            eprintln!();
        }
        results
    });
    let results = match results {
        Ok(results) => results,
        Err(err) => {
            eprintln!("panlink: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let mut all_valid = true;
    let mut rows: Vec<[String; 4]> = Vec::with_capacity(results.len());
    for (_, json) in &results {
        let value: serde_json::Value = serde_json::from_slice(json).unwrap_or_default();
        all_valid &= value["state"] == "valid";
        let text = |key: &str| value[key].as_str().unwrap_or("").to_owned();
        rows.push([
            text("state"),
            text("reason"),
            text("url"),
            text("share_name"),
        ]);
    }
    let mut out = std::io::stdout().lock();
    match format {
        "table" => print_columns(["STATE", "REASON", "URL", "NAME"], &rows),
        "csv" => {
            let _ = out.write_all(&crate::jobs::export::render(
                crate::jobs::export::Format::Csv,
                &results,
            ));
        }
        _ => {
            let _ = out.write_all(&crate::jobs::export::render(
                crate::jobs::export::Format::JsonLines,
                &results,
            ));
        }
    }
    if all_valid {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(1)
    }
}
