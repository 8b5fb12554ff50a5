//! A request body that stalls is cut off: no frame for `body-timeout`
//! (`[http]`, nginx's `client_body_timeout`) ends it with an error. Whatever
//! the handler made of that error, the answer is a 408 problem and the
//! connection is closed. The clock runs only while the handler waits for the
//! client, never while the handler itself is busy.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use super::Problem;

/// The error a stalled body ends with.
#[derive(Debug, thiserror::Error)]
#[error("the client sent nothing for {0:?} (body-timeout): request cut off")]
struct BodyTimeout(Duration);

struct Timed {
    body: Body,
    timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
    /// Set once the clock ran out, for the middleware to see.
    timed_out: Arc<AtomicBool>,
}

impl HttpBody for Timed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.stalled = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let stalled = this
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.timed_out.store(true, Ordering::Relaxed);
                        Poll::Ready(Some(Err(axum::Error::new(BodyTimeout(timeout)))))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Middleware: puts the clock on the request's body; a request that
/// stalled is answered 408 with `Connection: close`.
pub async fn stalled_bodies(timeout: Duration, request: Request, next: Next) -> Response {
    if request.body().is_end_stream() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let timed_out = Arc::new(AtomicBool::new(false));
    let timed = Timed {
        body,
        timeout,
        stalled: None,
        timed_out: timed_out.clone(),
    };
    let response = next.run(Request::from_parts(parts, Body::new(timed))).await;
    if !timed_out.load(Ordering::Relaxed) {
        return response;
    }
    let mut response = Problem::new(
        StatusCode::REQUEST_TIMEOUT,
        "request-timeout",
        format!(
            "{}; send the body without pausing, or raise [http] body-timeout-seconds",
            BodyTimeout(timeout)
        ),
    )
    .into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
