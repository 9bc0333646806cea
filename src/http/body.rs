//! The response body type: a whole buffer (no allocation beyond the bytes) or a stream.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// A streamed body (SSE and other long responses).
pub type BoxStream = Pin<Box<dyn Body<Data = Bytes, Error = Infallible> + Send>>;

/// Every response panlink sends has this body type.
pub enum ResponseBody {
    /// A complete body; `None` once sent (or for an empty body).
    Full(Option<Bytes>),
    Stream(BoxStream),
}

impl ResponseBody {
    pub fn empty() -> ResponseBody {
        ResponseBody::Full(None)
    }

    /// The exact length when known.
    pub fn exact_len(&self) -> Option<u64> {
        match self {
            ResponseBody::Full(bytes) => Some(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            ResponseBody::Stream(stream) => stream.size_hint().exact(),
        }
    }
}

impl From<Bytes> for ResponseBody {
    fn from(bytes: Bytes) -> Self {
        ResponseBody::Full((!bytes.is_empty()).then_some(bytes))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            ResponseBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            ResponseBody::Stream(stream) => stream.as_mut().poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Full(bytes) => bytes.is_none(),
            ResponseBody::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ResponseBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            ResponseBody::Stream(stream) => stream.size_hint(),
        }
    }
}
