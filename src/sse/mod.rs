//! Server-Sent Events: framing, `Last-Event-ID` parsing, and a streamed body fed by a channel.
//!
//! A subscriber's task writes frames into a small bounded channel; the body drains it. A slow
//! client therefore only fills its own channel: the producer of events never waits for it.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{BufMut, Bytes, BytesMut};
use http::HeaderValue;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::error::ApiError;

/// A comment line that keeps idle connections open and detects dead peers.
pub const KEEPALIVE: &[u8] = b":\n\n";

/// `id: <id>\nevent: <event>\ndata: <one-line JSON>\n\n`.
pub fn frame(id: Option<u32>, event: &str, data: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + 48);
    append_frame(&mut out, id, event, data);
    out.freeze()
}

/// Appends one frame to `out`: several frames then travel as one chunk (one channel send, one
/// body frame, often one write), which is how replay and bursts of live results are sent.
pub fn append_frame(out: &mut BytesMut, id: Option<u32>, event: &str, data: &[u8]) {
    out.reserve(data.len() + 48);
    if let Some(id) = id {
        out.put_slice(b"id: ");
        out.put_slice(itoa::Buffer::new().format(id).as_bytes());
        out.put_u8(b'\n');
    }
    out.put_slice(b"event: ");
    out.put_slice(event.as_bytes());
    out.put_slice(b"\ndata: ");
    // JSON from serde_json has no raw newlines; guard anyway so a frame can never be split.
    let mut rest = data;
    while let Some(at) = memchr::memchr2(b'\n', b'\r', rest) {
        out.put_slice(&rest[..at]);
        out.put_u8(b' ');
        rest = &rest[at + 1..];
    }
    out.put_slice(rest);
    out.put_slice(b"\n\n");
}

/// `retry: <ms>\n\n`.
pub fn retry(ms: u64) -> Bytes {
    Bytes::from(format!("retry: {ms}\n\n"))
}

/// The event id to resume after: the `Last-Event-ID` header wins over `?last_event_id=` (for
/// browsers, which cannot set headers on `EventSource`). Absent, empty or `earliest` → 0.
pub fn last_event_id(header: Option<&HeaderValue>, query: Option<&str>) -> Result<u32, ApiError> {
    let text = match header {
        Some(value) => value.to_str().map_err(|_| bad_id())?.trim().to_owned(),
        None => crate::http::request::query_param(query, "last_event_id")
            .unwrap_or("")
            .trim()
            .to_owned(),
    };
    if text.is_empty() || text.eq_ignore_ascii_case("earliest") {
        return Ok(0);
    }
    text.parse().map_err(|_| bad_id())
}

fn bad_id() -> ApiError {
    ApiError::InvalidParameter {
        name: "Last-Event-ID",
        reason: "必须是非负整数（事件 id）".into(),
    }
}

/// A response body that yields whatever its channel receives, and ends when the sender is gone.
pub struct ChannelBody {
    rx: mpsc::Receiver<Bytes>,
}

impl ChannelBody {
    /// A body and the sender that feeds it (`capacity` frames may wait).
    pub fn new(capacity: usize) -> (mpsc::Sender<Bytes>, ChannelBody) {
        let (tx, rx) = mpsc::channel(capacity);
        (tx, ChannelBody { rx })
    }
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.rx
            .poll_recv(cx)
            .map(|frame| frame.map(|bytes| Ok(Frame::data(bytes))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(
            &frame(Some(7), "result", br#"{"a":1}"#)[..],
            b"id: 7\nevent: result\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(
            &frame(None, "done", b"{}")[..],
            b"event: done\ndata: {}\n\n"
        );
        assert_eq!(&frame(None, "x", b"a\nb")[..], b"event: x\ndata: a b\n\n");
        assert_eq!(&retry(3000)[..], b"retry: 3000\n\n");
    }

    #[test]
    fn appended_frames_stay_apart() {
        let mut out = BytesMut::new();
        append_frame(&mut out, Some(4294967295), "result", b"\r\n{}\n");
        append_frame(&mut out, Some(1), "result", b"x");
        assert_eq!(
            &out[..],
            b"id: 4294967295\nevent: result\ndata:   {} \n\nid: 1\nevent: result\ndata: x\n\n"
        );
    }

    #[test]
    fn last_event_ids() {
        let h = HeaderValue::from_static("12");
        assert_eq!(
            last_event_id(Some(&h), Some("last_event_id=3")).unwrap(),
            12,
            "the header wins"
        );
        assert_eq!(last_event_id(None, Some("last_event_id=3")).unwrap(), 3);
        assert_eq!(last_event_id(None, None).unwrap(), 0);
        assert_eq!(
            last_event_id(Some(&HeaderValue::from_static("earliest")), None).unwrap(),
            0
        );
        assert!(last_event_id(Some(&HeaderValue::from_static("-1")), None).is_err());
        assert!(last_event_id(None, Some("last_event_id=abc")).is_err());
    }
}
