//! Every configuration key, declared once: its doc (printed into `config.toml`), its type in the
//! file, its default, its rule, and the typed field the program reads. Adding a key is one entry
//! here; `panlink default-config` prints the new `config.toml`, and a test fails until it is saved.
//!
//! It must not read the environment or files: [`super::sources`] merges those into [`RawConfig`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::ConfigError;
use super::rules::{any, check, mebibytes_between, millis, millis_between, range, seconds_between};

config_sections! {
    [server] RawServer => ServerConfig {
        /// Address and port to listen on. Use 0.0.0.0:8080 to accept connections from other
        /// machines.
        listen: String = "127.0.0.1:8080".into(), check(socket_addr, "IP:port")
            => listen: SocketAddr;
        /// Absolute base URL used to build links handed to clients (short links, stream URLs),
        /// without a trailing slash, e.g. "https://s.example.com". Empty: built from each
        /// request's Host header.
        public_base_url: String = String::new(), check(base_url, "empty, or http(s)://host[:port]")
            => public_base_url: Option<String>;
        /// "human" (coloured, one line per event) or "json" (one JSON object per line), on stderr.
        log_format: String = "human".into(), check(log_format, "") => log_format: LogFormat;
        /// Colours in the "human" format: "auto" (only when stderr is a terminal, so journald
        /// and files get plain text), "always" or "never".
        log_color: String = "auto".into(), check(log_color, "") => log_color: LogColor;
        /// What is logged: a level, or target=level pairs, e.g. "info", "debug",
        /// "info,panlink=debug,hyper=warn". Levels: trace, debug, info, warn, error, off.
        log_level: String = "info".into(), check(tracing_filter, "");
        /// Tokio worker threads; 0 means one per CPU core.
        worker_threads: usize = 0, range(0, 1024);
    }

    [http] RawHttp => HttpConfig {
        /// Open client connections at most; over it, a connection gets a 503 answer and is closed.
        max_connections: usize = 20_000, range(1, 1_000_000);
        /// Connections the kernel queues for the server before it accepts them (the listen(2)
        /// backlog; Linux caps it at net.core.somaxconn). A burst of new connections larger than
        /// this waits for SYN retransmits, seconds apart. tokio's own default is 1024.
        listen_backlog: u32 = 4_096, range(1, 65_535);
        /// Requests handled at once at most; over it, a request gets 503 + Retry-After instead of
        /// waiting.
        max_in_flight: usize = 8_192, range(1, 1_000_000);
        /// A new connection must send its first byte within this time or it is closed.
        first_byte_timeout_ms: u64 = 5_000, millis() => first_byte_timeout: Duration;
        /// Time allowed to receive a complete request head. hyper also applies it while an HTTP/1
        /// connection waits for its next request, so it bounds keep-alive idling too.
        header_read_timeout_ms: u64 = 10_000, millis() => header_read_timeout: Duration;
        /// A connection (HTTP/1 or HTTP/2) with no request running for this long is closed.
        idle_timeout_ms: u64 = 60_000, millis() => idle_timeout: Duration;
        /// A connection whose socket accepts none of the bytes the server has for it for this
        /// long is dropped (a client that stopped reading, e.g. an SSE subscriber that never
        /// reads).
        write_stall_timeout_ms: u64 = 30_000, millis() => write_stall_timeout: Duration;
        /// A handler must produce its response head within this time, else 503. Streams (SSE)
        /// answer at once and are not cut by it.
        handler_timeout_ms: u64 = 30_000, millis() => handler_timeout: Duration;
        /// A request body must be under way within this time and then keep up an average of
        /// body_min_bytes_per_s (counted from the start), else 408 `body_timeout` and the
        /// connection is closed. Bodies are read before the request takes an in-flight slot, so a
        /// slow sender holds only its own connection.
        body_timeout_ms: u64 = 5_000, millis() => body_timeout: Duration;
        /// The average rate a request body must keep up after body_timeout_ms (see there).
        body_min_bytes_per_s: u64 = 16 * 1024, range(1, 1 << 30).unit("bytes/s");
        /// Bodies one client address may be sending at once on routes without credentials (the
        /// password form); over it, 429 `too_many_concurrent_requests`.
        max_public_body_reads_per_peer: u32 = 16, range(1, 1_000_000);
        /// Largest request body accepted by default; routes with larger needs say so.
        max_body_bytes: usize = 1 << 20, range(1024, 1 << 30).unit("bytes");
        /// Largest request head (request line and headers).
        max_header_bytes: usize = 64 * 1024, range(8192, 1 << 24).unit("bytes");
        /// Accept HTTP/2 with prior knowledge (h2c) next to HTTP/1.1 on the same port.
        http2: bool = true, any();
        /// Concurrent streams per HTTP/2 connection.
        h2_max_concurrent_streams: u32 = 256, range(1, 10_000);
        /// On SIGTERM/SIGINT, how long in-flight requests may take to finish before the server
        /// exits.
        shutdown_grace_ms: u64 = 10_000, millis() => shutdown_grace: Duration;
        /// After handing its listener to a new server (`panlink serve --take-over`), how long
        /// the old one keeps an idle HTTP/1.1 keep-alive connection open for its client's next
        /// request (answered with `Connection: close`) before closing it. Within
        /// shutdown_grace_ms.
        handover_linger_ms: u64 = 2_000, millis() => handover_linger: Duration;
        /// Seconds suggested in Retry-After when the server sheds load.
        retry_after_s: u32 = 1, range(1, 3600);
    }

    [storage] RawStorage => StorageConfig {
        /// Where panlink keeps its data: the LMDB environment (lmdb/) and the generated admin
        /// token. Must be a local file system (not NFS/SMB: LMDB memory-maps its file).
        data_dir: String = "data".into(), check(directory, "a directory") => data_dir: PathBuf;
        /// Largest size of the LMDB map. The file is sparse and grows with use; when it is full,
        /// writes fail with 507 and nothing is lost.
        map_size_mb: usize = 8 * 1024, mebibytes_between(1, 16 << 20) => map_size_bytes: usize;
        /// Concurrent LMDB read transactions at most (one per request in flight that reads).
        max_readers: u32 = 1024, range(126, 65_536);
        /// Most write operations committed together in one LMDB transaction (group commit).
        max_batch_ops: usize = 1024, range(1, 100_000);
    }

    [keys] RawKeys => KeysConfig {
        /// Requests per second allowed per API key unless the key sets its own.
        default_rate_per_s: u32 = 100, range(1, 1_000_000);
        /// Burst allowed per API key unless the key sets its own.
        default_burst: u32 = 200, range(1, 1_000_000);
        /// How often usage counters (requests, last used) are written to the key records.
        usage_flush_ms: u64 = 1_000, millis() => usage_flush_interval: Duration;
    }

    [admin] RawAdmin => AdminConfig {
        /// Bearer token of the admin API (Authorization: Bearer <token>). Empty: one is generated
        /// on first start, stored in <data_dir>/admin_token (mode 0600) and logged once.
        token: String = String::new(), check(admin_token, "empty, or 16+ characters")
            => token: Option<String>;
    }

    [checker] RawChecker => CheckerConfig {
        /// Send every provider request to this IP:port instead of the address DNS gives, keeping
        /// the real host name in TLS SNI and the Host header. Empty: use DNS. Tests point it at
        /// `panlink mock-upstream`.
        upstream_override: String = String::new(), check(optional_socket_addr, "empty, or IP:port")
            => upstream_override: Option<SocketAddr>;
        /// A PEM file of extra root certificates to trust besides the built-in Mozilla roots (the
        /// mock upstream's CA in tests). Empty: none.
        extra_root_ca: String = String::new(), check(optional_path, "")
            => extra_root_ca: Option<PathBuf>;
        /// Deadline for one provider request, including reading its body.
        request_timeout_ms: u64 = 10_000, millis() => request_timeout: Duration;
        /// Deadline for opening a TCP connection to a provider.
        connect_timeout_ms: u64 = 5_000, millis() => connect_timeout: Duration;
        /// Largest provider response body read; a larger one is treated as unrecognised.
        max_response_bytes: usize = 2 << 20, range(1024, 64 << 20).unit("bytes");
        /// Idle pooled connections kept per provider host.
        pool_max_idle_per_host: usize = 64, range(0, 100_000);
        /// The User-Agent sent to providers (their web APIs expect a browser's).
        user_agent: String = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36".into(),
            check(header_value, "");
        /// Checks running at once, per provider. Hurried (urgent) links may go over it by an
        /// eighth (at least 1), so they start at once without interrupting anything. It is a
        /// ceiling: rate-limit answers halve the current limit, good answers raise it again (AIMD).
        concurrency: usize = 16, range(1, 10_000);
        /// Checks started per second at most, per provider (providers ban busy clients).
        rate_per_s: u32 = 50, range(1, 1_000_000);
        /// Attempts per link when the outcome is transient (timeout, rate limit, 5xx, connection
        /// error); still unknown after them → reported as unknown.
        max_attempts: u32 = 3, range(1, 10);
        /// Backoff before the second attempt; doubled each attempt, with jitter.
        retry_backoff_ms: u64 = 200, millis() => retry_backoff: Duration;
        /// Retry budget per provider: each first attempt earns this fraction of a retry, each
        /// retry spends one (10 to start with), so an outage cannot multiply the load.
        retry_budget_ratio: f64 = 0.2, range(0.0, 1.0);
        /// How long a `valid` verdict is reused for the same share and pass code (results say
        /// `cached: true`); 0 turns caching off for that state. Unknown verdicts are never reused.
        cache_valid_ttl_s: u64 = 6 * 3600, seconds_between(0, 30 * 86_400)
            => cache_valid_ttl: Duration;
        /// How long an `invalid` verdict is reused (as cache_valid_ttl_s).
        cache_invalid_ttl_s: u64 = 3 * 86_400, seconds_between(0, 365 * 86_400)
            => cache_invalid_ttl: Duration;
        /// How long a `locked` verdict (a pass code is needed) is reused (as cache_valid_ttl_s).
        cache_locked_ttl_s: u64 = 3600, seconds_between(0, 30 * 86_400)
            => cache_locked_ttl: Duration;
        /// Verdicts kept in memory at most.
        cache_max_entries: usize = 200_000, range(0, 100_000_000);
        /// Consecutive timeouts or upstream errors after which a provider's circuit opens: no
        /// check starts for the cool-down, then one probe; its failure doubles the cool-down (at
        /// most 5 minutes). Pending links wait meanwhile.
        breaker_failures: u32 = 20, range(1, 1_000_000);
        /// The first cool-down of an open circuit (see breaker_failures).
        breaker_cooldown_ms: u64 = 30_000, millis() => breaker_cooldown: Duration;
        /// HTTP CONNECT proxies for provider requests, used in turn, e.g.
        /// ["http://user:password@203.0.113.7:3128", "http://203.0.113.8:3128"] (providers ban
        /// busy IPs). Empty: connect directly. Env: PANLINK_CHECKER_PROXIES='["http://h:3128"]'.
        proxies: Vec<String> = Vec::new(), check(proxies, "http://[user:password@]host:port each")
            => proxies: Vec<http::Uri>;
        /// Which providers go through the proxies, e.g. ["baidu", "aliyun"]; empty: all of them.
        proxy_providers: Vec<String> = Vec::new(), check(providers, "")
            => proxy_providers: Vec<crate::drive::Provider>;
        /// A logged-in cookie per provider, sent with that provider's requests, e.g.
        /// ["baidu=BDUSS=…; STOKEN=…"]: baidu answers -64 (too many pass-code tries on a share)
        /// to anonymous checks only. Never logged, never shown by /pool or /health. Empty: every
        /// check is anonymous. Env: PANLINK_CHECKER_COOKIES='["baidu=BDUSS=…"]'.
        cookies: Vec<String> = Vec::new(), check(provider_cookies, "\"<provider>=<Cookie header value>\" each")
            => cookies: ProviderCookies;
    }

    [jobs] RawJobs => JobsConfig {
        /// URLs per job at most (400 above).
        max_items: usize = 100_000, range(1, 10_000_000);
        /// Unfinished jobs per API key at most (429 above).
        max_open_jobs_per_key: usize = 20, range(1, 100_000);
        /// Largest POST /jobs body (413 above).
        max_body_bytes: usize = 32 << 20, range(1024, 1 << 30).unit("bytes");
        /// Longest URL of one item; a longer one is rejected (`url_too_long` in `rejected`). With
        /// max_meta_bytes it bounds what one item stores (its record and its result both carry
        /// URL and meta).
        max_url_bytes: usize = 2048, range(64, 65_536).unit("bytes");
        /// Largest `meta` of one item, as compact JSON; a larger one is rejected (`meta_too_large`
        /// in `rejected`).
        max_meta_bytes: usize = 1024, range(16, 1 << 20).unit("bytes");
        /// Items a key on the free plan may have stored at once, counted at submission over the
        /// retention window (every job submitted within `retention_s`, answered or not); a job
        /// that would go over it is refused with 429 `item_quota_exceeded`. The default allows
        /// one job of `max_items` per window.
        free_max_stored_items: u64 = 100_000, range(1, 1 << 40);
        /// The same for keys on the premium plan.
        premium_max_stored_items: u64 = 10_000_000, range(1, 1 << 40);
        /// Event streams (GET /jobs/{id}/events) open at once per API key; over it, 429
        /// `too_many_streams`.
        max_streams_per_key: usize = 64, range(1, 1_000_000);
        /// Event streams open at once per connection (HTTP/2 carries many streams on one); over
        /// it, 429 `too_many_streams`.
        max_streams_per_connection: usize = 16, range(1, 10_000);
        /// A ":" comment is sent on idle SSE streams this often.
        sse_keepalive_ms: u64 = 15_000, millis() => sse_keepalive: Duration;
        /// The reconnect delay suggested to SSE clients (`retry:`).
        sse_retry_ms: u64 = 3_000, millis() => sse_retry: Duration;
        /// Finished jobs, their items and results are deleted this long after they end (default
        /// 7 days).
        retention_s: u64 = 7 * 86_400, seconds_between(1, 10 * 365 * 86_400)
            => retention: Duration;
        /// How often the purge of expired jobs runs.
        purge_interval_ms: u64 = 600_000, millis() => purge_interval: Duration;
    }

    [check] RawCheck => CheckConfig {
        /// Links one blocking POST /check may carry (400 above; larger sets go to POST /jobs).
        max_items: usize = 100, range(1, 10_000);
        /// How long POST /check waits for its results when the request does not say (`wait_s`).
        default_wait_s: u64 = 10, seconds_between(1, 300) => default_wait: Duration;
        /// The longest `wait_s` a request may ask for; the job goes on after it either way.
        max_wait_s: u64 = 30, seconds_between(1, 300) => max_wait: Duration;
    }

    [monitors] RawMonitors => MonitorsConfig {
        /// The shortest re-check interval a monitor may ask for (`interval_s`; 400 below it).
        min_interval_s: u64 = 3_600, range(1, 365 * 86_400).unit("s");
        /// The interval of a monitor that does not name one (default one day).
        default_interval_s: u64 = 86_400, range(1, 365 * 86_400).unit("s");
        /// Monitors one API key may have (400 above).
        max_per_key: usize = 100, range(1, 100_000);
        /// Links a key on the free plan may have in all its monitors together (400 above).
        free_max_links_per_key: u64 = 1_000, range(0, 1 << 32);
        /// The same for keys on the premium plan.
        premium_max_links_per_key: u64 = 100_000, range(0, 1 << 32);
        /// The least time between two runs started by POST /api/v1/monitors/{id}/run (429
        /// sooner).
        run_min_gap_s: u64 = 60, seconds_between(0, 86_400) => run_min_gap: Duration;
    }

    [webhooks] RawWebhooks => WebhooksConfig {
        /// Accept webhook URLs whose host resolves to a loopback, private, link-local, CGNAT or
        /// multicast address. Off: such URLs are refused at creation and at every delivery.
        allow_private: bool = false, any();
        /// Accept `http://` webhook URLs (off: `https://` only).
        allow_http: bool = false, any();
        /// Webhooks one API key may have (400 above).
        max_per_key: usize = 20, range(1, 10_000);
        /// Deliveries stored per webhook at most (each is its event's body and its attempts; about
        /// 1 KB). A new event over it deletes the oldest delivery: a finished one, or, when a
        /// receiver has been down long enough, the oldest still waiting (logged as
        /// `webhook.delivery_dropped`).
        max_stored_deliveries: u64 = 10_000, range(1, 10_000_000);
        /// One delivery attempt (connect, send, answer) must end within this; else it failed.
        timeout_ms: u64 = 10_000, millis_between(100, 120_000) => timeout: Duration;
        /// Deliveries in flight at once to one webhook: a slow receiver only delays its own.
        concurrency_per_receiver: usize = 4, range(1, 64);
        /// The wait before the first retry; each later one waits twice as long (with up to 25 %
        /// jitter).
        retry_base_ms: u64 = 60_000, millis_between(10, 3_600_000) => retry_base: Duration;
        /// A delivery is retried for this long after its event, then marked failed.
        retry_window_s: u64 = 86_400, seconds_between(1, 30 * 86_400) => retry_window: Duration;
        /// A webhook whose every delivery failed for this long (since its last success) is
        /// disabled (`disabled_reason: failing`; PATCH `disabled: false` turns it back on).
        disable_after_s: u64 = 3 * 86_400, seconds_between(1, 365 * 86_400)
            => disable_after: Duration;
        /// Finished deliveries (delivered or failed) are deleted this long after their event.
        delivery_retention_s: u64 = 7 * 86_400, seconds_between(60, 365 * 86_400)
            => delivery_retention: Duration;
    }

    [links] RawLinks => LinksConfig {
        /// Characters of a generated short code (random base62; grows by itself if collisions
        /// repeat).
        code_length: usize = 6, range(4, 32);
        /// Status of the redirect: 302 (default: browsers keep asking, so clicks are counted and
        /// edits take effect), or 301, 307, 308.
        redirect_status: u16 = 302, check(redirect_status, "301, 302, 307 or 308")
            => redirect_status: http::StatusCode;
        /// `Cache-Control: private, max-age=<this>` on redirects.
        redirect_max_age_s: u32 = 90, range(0, 31_536_000).unit("s");
        /// Longest target URL accepted (400 above).
        max_url_len: usize = 4096, range(64, 65_536).unit("bytes");
        /// Clicks are counted in memory and appended to the click journal in one write this often
        /// (and at shutdown); a crash loses at most this interval's clicks.
        click_flush_ms: u64 = 500, millis() => click_flush_interval: Duration;
        /// The journaled clicks are folded into each link's counters this often (one update per
        /// link clicked in the interval, however often); readers see them meanwhile.
        click_compact_ms: u64 = 60_000, millis() => click_compact_interval: Duration;
        /// Links kept in the redirect's memory cache (misses read LMDB); 0 turns the cache off.
        cache_max_entries: usize = 1_000_000, range(0, 100_000_000);
        /// Items per POST /api/v1/links/batch at most.
        batch_max_items: usize = 1_000, range(1, 100_000);
        /// The size limit of a POST /api/v1/links/batch body.
        batch_max_body_bytes: usize = 8 << 20, range(1024, 1 << 30).unit("bytes");
        /// Rows per POST /api/v1/links/import at most (committed 1 000 at a time).
        import_max_rows: usize = 100_000, range(1, 1_000_000);
        /// The size limit of a POST /api/v1/links/import body (CSV).
        import_max_body_bytes: usize = 32 << 20, range(1024, 1 << 30).unit("bytes");
        /// Password links per batch at most (each is an argon2id hash of ~35 ms of one core; they
        /// run in parallel on the blocking pool). 0 forbids password links in batches.
        batch_max_password_links: usize = 200, range(0, 100_000);
        /// Wrong passwords per link and client IP within password_window_s before the form
        /// answers 429.
        password_max_failures: u32 = 5, range(1, 1_000_000);
        /// The window over which password_max_failures counts.
        password_window_s: u64 = 300, seconds_between(1, 86_400) => password_window: Duration;
        /// Other names this service is reached under (an alias domain, a CDN's name), e.g.
        /// ["go.example.com"]. A link may not point at them, as it may not point at the host of
        /// server.public_base_url, the Host of the request that creates it, the listen address or
        /// any loopback name: such a link would lead back here, maybe in a loop.
        own_hosts: Vec<String> = Vec::new(), check(host_names, "host names");
        /// A link whose target is a share of a supported drive is checked soon after it is made
        /// and then this often (on the checker's background lane); a dead share makes the
        /// redirect answer 410 (or go to the link's fallback_url).
        target_check_interval_s: u32 = 86_400, range(1, 365 * 86_400).unit("s");
        /// Short-link domains served by this instance, e.g. ["s.example.com", "go.example.cn"]:
        /// a link lives on one of them (its `domain`), and the same code may exist on each. The
        /// redirect picks the domain from the request's Host. Empty: one nameless domain, short
        /// URLs built from server.public_base_url or the request's Host.
        domains: Vec<String> = Vec::new(), check(short_domains, "host names, lowercase, no port");
        /// The domain of links created without one, and of requests whose Host is none of
        /// `domains` (unless strict_host). Empty: the first of `domains`. Links on the default
        /// domain are stored without a domain: changing this moves them to the new default.
        default_domain: String = String::new(), check(optional_short_domain, "empty, or one of links.domains")
            => default_domain: Option<String>;
        /// A request whose Host is none of `domains` gets 404 instead of the default domain's
        /// link (with `domains` set).
        strict_host: bool = false, any();
        /// Scheme of the short URLs handed out for `domains` (full_short_url, QR codes).
        domain_scheme: String = "https".into(), check(url_scheme, "\"https\" or \"http\"");
        /// Count each human click's device, OS, browser, in-app browser, referrer host, language
        /// (and country and region with geoip_db) per link and day. Only these coarse values are
        /// kept; never an address or a user agent.
        analytics: bool = true, any();
        /// The time zone whose midnight starts a day of the click statistics (IANA name).
        stats_timezone: String = "Asia/Shanghai".into(), check(time_zone, "an IANA time zone, e.g. Asia/Shanghai or UTC");
        /// A MaxMind-format IP database (.mmdb: GeoLite2-City, GeoIP2-City or -Country, or any
        /// with the same fields) for the country and region of clicks. Empty: no geo statistics.
        /// Read at start-up; nothing is ever downloaded.
        geoip_db: String = String::new(), check(optional_path, "") => geoip_db: Option<PathBuf>;
        /// Proxies in front of this server (IP addresses): for a request from one of them, the
        /// client's address is the first of X-Forwarded-For (for the geo statistics).
        trusted_proxies: Vec<String> = Vec::new(), check(ip_addresses, "IP addresses")
            => trusted_proxies: Vec<std::net::IpAddr>;
    }

    [security] RawSecurity => SecurityConfig {
        /// Points one POST /api/v1/tools/security-check costs (debited atomically; below it: 403
        /// 积分不足).
        points_per_check: u64 = 10, range(0, 1_000_000);
        /// The DNS server the check asks, as IP:port; empty: the system's resolvers
        /// (/etc/resolv.conf).
        dns_server: String = String::new(), check(optional_socket_addr, "empty, or IP:port")
            => dns_server: Option<SocketAddr>;
        /// A name that does not resolve within this is reported as `unresolvable_host`.
        dns_timeout_ms: u64 = 1_500, millis_between(1, 30_000) => dns_timeout: Duration;
        /// Your own blocklist, added to the bundled one: one domain per line, `#` comments,
        /// `!domain` exempts a domain. Empty: the bundled list only. Read at start-up.
        blocklist_file: String = String::new(), check(optional_path, "")
            => blocklist_file: Option<PathBuf>;
    }

    [cluster] RawCluster => ClusterConfig {
        /// NATS servers of the JetStream cluster this node joins (nats://host:port each; one is
        /// enough, the client learns the others). Empty: a single-node server on its own LMDB,
        /// which never contacts NATS. Cluster mode needs nats-server 2.10 or newer
        /// (docs/cluster.md: older servers accept concurrent compare-and-set writes).
        nats_urls: Vec<String> = Vec::new(), check(nats_urls, "nats://host:port each");
        /// This node's name in the cluster, unique among its nodes and the same across its
        /// restarts: its click records carry it (letters, digits, - and _, up to 64). Empty: the
        /// host name, then - and the listen port (set it when the port is chosen at start).
        node_id: String = String::new(), check(node_id, "empty, or [A-Za-z0-9_-]{1,64}")
            => node_id: Option<String>;
        /// A NATS credentials file (.creds: a user JWT and its NKey seed). Empty: none.
        credentials_file: String = String::new(), check(optional_path, "")
            => credentials_file: Option<PathBuf>;
        /// Copies JetStream keeps of panlink's buckets and streams: 3 across three servers (one
        /// may fail), 1 for a single nats-server.
        replicas: usize = 3, range(1, 5);
        /// A node that sent no heartbeat for this long leaves the cluster's node list; heartbeats
        /// go out every third of it.
        node_ttl_ms: u64 = 6_000, millis_between(1_500, 600_000) => node_ttl: Duration;
        /// Connecting to NATS at start-up must succeed within this, or start-up fails.
        connect_timeout_ms: u64 = 10_000, millis_between(100, 300_000) => connect_timeout: Duration;
        /// A work batch of a checker job (up to 100 links of one drive) goes to another node when
        /// the node that took it shows no progress for this long; a node working on one shows
        /// progress every third of it, so only a node that died or lost NATS loses its batches.
        work_ack_wait_ms: u64 = 30_000, millis_between(1_000, 600_000) => work_ack_wait: Duration;
        /// Work batches of one drive being checked at once across the whole cluster, at most: the
        /// cluster-wide cap on checks in flight per drive, in batches of up to 100 links (each node
        /// also keeps its own drives.<name>.concurrency and rate_per_s).
        max_batches_in_flight: u32 = 1_000, range(1, 1_000_000);
    }

    per_drive [drives] RawDrive => DriveConfig {
        /// Check this drive's links. false: they are answered `unknown` with reason
        /// `unsupported_provider` and a message naming this setting; the drive is never asked.
        enabled: bool = true, any();
        /// Checks started per second at most against this drive; 0: checker.rate_per_s.
        rate_per_s: u32 = 0, range(0, 1_000_000);
        /// Checks running at once against this drive; 0: checker.concurrency.
        concurrency: usize = 0, range(0, 10_000);
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

/// Whether the human log format writes ANSI colour codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogColor {
    /// When stderr is a terminal.
    Auto,
    Always,
    Never,
}

/// How long the checker keeps verdicts, by state (zero: not kept).
#[derive(Debug, Clone, Copy)]
pub struct CacheTtl {
    pub valid: Duration,
    pub invalid: Duration,
    pub locked: Duration,
}

impl CheckerConfig {
    pub fn cache_ttl(&self) -> CacheTtl {
        CacheTtl {
            valid: self.cache_valid_ttl,
            invalid: self.cache_invalid_ttl,
            locked: self.cache_locked_ttl,
        }
    }
}

impl StorageConfig {
    /// The LMDB environment's directory inside the data dir.
    pub fn lmdb_dir(&self) -> PathBuf {
        self.data_dir.join("lmdb")
    }
}

fn socket_addr(key: &str, text: String) -> Result<SocketAddr, ConfigError> {
    text.trim().parse().map_err(|_| {
        ConfigError(format!(
            "`{key}` = {text:?}: must be an IP:port socket address, e.g. 127.0.0.1:8080"
        ))
    })
}

fn optional_socket_addr(key: &str, text: String) -> Result<Option<SocketAddr>, ConfigError> {
    match text.trim() {
        "" => Ok(None),
        addr => addr.parse().map(Some).map_err(|_| {
            ConfigError(format!(
                "`{key}` = {text:?}: must be empty or an IP:port socket address, e.g. 127.0.0.1:53"
            ))
        }),
    }
}

fn base_url(key: &str, text: String) -> Result<Option<String>, ConfigError> {
    match text.trim() {
        "" => Ok(None),
        url if url.starts_with("http://") || url.starts_with("https://") => {
            Ok(Some(url.trim_end_matches('/').to_owned()))
        }
        url => Err(ConfigError(format!(
            "`{key}` = {url:?}: must be empty or start with http:// or https://"
        ))),
    }
}

fn log_color(key: &str, text: String) -> Result<LogColor, ConfigError> {
    match text.as_str() {
        "auto" => Ok(LogColor::Auto),
        "always" => Ok(LogColor::Always),
        "never" => Ok(LogColor::Never),
        other => Err(ConfigError(format!(
            "`{key}` = {other:?}: must be \"auto\", \"always\" or \"never\""
        ))),
    }
}

fn log_format(key: &str, text: String) -> Result<LogFormat, ConfigError> {
    match text.as_str() {
        "human" => Ok(LogFormat::Human),
        "json" => Ok(LogFormat::Json),
        other => Err(ConfigError(format!(
            "`{key}` = {other:?}: must be \"human\" or \"json\""
        ))),
    }
}

/// A tracing filter whose every directive names a level tracing knows: `info`, or
/// `panlink=debug,hyper=info`. tracing itself reads an unknown word (`warning`, `verbose`) as a
/// target name and silently logs nothing, so such a word is refused here.
fn tracing_filter(key: &str, text: String) -> Result<String, ConfigError> {
    const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];
    let refuse = |why: String| {
        ConfigError(format!(
            "`{key}` = {text:?}: {why}; use a level ({}) or target=level pairs, e.g. \"info\" or \"info,panlink=debug\"",
            LEVELS.join(", ")
        ))
    };
    for directive in text.split(',').map(str::trim) {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(_, level)| level);
        if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(refuse(format!("{level:?} is not a log level")));
        }
    }
    tracing_subscriber::EnvFilter::try_new(&text)
        .map(|_| text.clone())
        .map_err(|err| refuse(format!("not a tracing filter ({err})")))
}

fn directory(key: &str, text: String) -> Result<PathBuf, ConfigError> {
    if text.trim().is_empty() {
        return Err(ConfigError(format!(
            "`{key}` is empty: it must name a directory"
        )));
    }
    Ok(PathBuf::from(text))
}

fn time_zone(key: &str, text: String) -> Result<String, ConfigError> {
    let name = text.trim();
    jiff::tz::TimeZone::get(name)
        .map(|_| name.to_owned())
        .map_err(|_| {
            ConfigError(format!(
                "`{key}` = {text:?}: not an IANA time zone (e.g. Asia/Shanghai, UTC)"
            ))
        })
}

fn ip_addresses(key: &str, items: Vec<String>) -> Result<Vec<std::net::IpAddr>, ConfigError> {
    items
        .into_iter()
        .map(|item| {
            item.trim().parse().map_err(|_| {
                ConfigError(format!("`{key}` has {item:?}: each must be an IP address"))
            })
        })
        .collect()
}

fn optional_path(_key: &str, text: String) -> Result<Option<PathBuf>, ConfigError> {
    let path = text.trim();
    Ok((!path.is_empty()).then(|| PathBuf::from(path)))
}

/// NATS server URLs: `nats://host:port` (or `tls://`).
fn nats_urls(key: &str, list: Vec<String>) -> Result<Vec<String>, ConfigError> {
    list.iter()
        .map(|text| {
            let text = text.trim();
            let uri: Option<http::Uri> = text.parse().ok();
            match uri {
                Some(uri)
                    if matches!(uri.scheme_str(), Some("nats" | "tls"))
                        && uri.host().is_some()
                        && uri.port_u16().is_some() =>
                {
                    Ok(text.to_owned())
                }
                _ => Err(ConfigError(format!(
                    "`{key}` has {text:?}: each must be nats://host:port (or tls://host:port)"
                ))),
            }
        })
        .collect()
}

/// A node id: what a JetStream key may hold, short.
fn node_id(key: &str, text: String) -> Result<Option<String>, ConfigError> {
    let id = text.trim();
    if id.is_empty() {
        return Ok(None);
    }
    if id.len() > 64
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(ConfigError(format!(
            "`{key}` is {id:?}: use letters, digits, - and _ (at most 64), or leave it empty"
        )));
    }
    Ok(Some(id.to_owned()))
}

fn admin_token(key: &str, text: String) -> Result<Option<String>, ConfigError> {
    let token = text.trim();
    if !token.is_empty() && token.len() < 16 {
        return Err(ConfigError(format!(
            "`{key}` is shorter than 16 characters: use a long random token, or leave it empty to have one generated"
        )));
    }
    Ok((!token.is_empty()).then(|| token.to_owned()))
}

fn header_value(key: &str, text: String) -> Result<String, ConfigError> {
    if text.trim().is_empty() || http::HeaderValue::from_str(&text).is_err() {
        return Err(ConfigError(format!(
            "`{key}` must be a non-empty header value"
        )));
    }
    Ok(text)
}

/// Proxy URLs: `http://[user:password@]host:port`.
fn proxies(key: &str, list: Vec<String>) -> Result<Vec<http::Uri>, ConfigError> {
    list.iter()
        .map(|text| {
            let bad = || {
                ConfigError(format!(
                    "`{key}` has {text:?}: each must be http://[user:password@]host:port"
                ))
            };
            let uri: http::Uri = text.trim().parse().map_err(|_| bad())?;
            if uri.scheme_str() != Some("http") || uri.host().is_none() || uri.port_u16().is_none()
            {
                return Err(bad());
            }
            Ok(uri)
        })
        .collect()
}

fn providers(key: &str, names: Vec<String>) -> Result<Vec<crate::drive::Provider>, ConfigError> {
    names
        .iter()
        .map(|name| {
            crate::drive::Provider::parse(name).ok_or_else(|| {
                let known: Vec<&str> = crate::drive::Provider::ALL
                    .iter()
                    .map(|p| p.as_str())
                    .collect();
                ConfigError(format!("`{key}` has {name:?}: use {}", known.join(", ")))
            })
        })
        .collect()
}

/// Logged-in cookies by provider (`checker.cookies`); `Debug` shows which providers have one,
/// never the cookie.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProviderCookies(Vec<(crate::drive::Provider, String)>);

impl ProviderCookies {
    /// Reads entries as `checker.cookies` does (`"baidu=BDUSS=…"`).
    pub fn parse(entries: &[&str]) -> Result<ProviderCookies, ConfigError> {
        provider_cookies(
            "checker.cookies",
            entries.iter().map(|e| (*e).to_owned()).collect(),
        )
    }

    /// The cookie configured for `provider`.
    pub fn of(&self, provider: crate::drive::Provider) -> Option<&str> {
        self.0
            .iter()
            .find(|(p, _)| *p == provider)
            .map(|(_, cookie)| cookie.as_str())
    }
}

impl std::fmt::Debug for ProviderCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(
                self.0
                    .iter()
                    .map(|(p, _)| format!("{}=<redacted>", p.as_str())),
            )
            .finish()
    }
}

fn provider_cookies(key: &str, entries: Vec<String>) -> Result<ProviderCookies, ConfigError> {
    let mut out: Vec<(crate::drive::Provider, String)> = Vec::with_capacity(entries.len());
    for entry in entries {
        let (name, cookie) = entry.split_once('=').unwrap_or((entry.as_str(), ""));
        let name = name.trim();
        let cookie = cookie.trim();
        let provider = providers(key, vec![name.to_owned()])?.remove(0);
        // The value goes into a header: printable ASCII only, and something to send.
        if cookie.is_empty() || !cookie.bytes().all(|b| (0x20..0x7f).contains(&b)) {
            return Err(ConfigError(format!(
                "`{key}` has an entry for {name}: the cookie after `=` must be non-empty printable ASCII"
            )));
        }
        if out.iter().any(|(p, _)| *p == provider) {
            return Err(ConfigError(format!("`{key}` has two entries for {name}")));
        }
        out.push((provider, cookie.to_owned()));
    }
    Ok(ProviderCookies(out))
}

fn host_names(key: &str, names: Vec<String>) -> Result<Vec<String>, ConfigError> {
    names
        .into_iter()
        .map(|name| {
            let name = name.trim().to_owned();
            if name.is_empty() || url::Host::parse(&name).is_err() {
                return Err(ConfigError(format!(
                    "`{key}` has {name:?}: each must be a host name or IP address, without scheme or port"
                )));
            }
            Ok(name)
        })
        .collect()
}

/// Longest short-link domain (see `short_domains`).
pub const MAX_SHORT_DOMAIN_LEN: usize = 190;

fn short_domains(key: &str, names: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let names = host_names(key, names)?;
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.contains('/') || name.contains(':') || out.contains(&name) {
            return Err(ConfigError(format!(
                "`{key}` has {name:?}: each must be a distinct host name, without port"
            )));
        }
        // A link's id is `domain/code` (code up to 64 bytes) and the click journal gives an id
        // one length byte.
        if name.len() > MAX_SHORT_DOMAIN_LEN {
            return Err(ConfigError(format!(
                "`{key}` has {name:?}: at most {MAX_SHORT_DOMAIN_LEN} characters"
            )));
        }
        out.push(name);
    }
    Ok(out)
}

fn optional_short_domain(key: &str, name: String) -> Result<Option<String>, ConfigError> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.is_empty() {
        return Ok(None);
    }
    Ok(short_domains(key, vec![name])?.pop())
}

fn url_scheme(key: &str, text: String) -> Result<String, ConfigError> {
    match text.as_str() {
        "https" | "http" => Ok(text),
        other => Err(ConfigError(format!(
            "`{key}` = {other:?}: must be \"https\" or \"http\""
        ))),
    }
}

impl Config {
    /// Rules between keys, checked after each key alone.
    pub(super) fn check_together(&self) -> Result<(), ConfigError> {
        let links = &self.links;
        if let Some(default) = &links.default_domain
            && !links.domains.contains(default)
        {
            return Err(ConfigError(format!(
                "`links.default_domain` = {default:?} is not one of `links.domains` ({:?})",
                links.domains
            )));
        }
        if self.http.handover_linger > self.http.shutdown_grace {
            return Err(ConfigError(format!(
                "`http.handover_linger_ms` = {} is longer than `http.shutdown_grace_ms` = {}: \
                 the old server would be stopped before its idle connections were closed",
                self.http.handover_linger.as_millis(),
                self.http.shutdown_grace.as_millis()
            )));
        }
        Ok(())
    }
}

fn redirect_status(key: &str, status: u16) -> Result<http::StatusCode, ConfigError> {
    match status {
        301 | 302 | 307 | 308 => Ok(http::StatusCode::from_u16(status).expect("a valid status")),
        other => Err(ConfigError(format!(
            "`{key}` = {other}: must be 301, 302, 307 or 308"
        ))),
    }
}
