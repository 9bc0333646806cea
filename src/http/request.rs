//! Reading requests: request ids, bodies under a size limit and a minimum rate, JSON decoding,
//! query parameters.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::connection::ConnActivity;
use super::router::Params;
use crate::error::ApiError;

/// What a handler receives: the request as the pipeline has read it. `I` is who the caller proved
/// to be (an API key, on routes that need one); the toolkit does not know what that is.
pub struct Req<'a, I = ()> {
    pub request_id: &'a RequestId,
    pub parts: &'a http::request::Parts,
    pub params: Params<'a>,
    /// The whole request body, read by the pipeline (under the route's limit and the minimum
    /// rate) before the handler took an in-flight permit; empty for requests without one.
    pub body: Bytes,
    /// The client's address (the TCP peer).
    pub peer: std::net::SocketAddr,
    /// The connection the request came on (its open event streams are counted there).
    pub connection: &'a std::sync::Arc<ConnActivity>,
    /// The caller, on routes that need credentials.
    pub caller: Option<I>,
}

impl<I> Req<'_, I> {
    /// Decodes the JSON body into `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        json_body(&self.parts.headers, &self.body)
    }

    /// The path parameter `name` (the route table guarantees it exists).
    pub fn param(&self, name: &'static str) -> &str {
        self.params.get(name).unwrap_or_default()
    }
}

/// The id of one request: the client's `X-Request-Id` when sane, else a new UUID v4.
#[derive(Debug, Clone)]
pub struct RequestId(http::HeaderValue);

impl RequestId {
    /// Longest client-chosen id that is accepted.
    pub const MAX_LEN: usize = 128;

    pub fn from_headers(headers: &HeaderMap) -> RequestId {
        match headers.get(X_REQUEST_ID) {
            Some(value) if is_sane_request_id(value.as_bytes()) => RequestId(value.clone()),
            _ => RequestId::generate(),
        }
    }

    pub fn generate() -> RequestId {
        const LEN: usize = uuid::fmt::Hyphenated::LENGTH;
        /// Ids written per shared buffer: one allocation serves this many requests.
        const PER_CHUNK: usize = 128;
        thread_local! {
            static CHUNK: std::cell::RefCell<bytes::BytesMut> =
                std::cell::RefCell::new(bytes::BytesMut::new());
        }
        let uuid = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut buf = [0u8; LEN];
        let text = uuid.hyphenated().encode_lower(&mut buf);
        // Cut from a per-thread buffer: each id shares it (a reference count), not a copy each.
        // An id held long (an event stream's) keeps its whole buffer (4.6 KB) alive: at most
        // that per open stream, which the streams' own bounds dwarf.
        let bytes = CHUNK.with(|chunk| {
            let mut chunk = chunk.borrow_mut();
            if chunk.capacity() < LEN {
                *chunk = bytes::BytesMut::with_capacity(LEN * PER_CHUNK);
            }
            chunk.extend_from_slice(text.as_bytes());
            chunk.split_to(LEN).freeze()
        });
        RequestId(
            http::HeaderValue::from_maybe_shared(bytes).expect("a UUID is a valid header value"),
        )
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII ever gets in (see `is_sane_request_id` and `generate`).
        self.0.to_str().unwrap_or("")
    }

    pub fn header_value(&self) -> &http::HeaderValue {
        &self.0
    }

    /// The header value itself, for the answer (moved: a clone of a fresh value allocates).
    pub fn into_header_value(self) -> http::HeaderValue {
        self.0
    }
}

/// `X-Request-Id`: a name made once (inserting by `&str` copies a non-standard name each time).
pub const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// 1 to 128 characters of `[A-Za-z0-9._:-]`: safe to echo in headers, JSON and logs.
pub fn is_sane_request_id(bytes: &[u8]) -> bool {
    (1..=RequestId::MAX_LEN).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// How fast a request body must arrive: after `grace`, at least `min_bytes_per_s` on average.
/// A client that sends a body slower than this (or stops halfway) is answered 408 and holds
/// nothing longer than that.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub grace: Duration,
    pub min_bytes_per_s: u64,
}

impl BodyPace {
    /// When the body must have moved past `received` bytes: the client is on schedule until
    /// `grace + received / rate` after the request began.
    fn deadline(&self, started: Instant, received: usize) -> Instant {
        let rate = self.min_bytes_per_s.max(1);
        started
            + self.grace
            + Duration::from_micros((received as u64).saturating_mul(1_000_000) / rate)
    }
}

/// Reads the whole body at no less than `pace`, refusing more than `limit` bytes with 413 (before
/// reading when `Content-Length` already says so).
pub async fn read_body(
    headers: &HeaderMap,
    body: Incoming,
    limit: usize,
    pace: BodyPace,
) -> Result<Bytes, ApiError> {
    if let Some(length) = headers.get(CONTENT_LENGTH) {
        let length: u64 = length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| ApiError::InvalidParameter {
                name: "Content-Length",
                reason: "不是合法的整数".into(),
            })?;
        if length > limit as u64 {
            return Err(ApiError::PayloadTooLarge { limit });
        }
    }
    let started = Instant::now();
    let mut body = std::pin::pin!(body);
    // Most bodies arrive as one frame: keep it without a copy.
    let mut first: Option<Bytes> = None;
    let mut joined = BytesMut::new();
    let mut received = 0usize;
    loop {
        let frame =
            match tokio::time::timeout_at(pace.deadline(started, received), body.frame()).await {
                Err(_elapsed) => {
                    return Err(ApiError::BodyTooSlow {
                        min_bytes_per_s: pace.min_bytes_per_s,
                    });
                }
                Ok(None) => break,
                Ok(Some(Err(_))) => return Err(ApiError::InvalidJson("请求体读取中断".into())),
                Ok(Some(Ok(frame))) => frame,
            };
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        received += data.len();
        if received > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        match first.take() {
            None if joined.is_empty() => first = Some(data),
            earlier => {
                if let Some(earlier) = earlier {
                    joined.extend_from_slice(&earlier);
                }
                joined.extend_from_slice(&data);
            }
        }
    }
    Ok(first.unwrap_or_else(|| joined.freeze()))
}

/// Decodes a JSON body into `T`: 400 for a wrong content type, malformed JSON or a wrong field
/// (the message names the field's path).
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, bytes: &[u8]) -> Result<T, ApiError> {
    if !is_json_content_type(headers) {
        return Err(ApiError::UnsupportedContentType);
    }
    parse_json(bytes)
}

/// Decodes a JSON object, mapping serde's errors to the API's vocabulary. Every request body of
/// the API is an object; serde would otherwise accept an array as a positional struct.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        None => return Err(ApiError::InvalidJson("请求体为空".into())),
        Some(b'{') => {}
        Some(_) => return Err(ApiError::field("body", "必须是 JSON 对象")),
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(&mut deserializer) {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|err| ApiError::InvalidJson(syntax_in_chinese(&err)))?;
            Ok(value)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                return Err(ApiError::InvalidJson(syntax_in_chinese(&inner)));
            }
            let message = strip_position(&inner.to_string());
            Err(ApiError::field(
                field_path(&path, &message),
                data_error_in_chinese(&message),
            ))
        }
    }
}

/// Where a JSON text breaks off or goes wrong, in the API's language (serde's own text is English).
fn syntax_in_chinese(err: &serde_json::Error) -> String {
    let (line, column) = (err.line(), err.column());
    if err.is_eof() {
        format!("JSON 不完整，在第 {line} 行第 {column} 列提前结束")
    } else if err.to_string().starts_with("trailing characters") {
        format!("JSON 结束后还有多余的内容（第 {line} 行第 {column} 列）")
    } else {
        format!("第 {line} 行第 {column} 列附近有语法错误")
    }
}

/// serde's message for a well-formed value of the wrong shape, in Chinese. Messages of the
/// project's own deserializers are Chinese already and pass through.
fn data_error_in_chinese(message: &str) -> String {
    if !message.is_ascii() {
        return message.to_owned();
    }
    if message.starts_with("missing field") {
        return "缺少此字段".to_owned();
    }
    if message.starts_with("unknown field") {
        return "不是可用的字段".to_owned();
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let choices: Vec<&str> = rest
            .split_once("expected ")
            .map(|(_, expected)| {
                expected
                    .split('`')
                    .skip(1)
                    .step_by(2)
                    .collect::<Vec<&str>>()
            })
            .unwrap_or_default();
        return if choices.is_empty() {
            "不是支持的取值".to_owned()
        } else {
            format!("不是支持的取值，可选：{}", choices.join("、"))
        };
    }
    let expected = message.rsplit_once(", expected ").map(|(_, e)| e);
    let wanted = expected.map(|e| match e {
        "a string" | "a borrowed string" => "字符串",
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "isize" => "整数",
        "f32" | "f64" => "数字",
        "a boolean" => "true 或 false",
        e if e.starts_with("a sequence") || e.starts_with("a vec") => "数组",
        e if e.starts_with("struct ") || e.starts_with("a map") => "对象",
        _ => "",
    });
    let what = if message.starts_with("invalid type") {
        "类型不对"
    } else if message.starts_with("invalid length") {
        "长度不对"
    } else {
        "取值不对"
    };
    match wanted {
        Some(wanted) if !wanted.is_empty() => format!("{what}，应为{wanted}"),
        _ => what.to_owned(),
    }
}

/// Whether the request says its body is JSON (`application/json`, any parameters, any case).
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"))
}

/// The value of query parameter `name` (raw, not percent-decoded), if present.
pub fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// serde names a missing field in its message, not in the path (an unknown field is already in
/// the path): append it.
fn field_path(path: &str, message: &str) -> String {
    let named = message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_owned(),
        (".", None) => "body".to_owned(),
        (path, Some(name)) => format!("{path}.{name}"),
        (path, None) => path.to_owned(),
    }
}

/// Drops serde_json's " at line 1 column 17" suffix: the path already says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        points: Option<u64>,
        items: Option<Vec<Item>>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        url: String,
    }

    fn field_of(json: &str) -> String {
        match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::InvalidField { field, .. }) => field.into_owned(),
            other => panic!("expected a field error, got {other:?}"),
        }
    }

    #[test]
    fn field_errors_name_the_path() {
        assert_eq!(field_of(r#"{"points": 1}"#), "name");
        assert_eq!(field_of(r#"{"name": 5}"#), "name");
        assert_eq!(field_of(r#"{"name": "a", "points": "x"}"#), "points");
        assert_eq!(
            field_of(r#"{"name": "a", "items": [{"url": "u"}, {"url": 3}]}"#),
            "items[1].url"
        );
        assert_eq!(field_of(r#"{"name": "a", "nope": 1}"#), "nope");
        assert_eq!(field_of("[1]"), "body");
    }

    #[test]
    fn messages_are_chinese_with_the_place() {
        let Err(ApiError::InvalidJson(why)) = parse_json::<Body>(b"{\"name\": ") else {
            panic!("not invalid JSON");
        };
        assert_eq!(why, "JSON 不完整，在第 1 行第 9 列提前结束");
        let Err(ApiError::InvalidJson(why)) = parse_json::<Body>(b"{\"name\": x}") else {
            panic!("not invalid JSON");
        };
        assert_eq!(why, "第 1 行第 10 列附近有语法错误");
        let reason = |json: &str| match parse_json::<Body>(json.as_bytes()) {
            Err(ApiError::InvalidField { reason, .. }) => reason.into_owned(),
            other => panic!("expected a field error, got {other:?}"),
        };
        assert_eq!(reason(r#"{"name": 5}"#), "类型不对，应为字符串");
        assert_eq!(
            reason(r#"{"name": "a", "points": "x"}"#),
            "类型不对，应为整数"
        );
        assert_eq!(reason(r#"{"points": 1}"#), "缺少此字段");
        assert_eq!(reason(r#"{"name": "a", "nope": 1}"#), "不是可用的字段");
        assert_eq!(
            reason(r#"{"name": "a", "points": -1}"#),
            "取值不对，应为整数"
        );
    }

    #[test]
    fn syntax_errors_are_invalid_json() {
        for bad in [
            "",
            "{",
            "{\"name\": }",
            "{\"name\": \"a\"",
            "{\"name\":\"a\"} trailing",
        ] {
            assert!(
                matches!(
                    parse_json::<Body>(bad.as_bytes()),
                    Err(ApiError::InvalidJson(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_body_is_on_schedule_for_its_grace_then_by_its_rate() {
        let pace = BodyPace {
            grace: Duration::from_secs(5),
            min_bytes_per_s: 1000,
        };
        let t0 = Instant::now();
        assert_eq!(pace.deadline(t0, 0), t0 + Duration::from_secs(5));
        assert_eq!(pace.deadline(t0, 500), t0 + Duration::from_millis(5_500));
        assert_eq!(pace.deadline(t0, 10_000), t0 + Duration::from_secs(15));
    }

    #[test]
    fn request_ids() {
        assert!(is_sane_request_id(b"abc-123_x.y:z"));
        assert!(!is_sane_request_id(b""));
        assert!(!is_sane_request_id(b"has space"));
        assert!(!is_sane_request_id(&[b'a'; 129]));
        let id = RequestId::generate();
        assert_eq!(id.as_str().len(), 36);
        // Ids cut from the same per-thread buffer stay whole and distinct, across buffers too.
        let ids: Vec<RequestId> = (0..300).map(|_| RequestId::generate()).collect();
        let distinct: std::collections::HashSet<&str> = ids.iter().map(RequestId::as_str).collect();
        assert_eq!(distinct.len(), 300);
        assert!(
            ids.iter()
                .all(|id| uuid::Uuid::parse_str(id.as_str()).is_ok())
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-request-id", "bad id!".parse().unwrap());
        assert_ne!(RequestId::from_headers(&headers).as_str(), "bad id!");
        headers.insert("x-request-id", "client-42".parse().unwrap());
        assert_eq!(RequestId::from_headers(&headers).as_str(), "client-42");
    }

    #[test]
    fn query_params() {
        assert_eq!(query_param(Some("a=1&b=2"), "b"), Some("2"));
        assert_eq!(query_param(Some("flag&a=1"), "flag"), Some(""));
        assert_eq!(query_param(None, "a"), None);
        assert_eq!(query_param(Some("a=1"), "b"), None);
    }
}
