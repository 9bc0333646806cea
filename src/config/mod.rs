//! Configuration: parsed once, validated once, then passed around as typed values.
//!
//! Two layers, as ripgrep's low/high args: [`raw::RawConfig`] mirrors `config.toml` one to one
//! (serde, with the built-in defaults in its `Default` impls), and [`Config`] is what the rest of the
//! program receives: durations, socket addresses, paths, checked ranges. Sources, lowest first:
//! built-in defaults, the TOML file, then environment variables `PANLINK_<SECTION>_<KEY>` (plus the
//! short forms in [`sources::SHORT_ENV_ALIASES`]). Nothing else in the program reads the environment.

pub mod raw;
pub mod sources;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use raw::RawConfig;

/// A configuration problem that stops start-up. The message names the key and what it accepts.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub http: HttpConfig,
    pub storage: StorageConfig,
    pub keys: KeysConfig,
    pub admin: AdminConfig,
    pub checker: CheckerConfig,
    pub jobs: JobsConfig,
    pub links: LinksConfig,
    pub security: SecurityConfig,
}

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Absolute base used to build links (no trailing slash); `None` → from the request's Host.
    pub public_base_url: Option<String>,
    pub log_format: LogFormat,
    pub log_level: String,
    /// Tokio worker threads; 0 means one per core.
    pub worker_threads: usize,
}

#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub max_connections: usize,
    /// Connections the kernel may queue before the server accepts them (`listen(2)` backlog).
    pub listen_backlog: u32,
    pub max_in_flight: usize,
    pub first_byte_timeout: Duration,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub write_stall_timeout: Duration,
    pub handler_timeout: Duration,
    /// How long a request body may take before it must flow at `body_min_bytes_per_s`.
    pub body_timeout: Duration,
    pub body_min_bytes_per_s: u64,
    /// Bodies one client address may be sending at once on routes without credentials.
    pub max_public_body_reads_per_peer: u32,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub http2: bool,
    pub h2_max_concurrent_streams: u32,
    pub shutdown_grace: Duration,
    pub retry_after_s: u32,
}

#[derive(Debug, Clone)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub map_size_bytes: usize,
    pub max_readers: u32,
    pub max_batch_ops: usize,
}

impl StorageConfig {
    /// The LMDB environment's directory inside the data dir.
    pub fn lmdb_dir(&self) -> PathBuf {
        self.data_dir.join("lmdb")
    }
}

#[derive(Debug, Clone)]
pub struct KeysConfig {
    pub default_rate_per_s: u32,
    pub default_burst: u32,
    pub usage_flush_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct AdminConfig {
    /// The admin bearer token; `None` → generated on first start and kept in the data dir.
    pub token: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CheckerConfig {
    /// Send every provider request to this address instead of the DNS answer (tests, the mock).
    pub upstream_override: Option<SocketAddr>,
    /// A PEM file of extra root certificates to trust next to the built-in (webpki) roots.
    pub extra_root_ca: Option<PathBuf>,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_bytes: usize,
    pub pool_max_idle_per_host: usize,
    pub user_agent: String,
    /// Checks running at once, per provider.
    pub concurrency: usize,
    /// Checks started per second at most, per provider.
    pub rate_per_s: u32,
    /// Attempts per link for transient outcomes (timeout, rate limit, 5xx).
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    /// How long verdicts are reused, by state (zero: not cached).
    pub cache_ttl: CacheTtl,
    pub cache_max_entries: usize,
    /// Consecutive timeouts or upstream errors that open a provider's circuit.
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
    /// HTTP CONNECT proxies to send provider requests through, in turn (empty: direct).
    pub proxies: Vec<http::Uri>,
    /// Providers whose requests use the proxies (empty: all of them).
    pub proxy_providers: Vec<crate::drive::Provider>,
    /// Retries earned per first attempt (the retry budget).
    pub retry_budget_ratio: f64,
}

/// How long the checker keeps verdicts, by state (zero: not kept).
#[derive(Debug, Clone, Copy)]
pub struct CacheTtl {
    pub valid: Duration,
    pub invalid: Duration,
    pub locked: Duration,
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    pub max_items: usize,
    pub max_open_jobs_per_key: usize,
    pub max_body_bytes: usize,
    /// Longest URL of one item.
    pub max_url_bytes: usize,
    /// Largest `meta` of one item, as compact JSON.
    pub max_meta_bytes: usize,
    /// Items a key may have stored within the retention window, by plan.
    pub free_max_stored_items: u64,
    pub premium_max_stored_items: u64,
    /// Event streams open at once per key, and per connection.
    pub max_streams_per_key: usize,
    pub max_streams_per_connection: usize,
    pub sse_keepalive: Duration,
    pub sse_retry: Duration,
    /// Finished jobs (with their results) are deleted after this long.
    pub retention: Duration,
    pub purge_interval: Duration,
}

#[derive(Debug, Clone)]
pub struct LinksConfig {
    /// Characters of a generated code.
    pub code_length: usize,
    /// 301, 302, 307 or 308.
    pub redirect_status: http::StatusCode,
    pub redirect_max_age_s: u32,
    pub max_url_len: usize,
    pub click_flush_interval: Duration,
    pub click_compact_interval: Duration,
    pub cache_max_entries: usize,
    pub batch_max_items: usize,
    pub batch_max_body_bytes: usize,
    /// Password links per batch at most (each costs an argon2id hash).
    pub batch_max_password_links: usize,
    pub password_max_failures: u32,
    pub password_window: Duration,
}

#[derive(Debug, Clone)]
pub struct SecurityConfig {
    /// Points one security check costs.
    pub points_per_check: u64,
    /// The DNS server to ask (`None`: the system's resolvers).
    pub dns_server: Option<SocketAddr>,
    pub dns_timeout: Duration,
    /// The operator's blocklist file, added to the bundled one.
    pub blocklist_file: Option<PathBuf>,
}

impl Config {
    /// Loads the configuration: `path` if given (it must exist), else `./config.toml` if present,
    /// else the built-in defaults; then the environment overrides read through `env`.
    pub fn load(
        path: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let (text, origin) = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|err| {
                    ConfigError(format!("cannot read config file {}: {err}", path.display()))
                })?;
                (text, path.display().to_string())
            }
            None => match std::fs::read_to_string("config.toml") {
                Ok(text) => (text, "./config.toml".to_owned()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    (String::new(), "built-in defaults".to_owned())
                }
                Err(err) => return Err(ConfigError(format!("cannot read ./config.toml: {err}"))),
            },
        };
        let raw = sources::merge(&text, &origin, env)?;
        Config::from_raw(raw)
    }

    /// Validates raw values into typed ones. Every error names the key and the accepted range.
    pub fn from_raw(raw: RawConfig) -> Result<Config, ConfigError> {
        let listen: SocketAddr = raw.server.listen.parse().map_err(|_| {
            ConfigError(format!(
                "`server.listen` = {:?}: must be an IP:port socket address, e.g. 127.0.0.1:8080",
                raw.server.listen
            ))
        })?;
        let public_base_url = match raw.server.public_base_url.trim() {
            "" => None,
            url if url.starts_with("http://") || url.starts_with("https://") => {
                Some(url.trim_end_matches('/').to_owned())
            }
            url => {
                return Err(ConfigError(format!(
                    "`server.public_base_url` = {url:?}: must be empty or start with http:// or https://"
                )));
            }
        };
        let log_format = match raw.server.log_format.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                return Err(ConfigError(format!(
                    "`server.log_format` = {other:?}: must be \"human\" or \"json\""
                )));
            }
        };
        tracing_subscriber::EnvFilter::try_new(&raw.server.log_level).map_err(|err| {
            ConfigError(format!(
                "`server.log_level` = {:?}: not a tracing filter ({err}); try \"info\" or \"panlink=debug\"",
                raw.server.log_level
            ))
        })?;

        let http = &raw.http;
        let http = HttpConfig {
            max_connections: range("http.max_connections", http.max_connections, 1, 1_000_000)?,
            listen_backlog: range("http.listen_backlog", http.listen_backlog, 1, 65_535)?,
            max_in_flight: range("http.max_in_flight", http.max_in_flight, 1, 1_000_000)?,
            first_byte_timeout: millis("http.first_byte_timeout_ms", http.first_byte_timeout_ms)?,
            header_read_timeout: millis(
                "http.header_read_timeout_ms",
                http.header_read_timeout_ms,
            )?,
            idle_timeout: millis("http.idle_timeout_ms", http.idle_timeout_ms)?,
            write_stall_timeout: millis(
                "http.write_stall_timeout_ms",
                http.write_stall_timeout_ms,
            )?,
            handler_timeout: millis("http.handler_timeout_ms", http.handler_timeout_ms)?,
            body_timeout: millis("http.body_timeout_ms", http.body_timeout_ms)?,
            body_min_bytes_per_s: range(
                "http.body_min_bytes_per_s",
                http.body_min_bytes_per_s,
                1,
                1 << 30,
            )?,
            max_public_body_reads_per_peer: range(
                "http.max_public_body_reads_per_peer",
                http.max_public_body_reads_per_peer,
                1,
                1_000_000,
            )?,
            max_body_bytes: range("http.max_body_bytes", http.max_body_bytes, 1024, 1 << 30)?,
            max_header_bytes: range(
                "http.max_header_bytes",
                http.max_header_bytes,
                8192,
                1 << 24,
            )?,
            http2: http.http2,
            h2_max_concurrent_streams: range(
                "http.h2_max_concurrent_streams",
                http.h2_max_concurrent_streams,
                1,
                10_000,
            )?,
            shutdown_grace: millis("http.shutdown_grace_ms", http.shutdown_grace_ms)?,
            retry_after_s: range("http.retry_after_s", http.retry_after_s, 1, 3600)?,
        };

        let storage = &raw.storage;
        if storage.data_dir.trim().is_empty() {
            return Err(ConfigError(
                "`storage.data_dir` is empty: it must name a directory".into(),
            ));
        }
        let map_size_mb = range("storage.map_size_mb", storage.map_size_mb, 1, 16 << 20)?;
        let storage = StorageConfig {
            data_dir: PathBuf::from(&storage.data_dir),
            map_size_bytes: map_size_mb * 1024 * 1024,
            max_readers: range("storage.max_readers", storage.max_readers, 126, 65_536)?,
            max_batch_ops: range("storage.max_batch_ops", storage.max_batch_ops, 1, 100_000)?,
        };

        let keys = KeysConfig {
            default_rate_per_s: range(
                "keys.default_rate_per_s",
                raw.keys.default_rate_per_s,
                1,
                1_000_000,
            )?,
            default_burst: range("keys.default_burst", raw.keys.default_burst, 1, 1_000_000)?,
            usage_flush_interval: millis("keys.usage_flush_ms", raw.keys.usage_flush_ms)?,
        };

        let token = raw.admin.token.trim();
        if !token.is_empty() && token.len() < 16 {
            return Err(ConfigError(
                "`admin.token` is shorter than 16 characters: use a long random token, or leave it empty to have one generated".into(),
            ));
        }
        let admin = AdminConfig {
            token: (!token.is_empty()).then(|| token.to_owned()),
        };

        let checker = &raw.checker;
        let upstream_override = match checker.upstream_override.trim() {
            "" => None,
            text => Some(text.parse::<SocketAddr>().map_err(|_| {
                ConfigError(format!(
                    "`checker.upstream_override` = {text:?}: must be empty or an IP:port socket address, e.g. 127.0.0.1:9443"
                ))
            })?),
        };
        if checker.user_agent.trim().is_empty()
            || http::HeaderValue::from_str(&checker.user_agent).is_err()
        {
            return Err(ConfigError(
                "`checker.user_agent` must be a non-empty header value".into(),
            ));
        }
        let checker = CheckerConfig {
            upstream_override,
            extra_root_ca: (!checker.extra_root_ca.trim().is_empty())
                .then(|| PathBuf::from(checker.extra_root_ca.trim())),
            request_timeout: millis("checker.request_timeout_ms", checker.request_timeout_ms)?,
            connect_timeout: millis("checker.connect_timeout_ms", checker.connect_timeout_ms)?,
            max_response_bytes: range(
                "checker.max_response_bytes",
                checker.max_response_bytes,
                1024,
                64 << 20,
            )?,
            pool_max_idle_per_host: range(
                "checker.pool_max_idle_per_host",
                checker.pool_max_idle_per_host,
                0,
                100_000,
            )?,
            user_agent: checker.user_agent.clone(),
            concurrency: range("checker.concurrency", checker.concurrency, 1, 10_000)?,
            rate_per_s: range("checker.rate_per_s", checker.rate_per_s, 1, 1_000_000)?,
            max_attempts: range("checker.max_attempts", checker.max_attempts, 1, 10)?,
            retry_backoff: millis("checker.retry_backoff_ms", checker.retry_backoff_ms)?,
            cache_ttl: CacheTtl {
                valid: Duration::from_secs(range(
                    "checker.cache_valid_ttl_s",
                    checker.cache_valid_ttl_s,
                    0,
                    30 * 86_400,
                )?),
                invalid: Duration::from_secs(range(
                    "checker.cache_invalid_ttl_s",
                    checker.cache_invalid_ttl_s,
                    0,
                    365 * 86_400,
                )?),
                locked: Duration::from_secs(range(
                    "checker.cache_locked_ttl_s",
                    checker.cache_locked_ttl_s,
                    0,
                    30 * 86_400,
                )?),
            },
            cache_max_entries: range(
                "checker.cache_max_entries",
                checker.cache_max_entries,
                0,
                100_000_000,
            )?,
            breaker_failures: range(
                "checker.breaker_failures",
                checker.breaker_failures,
                1,
                1_000_000,
            )?,
            breaker_cooldown: millis("checker.breaker_cooldown_ms", checker.breaker_cooldown_ms)?,
            retry_budget_ratio: {
                let ratio = checker.retry_budget_ratio;
                if !(0.0..=1.0).contains(&ratio) {
                    return Err(ConfigError(format!(
                        "`checker.retry_budget_ratio` = {ratio}: must be between 0 and 1"
                    )));
                }
                ratio
            },
            proxies: checker
                .proxies
                .iter()
                .map(|text| parse_proxy(text))
                .collect::<Result<_, _>>()?,
            proxy_providers: checker
                .proxy_providers
                .iter()
                .map(|name| {
                    crate::drive::Provider::parse(name).ok_or_else(|| {
                        ConfigError(format!(
                            "`checker.proxy_providers` has {name:?}: use quark, uc, baidu, tianyi, pan123, pan115, aliyun, xunlei or cmcc"
                        ))
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let jobs = &raw.jobs;
        let jobs = JobsConfig {
            max_items: range("jobs.max_items", jobs.max_items, 1, 10_000_000)?,
            max_open_jobs_per_key: range(
                "jobs.max_open_jobs_per_key",
                jobs.max_open_jobs_per_key,
                1,
                100_000,
            )?,
            max_body_bytes: range("jobs.max_body_bytes", jobs.max_body_bytes, 1024, 1 << 30)?,
            max_url_bytes: range("jobs.max_url_bytes", jobs.max_url_bytes, 64, 65_536)?,
            max_meta_bytes: range("jobs.max_meta_bytes", jobs.max_meta_bytes, 16, 1 << 20)?,
            free_max_stored_items: range(
                "jobs.free_max_stored_items",
                jobs.free_max_stored_items,
                1,
                1 << 40,
            )?,
            premium_max_stored_items: range(
                "jobs.premium_max_stored_items",
                jobs.premium_max_stored_items,
                1,
                1 << 40,
            )?,
            max_streams_per_key: range(
                "jobs.max_streams_per_key",
                jobs.max_streams_per_key,
                1,
                1_000_000,
            )?,
            max_streams_per_connection: range(
                "jobs.max_streams_per_connection",
                jobs.max_streams_per_connection,
                1,
                10_000,
            )?,
            sse_keepalive: millis("jobs.sse_keepalive_ms", jobs.sse_keepalive_ms)?,
            sse_retry: millis("jobs.sse_retry_ms", jobs.sse_retry_ms)?,
            retention: Duration::from_secs(range(
                "jobs.retention_s",
                jobs.retention_s,
                1,
                10 * 365 * 86_400,
            )?),
            purge_interval: millis("jobs.purge_interval_ms", jobs.purge_interval_ms)?,
        };

        let links = &raw.links;
        let links = LinksConfig {
            code_length: range("links.code_length", links.code_length, 4, 32)?,
            redirect_status: match links.redirect_status {
                301 | 302 | 307 | 308 => {
                    http::StatusCode::from_u16(links.redirect_status).expect("a valid status")
                }
                other => {
                    return Err(ConfigError(format!(
                        "`links.redirect_status` = {other}: must be 301, 302, 307 or 308"
                    )));
                }
            },
            redirect_max_age_s: range(
                "links.redirect_max_age_s",
                links.redirect_max_age_s,
                0,
                31_536_000,
            )?,
            max_url_len: range("links.max_url_len", links.max_url_len, 64, 65_536)?,
            click_flush_interval: millis("links.click_flush_ms", links.click_flush_ms)?,
            click_compact_interval: millis("links.click_compact_ms", links.click_compact_ms)?,
            cache_max_entries: range(
                "links.cache_max_entries",
                links.cache_max_entries,
                0,
                100_000_000,
            )?,
            batch_max_items: range("links.batch_max_items", links.batch_max_items, 1, 100_000)?,
            batch_max_body_bytes: range(
                "links.batch_max_body_bytes",
                links.batch_max_body_bytes,
                1024,
                1 << 30,
            )?,
            batch_max_password_links: range(
                "links.batch_max_password_links",
                links.batch_max_password_links,
                0,
                100_000,
            )?,
            password_max_failures: range(
                "links.password_max_failures",
                links.password_max_failures,
                1,
                1_000_000,
            )?,
            password_window: Duration::from_secs(range(
                "links.password_window_s",
                links.password_window_s,
                1,
                86_400,
            )?),
        };

        let security = &raw.security;
        let security = SecurityConfig {
            points_per_check: range(
                "security.points_per_check",
                security.points_per_check,
                0,
                1_000_000,
            )?,
            dns_server: match security.dns_server.trim() {
                "" => None,
                text => Some(text.parse().map_err(|_| {
                    ConfigError(format!(
                        "`security.dns_server` = {text:?}: must be empty or an IP:port, e.g. 127.0.0.1:53"
                    ))
                })?),
            },
            dns_timeout: Duration::from_millis(range(
                "security.dns_timeout_ms",
                security.dns_timeout_ms,
                1,
                30_000,
            )?),
            blocklist_file: match security.blocklist_file.trim() {
                "" => None,
                path => Some(PathBuf::from(path)),
            },
        };

        Ok(Config {
            checker,
            jobs,
            links,
            security,
            server: ServerConfig {
                listen,
                public_base_url,
                log_format,
                log_level: raw.server.log_level,
                worker_threads: range("server.worker_threads", raw.server.worker_threads, 0, 1024)?,
            },
            http,
            storage,
            keys,
            admin,
        })
    }
}

/// A proxy URL: `http://[user:password@]host:port`.
fn parse_proxy(text: &str) -> Result<http::Uri, ConfigError> {
    let bad = || {
        ConfigError(format!(
            "`checker.proxies` has {text:?}: each must be http://[user:password@]host:port"
        ))
    };
    let uri: http::Uri = text.trim().parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || uri.host().is_none() || uri.port_u16().is_none() {
        return Err(bad());
    }
    Ok(uri)
}

fn range<T>(key: &str, value: T, min: T, max: T) -> Result<T, ConfigError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if value < min || value > max {
        return Err(ConfigError(format!(
            "`{key}` = {value}: must be between {min} and {max}"
        )));
    }
    Ok(value)
}

/// A duration key in milliseconds: 1 ms to 24 h.
fn millis(key: &str, value: u64) -> Result<Duration, ConfigError> {
    range(key, value, 1, 86_400_000).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_validate() {
        let config = Config::from_raw(RawConfig::default()).unwrap();
        assert_eq!(config.server.listen.port(), 8080);
        assert_eq!(config.storage.data_dir, PathBuf::from("data"));
        assert!(config.admin.token.is_none());
    }

    #[test]
    fn out_of_range_names_key_and_range() {
        let raw = sources::merge("[http]\nmax_connections = 0\n", "test", &no_env).unwrap();
        let err = Config::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("http.max_connections"), "{err}");
        assert!(err.contains("between 1 and 1000000"), "{err}");
        let raw = sources::merge("[http]\nlisten_backlog = 70000\n", "test", &no_env).unwrap();
        let err = Config::from_raw(raw).unwrap_err().to_string();
        assert!(err.contains("http.listen_backlog"), "{err}");
        assert!(err.contains("between 1 and 65535"), "{err}");
    }

    #[test]
    fn bad_listen_and_log_format_are_named() {
        let raw = sources::merge("[server]\nlisten = \"nope\"\n", "t", &no_env).unwrap();
        assert!(
            Config::from_raw(raw)
                .unwrap_err()
                .to_string()
                .contains("server.listen")
        );
        let raw = sources::merge("[server]\nlog_format = \"xml\"\n", "t", &no_env).unwrap();
        assert!(
            Config::from_raw(raw)
                .unwrap_err()
                .to_string()
                .contains("server.log_format")
        );
    }

    #[test]
    fn public_base_url_is_trimmed_and_checked() {
        let raw = sources::merge(
            "[server]\npublic_base_url = \"https://s.example/\"\n",
            "t",
            &no_env,
        )
        .unwrap();
        let config = Config::from_raw(raw).unwrap();
        assert_eq!(
            config.server.public_base_url.as_deref(),
            Some("https://s.example")
        );
        let raw =
            sources::merge("[server]\npublic_base_url = \"s.example\"\n", "t", &no_env).unwrap();
        assert!(Config::from_raw(raw).is_err());
    }

    /// `config.toml` at the repository root documents every key with its default value.
    #[test]
    fn shipped_config_toml_equals_the_defaults() {
        let text = include_str!("../../config.toml");
        let raw = sources::merge(text, "config.toml", &no_env).unwrap();
        assert_eq!(raw, RawConfig::default());
        for (section, key) in sources::all_keys() {
            let documented = text
                .split(&format!("[{section}]"))
                .nth(1)
                .is_some_and(|rest| rest.lines().any(|l| l.starts_with(&format!("{key} = "))));
            assert!(
                documented,
                "config.toml does not document `{section}.{key}`"
            );
        }
    }

    #[test]
    fn proxies_are_checked() {
        let raw = sources::merge(
            "[checker]\nproxies = [\"http://u:p@10.0.0.1:3128\"]\nproxy_providers = [\"baidu\"]\n",
            "t",
            &no_env,
        )
        .unwrap();
        let config = Config::from_raw(raw).unwrap();
        assert_eq!(config.checker.proxies.len(), 1);
        assert_eq!(
            config.checker.proxy_providers,
            vec![crate::drive::Provider::Baidu]
        );
        for bad in [
            "[checker]\nproxies = [\"socks5://h:1\"]\n",
            "[checker]\nproxies = [\"http://h\"]\n",
            "[checker]\nproxy_providers = [\"dropbox\"]\n",
        ] {
            let raw = sources::merge(bad, "t", &no_env).unwrap();
            assert!(
                Config::from_raw(raw)
                    .unwrap_err()
                    .to_string()
                    .contains("checker.prox"),
                "{bad}"
            );
        }
        let env = |name: &str| {
            (name == "PANLINK_CHECKER_PROXIES").then(|| "[\"http://127.0.0.1:8888\"]".to_owned())
        };
        let config = Config::from_raw(sources::merge("", "t", &env).unwrap()).unwrap();
        assert_eq!(config.checker.proxies[0].port_u16(), Some(8888));
    }

    #[test]
    fn short_admin_token_is_refused() {
        let raw = sources::merge("[admin]\ntoken = \"short\"\n", "t", &no_env).unwrap();
        assert!(
            Config::from_raw(raw)
                .unwrap_err()
                .to_string()
                .contains("admin.token")
        );
    }
}
