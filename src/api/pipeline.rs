//! The per-request pipeline, the same for every route:
//!
//! request id → route match (404 / 405 / OPTIONS answered here) → credentials ([`Access`]) →
//! the body, read at a minimum rate and before any permit (a slow sender holds only its own
//! connection; one address without credentials sends few bodies at once) → in-flight permit (503 +
//! `Retry-After` when the server is full, instead of queueing) → handler under the per-request
//! deadline (in a `request` span carrying the request id, so that every line a handler logs
//! names it) → error rendering → `X-Request-Id`, CORS, `Connection: close` after a handover and
//! `HEAD` treatment → metrics by route template and status class.
//!
//! Immediate routes (the redirect: no body, a handler that never awaits) take the same steps
//! without a future or a deadline, at the moment hyper hands the request over.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{
    ACCESS_CONTROL_ALLOW_HEADERS, ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN,
    ACCESS_CONTROL_EXPOSE_HEADERS, ACCESS_CONTROL_MAX_AGE, ALLOW, CONNECTION, CONTENT_LENGTH,
};
use http::{HeaderValue, Method, Request, StatusCode};
use hyper::body::Incoming;
use tokio_util::either::Either;
use tracing::Instrument;

use super::App;
use super::routes::{self, Access, Route};
use crate::error::ApiError;
use crate::http::body::ResponseBody;
use crate::http::connection::ConnActivity;
use crate::http::request::{BodyPace, Req, RequestId};
use crate::http::response::{self, HttpResponse};
use crate::http::router::Match;

const ALLOWED_REQUEST_HEADERS: HeaderValue =
    HeaderValue::from_static("Content-Type, X-API-Key, X-Request-Id, Last-Event-ID, Authorization");
const EXPOSED_HEADERS: HeaderValue =
    HeaderValue::from_static("X-Request-Id, Retry-After, Last-Event-ID");
const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("86400");
const CLOSE: HeaderValue = HeaderValue::from_static("close");

/// Serves one request. Never fails: every error becomes a JSON response. (The `Result` is
/// hyper's service shape.)
///
/// An immediate route (the redirect) is answered here, before hyper stores the returned future:
/// the request is dropped at once, so when hyper reads ahead on the connection its read buffer,
/// which the request's headers share, is no longer shared and is reused instead of reallocated.
pub fn handle(
    app: Arc<App>,
    activity: Arc<ConnActivity>,
    req: Request<Incoming>,
) -> impl Future<Output = Result<HttpResponse, Infallible>> + Send {
    let started = Instant::now();
    let request_id = RequestId::from_headers(req.headers());
    let (parts, body) = req.into_parts();
    match answer_now(&app, &activity, request_id, &parts, started) {
        Ok(response) => Either::Left(std::future::ready(Ok(response))),
        // Boxed: hyper moves the returned future into its connection state, and the routed
        // future is kilobytes; boxed, an immediate answer moves a few words.
        Err(request_id) => Either::Right(Box::pin(handle_routed(
            app, activity, request_id, parts, body, started,
        ))),
    }
}

/// The answer of an immediate route, or the request id back for every other request.
fn answer_now(
    app: &App,
    activity: &Arc<ConnActivity>,
    request_id: RequestId,
    parts: &http::request::Parts,
    started: Instant,
) -> Result<HttpResponse, RequestId> {
    let Match::Found {
        handler: route,
        params,
        pattern,
    } = app.router.find(&parts.method, parts.uri.path())
    else {
        return Err(request_id);
    };
    if !route.immediate {
        return Err(request_id);
    }
    let _running = activity.running_request();
    let response = match check_access(app, route.access, &parts.headers) {
        Err(err) => response::error_response(&err, &request_id),
        Ok(key) => match app.in_flight.try_acquire() {
            Ok(_permit) => {
                let req = Req {
                    request_id: &request_id,
                    parts,
                    params,
                    body: Bytes::new(),
                    peer: activity.peer,
                    connection: activity,
                    caller: key,
                };
                let outcome = routes::dispatch_now(app, route.id, req)
                    .expect("an immediate route has a handler that does not await");
                outcome_response(outcome, *route, &request_id)
            }
            Err(_) => shed(app, &request_id),
        },
    };
    Ok(finish(
        app,
        activity,
        parts,
        pattern,
        route.cors.is_open(),
        response,
        request_id,
        started,
    ))
}

async fn handle_routed(
    app: Arc<App>,
    activity: Arc<ConnActivity>,
    request_id: RequestId,
    parts: http::request::Parts,
    body: Incoming,
    started: Instant,
) -> Result<HttpResponse, Infallible> {
    let _running = activity.running_request();
    // The second match of this request (`answer_now` made the first): its params borrow the
    // path, which this future now owns. About 0.1 µs, on routes that cost tens of µs; the
    // redirect matches once.
    let (pattern, cors, response) = match app.router.find(&parts.method, parts.uri.path()) {
        Match::Found {
            handler,
            params,
            pattern,
        } => {
            let response =
                run_route(&app, *handler, &request_id, &parts, params, body, &activity).await;
            (pattern, handler.cors.is_open(), response)
        }
        Match::Options {
            allow,
            pattern,
            handlers,
        } => {
            let cors = handlers.iter().any(|(_, route)| route.cors.is_open());
            (pattern, cors, preflight(allow, cors))
        }
        Match::MethodNotAllowed {
            allow,
            pattern,
            handlers,
        } => {
            let err = ApiError::MethodNotAllowed {
                allow: allow.clone(),
            };
            let cors = handlers.iter().any(|(_, route)| route.cors.is_open());
            (pattern, cors, response::error_response(&err, &request_id))
        }
        Match::NotFound if prefers_html(&parts) => {
            ("unmatched", false, crate::links::pages::page_not_found())
        }
        Match::NotFound => (
            "unmatched",
            false,
            response::error_response(&ApiError::RouteNotFound, &request_id),
        ),
    };
    Ok(finish(
        &app, &activity, &parts, pattern, cors, response, request_id, started,
    ))
}

/// What every answer gets: `X-Request-Id`, CORS, `Connection: close` after a handover, `HEAD`
/// treatment; then the request is counted.
#[allow(clippy::too_many_arguments)]
fn finish(
    app: &App,
    activity: &ConnActivity,
    parts: &http::request::Parts,
    pattern: &'static str,
    cors: bool,
    mut response: HttpResponse,
    request_id: RequestId,
    started: Instant,
) -> HttpResponse {
    let headers = response.headers_mut();
    headers.insert(
        crate::http::request::X_REQUEST_ID,
        request_id.into_header_value(),
    );
    if cors {
        headers.insert(ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
        headers.insert(ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED_HEADERS);
    }
    // After a handover, this answer ends the HTTP/1.1 connection (hyper closes it once written);
    // the client's next request opens a connection to the new server.
    if activity.draining() && parts.version < http::Version::HTTP_2 {
        headers.insert(CONNECTION, CLOSE);
    }
    if parts.method == Method::HEAD {
        strip_body_for_head(&mut response);
    }
    app.metrics
        .observe_request(pattern, &parts.method, response.status(), started.elapsed());
    response
}

/// The 503 of a server whose in-flight permits are all taken.
fn shed(app: &App, request_id: &RequestId) -> HttpResponse {
    crate::http::server::count_shed("in_flight");
    let err = ApiError::Overloaded {
        retry_after_s: app.config.http.retry_after_s,
    };
    response::error_response(&err, request_id)
}

/// A handler's result as the answer (errors rendered; internal ones logged).
fn outcome_response(
    outcome: Result<HttpResponse, ApiError>,
    route: Route,
    request_id: &RequestId,
) -> HttpResponse {
    match outcome {
        Ok(response) => response,
        Err(err) => {
            if err == ApiError::Internal {
                tracing::error!(request_id = request_id.as_str(), route = ?route.id, "internal error");
            }
            response::error_response(&err, request_id)
        }
    }
}

async fn run_route(
    app: &App,
    route: Route,
    request_id: &RequestId,
    parts: &http::request::Parts,
    params: crate::http::router::Params<'_>,
    body: Incoming,
    connection: &Arc<ConnActivity>,
) -> HttpResponse {
    let peer = connection.peer;
    let key = match check_access(app, route.access, &parts.headers) {
        Ok(key) => key,
        Err(err) => return response::error_response(&err, request_id),
    };
    // The body is read before an in-flight permit is taken, at a minimum rate: a client that
    // sends it slowly holds its own connection, never a slot that redirects and others need.
    let body = match read_route_body(app, route, parts, body, peer).await {
        Ok(body) => body,
        Err(err) => {
            let mut response = response::error_response(&err, request_id);
            if matches!(err, ApiError::BodyTooSlow { .. }) && parts.version < http::Version::HTTP_2
            {
                // What is left of the body is not worth waiting for.
                response
                    .headers_mut()
                    .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
            }
            return response;
        }
    };
    // Shed load rather than queue: the permit is held while the handler runs.
    let Ok(_permit) = app.in_flight.try_acquire() else {
        return shed(app, request_id);
    };
    let req = Req {
        request_id,
        parts,
        params,
        body,
        peer,
        connection,
        caller: key,
    };
    // Every line a handler logs carries its request's id. (Not the immediate routes': a span
    // costs about a microsecond there, and their rare error lines name the id themselves.)
    let span = tracing::info_span!("request", request_id = %request_id.as_str());
    let outcome = tokio::time::timeout(
        app.config.http.handler_timeout,
        routes::dispatch(app, route.id, req).instrument(span),
    )
    .await;
    match outcome {
        Ok(outcome) => outcome_response(outcome, route, request_id),
        Err(_elapsed) => {
            tracing::warn!(request_id = request_id.as_str(), route = ?route.id, "handler deadline exceeded");
            response::error_response(&ApiError::HandlerTimeout, request_id)
        }
    }
}

/// The body of a route that takes one (`POST`, `PUT`, `PATCH`), read whole under the route's
/// limit and `http.body_*`'s pace; empty for every other request. A client without credentials
/// may send at most `http.max_public_body_reads_per_peer` bodies at once from one address.
async fn read_route_body(
    app: &App,
    route: Route,
    parts: &http::request::Parts,
    body: Incoming,
    peer: std::net::SocketAddr,
) -> Result<Bytes, ApiError> {
    if !matches!(parts.method, Method::POST | Method::PUT | Method::PATCH) {
        return Ok(Bytes::new());
    }
    let _slot = match route.access {
        Access::Public => Some(app.public_body_reads.try_take(peer.ip()).ok_or_else(|| {
            crate::http::server::count_shed("peer_body_reads");
            ApiError::PeerBusy {
                limit: app.config.http.max_public_body_reads_per_peer,
            }
        })?),
        Access::ApiKey(_) | Access::Admin => None,
    };
    let http = &app.config.http;
    let limit = match route.body_limit {
        routes::BodyLimit::Http => http.max_body_bytes,
        routes::BodyLimit::Jobs => app.config.jobs.max_body_bytes,
        routes::BodyLimit::LinkBatch => app.config.links.batch_max_body_bytes,
        routes::BodyLimit::LinkImport => app.config.links.import_max_body_bytes,
        routes::BodyLimit::Form => routes::BodyLimit::FORM_BYTES,
    };
    let pace = BodyPace {
        grace: http.body_timeout,
        min_bytes_per_s: http.body_min_bytes_per_s,
    };
    let read = crate::http::request::read_body(&parts.headers, body, limit, pace).await;
    if matches!(read, Err(ApiError::BodyTooSlow { .. })) {
        metrics::counter!("panlink_http_slow_bodies_total").increment(1);
    }
    read
}

fn check_access(
    app: &App,
    access: Access,
    headers: &http::HeaderMap,
) -> Result<Option<crate::keys::AuthedKey>, ApiError> {
    match access {
        Access::Public => Ok(None),
        Access::ApiKey(scope) => {
            let key = app.keys.authenticate(headers)?;
            match scope {
                Some(scope) if !key.record.scopes.allows(scope) => {
                    Err(ApiError::ScopeNotAllowed(scope.as_str()))
                }
                _ => Ok(Some(key)),
            }
        }
        Access::Admin => app.admin.check(headers).map(|()| None),
    }
}

/// A browser navigating (`GET`/`HEAD` that accepts `text/html`) rather than an API client: it
/// gets the site's 404 page instead of the JSON error.
fn prefers_html(parts: &http::request::Parts) -> bool {
    matches!(parts.method, Method::GET | Method::HEAD)
        && parts
            .headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}

fn preflight(allow: &HeaderValue, cors: bool) -> HttpResponse {
    let mut response = response::empty(StatusCode::NO_CONTENT);
    let headers = response.headers_mut();
    headers.insert(ALLOW, allow.clone());
    if cors {
        headers.insert(ACCESS_CONTROL_ALLOW_METHODS, allow.clone());
        headers.insert(ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_REQUEST_HEADERS);
        headers.insert(ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE);
    }
    response
}

/// A `HEAD` answer carries the headers of the `GET` answer, with its length but no body.
fn strip_body_for_head(response: &mut HttpResponse) {
    if let Some(length) = response.body().exact_len() {
        response
            .headers_mut()
            .insert(CONTENT_LENGTH, HeaderValue::from(length));
    }
    *response.body_mut() = ResponseBody::empty();
}

impl crate::http::server::Handler for App {
    fn handle(
        self: Arc<Self>,
        connection: Arc<ConnActivity>,
        req: Request<Incoming>,
    ) -> impl std::future::Future<Output = Result<HttpResponse, Infallible>> + Send {
        handle(self, connection, req)
    }
}
