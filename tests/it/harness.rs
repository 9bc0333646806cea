//! Starting the real `panlink` binary for a test, and a raw HTTP/1.1 client to talk to it.
//!
//! The client is hand-written on purpose: tests need to send what real clients would not
//! (partial heads, slow bodies, conflicting lengths) and to see exactly what the server answers.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

/// A running `panlink mock-upstream`.
pub struct Mock {
    child: Child,
    pub addr: SocketAddr,
    pub ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mock {
    pub fn start(latency_ms: u64) -> Mock {
        Mock::start_with(latency_ms, &[])
    }

    /// [`Mock::start`] with more `mock-upstream` arguments (`--http1-only`).
    pub fn start_with(latency_ms: u64, extra: &[&str]) -> Mock {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("mock-ca.pem");
        let mut child = Command::new(env!("CARGO_BIN_EXE_panlink"))
            .args(["mock-upstream", "--listen", "127.0.0.1:0", "--ca-out"])
            .arg(&ca)
            .args(["--latency-ms", &latency_ms.to_string()])
            .args(extra)
            .env_clear()
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mock-upstream");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("mock-upstream listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected mock output {line:?}"));
        Mock {
            child,
            addr,
            ca,
            _dir: dir,
        }
    }

    pub fn checker_config(&self, timeout: Duration) -> panlink::config::CheckerConfig {
        panlink::config::CheckerConfig {
            upstream_override: Some(self.addr),
            extra_root_ca: Some(self.ca.clone()),
            request_timeout: timeout,
            connect_timeout: Duration::from_secs(2),
            max_response_bytes: 1 << 20,
            pool_max_idle_per_host: 16,
            user_agent: "panlink-test".into(),
            concurrency: 4,
            rate_per_s: 1000,
            max_attempts: 1,
            retry_backoff: Duration::from_millis(10),
            cache_valid_ttl: Duration::ZERO,
            cache_invalid_ttl: Duration::ZERO,
            cache_locked_ttl: Duration::ZERO,
            cache_max_entries: 0,
            breaker_failures: 1000,
            breaker_cooldown: Duration::from_secs(30),
            proxies: Vec::new(),
            proxy_providers: Vec::new(),
            cookies: Default::default(),
            retry_budget_ratio: 0.2,
        }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Mock {
    /// The server settings that point the checker at this mock.
    pub fn server_env(&self) -> Vec<(String, String)> {
        vec![
            (
                "PANLINK_CHECKER_UPSTREAM_OVERRIDE".into(),
                self.addr.to_string(),
            ),
            (
                "PANLINK_CHECKER_EXTRA_ROOT_CA".into(),
                self.ca.display().to_string(),
            ),
        ]
    }

    /// [`Mock::server_env`] followed by `env`.
    pub fn server_env_with(&self, env: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut all = self.server_env();
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        all
    }

    /// Requests per provider and TLS connections seen so far.
    pub fn stats(&self) -> serde_json::Value {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = panlink::checker::client::UpstreamClient::new(
                &self.checker_config(Duration::from_secs(5)),
            )
            .unwrap();
            let answer = client
                .get("https://pan.baidu.com/__mock/stats", &[])
                .await
                .unwrap();
            serde_json::from_slice(&answer.body).unwrap()
        })
    }
}

/// A running `panlink serve` with its own data dir.
pub struct Server {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    env: Vec<(String, String)>,
    _temp: Option<tempfile::TempDir>,
}

impl Server {
    /// A server with default settings, the test admin token and a fresh data dir.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// A server with extra `PANLINK_…` settings.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let temp = tempfile::tempdir().expect("temp dir");
        let data_dir = temp.path().join("data");
        let mut server = Server::spawn(&data_dir, env, true);
        server._temp = Some(temp);
        server
    }

    /// A server on the data dir `data_dir` (made if missing; its log goes beside it, as
    /// `data_dir.log`), with extra `PANLINK_…` settings.
    pub fn start_at(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        Server::spawn(data_dir, env, true)
    }

    /// Starts another server on the same data dir (after this one stopped).
    pub fn restart(mut self) -> Server {
        let temp = self._temp.take();
        self.stop();
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let mut next = Server::spawn(&self.data_dir, &env, false);
        next._temp = temp;
        next
    }

    /// Starts `panlink serve --take-over` on this server's data dir and settings: it takes this
    /// one's listener and place. Returns once the new one accepts connections.
    pub fn take_over(&self) -> Server {
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        Server::spawn_with(&self.data_dir, &env, false, &["--take-over"])
    }

    fn spawn(data_dir: &Path, env: &[(&str, &str)], fresh: bool) -> Server {
        Server::spawn_with(data_dir, env, fresh, &[])
    }

    fn spawn_with(data_dir: &Path, env: &[(&str, &str)], fresh: bool, args: &[&str]) -> Server {
        if fresh {
            std::fs::create_dir_all(data_dir).expect("data dir");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data_dir.with_extension("log"))
            .expect("log file");
        let mut command = serve_command(data_dir, env);
        command
            .args(args)
            .stdout(Stdio::piped())
            .stderr(log)
            .stdin(Stdio::null());
        let mut child = command.spawn().expect("spawn panlink");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("server did not start; log: {}", read_log(data_dir)));
        let addr = line
            .strip_prefix("panlink listening on http://")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        Server {
            child: Some(child),
            addr,
            data_dir: data_dir.to_owned(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            _temp: None,
        }
    }

    /// SIGTERM, then wait for the exit.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        signal(&child, "TERM");
        let status = wait_timeout(&mut child, Duration::from_secs(30));
        if status.is_none() {
            let _ = child.kill();
        }
        status
    }

    /// SIGKILL: the process dies at once, as in a crash.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends the signal `name` (as `kill -NAME` spells it) without waiting.
    pub fn signal(&self, name: &str) {
        if let Some(child) = &self.child {
            signal(child, name);
        }
    }

    /// Sends SIGTERM without waiting.
    pub fn sigterm(&self) {
        if let Some(child) = &self.child {
            signal(child, "TERM");
        }
    }

    /// Waits for the process to exit by itself.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let status = wait_timeout(&mut child, limit);
        if status.is_none() {
            let _ = child.kill();
        }
        status
    }

    /// The value of the un-labelled counter or gauge `name` in `/metrics` (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics", &[]).text();
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .map_or(0.0, |v| v.trim().parse().unwrap())
    }

    /// The server's peak resident set so far (`VmHWM`), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// The server's resident set now (`VmRSS`), in KiB.
    pub fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let pid = self.child.as_ref().expect("a running server").id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|line| line.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/PID/status"))
    }

    /// Prints the peak RSS under `what` (the test's report) and checks it is under `limit_mib`.
    pub fn report_peak_rss(&self, what: &str, limit_mib: u64) {
        let peak = self.peak_rss_kib();
        println!("peak RSS after {what}: {:.1} MiB", peak as f64 / 1024.0);
        assert!(
            peak < limit_mib * 1024,
            "{what}: peak RSS {peak} KiB over {limit_mib} MiB"
        );
    }

    /// Runs `panlink <args>` against this server's data dir.
    pub fn cli(&self, args: &[&str]) -> Output {
        cli(&self.data_dir, args)
    }

    pub fn log(&self) -> String {
        read_log(&self.data_dir)
    }

    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> Response {
        request(self.addr, "GET", path, headers, None)
    }

    pub fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Response {
        request(self.addr, method, path, headers, body.map(str::as_bytes))
    }

    /// Sends `body` as JSON with the admin token.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Response {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let mut headers = vec![("Authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        request(self.addr, method, path, &headers, body.map(str::as_bytes))
    }

    /// Creates a key through the admin API and returns `(secret, id)`.
    pub fn create_key(&self, body: &str) -> (String, String) {
        let response = self.admin("POST", "/admin/api/keys", Some(body));
        assert_eq!(response.status, 201, "{}", response.text());
        let json = response.json();
        (
            json["data"]["key"].as_str().unwrap().to_owned(),
            json["data"]["id"].as_str().unwrap().to_owned(),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Whether this process runs as root; when not, says which test is skipped and why. Tests that
/// mount file systems need root (CI runs as root).
pub fn root_or_skip(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0");
    if !root {
        eprintln!("skipped {test}: it mounts a file system, which needs root");
    }
    root
}

/// Where tests write the figures they measure; `scripts/test.sh` empties it first and prints it
/// at the end (cargo keeps a passing test's own output to itself).
pub fn figures_file() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("figures.txt")
}

/// Prints a measured figure and appends it to [`figures_file`].
pub fn figure(line: &str) {
    println!("figure: {line}");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(figures_file())
    {
        let _ = writeln!(file, "{line}");
    }
}

/// Polls `check` every 20 ms until it gives a value, or panics after `limit` saying `what` was
/// awaited. The one way integration tests wait for the server: never a fixed sleep.
pub fn wait_until<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {limit:?} for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `panlink serve` on `data_dir` with the tests' settings (loopback, an ephemeral port, the test
/// admin token, a small map), then `env`; nothing else of the caller's environment.
fn serve_command(data_dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_panlink"));
    command
        .arg("serve")
        .env_clear()
        .env("PANLINK_LISTEN", "127.0.0.1:0")
        .env("PANLINK_DATA_DIR", data_dir)
        .env("PANLINK_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PANLINK_STORAGE_MAP_SIZE_MB", "64");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

/// Opens `n` subscriptions to `path` that never read a byte of their streams.
pub fn silent_subscribers(addr: SocketAddr, path: &str, key: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(
                    format!("GET {path} HTTP/1.1\r\nHost: t\r\nX-API-Key: {key}\r\n\r\n")
                        .as_bytes(),
                )
                .unwrap();
            stream
        })
        .collect()
}

/// Runs `panlink serve` on `data_dir` with `env` and waits (at most `limit`) for it to exit by
/// itself: for start-ups that must be refused. Panics if it is still running then.
pub fn serve_refused(
    data_dir: &Path,
    env: &[(&str, &str)],
    limit: Duration,
) -> (ExitStatus, String) {
    let mut command = serve_command(data_dir, env);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawn panlink");
    let Some(status) = wait_timeout(&mut child, limit) else {
        let _ = child.kill();
        panic!("panlink serve kept running; it should have refused to start");
    };
    let mut output = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        let _ = stderr.read_to_string(&mut output);
    }
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut output);
    }
    (status, output)
}

pub fn cli(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_panlink"))
        .args(args)
        .env_clear()
        .env("PANLINK_DATA_DIR", data_dir)
        .env("PANLINK_STORAGE_MAP_SIZE_MB", "64")
        .output()
        .expect("run panlink")
}

fn read_log(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.with_extension("log")).unwrap_or_default()
}

fn signal(child: &Child, name: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status();
}

pub fn wait_timeout(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// Checks the error envelope: status, numeric code, slug and the request id echo.
    pub fn assert_error(&self, status: u16, slug: &str) -> serde_json::Value {
        assert_eq!(self.status, status, "{}", self.text());
        let json = self.json();
        assert_eq!(json["code"], status, "{json}");
        assert_eq!(json["error"], slug, "{json}");
        assert!(
            json["msg"].as_str().is_some_and(|m| !m.is_empty()),
            "{json}"
        );
        assert_eq!(json["detail"], json["msg"], "{json}");
        let id = self.header("x-request-id").expect("x-request-id header");
        assert_eq!(json["request_id"], id, "{json}");
        json
    }
}

/// One client connection (keep-alive).
pub struct Conn {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Conn { stream, reader }
    }

    /// Writes raw bytes.
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends a request and reads its response.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Response {
        self.try_send(method, path, headers, body)
            .expect("a response")
    }

    /// Sends a request and reads its response; `None` if the connection failed first (the
    /// server closed it, or reset it).
    pub fn try_send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Option<Response> {
        let mut head = format!("{method} {path} HTTP/1.1\r\n");
        if !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            head.push_str("Host: test\r\n");
        }
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if let Some(body) = body {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body.unwrap_or_default());
        self.stream.write_all(&bytes).ok()?;
        self.read_response(method == "HEAD")
    }

    /// Reads one response; `None` if the server closed the connection first.
    pub fn read_response(&mut self, head_only: bool) -> Option<Response> {
        let mut status_line = String::new();
        if self.reader.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        let status: u16 = status_line.split(' ').nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).ok()?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':')?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        let mut response = Response {
            status,
            headers,
            body: Vec::new(),
        };
        if head_only || status == 204 || status == 304 {
            return Some(response);
        }
        if let Some(length) = response.header("content-length") {
            let mut body = vec![0; length.parse().ok()?];
            self.reader.read_exact(&mut body).ok()?;
            response.body = body;
        } else if response
            .header("transfer-encoding")
            .is_some_and(|v| v.contains("chunked"))
        {
            loop {
                let mut size = String::new();
                self.reader.read_line(&mut size).ok()?;
                let size = usize::from_str_radix(size.trim(), 16).ok()?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk).ok()?;
                if size == 0 {
                    break;
                }
                response.body.extend_from_slice(&chunk[..size]);
            }
        } else {
            self.reader.read_to_end(&mut response.body).ok()?;
        }
        Some(response)
    }

    /// Whether the server closes the connection within `limit` (reads until EOF or error).
    pub fn closed_within(&mut self, limit: Duration) -> bool {
        self.stream.set_read_timeout(Some(limit)).unwrap();
        let started = Instant::now();
        let mut buf = [0u8; 512];
        loop {
            match self.reader.read(&mut buf) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(err)
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false;
                }
                Err(_) => return started.elapsed() <= limit,
            }
        }
    }
}

/// One request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    Conn::open(addr).send(method, path, headers, body)
}

impl Server {
    /// A server whose checker talks to `mock`, with extra `PANLINK_…` settings.
    pub fn with_mock(mock: &Mock, env: &[(&str, &str)]) -> Server {
        let all = mock.server_env_with(env);
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_with(&refs)
    }

    /// Like [`Server::with_mock`], on the data dir `data_dir`.
    pub fn with_mock_at(mock: &Mock, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let all = mock.server_env_with(env);
        let refs: Vec<(&str, &str)> = all.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start_at(data_dir, &refs)
    }

    /// `POST /jobs` with `body`; returns the response.
    pub fn create_job(&self, key: &str, body: &serde_json::Value) -> Response {
        let body = body.to_string();
        self.send(
            "POST",
            "/jobs",
            &[("X-API-Key", key), ("Content-Type", "application/json")],
            Some(&body),
        )
    }

    /// `POST /jobs` that must succeed; returns the job id.
    pub fn submit(&self, key: &str, body: &serde_json::Value) -> String {
        let response = self.create_job(key, body);
        assert_eq!(response.status, 201, "{}", response.text());
        response.json()["job_id"].as_str().unwrap().to_owned()
    }

    /// `GET /jobs/{job}` as `key`.
    pub fn job(&self, key: &str, job: &str) -> Response {
        self.get(&format!("/jobs/{job}"), &[("X-API-Key", key)])
    }

    /// Opens `GET /jobs/{id}/events`.
    pub fn events(&self, key: &str, job: &str, extra: &[(&str, &str)]) -> SseStream {
        SseStream::open(self.addr, &format!("/jobs/{job}/events"), key, extra)
    }

    /// `method path` as `key`, with `body` as JSON when given.
    pub fn call(
        &self,
        key: &str,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Response {
        let text = body.map(serde_json::Value::to_string);
        let mut headers = vec![("X-API-Key", key)];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        self.send(method, path, &headers, text.as_deref())
    }

    /// A fresh key with a high rate, for job tests.
    pub fn job_key(&self, name: &str) -> String {
        self.create_key(&format!(
            r#"{{"name": "{name}", "rate_per_s": 10000, "burst": 10000}}"#
        ))
        .0
    }
}

/// One server-sent event.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub id: Option<u32>,
    pub event: String,
    pub data: String,
}

impl SseEvent {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// A streamed `text/event-stream` response read as it arrives.
pub struct SseStream {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    reader: BufReader<TcpStream>,
    text: String,
    pub retry_seen: bool,
    ended: bool,
}

impl SseStream {
    pub fn open(addr: SocketAddr, path: &str, key: &str, extra: &[(&str, &str)]) -> SseStream {
        Self::try_open(addr, path, key, extra).expect("an SSE response head")
    }

    /// Like [`SseStream::open`], `None` when the server cannot be reached or hangs up first (a
    /// client reconnecting while the server restarts).
    pub fn try_open(
        addr: SocketAddr,
        path: &str,
        key: &str,
        extra: &[(&str, &str)],
    ) -> Option<SseStream> {
        let mut stream = TcpStream::connect(addr).ok()?;
        let mut head = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\nX-API-Key: {key}\r\n"
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).ok()?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        if reader.read_line(&mut status_line).ok()? == 0 {
            return None;
        }
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((n, v)) = line.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        Some(SseStream {
            status,
            headers,
            reader,
            text: String::new(),
            retry_seen: false,
            ended: false,
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next event (comments and `retry:` skipped), or `None` at the end of the stream.
    pub fn next_event(&mut self, timeout: Duration) -> Option<SseEvent> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(timeout))
            .unwrap();
        loop {
            if let Some(end) = self.text.find("\n\n") {
                let block: String = self.text.drain(..end + 2).collect();
                let mut event = SseEvent {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut any = false;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id: ") {
                        event.id = v.parse().ok();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("event: ") {
                        event.event = v.to_owned();
                        any = true;
                    } else if let Some(v) = line.strip_prefix("data: ") {
                        event.data.push_str(v);
                        any = true;
                    } else if line.starts_with("retry: ") {
                        self.retry_seen = true;
                    }
                }
                if any {
                    return Some(event);
                }
                continue;
            }
            if self.ended {
                return None;
            }
            // One chunk of the chunked body.
            let mut size = String::new();
            if self.reader.read_line(&mut size).ok()? == 0 {
                self.ended = true;
                continue;
            }
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0; size + 2];
            self.reader.read_exact(&mut chunk).ok()?;
            if size == 0 {
                self.ended = true;
                continue;
            }
            self.text.push_str(&String::from_utf8_lossy(&chunk[..size]));
        }
    }

    /// Every event up to and including `done` (panics if it does not come within `limit`).
    pub fn until_done(&mut self, limit: Duration) -> Vec<SseEvent> {
        let deadline = Instant::now() + limit;
        let mut events = Vec::new();
        while Instant::now() < deadline {
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
            let Some(event) = self.next_event(left) else {
                break;
            };
            let done = event.event == "done";
            events.push(event);
            if done {
                return events;
            }
        }
        panic!(
            "no done event within {limit:?}; got {} events",
            events.len()
        );
    }
}

/// The JSON of every `result` event of `events`.
pub fn results(events: &[SseEvent]) -> Vec<serde_json::Value> {
    events
        .iter()
        .filter(|e| e.event == "result")
        .map(SseEvent::json)
        .collect()
}

/// The ids of every `result` event of `events`, in order.
pub fn result_ids(events: &[SseEvent]) -> Vec<u32> {
    events
        .iter()
        .filter(|e| e.event == "result")
        .map(|e| e.id.expect("a result event has an id"))
        .collect()
}
