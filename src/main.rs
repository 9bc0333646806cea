//! The `panlink` binary: parses the command line and the configuration, then runs the command.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use panlink::cli::{Cli, Command};
use panlink::config::Config;
use panlink::observability::logging;

/// jemalloc instead of glibc's malloc. Measured with `loadtest/run.sh engine` (README,
/// Performance): 19 100–21 400 checks/s against 14 300–16 000 with glibc, the server's CPU per
/// check down by a third; the request paths allocate many small, short-lived buffers on several
/// threads. (mimalloc was tried too; it is not kept, see the README.)
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's count of allocated bytes (after advancing its epoch, which refreshes the stats).
fn heap_allocated() -> Option<u64> {
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    tikv_jemalloc_ctl::stats::allocated::read()
        .ok()
        .map(|bytes| bytes as u64)
}

fn run_mock(options: panlink::mock::MockOptions) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(panlink::mock::run(options))
}

fn main() -> ExitCode {
    // Exactly one rustls crypto provider is compiled in (ring); install it before anything
    // builds a TLS config: with two providers compiled in, rustls cannot pick one by itself.
    let _ = rustls::crypto::ring::default_provider().install_default();
    panlink::observability::metrics::set_heap_reader(heap_allocated);
    let cli = Cli::parse();
    if let Command::DefaultConfig = cli.command {
        print!("{}", panlink::config::default_config_toml());
        return ExitCode::SUCCESS;
    }
    let env_names: Vec<String> = std::env::vars_os()
        .filter_map(|(name, _)| name.into_string().ok())
        .collect();
    match panlink::config::sources::check_env_names(env_names.iter().map(String::as_str)) {
        Ok(ignored) => {
            for name in ignored {
                eprintln!(
                    "panlink: warning: environment variable {name} is not a configuration key (see config.toml); ignored"
                );
            }
        }
        Err(err) => {
            eprintln!("panlink: {err}");
            return ExitCode::from(2);
        }
    }
    let config = match Config::load(cli.config.as_deref(), &|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("panlink: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Serve { take_over } => {
            logging::init(
                config.server.log_format,
                config.server.log_color,
                &config.server.log_level,
            );
            panlink::api::serve::run(config, take_over)
        }
        Command::MockUpstream {
            listen,
            ca_out,
            latency_ms,
            http1_only,
        } => {
            logging::init(config.server.log_format, config.server.log_color, "warn");
            run_mock(panlink::mock::MockOptions {
                listen,
                ca_out,
                latency: std::time::Duration::from_millis(latency_ms),
                http1_only,
            })
        }
        Command::Keys(args) => {
            logging::init(config.server.log_format, config.server.log_color, "warn");
            panlink::cli::run_keys(&config, args)
        }
        Command::Links { command } => {
            logging::init(config.server.log_format, config.server.log_color, "warn");
            return match panlink::cli::run_links(&config, command) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(err) => {
                    eprintln!("panlink: {err:#}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Backup { to } => {
            logging::init(config.server.log_format, config.server.log_color, "warn");
            panlink::cli::run_backup(&config, &to)
        }
        Command::Restore { from, replace } => {
            logging::init(config.server.log_format, config.server.log_color, "warn");
            panlink::cli::run_restore(&config, &from, replace)
        }
        Command::Check { input, format } => {
            logging::init(config.server.log_format, config.server.log_color, "warn");
            return panlink::cli::run_check(&config, &input, &format);
        }
        Command::Verify => {
            logging::init(config.server.log_format, config.server.log_color, "warn");
            panlink::cli::run_verify(&config)
        }
        Command::DefaultConfig => unreachable!("answered before the configuration is loaded"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("panlink: {err:#}");
            ExitCode::FAILURE
        }
    }
}
