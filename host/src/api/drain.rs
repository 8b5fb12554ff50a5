//! Refused requests are answered, not reset. A handler may refuse a request
//! (401, 403, 413, 422...) before it has read the body. The connection then
//! closes with the body's bytes unread, the kernel answers the client's
//! further writes with a reset, and a client that writes its whole body
//! before it reads (any client that does not send `Expect: 100-continue`)
//! sees a broken connection instead of the problem. So what a request's
//! handler left of its body is read and thrown away, at most
//! [`DRAIN_BYTES`] for at most [`DRAIN_TIME`] (nginx's lingering close),
//! before the answer goes out; a body larger or slower than that gets
//! `Connection: close` on its answer and is cut off.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::StreamExt;
use http_body::{Frame, SizeHint};

/// The most of a refused body read and discarded.
pub const DRAIN_BYTES: u64 = 64 << 20;
/// The longest a refused body is read for.
pub const DRAIN_TIME: Duration = Duration::from_secs(10);

/// The body the handler gets: the request's, behind a shared slot, so that
/// what the handler leaves unread (or drops unread) is still here after it
/// answered.
struct Kept(Arc<Mutex<Option<Body>>>);

impl HttpBody for Kept {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let mut slot = self.0.lock().expect("the body's slot is never poisoned");
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.0.lock().expect("the body's slot is never poisoned");
        slot.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.0.lock().expect("the body's slot is never poisoned");
        slot.as_ref().map(Body::size_hint).unwrap_or_default()
    }
}

/// Middleware: see the module's comment.
pub async fn answer_refusals(request: Request, next: Next) -> Response {
    // A client that waits for `100 Continue` sends nothing unless asked:
    // its answer goes out at once and there is nothing to read.
    let waits = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if waits || request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let slot = Arc::new(Mutex::new(Some(body)));
    let request = Request::from_parts(parts, Body::new(Kept(slot.clone())));
    let mut response = next.run(request).await;
    let left = slot
        .lock()
        .expect("the body's slot is never poisoned")
        .take();
    if let Some(body) = left
        && !body.is_end_stream()
        && !drain(body).await
    {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// Reads `body` to its end within the limits; whether it got there.
async fn drain(body: Body) -> bool {
    let mut stream = body.into_data_stream();
    let read_all = async {
        let mut read = 0u64;
        while let Some(chunk) = stream.next().await {
            let Ok(chunk) = chunk else { return false };
            read += chunk.len() as u64;
            if read > DRAIN_BYTES {
                return false;
            }
        }
        true
    };
    tokio::time::timeout(DRAIN_TIME, read_all)
        .await
        .unwrap_or(false)
}
