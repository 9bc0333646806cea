//! The raw configuration: `config.toml` as written, with the built-in defaults.
//!
//! Every key has its default here and nowhere else; `config.toml` at the repository root documents
//! the same values, and a test keeps the two equal. Optional strings use `""` for "unset" so that
//! every key exists in the default table and therefore has an environment override.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    pub server: RawServer,
    pub http: RawHttp,
    pub storage: RawStorage,
    pub keys: RawKeys,
    pub admin: RawAdmin,
    pub checker: RawChecker,
    pub jobs: RawJobs,
    pub links: RawLinks,
    pub security: RawSecurity,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawServer {
    pub listen: String,
    pub public_base_url: String,
    pub log_format: String,
    pub log_level: String,
    pub worker_threads: usize,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8080".into(),
            public_base_url: String::new(),
            log_format: "human".into(),
            log_level: "info".into(),
            worker_threads: 0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawHttp {
    pub max_connections: usize,
    pub listen_backlog: u32,
    pub max_in_flight: usize,
    pub first_byte_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    pub idle_timeout_ms: u64,
    pub write_stall_timeout_ms: u64,
    pub handler_timeout_ms: u64,
    pub body_timeout_ms: u64,
    pub body_min_bytes_per_s: u64,
    pub max_public_body_reads_per_peer: u32,
    pub max_body_bytes: usize,
    pub max_header_bytes: usize,
    pub http2: bool,
    pub h2_max_concurrent_streams: u32,
    pub shutdown_grace_ms: u64,
    pub retry_after_s: u32,
}

impl Default for RawHttp {
    fn default() -> Self {
        RawHttp {
            max_connections: 20_000,
            listen_backlog: 4_096,
            max_in_flight: 8_192,
            first_byte_timeout_ms: 5_000,
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            write_stall_timeout_ms: 30_000,
            handler_timeout_ms: 30_000,
            body_timeout_ms: 5_000,
            body_min_bytes_per_s: 16 * 1024,
            max_public_body_reads_per_peer: 16,
            max_body_bytes: 1 << 20,
            max_header_bytes: 64 * 1024,
            http2: true,
            h2_max_concurrent_streams: 256,
            shutdown_grace_ms: 10_000,
            retry_after_s: 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawStorage {
    pub data_dir: String,
    pub map_size_mb: usize,
    pub max_readers: u32,
    pub max_batch_ops: usize,
}

impl Default for RawStorage {
    fn default() -> Self {
        RawStorage {
            data_dir: "data".into(),
            map_size_mb: 8 * 1024,
            max_readers: 1024,
            max_batch_ops: 1024,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawKeys {
    pub default_rate_per_s: u32,
    pub default_burst: u32,
    pub usage_flush_ms: u64,
}

impl Default for RawKeys {
    fn default() -> Self {
        RawKeys {
            default_rate_per_s: 100,
            default_burst: 200,
            usage_flush_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawAdmin {
    pub token: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawChecker {
    pub upstream_override: String,
    pub extra_root_ca: String,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub max_response_bytes: usize,
    pub pool_max_idle_per_host: usize,
    pub user_agent: String,
    pub concurrency: usize,
    pub rate_per_s: u32,
    pub max_attempts: u32,
    pub retry_backoff_ms: u64,
    pub cache_valid_ttl_s: u64,
    pub cache_invalid_ttl_s: u64,
    pub cache_locked_ttl_s: u64,
    pub cache_max_entries: usize,
    pub breaker_failures: u32,
    pub breaker_cooldown_ms: u64,
    pub proxies: Vec<String>,
    pub proxy_providers: Vec<String>,
    pub retry_budget_ratio: f64,
}

impl Default for RawChecker {
    fn default() -> Self {
        RawChecker {
            upstream_override: String::new(),
            extra_root_ca: String::new(),
            request_timeout_ms: 10_000,
            connect_timeout_ms: 5_000,
            max_response_bytes: 2 << 20,
            pool_max_idle_per_host: 64,
            user_agent: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36".into(),
            concurrency: 16,
            rate_per_s: 50,
            max_attempts: 3,
            retry_backoff_ms: 200,
            cache_valid_ttl_s: 6 * 3600,
            cache_invalid_ttl_s: 3 * 86_400,
            cache_locked_ttl_s: 3600,
            cache_max_entries: 200_000,
            breaker_failures: 20,
            breaker_cooldown_ms: 30_000,
            proxies: Vec::new(),
            proxy_providers: Vec::new(),
            retry_budget_ratio: 0.2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawJobs {
    pub max_items: usize,
    pub max_open_jobs_per_key: usize,
    pub max_body_bytes: usize,
    pub max_url_bytes: usize,
    pub max_meta_bytes: usize,
    pub free_max_stored_items: u64,
    pub premium_max_stored_items: u64,
    pub max_streams_per_key: usize,
    pub max_streams_per_connection: usize,
    pub sse_keepalive_ms: u64,
    pub sse_retry_ms: u64,
    pub retention_s: u64,
    pub purge_interval_ms: u64,
}

impl Default for RawJobs {
    fn default() -> Self {
        RawJobs {
            max_items: 100_000,
            max_open_jobs_per_key: 20,
            max_body_bytes: 32 << 20,
            max_url_bytes: 2048,
            max_meta_bytes: 1024,
            free_max_stored_items: 100_000,
            premium_max_stored_items: 10_000_000,
            max_streams_per_key: 64,
            max_streams_per_connection: 16,
            sse_keepalive_ms: 15_000,
            sse_retry_ms: 3_000,
            retention_s: 7 * 86_400,
            purge_interval_ms: 600_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLinks {
    pub code_length: usize,
    pub redirect_status: u16,
    pub redirect_max_age_s: u32,
    pub max_url_len: usize,
    pub click_flush_ms: u64,
    pub click_compact_ms: u64,
    pub cache_max_entries: usize,
    pub batch_max_items: usize,
    pub batch_max_body_bytes: usize,
    pub batch_max_password_links: usize,
    pub password_max_failures: u32,
    pub password_window_s: u64,
}

impl Default for RawLinks {
    fn default() -> Self {
        RawLinks {
            code_length: 6,
            redirect_status: 302,
            redirect_max_age_s: 90,
            max_url_len: 4096,
            click_flush_ms: 500,
            click_compact_ms: 60_000,
            cache_max_entries: 1_000_000,
            batch_max_items: 1_000,
            batch_max_body_bytes: 8 << 20,
            batch_max_password_links: 200,
            password_max_failures: 5,
            password_window_s: 300,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawSecurity {
    pub points_per_check: u64,
    pub dns_server: String,
    pub dns_timeout_ms: u64,
    pub blocklist_file: String,
}

impl Default for RawSecurity {
    fn default() -> Self {
        RawSecurity {
            points_per_check: 10,
            dns_server: String::new(),
            dns_timeout_ms: 1_500,
            blocklist_file: String::new(),
        }
    }
}
