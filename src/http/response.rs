//! Building responses: JSON, the success envelope, and the one renderer of [`ApiError`].

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Response, StatusCode};
use serde::Serialize;

use super::body::ResponseBody;
use super::request::RequestId;
use crate::error::ApiError;

pub type HttpResponse = Response<ResponseBody>;

pub const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The policy of the site's HTML pages: scripts, styles and requests only from this origin
/// (inline styles are allowed for Swagger UI and ReDoc, which set them; no inline script runs),
/// images also as `data:`/`blob:`, workers from `blob:` (ReDoc's search), forms only to this
/// origin, and no framing anywhere.
pub const PAGE_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; \
     font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
);

/// The policy of a short link's own pages (password form, 404, 410): as [`PAGE_CSP`], but the
/// password form's answer redirects to the link's target, anywhere on the web, and browsers hold
/// a form's redirects to `form-action` too.
pub const LINK_PAGE_CSP: HeaderValue = HeaderValue::from_static(
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self' http: https:; frame-ancestors 'none'",
);

/// Sets the headers every HTML page carries: `policy` ([`PAGE_CSP`] or [`LINK_PAGE_CSP`]),
/// `X-Frame-Options: DENY` (for browsers that predate `frame-ancestors`), `Referrer-Policy` and
/// `X-Content-Type-Options`.
pub fn secure_page(headers: &mut http::HeaderMap, policy: HeaderValue) {
    headers.insert(http::header::CONTENT_SECURITY_POLICY, policy);
    headers.insert(
        http::header::X_FRAME_OPTIONS,
        HeaderValue::from_static("DENY"),
    );
    headers.insert(
        http::header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        http::header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// A response with `body` as JSON.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, body: &T) -> HttpResponse {
    let bytes = serde_json::to_vec(body).expect("response bodies serialize to JSON");
    with_body(status, JSON, Bytes::from(bytes))
}

/// A response with a body of the given content type.
pub fn with_body(
    status: StatusCode,
    content_type: HeaderValue,
    body: impl Into<Bytes>,
) -> HttpResponse {
    let mut response = Response::new(ResponseBody::from(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, content_type);
    response
}

/// A streamed answer (an export) of `content_type`, which no cache keeps.
pub fn streamed(content_type: &'static str, body: ResponseBody) -> HttpResponse {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    response
}

/// An empty response.
pub fn empty(status: StatusCode) -> HttpResponse {
    let mut response = Response::new(ResponseBody::empty());
    *response.status_mut() = status;
    response
}

/// The success envelope of the key-authenticated and admin APIs:
/// `{"code": 0, "msg": "Success", "data": …, "request_id": …}`.
pub fn envelope<T: Serialize + ?Sized>(
    status: StatusCode,
    data: &T,
    request_id: &RequestId,
) -> HttpResponse {
    #[derive(Serialize)]
    struct Envelope<'a, T: ?Sized> {
        code: u16,
        msg: &'static str,
        data: &'a T,
        request_id: &'a str,
    }
    json(
        status,
        &Envelope {
            code: 0,
            msg: "Success",
            data,
            request_id: request_id.as_str(),
        },
    )
}

/// The JSON body of an error: `{"code", "msg", "error", "detail", "request_id"}`. `detail` repeats
/// `msg` for clients written against FastAPI-style services.
pub fn error_body(err: &ApiError, request_id: &RequestId) -> Bytes {
    #[derive(Serialize)]
    struct ErrorBody<'a> {
        code: u16,
        msg: &'a str,
        error: &'static str,
        detail: &'a str,
        request_id: &'a str,
    }
    let spec = err.spec();
    let body = ErrorBody {
        code: spec.code,
        msg: &spec.message,
        error: spec.slug,
        detail: &spec.message,
        request_id: request_id.as_str(),
    };
    Bytes::from(serde_json::to_vec(&body).expect("error bodies serialize"))
}

/// The response for an error, with `Retry-After` and `Allow` where they apply.
pub fn error_response(err: &ApiError, request_id: &RequestId) -> HttpResponse {
    let spec = err.spec();
    let mut response = with_body(spec.status, JSON, error_body(err, request_id));
    if let Some(seconds) = spec.retry_after_s {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let ApiError::MethodNotAllowed { allow } = err {
        response
            .headers_mut()
            .insert(http::header::ALLOW, allow.clone());
    }
    response
}
