//! The connections `serve` accepts, each bounded before any request is read (so before the
//! token is checked): how many are open at once, how long a request's header may take
//! (which is also how long a connection may sit idle between requests), and how long a
//! response may stall on a client that does not read it. At shutdown, idle connections
//! close at once and busy ones get a grace period.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{Instant, Sleep};

/// Limits on every connection (see [`crate::Policy`]).
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections open at once at most; more are answered 503 and closed.
    pub max_connections: usize,
    /// Longest a request's header may take to arrive, counted from the end of the previous
    /// response (or the connection's start).
    pub header_timeout: Duration,
    /// Longest a response may go without [`WRITE_PROGRESS`] bytes reaching the client.
    pub write_timeout: Duration,
    /// How long requests in flight may take to finish after shutdown begins.
    pub shutdown_grace: Duration,
}

/// Bytes a client must take within each write timeout for a response to go on.
pub const WRITE_PROGRESS: usize = 16 * 1024;

/// Sent, as is, to a connection over the cap before it is closed.
const FULL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
content-type: application/json\r\ncontent-length: 94\r\n\r\n\
{\"error\":{\"kind\":\"too_many_connections\",\"message\":\"this server has no room for a connection\"}}";

/// Connections over the cap answered at once; past these, more are closed unanswered.
const REFUSALS: usize = 64;

/// Answers a connection over the cap with [`FULL`] and closes it, reading (for at most a
/// second) what the client sent meanwhile, so that closing does not reset the connection
/// before the client has read the answer.
async fn refuse(mut stream: TcpStream, _refusing: OwnedSemaphorePermit) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let told = async {
        stream.write_all(FULL).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), told).await;
}

/// Serves `app` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let room = Arc::new(Semaphore::new(limits.max_connections));
    let refusals = Arc::new(Semaphore::new(REFUSALS));
    let (closing, closing_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    // Out of file descriptors and the like: wait for connections to close.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Ok(permit) = room.clone().try_acquire_owned() else {
                    // Told so, if a few refusals are not already being told; dropped
                    // otherwise.
                    if let Ok(refusing) = refusals.clone().try_acquire_owned() {
                        tokio::spawn(refuse(stream, refusing));
                    }
                    continue;
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(stream, app.clone(), limits, closing_rx.clone(), permit));
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    closing.send_replace(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.shutdown().await;
    }
    Ok(())
}

/// One connection, until the client closes it, a limit ends it, or shutdown.
async fn connection(
    stream: TcpStream,
    app: Router,
    limits: ConnectionLimits,
    mut closing: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    // Requests of this connection being handled (whose header has arrived).
    let handling = Arc::new(AtomicUsize::new(0));
    let service = {
        let (app, handling) = (TowerToHyperService::new(app), handling.clone());
        service_fn(move |request: hyper::Request<Incoming>| {
            handling.fetch_add(1, Ordering::SeqCst);
            let handled = Handled(handling.clone());
            let response = app.call(request);
            async move {
                let response = response.await;
                drop(handled);
                response
            }
        })
    };
    let io = TokioIo::new(WriteDeadline::new(stream, limits.write_timeout));
    let conn = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = closing.wait_for(|closing| *closing) => {}
    }
    // A connection that has asked nothing yet (idle, or a header still arriving) is
    // closed now; one with a request in hand finishes it.
    if handling.load(Ordering::SeqCst) == 0 {
        return;
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

/// Counts a request as handled until dropped.
struct Handled(Arc<AtomicUsize>);

impl Drop for Handled {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A stream whose writes fail once a response has gone [`ConnectionLimits::write_timeout`]
/// without [`WRITE_PROGRESS`] bytes of progress: a client that stops reading, or reads a
/// byte at a time, cannot hold a response (and the memory it takes) for long.
struct WriteDeadline {
    inner: TcpStream,
    limit: Duration,
    /// Armed while output is unflushed.
    deadline: Option<Pin<Box<Sleep>>>,
    /// Bytes written since the deadline was last set.
    progress: usize,
}

impl WriteDeadline {
    fn new(inner: TcpStream, limit: Duration) -> Self {
        WriteDeadline {
            inner,
            limit,
            deadline: None,
            progress: 0,
        }
    }

    /// Counts `written` bytes; extends the deadline after enough of them.
    fn progressed(&mut self, written: usize) {
        self.progress += written;
        if self.deadline.is_none() || self.progress >= WRITE_PROGRESS {
            let at = Instant::now() + self.limit;
            match &mut self.deadline {
                Some(deadline) => deadline.as_mut().reset(at),
                None => self.deadline = Some(Box::pin(tokio::time::sleep_until(at))),
            }
            self.progress = 0;
        }
    }

    /// An error if the deadline has passed (registering for its wake-up otherwise).
    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if self.deadline.is_none() {
            self.progressed(0);
        }
        match self.deadline.as_mut().map(|d| d.as_mut().poll(cx)) {
            Some(Poll::Ready(())) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client did not read the response in time",
            )),
            _ => Ok(()),
        }
    }

    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match result {
            Poll::Ready(Ok(written)) => {
                self.progressed(written);
                Poll::Ready(Ok(written))
            }
            Poll::Pending => match self.check(cx) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            ready => ready,
        }
    }
}

impl AsyncRead for WriteDeadline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WriteDeadline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.after_write(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.after_write(cx, result)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(Ok(())) => {
                // Everything reached the socket: nothing is waiting on the client.
                this.deadline = None;
                this.progress = 0;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => {
                this.check(cx)?;
                Poll::Pending
            }
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}
