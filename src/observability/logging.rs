//! tracing to stderr: human-readable by default, one JSON object per line with `log_format = "json"`.
//! Colour codes only where a person reads them: on a terminal, unless `log_color` says otherwise
//! (journald and log files get plain text).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogColor, LogFormat};

/// Installs the global subscriber; later calls are no-ops (tests start several servers).
pub fn init(format: LogFormat, color: LogColor, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = match color {
        LogColor::Auto => std::io::stderr().is_terminal(),
        LogColor::Always => true,
        LogColor::Never => false,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
