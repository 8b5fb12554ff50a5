//! The HTTP listener: accepts connections and serves the router on each,
//! with the limits that keep slow or stalled clients from holding the daemon
//! (nginx's `client_header_timeout`, `client_body_timeout`, `send_timeout`
//! and `worker_connections` are the model; `[http]` in the config):
//!
//! - a request's headers must arrive within `header-timeout` of the
//!   connection going idle (hyper's header read timeout, which also bounds
//!   how long an idle keep-alive connection is kept);
//! - a request body must not stall for longer than `body-timeout` between
//!   two reads (`api::timeout`, a body wrapper);
//! - a response must not stall for longer than `send-timeout` between two
//!   writes ([`TimedIo`]: a client that stops reading fills the socket's
//!   buffers, and then the write waits);
//! - at most `max-connections` at once; one over that is closed at accept.
//!
//! Whatever trips a limit is closed and its file descriptor freed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

use crate::config::HttpLimits;

/// How long a shutdown waits for requests in flight before it drops them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown` completes, then lets the
/// requests in flight finish (at most [`SHUTDOWN_GRACE`]).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let max = effective_max_connections(limits.max_connections);
    let slots = Arc::new(Semaphore::new(max));
    let graceful = GracefulShutdown::new();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let send_timeout = limits.send_timeout;
    let mut shutdown = std::pin::pin!(shutdown);
    let mut warned_full = false;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            // Dropping it closes it: the client sees the connection end at
            // once rather than waiting in the listen queue.
            if !warned_full {
                tracing::warn!(max, "refusing connections: max-connections are open");
                warned_full = true;
            }
            continue;
        };
        warned_full = false;
        let _ = stream.set_nodelay(true);
        let io = TokioIo::new(TimedIo::new(stream, send_timeout));
        let service = TowerToHyperService::new(app.clone());
        let conn = graceful.watch(builder.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after {SHUTDOWN_GRACE:?}: dropped");
    }
    Ok(())
}

/// `max-connections`, lowered to what the open-file limit allows once it is
/// raised as far as it goes (each connection is a descriptor; the database,
/// blobs and plugins need some too).
fn effective_max_connections(configured: usize) -> usize {
    const RESERVED: u64 = 256;
    let files = raise_open_file_limit();
    let fits = files.saturating_sub(RESERVED).max(16) as usize;
    if fits < configured {
        tracing::warn!(
            configured,
            open_files = files,
            "max-connections lowered to {fits}: the open-file limit allows no more (raise `ulimit -n`)"
        );
        return fits;
    }
    configured
}

/// Raises the soft open-file limit to the hard one (as nginx's
/// `worker_rlimit_nofile` does) and returns the limit in force.
fn raise_open_file_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
    }
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}

/// An accept that failed: a connection reset before it was taken is
/// nothing; anything else (out of descriptors, above all) is logged and
/// waited out briefly so the loop does not spin.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!("accept failed: {e}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// A connection whose writes fail with `TimedOut` once one has waited
/// longer than the send timeout: the client stopped reading.
pub struct TimedIo {
    inner: TcpStream,
    send_timeout: Duration,
    stalled: Option<Pin<Box<Sleep>>>,
}

impl TimedIo {
    pub fn new(inner: TcpStream, send_timeout: Duration) -> TimedIo {
        TimedIo {
            inner,
            send_timeout,
            stalled: None,
        }
    }

    /// Passes a write's result on; while it waits, checks the clock.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled = None;
            return polled;
        }
        let timeout = self.send_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client read nothing for {timeout:?} (send-timeout)"),
        )))
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
