//! `panlink mock-upstream`: a stand-in for the providers' web APIs, for tests and load runs on a
//! machine that cannot reach them.
//!
//! One TLS port serves every provider host, routing by `Host` (the checker connects here through
//! `checker.upstream_override` and trusts the generated CA through `checker.extra_root_ca`, so it
//! runs its production path: real host names in SNI and `Host`, verified TLS, the pooled client).
//! Each provider answers with its real shapes (`docs/providers.md` §4); the share id's prefix picks the
//! case ([`outcome::Case`]), a case that changes after a number of checks
//! ([`outcome::Changing`]), or a transport fault ([`fault::Fault`]). `--latency-ms` holds every
//! answer that long, exactly ([`hold`]). `/__mock/stats` on any host counts requests per provider
//! and TLS connections accepted, and gives the mean time a request was held (`mean_hold_us`).
//!
//! Invariant: nothing outside this module knows the share-id convention.

pub mod aliyun;
pub mod baidu;
pub mod cmcc;
pub mod ctfile;
pub mod fault;
pub mod guangya;
pub mod hold;
pub mod lanzou;
pub mod onedrive;
pub mod outcome;
pub mod pan115;
pub mod pan123;
pub mod quark;
pub mod tianyi;
pub mod tls;
pub mod weiyun;
pub mod xunlei;

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use outcome::Case;

/// Options of `panlink mock-upstream`.
#[derive(Debug, Clone)]
pub struct MockOptions {
    pub listen: SocketAddr,
    pub ca_out: PathBuf,
    pub latency: Duration,
    /// Offer and speak HTTP/1.1 only, as some providers' hosts and CDNs do.
    pub http1_only: bool,
}

/// Each provider's API hosts, under the name its requests are counted by.
const ROUTES: [(&str, &[&str]); 15] = [
    ("quark", quark::HOSTS),
    ("uc", quark::UC_HOSTS),
    ("baidu", baidu::HOSTS),
    ("tianyi", tianyi::HOSTS),
    ("pan123", pan123::HOSTS),
    ("pan115", pan115::HOSTS),
    ("aliyun", aliyun::HOSTS),
    ("xunlei", xunlei::HOSTS),
    ("cmcc", cmcc::HOSTS),
    ("lanzou", lanzou::HOSTS),
    ("pikpak", xunlei::PIKPAK_HOSTS),
    ("ctfile", ctfile::HOSTS),
    ("weiyun", weiyun::HOSTS),
    ("onedrive", onedrive::HOSTS),
    ("guangya", guangya::HOSTS),
];

/// Every host the mock has a certificate for and answers on.
pub fn hosts() -> Vec<&'static str> {
    ROUTES
        .iter()
        .flat_map(|(_, hosts)| hosts.iter().copied())
        .collect()
}

/// A request as the provider handlers see it.
pub struct MockRequest {
    pub method: Method,
    pub path: String,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl MockRequest {
    pub fn query(&self, name: &str) -> &str {
        self.query.get(name).map_or("", String::as_str)
    }

    /// The value of cookie `name` in the `Cookie` header.
    pub fn cookie(&self, name: &str) -> Option<&str> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v)
    }
}

/// State shared by all connections of the mock.
pub struct MockState {
    /// Exact waits for the set latency (none when it is zero).
    holds: Option<hold::Holds>,
    counts: Mutex<BTreeMap<&'static str, u64>>,
    attempts: Mutex<HashMap<String, u32>>,
    connections: std::sync::atomic::AtomicU64,
    /// Time from a request's arrival to its answer, summed (ns), and the requests summed: how
    /// much the mock really holds a request (the set latency, plus the wake-up).
    held_ns: std::sync::atomic::AtomicU64,
    held: std::sync::atomic::AtomicU64,
    /// Captcha tokens issued (xunlei).
    tokens: Mutex<std::collections::HashSet<String>>,
    /// Requests per HTTP version (`HTTP/1.1`, `HTTP/2.0`).
    versions: Mutex<BTreeMap<String, u64>>,
    /// The case a check's first step settled on, for a provider whose decisive answer comes at a
    /// later step (taken by that step, so the map holds only checks in progress).
    settled: Mutex<HashMap<String, Case>>,
}

impl MockState {
    /// Fails only if the hold thread cannot be started.
    pub fn new(latency: Duration) -> std::io::Result<MockState> {
        let holds = if latency.is_zero() {
            None
        } else {
            Some(hold::Holds::start(latency)?)
        };
        Ok(MockState {
            holds,
            counts: Mutex::new(BTreeMap::new()),
            attempts: Mutex::new(HashMap::new()),
            connections: std::sync::atomic::AtomicU64::new(0),
            held_ns: std::sync::atomic::AtomicU64::new(0),
            held: std::sync::atomic::AtomicU64::new(0),
            tokens: Mutex::new(std::collections::HashSet::new()),
            versions: Mutex::new(BTreeMap::new()),
            settled: Mutex::new(HashMap::new()),
        })
    }

    /// A new captcha token, good from now on.
    pub fn issue_token(&self) -> String {
        let mut tokens = self.tokens.lock();
        let token = format!("ck-{:04}", tokens.len() + 1);
        tokens.insert(token.clone());
        token
    }

    /// Forgets every token issued so far (they expired).
    pub fn revoke_tokens(&self) {
        self.tokens.lock().clear();
    }

    /// Whether this is the first time `key` is seen (for cases that act once).
    pub fn first_time(&self, key: &str) -> bool {
        let mut attempts = self.attempts.lock();
        let seen = attempts.entry(key.to_owned()).or_insert(0);
        *seen += 1;
        *seen == 1
    }

    /// Whether `token` was issued by [`MockState::issue_token`].
    pub fn token_issued(&self, token: &str) -> bool {
        self.tokens.lock().contains(token)
    }

    /// The case a check's first step answers as: `slow` waits then answers valid, `limit` is
    /// refused for its first requests then answers valid.
    /// An id naming a fault answers valid, and the fault spoils that answer on the wire.
    pub async fn settle(&self, provider: &str, id: &str) -> Case {
        if let Some(chosen) = fault::Fault::of(id) {
            fault::choose(chosen);
            return Case::Ok;
        }
        // A check asks its first step once, whatever the provider asks after it: counted here.
        if let Some(changing) = outcome::Changing::of(id) {
            let mut attempts = self.attempts.lock();
            let checks = attempts
                .entry(format!("check:{provider}:{id}"))
                .or_insert(0);
            *checks += 1;
            return changing.case_at(*checks);
        }
        match Case::of(id) {
            Case::Slow => {
                tokio::time::sleep(outcome::SLOW_DELAY).await;
                Case::Ok
            }
            Case::Limited => {
                let mut attempts = self.attempts.lock();
                let seen = attempts.entry(format!("{provider}:{id}")).or_insert(0);
                *seen += 1;
                if *seen <= outcome::LIMITED_REQUESTS {
                    Case::Limited
                } else {
                    Case::Ok
                }
            }
            case => case,
        }
    }

    /// [`settle`](Self::settle), remembering the case for the check's later step
    /// ([`settled_case`](Self::settled_case)).
    pub async fn settle_for_later(&self, provider: &str, id: &str) -> Case {
        let case = self.settle(provider, id).await;
        self.settled.lock().insert(format!("{provider}:{id}"), case);
        case
    }

    /// The case the first step of this check settled on, else what a later step answers as.
    pub fn settled_case(&self, provider: &str, id: &str) -> Case {
        self.settled
            .lock()
            .remove(&format!("{provider}:{id}"))
            .unwrap_or_else(|| Self::case_after_first_step(id))
    }

    /// The case later steps of a check answer as (no waiting, no counting).
    pub fn case_after_first_step(id: &str) -> Case {
        // A later step is asked only after a first step that answered `ok`.
        if fault::Fault::of(id).is_some() || outcome::Changing::of(id).is_some() {
            return Case::Ok;
        }
        match Case::of(id) {
            Case::Slow | Case::Limited => Case::Ok,
            case => case,
        }
    }

    fn count(&self, provider: &'static str) {
        *self.counts.lock().entry(provider).or_insert(0) += 1;
    }
}

/// Runs the mock until SIGINT or SIGTERM.
pub async fn run(options: MockOptions) -> anyhow::Result<()> {
    let tls = tls::generate(&hosts(), options.http1_only)?;
    std::fs::write(&options.ca_out, &tls.ca_pem)
        .with_context(|| format!("writing the CA certificate to {}", options.ca_out.display()))?;
    let listener = TcpListener::bind(options.listen)
        .await
        .with_context(|| format!("binding {} (another mock-upstream there?)", options.listen))?;
    println!("mock-upstream listening on {}", listener.local_addr()?);
    let _ = std::io::stdout().flush();
    let acceptor = TlsAcceptor::from(tls.server_config);
    let state = Arc::new(MockState::new(options.latency)?);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = term.recv() => return Ok(()),
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = Arc::clone(&state);
        let http1_only = options.http1_only;
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            state
                .connections
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let service = service_fn(move |req| handle(Arc::clone(&state), req));
            let mut builder = auto::Builder::new(TokioExecutor::new());
            if http1_only {
                builder = builder.http1_only();
            }
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    state: Arc<MockState>,
    req: Request<Incoming>,
) -> Result<Response<fault::MockBody>, fault::Dropped> {
    let (response, chosen) = fault::scoped(answer(state, req)).await;
    fault::spoil(response, chosen).await
}

async fn answer(state: Arc<MockState>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let arrived = std::time::Instant::now();
    let host = req
        .uri()
        .host()
        .map(str::to_owned)
        .or_else(|| {
            req.headers()
                .get(HOST)
                .and_then(|h| h.to_str().ok())
                .map(|h| h.split(':').next().unwrap_or(h).to_owned())
        })
        .unwrap_or_default()
        .to_ascii_lowercase();
    *state
        .versions
        .lock()
        .entry(format!("{:?}", req.version()))
        .or_insert(0) += 1;
    let (parts, body) = req.into_parts();
    let body = Limited::new(body, 1 << 20)
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let request = MockRequest {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        query: url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect(),
        headers: parts.headers,
        body,
    };
    if request.path == "/__mock/stats" {
        let counts = state.counts.lock().clone();
        let connections = state.connections.load(std::sync::atomic::Ordering::Relaxed);
        let held = state.held.load(std::sync::atomic::Ordering::Relaxed);
        let held_ns = state.held_ns.load(std::sync::atomic::Ordering::Relaxed);
        return json(
            StatusCode::OK,
            &serde_json::json!({
                "requests": counts,
                "http_versions": state.versions.lock().clone(),
                "tls_connections": connections,
                "mean_hold_us": held_ns.checked_div(held).map_or(0, |ns| ns / 1000),
            }),
        );
    }
    if let Some(holds) = &state.holds {
        holds.from(arrived).await;
    }
    let Some((provider, _)) = ROUTES
        .iter()
        .find(|(_, hosts)| hosts.contains(&host.as_str()))
    else {
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            "text/plain",
            "unknown host",
        );
    };
    state.count(provider);
    let response = match *provider {
        "quark" => quark::answer(&state, &request).await,
        "uc" => quark::answer_uc(&state, &request).await,
        "baidu" => baidu::answer(&state, &request).await,
        "tianyi" => tianyi::answer(&state, &request).await,
        "pan123" => pan123::answer(&state, &request, &host).await,
        "pan115" => pan115::answer(&state, &request).await,
        "aliyun" => aliyun::answer(&state, &request).await,
        "xunlei" => xunlei::answer(&state, &request).await,
        "lanzou" => lanzou::answer(&state, &request).await,
        "pikpak" => xunlei::answer_pikpak(&state, &request).await,
        "ctfile" => ctfile::answer(&state, &request).await,
        "weiyun" => weiyun::answer(&state, &request).await,
        "onedrive" => onedrive::answer(&state, &request).await,
        "guangya" => guangya::answer(&state, &request).await,
        _ => cmcc::answer(&state, &request).await,
    };
    let held_ns = u64::try_from(arrived.elapsed().as_nanos()).unwrap_or(u64::MAX);
    state
        .held_ns
        .fetch_add(held_ns, std::sync::atomic::Ordering::Relaxed);
    state
        .held
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    response
}

/// A JSON answer.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    text(status, "application/json;charset=UTF-8", &value.to_string())
}

/// An answer with a body of the given type.
pub fn text(status: StatusCode, content_type: &'static str, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A bare server error, as a provider's gateway answers it.
pub fn server_error() -> Response<Full<Bytes>> {
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/html",
        "<html>500 Internal Server Error</html>",
    )
}

/// A gateway's throttling answer, for providers that publish no rate-limit code of their own.
pub fn throttled() -> Response<Full<Bytes>> {
    text(
        StatusCode::TOO_MANY_REQUESTS,
        "text/plain",
        "Too Many Requests",
    )
}

/// The HTML page a provider serves where a client expected JSON.
pub fn html_page() -> Response<Full<Bytes>> {
    text(StatusCode::OK, "text/html; charset=utf-8", HTML_SHELL)
}

/// The SPA shell providers serve where a client expected JSON.
pub const HTML_SHELL: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>分享</title></head><body><div id=\"app\"></div><script src=\"/static/app.js\"></script></body></html>";

/// Unix milliseconds `days` days from now.
pub fn in_days(days: u32) -> u64 {
    crate::timefmt::now_ms() + u64::from(days) * 86_400_000
}
