//! Transport faults of the mock: a share id whose prefix names a fault gets the
//! provider's real answer for a valid share, spoiled on the wire. The provider handler builds its
//! answer as usual; [`MockState::settle`](super::MockState::settle) records the fault for the
//! request being served, and [`spoil`] applies it to the response.
//!
//! | prefix    | what the checker sees                                                         |
//! |-----------|-------------------------------------------------------------------------------|
//! | `reset`   | the request is read, then the connection is dropped without an answer         |
//! | `half`    | the head promises the whole body (`Content-Length`), half is sent, then the connection drops |
//! | `endless` | `200 application/json`, and a body that never ends                            |
//! | `stall`   | the head and the first half of the body, then 10 s of silence                 |
//! | `ctype`   | `200` labelled `application/json`, with a PNG image as the body               |

use std::cell::Cell;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;

/// A fault the mock can put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Reset,
    Half,
    Endless,
    Stall,
    ContentType,
}

/// How long a `stall…` answer stays silent after its first half.
pub const STALL: Duration = Duration::from_secs(10);

/// The size of each chunk of an endless body.
const ENDLESS_CHUNK: usize = 16 * 1024;

/// The first bytes of a PNG file, then filler: an image where JSON was promised.
const PNG: &[u8] =
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89";

impl Fault {
    /// The fault share id `id` asks for, if any.
    pub fn of(id: &str) -> Option<Fault> {
        const PREFIXES: &[(&str, Fault)] = &[
            ("reset", Fault::Reset),
            ("half", Fault::Half),
            ("endless", Fault::Endless),
            ("stall", Fault::Stall),
            ("ctype", Fault::ContentType),
        ];
        PREFIXES
            .iter()
            .find(|(prefix, _)| id.starts_with(prefix))
            .map(|(_, fault)| *fault)
    }
}

tokio::task_local! {
    /// The fault chosen for the request the current task serves.
    static CHOSEN: Cell<Option<Fault>>;
}

/// Runs `serve` (one request's handler) and returns its answer with the fault it chose.
pub async fn scoped<F>(serve: F) -> (Response<Full<Bytes>>, Option<Fault>)
where
    F: Future<Output = Response<Full<Bytes>>>,
{
    CHOSEN
        .scope(Cell::new(None), async move {
            let response = serve.await;
            (response, CHOSEN.with(Cell::get))
        })
        .await
}

/// Records `fault` for the request being served (outside [`scoped`], nothing happens).
pub fn choose(fault: Fault) {
    let _ = CHOSEN.try_with(|chosen| chosen.set(Some(fault)));
}

/// The connection is to be dropped without an answer.
#[derive(Debug, thiserror::Error)]
#[error("mock fault: connection dropped")]
pub struct Dropped;

/// `response` with `fault` applied, or [`Dropped`] for a reset.
pub async fn spoil(
    response: Response<Full<Bytes>>,
    fault: Option<Fault>,
) -> Result<Response<MockBody>, Dropped> {
    let (mut parts, body) = response.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .map(|collected| collected.to_bytes())
        .unwrap_or_default();
    let body = match fault {
        None => MockBody::Whole(Some(body)),
        Some(Fault::Reset) => return Err(Dropped),
        Some(Fault::Half) => {
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            MockBody::Half(Some(body.slice(..body.len() / 2)))
        }
        Some(Fault::Endless) => {
            relabel_as_json(&mut parts);
            MockBody::Endless(Bytes::from(vec![b' '; ENDLESS_CHUNK]))
        }
        Some(Fault::Stall) => {
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            let half = body.len() / 2;
            MockBody::Stall {
                first: Some(body.slice(..half)),
                silence: Box::pin(tokio::time::sleep(STALL)),
                rest: Some(body.slice(half..)),
            }
        }
        Some(Fault::ContentType) => {
            relabel_as_json(&mut parts);
            let mut image = PNG.to_vec();
            image.resize(512, 0);
            MockBody::Whole(Some(Bytes::from(image)))
        }
    };
    Ok(Response::from_parts(parts, body))
}

/// A `200` labelled JSON, for a body other than the provider's.
fn relabel_as_json(parts: &mut http::response::Parts) {
    parts.status = StatusCode::OK;
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
}

/// The body of a mock answer, whole or spoiled.
pub enum MockBody {
    /// The answer as the provider sends it.
    Whole(Option<Bytes>),
    /// Half the promised bytes, then the body breaks off (the connection drops).
    Half(Option<Bytes>),
    /// The same chunk, forever.
    Endless(Bytes),
    /// The first half, a silence, then the rest.
    Stall {
        first: Option<Bytes>,
        silence: Pin<Box<tokio::time::Sleep>>,
        rest: Option<Bytes>,
    },
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Dropped;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Dropped>>> {
        let this = self.get_mut();
        match this {
            MockBody::Whole(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            MockBody::Half(data) => Poll::Ready(Some(match data.take() {
                Some(d) => Ok(Frame::data(d)),
                None => Err(Dropped),
            })),
            MockBody::Endless(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk.clone())))),
            MockBody::Stall {
                first,
                silence,
                rest,
            } => {
                if let Some(d) = first.take() {
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                if silence.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                Poll::Ready(rest.take().map(|d| Ok(Frame::data(d))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, MockBody::Whole(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Whole(Some(d)) => SizeHint::with_exact(d.len() as u64),
            MockBody::Whole(None) => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(Fault::of("resetA01"), Some(Fault::Reset));
        assert_eq!(Fault::of("halfAA01"), Some(Fault::Half));
        assert_eq!(Fault::of("endlessA"), Some(Fault::Endless));
        assert_eq!(Fault::of("stallA01"), Some(Fault::Stall));
        assert_eq!(Fault::of("ctypeA01"), Some(Fault::ContentType));
        assert_eq!(Fault::of("okAAAA01"), None);
    }

    #[tokio::test]
    async fn a_half_body_keeps_the_promised_length_and_breaks_off() {
        let whole = super::super::text(StatusCode::OK, "application/json", "0123456789");
        let response = spoil(whole, Some(Fault::Half)).await.unwrap();
        assert_eq!(response.headers()[CONTENT_LENGTH], "10");
        let mut body = response.into_body();
        let first = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert_eq!(
            first.unwrap().ok().unwrap().into_data().unwrap(),
            &b"01234"[..]
        );
        let second = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await;
        assert!(matches!(second, Some(Err(Dropped))));
    }

    #[tokio::test]
    async fn outside_a_scope_choosing_does_nothing_and_inside_it_is_seen() {
        choose(Fault::Reset);
        let (_, fault) = scoped(async {
            choose(Fault::Stall);
            super::super::text(StatusCode::OK, "text/plain", "x")
        })
        .await;
        assert_eq!(fault, Some(Fault::Stall));
        assert!(matches!(
            spoil(
                super::super::text(StatusCode::OK, "text/plain", "x"),
                Some(Fault::Reset)
            )
            .await,
            Err(Dropped)
        ));
    }
}
