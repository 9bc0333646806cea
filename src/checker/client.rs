//! The outbound HTTPS client that talks to the providers.
//!
//! One pooled hyper-util client (HTTP/1.1 keep-alive, HTTP/2 where the server offers it by ALPN)
//! over rustls with the ring provider and Mozilla's roots (plus an optional extra CA), and a DNS
//! layer of hickory-resolver that only ever returns public addresses. With
//! `checker.upstream_override` set, the DNS layer answers every name with that address instead: the
//! real host name still goes into TLS SNI and `Host`, certificates are still verified, and every
//! other step is the production path. Each request has a deadline covering the whole exchange and
//! a cap on the body it reads. Session values providers hand out (cookies) are kept per client.
//! With `checker.proxies`, the chosen providers' requests go through HTTP CONNECT tunnels, in turn.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::config::CheckerConfig;
use crate::netguard;

/// Why an exchange with a provider failed before an answer could be read.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("the provider did not answer within the deadline")]
    Timeout,
    /// The provider's name did not resolve, or no TCP connection could be opened.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
    /// A connection was opened but could not be set up (TLS handshake, proxy tunnel).
    #[error("connection setup failed: {0}")]
    Connect(String),
    #[error("the response body is larger than {0} bytes")]
    BodyTooLarge(usize),
    #[error("the exchange broke off: {0}")]
    Broken(String),
}

/// An answer read in full.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Exchange {
    /// The values of every `Set-Cookie` `name=value` pair the answer sets.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| n.trim() == name)
            .map(|(_, value)| value.trim().to_owned())
    }
}

/// A client-construction problem (bad CA file, DNS configuration).
#[derive(Debug, thiserror::Error)]
#[error("checker client: {0}")]
pub struct ClientError(pub String);

type Connector = HttpsConnector<Egress>;
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How a connection leaves this machine: directly, or through an HTTP CONNECT proxy (the TLS
/// session with the provider runs inside the tunnel, so the proxy sees only the host name).
#[derive(Clone)]
pub enum Egress {
    Direct(HttpConnector<UpstreamResolver>),
    Proxy(hyper_util::client::legacy::connect::proxy::Tunnel<HttpConnector<UpstreamResolver>>),
}

impl tower_service::Service<http::Uri> for Egress {
    type Response = TokioIo<tokio::net::TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        match self {
            Egress::Direct(connector) => connector.poll_ready(cx).map_err(Into::into),
            Egress::Proxy(tunnel) => tunnel.poll_ready(cx).map_err(Into::into),
        }
    }

    fn call(&mut self, dst: http::Uri) -> Self::Future {
        match self {
            Egress::Direct(connector) => {
                let connecting = connector.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
            Egress::Proxy(tunnel) => {
                let connecting = tunnel.call(dst);
                Box::pin(async move { connecting.await.map_err(Into::into) })
            }
        }
    }
}

/// The pooled provider client. Cheap to clone.
#[derive(Clone)]
pub struct UpstreamClient {
    /// `[0]` connects directly; `[1..]` go through `checker.proxies`, in turn.
    clients: Arc<Vec<Client<Connector, Full<Bytes>>>>,
    /// Providers whose requests use the proxies.
    proxied: [bool; crate::checker::share::Provider::ALL.len()],
    /// Whether this handle (see [`UpstreamClient::for_provider`]) uses the proxies.
    use_proxies: bool,
    next_proxy: Arc<std::sync::atomic::AtomicUsize>,
    timeout: Duration,
    max_body: usize,
    user_agent: HeaderValue,
    sessions: Arc<Sessions>,
    /// The DNS layer, kept for [`UpstreamClient::resolve`] (receiver clients only).
    resolver: Option<UpstreamResolver>,
    /// `checker.cookies`, and the one of this handle's provider ([`UpstreamClient::for_provider`]).
    cookies: Arc<crate::config::ProviderCookies>,
    login_cookie: Option<Arc<str>>,
}

/// What a receiver client (see [`UpstreamClient::for_receivers`]) is allowed and given.
pub struct Receivers<'a> {
    pub allow_private: bool,
    pub allow_http: bool,
    pub timeout: Duration,
    pub user_agent: &'a str,
    /// A CA to trust beside the public roots (the checker's `extra_root_ca`).
    pub extra_root_ca: Option<&'a std::path::Path>,
}

/// How a pool of connections is set up.
struct Pooling<'a> {
    connect_timeout: Duration,
    extra_root_ca: Option<&'a std::path::Path>,
    proxies: &'a [http::Uri],
    max_idle_per_host: usize,
    allow_http: bool,
}

/// One pooled client per egress (direct first, then each proxy).
fn build_clients(
    resolver: UpstreamResolver,
    pooling: &Pooling<'_>,
) -> Result<Vec<Client<Connector, Full<Bytes>>>, ClientError> {
    let mut http = HttpConnector::new_with_resolver(resolver);
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(pooling.connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));

    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = pooling.extra_root_ca {
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|err| ClientError(format!("reading {}: {err}", path.display())))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|err| ClientError(format!("{}: {err}", path.display())))?;
            roots
                .add(cert)
                .map_err(|err| ClientError(format!("{}: {err}", path.display())))?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientError(format!(
                "{} holds no certificate",
                path.display()
            )));
        }
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| ClientError(err.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut egresses = vec![Egress::Direct(http.clone())];
    for proxy in pooling.proxies {
        let mut tunnel =
            hyper_util::client::legacy::connect::proxy::Tunnel::new(proxy.clone(), http.clone());
        if let Some(auth) = proxy_authorization(proxy) {
            tunnel = tunnel.with_auth(auth);
        }
        egresses.push(Egress::Proxy(tunnel));
    }
    Ok(egresses
        .into_iter()
        .map(|egress| {
            let builder = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls.clone());
            let https = if pooling.allow_http {
                builder.https_or_http()
            } else {
                builder.https_only()
            }
            .enable_http1()
            .enable_http2()
            .wrap_connector(egress);
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(90))
                .pool_max_idle_per_host(pooling.max_idle_per_host)
                .pool_timer(TokioTimer::new())
                .timer(TokioTimer::new())
                .build(https)
        })
        .collect())
}

/// Session values providers hand out (cookies, tokens), kept across checks as a browser keeps its
/// cookies, with a single-flight refresh so concurrent checks do one warm-up, not one each.
#[derive(Default)]
struct Sessions {
    values: parking_lot::RwLock<std::collections::HashMap<&'static str, Session>>,
    refresh: tokio::sync::Mutex<()>,
}

/// A session value (a cookie, a token) and when it stops being used.
struct Session {
    value: String,
    until: Option<std::time::Instant>,
}

impl Sessions {
    fn current(&self, name: &str) -> Option<String> {
        let values = self.values.read();
        let session = values.get(name)?;
        let fresh = session
            .until
            .is_none_or(|until| std::time::Instant::now() < until);
        fresh.then(|| session.value.clone())
    }
}

impl UpstreamClient {
    pub fn new(config: &CheckerConfig) -> Result<UpstreamClient, ClientError> {
        let resolver = UpstreamResolver::new(config.upstream_override, false)?;
        let clients = build_clients(
            resolver,
            &Pooling {
                connect_timeout: config.connect_timeout,
                extra_root_ca: config.extra_root_ca.as_deref(),
                proxies: &config.proxies,
                max_idle_per_host: config.pool_max_idle_per_host,
                allow_http: false,
            },
        )?;
        let mut proxied = [false; crate::checker::share::Provider::ALL.len()];
        for provider in crate::checker::share::Provider::ALL {
            proxied[provider.index()] = !config.proxies.is_empty()
                && (config.proxy_providers.is_empty()
                    || config.proxy_providers.contains(&provider));
        }
        Ok(UpstreamClient {
            clients: Arc::new(clients),
            proxied,
            use_proxies: false,
            next_proxy: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            timeout: config.request_timeout,
            max_body: config.max_response_bytes,
            user_agent: HeaderValue::from_str(&config.user_agent)
                .map_err(|err| ClientError(err.to_string()))?,
            sessions: Arc::new(Sessions::default()),
            resolver: None,
            cookies: Arc::new(config.cookies.clone()),
            login_cookie: None,
        })
    }

    /// A client for receivers users name (webhooks): the same pooled stack, direct egress, a DNS
    /// layer that drops private addresses unless `receivers.allow_private`, `http://` only when
    /// `receivers.allow_http`, and the given per-exchange deadline. Also answers which
    /// addresses a host would be reached at ([`UpstreamClient::resolve`]).
    pub fn for_receivers(receivers: &Receivers<'_>) -> Result<UpstreamClient, ClientError> {
        let resolver = UpstreamResolver::new(None, receivers.allow_private)?;
        let clients = build_clients(
            resolver.clone(),
            &Pooling {
                connect_timeout: receivers.timeout,
                extra_root_ca: receivers.extra_root_ca,
                proxies: &[],
                max_idle_per_host: 8,
                allow_http: receivers.allow_http,
            },
        )?;
        Ok(UpstreamClient {
            clients: Arc::new(clients),
            proxied: [false; crate::checker::share::Provider::ALL.len()],
            use_proxies: false,
            next_proxy: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            timeout: receivers.timeout,
            // Receivers' answers are read only for their status; keep little of a body.
            max_body: 64 * 1024,
            user_agent: HeaderValue::from_str(receivers.user_agent)
                .map_err(|err| ClientError(err.to_string()))?,
            sessions: Arc::new(Sessions::default()),
            resolver: Some(resolver),
            cookies: Arc::default(),
            login_cookie: None,
        })
    }

    /// The addresses a receiver client would connect to for `host` (see
    /// [`UpstreamResolver::lookup`]); for a provider client, an error.
    pub async fn resolve(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        match &self.resolver {
            Some(resolver) => resolver.lookup(host).await,
            None => Err(std::io::Error::other("not a receiver client")),
        }
    }

    /// The handle to use for `provider`'s requests: through the proxies if configured for it.
    pub fn for_provider(&self, provider: crate::checker::share::Provider) -> UpstreamClient {
        let mut handle = self.clone();
        handle.use_proxies = self.proxied[provider.index()];
        handle.login_cookie = self.cookies.of(provider).map(Arc::from);
        handle
    }

    /// The logged-in cookie configured for this handle's provider (`checker.cookies`).
    pub fn login_cookie(&self) -> Option<&str> {
        self.login_cookie.as_deref()
    }

    fn pick(&self) -> &Client<Connector, Full<Bytes>> {
        if self.use_proxies && self.clients.len() > 1 {
            let n = self
                .next_proxy
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            &self.clients[1 + n % (self.clients.len() - 1)]
        } else {
            &self.clients[0]
        }
    }

    /// The session value `name`, fetched with `refresh` when there is none or it has expired
    /// (one refresh at a time; the others wait and use its result). `refresh` answers the value
    /// and how long to use it (`None`: until [`forget_session`](Self::forget_session)). `None` if
    /// `refresh` could not get one.
    pub async fn session<F, Fut>(&self, name: &'static str, refresh: F) -> Option<String>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Option<(String, Option<Duration>)>>,
    {
        if let Some(value) = self.sessions.current(name) {
            return Some(value);
        }
        let _single_flight = self.sessions.refresh.lock().await;
        if let Some(value) = self.sessions.current(name) {
            return Some(value);
        }
        let (value, lifetime) = refresh().await?;
        let session = Session {
            value: value.clone(),
            until: lifetime.map(|lifetime| std::time::Instant::now() + lifetime),
        };
        self.sessions.values.write().insert(name, session);
        Some(value)
    }

    /// Drops the session value `name` (the provider no longer accepts it).
    pub fn forget_session(&self, name: &'static str) {
        self.sessions.values.write().remove(name);
    }

    /// `GET url` with `headers`.
    pub async fn get(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
    ) -> Result<Exchange, UpstreamError> {
        self.send(Method::GET, url, headers, None).await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        body: &serde_json::Value,
    ) -> Result<Exchange, UpstreamError> {
        let body = Bytes::from(serde_json::to_vec(body).expect("JSON values serialize"));
        self.send(Method::POST, url, headers, Some(("application/json", body)))
            .await
    }

    /// `POST url` with an `application/x-www-form-urlencoded` body.
    pub async fn post_form(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        form: &[(&str, &str)],
    ) -> Result<Exchange, UpstreamError> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.send(
            Method::POST,
            url,
            headers,
            Some(("application/x-www-form-urlencoded", Bytes::from(body))),
        )
        .await
    }

    /// `POST url` with `body` of `content_type` as it is.
    pub async fn post_bytes(
        &self,
        url: &str,
        headers: &[(&'static str, &str)],
        content_type: &'static str,
        body: Bytes,
    ) -> Result<Exchange, UpstreamError> {
        self.send(Method::POST, url, headers, Some((content_type, body)))
            .await
    }

    async fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&'static str, &str)],
        body: Option<(&'static str, Bytes)>,
    ) -> Result<Exchange, UpstreamError> {
        let mut builder = Request::builder().method(method).uri(url);
        let request_headers = builder.headers_mut().expect("a fresh builder has headers");
        request_headers.insert(USER_AGENT, self.user_agent.clone());
        for (name, value) in headers {
            let value = HeaderValue::from_str(value)
                .map_err(|err| UpstreamError::Broken(err.to_string()))?;
            request_headers.insert(*name, value);
        }
        let body = match body {
            Some((content_type, bytes)) => {
                request_headers
                    .entry(CONTENT_TYPE)
                    .or_insert(HeaderValue::from_static(content_type));
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let request = builder
            .body(body)
            .map_err(|err| UpstreamError::Broken(err.to_string()))?;
        let max_body = self.max_body;
        let exchange = async {
            let response = self.pick().request(request).await.map_err(classify)?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_body)
                .collect()
                .await
                .map_err(|err| {
                    if err
                        .downcast_ref::<http_body_util::LengthLimitError>()
                        .is_some()
                    {
                        UpstreamError::BodyTooLarge(max_body)
                    } else {
                        UpstreamError::Broken(err.to_string())
                    }
                })?;
            Ok(Exchange {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body: body.to_bytes(),
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| UpstreamError::Timeout)?
    }
}

/// `Proxy-Authorization: Basic …` from a proxy URL's `user:password@`.
fn proxy_authorization(proxy: &http::Uri) -> Option<HeaderValue> {
    use base64::Engine;
    let authority = proxy.authority()?.as_str();
    let (userinfo, _) = authority.rsplit_once('@')?;
    let decoded = url::form_urlencoded::parse(format!("u={userinfo}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let token = base64::engine::general_purpose::STANDARD.encode(decoded.as_bytes());
    HeaderValue::from_str(&format!("Basic {token}")).ok()
}

fn classify(err: hyper_util::client::legacy::Error) -> UpstreamError {
    if !err.is_connect() {
        return UpstreamError::Broken(format!("{err:?}"));
    }
    // hyper-util's TCP connector names its failures ("dns error", "tcp connect error", "tcp open
    // error"); its error type is not exported, so its text is what can be read.
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if matches!(
            text.as_str(),
            "dns error" | "tcp connect error" | "tcp open error"
        ) {
            return UpstreamError::Unreachable(format!("{err:?}"));
        }
        source = cause.source();
    }
    UpstreamError::Connect(format!("{err:?}"))
}

/// The DNS layer: the override address for every name, or hickory's public answers.
#[derive(Clone)]
pub struct UpstreamResolver {
    inner: Arc<ResolverMode>,
}

enum ResolverMode {
    Override(SocketAddr),
    /// hickory's answers; only public addresses unless `allow_private`.
    Dns {
        resolver: Box<hickory_resolver::TokioResolver>,
        allow_private: bool,
    },
}

impl UpstreamResolver {
    fn new(
        upstream_override: Option<SocketAddr>,
        allow_private: bool,
    ) -> Result<UpstreamResolver, ClientError> {
        let mode = match upstream_override {
            Some(addr) => ResolverMode::Override(addr),
            None => {
                let mut builder = match hickory_resolver::TokioResolver::builder_tokio() {
                    Ok(builder) => builder,
                    // No usable resolv.conf: fall back to public resolvers rather than fail.
                    Err(_) => hickory_resolver::Resolver::builder_with_config(
                        hickory_resolver::config::ResolverConfig::udp_and_tcp(
                            &hickory_resolver::config::GOOGLE,
                        ),
                        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
                    ),
                };
                builder.options_mut().ip_strategy =
                    hickory_resolver::config::LookupIpStrategy::Ipv4thenIpv6;
                builder.options_mut().timeout = Duration::from_secs(3);
                let resolver = builder
                    .build()
                    .map_err(|err| ClientError(err.to_string()))?;
                ResolverMode::Dns {
                    resolver: Box::new(resolver),
                    allow_private,
                }
            }
        };
        Ok(UpstreamResolver {
            inner: Arc::new(mode),
        })
    }
}

impl UpstreamResolver {
    /// The addresses the client would connect to for `host`: the override, or the answers the
    /// DNS layer allows (public ones unless private ones are allowed); an error when none is left.
    pub async fn lookup(&self, host: &str) -> std::io::Result<Vec<SocketAddr>> {
        match &*self.inner {
            ResolverMode::Override(addr) => Ok(vec![*addr]),
            ResolverMode::Dns {
                resolver,
                allow_private,
            } => {
                // A trailing dot: the name is absolute, no search-list guessing.
                let absolute = if host.ends_with('.') {
                    host.to_owned()
                } else {
                    format!("{host}.")
                };
                let lookup = resolver
                    .lookup_ip(absolute)
                    .await
                    .map_err(std::io::Error::other)?;
                let addrs: Vec<SocketAddr> = lookup
                    .iter()
                    .filter(|ip| *allow_private || netguard::is_public(*ip))
                    .map(|ip| SocketAddr::new(ip, 0))
                    .collect();
                if addrs.is_empty() {
                    return Err(std::io::Error::other(format!(
                        "{host} resolves to no public address"
                    )));
                }
                Ok(addrs)
            }
        }
    }
}

impl tower_service::Service<Name> for UpstreamResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let resolver = self.clone();
        Box::pin(async move {
            let addrs = resolver.lookup(name.as_str()).await?;
            Ok(addrs.into_iter())
        })
    }
}
