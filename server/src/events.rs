//! A streamed evaluation (`Accept: text/event-stream`): server-sent events carry the
//! output as code writes it (`stdout`, `stderr`), each call of a client's tool (`call`,
//! see `client_tools`), and at the end the outcome (`outcome`), the suspension a client's
//! answer asked for (`suspended`: `{"suspension", "tool", "arguments", "reason"}`, the
//! suspension's bytes in base64), or the failure (`error`, with the status a plain request
//! would have had).
//!
//! Events waiting for the client hold their share of the response memory, as plain
//! responses do, until the connection takes them; when it is used up, the evaluation is stopped
//! and its stream ends with `server_busy` (503). A client that goes away cancels the
//! evaluation, as it would a plain request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use pyeval::{EvalError, LiveOutput, Outcome, Stream};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::sync::{oneshot, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

use crate::response::bounded;
use crate::wire::Failure;

tokio::task_local! {
    /// The events of the evaluation this task streams, if it streams one.
    static EVENTS: Arc<Channel>;
}

/// An event on its way, holding its share of the response memory.
type Queued = (Event, OwnedSemaphorePermit);

/// Where one evaluation's events go.
pub struct Channel {
    sender: UnboundedSender<Queued>,
    /// The response memory (in KiB), shared with plain responses.
    memory: Arc<Semaphore>,
    /// Told when an event found the response memory used up.
    full: Notify,
}

impl Channel {
    /// Queues the event `name` with `data`; false when it cannot be (the client went away,
    /// or the response memory is used up, which stops the evaluation).
    pub fn send(&self, name: &str, data: String) -> bool {
        let Some(permit) = charge(&self.memory, data.len()) else {
            self.full.notify_one();
            return false;
        };
        let event = Event::default().event(name).data(data);
        self.sender.send((event, permit)).is_ok()
    }
}

/// A share of `memory` for `bytes`, if there is that much left.
fn charge(memory: &Arc<Semaphore>, bytes: usize) -> Option<OwnedSemaphorePermit> {
    let kib = u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
    memory.clone().try_acquire_many_owned(kib).ok()
}

/// Whether the client asked for a stream of events.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// Sends output to the stream of the evaluation writing it (granted only to streamed
/// evaluations).
pub fn live_output() -> LiveOutput {
    LiveOutput::new(|stream: Stream, text| {
        let data = json!({ "text": text }).to_string();
        let _ = EVENTS.try_with(|events| events.send(stream.name(), data));
    })
}

/// The events of the current evaluation, for a call to send to later (from a task of its
/// own, where the task-local does not reach).
pub fn current() -> Option<Arc<Channel>> {
    EVENTS.try_with(Arc::clone).ok()
}

/// A response streaming the events of `evaluation`, run as a task of its own, ending with
/// its outcome (at most `max_bytes` of JSON) or failure; events hold their share of
/// `memory` (KiB) until written.
pub fn stream<F>(evaluation: F, max_bytes: usize, memory: Arc<Semaphore>) -> Response
where
    F: Future<Output = Result<Result<Outcome, EvalError>, Failure>> + Send + 'static,
{
    let (sender, received) = mpsc::unbounded_channel();
    let channel = Arc::new(Channel {
        sender,
        memory: memory.clone(),
        full: Notify::new(),
    });
    let (last, ended) = oneshot::channel();
    let full = channel.clone();
    let task = tokio::spawn(EVENTS.scope(channel, async move {
        let result = tokio::select! {
            result = evaluation => result,
            // Dropping the evaluation stops it.
            () = full.full.notified() => Err(busy()),
        };
        let end = match result {
            Ok(Ok(outcome)) => {
                let json = bounded(&outcome, max_bytes);
                match charge(&memory, json.len()) {
                    Some(permit) => (
                        Event::default()
                            .event("outcome")
                            .data(String::from_utf8_lossy(&json)),
                        Some(permit),
                    ),
                    None => (failure(busy()), None),
                }
            }
            Ok(Err(EvalError::Suspended(suspension))) => {
                let data = suspended(&suspension).to_string();
                match charge(&memory, data.len()) {
                    Some(permit) => (Event::default().event("suspended").data(data), Some(permit)),
                    None => (failure(busy()), None),
                }
            }
            Ok(Err(error)) => (failure(error.into()), None),
            Err(failure_) => (failure(failure_), None),
        };
        let _ = last.send(end);
    }));
    Sse::new(Events {
        received,
        ended: Some(ended),
        last: None,
        task: Some(task),
    })
    .keep_alive(KeepAlive::default())
    .into_response()
}

/// The failure of a stream whose events used up the response memory.
fn busy() -> Failure {
    Failure::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server_busy",
        "responses waiting for their clients hold all the memory this server gives them; \
         the evaluation was stopped",
    )
}

/// A suspension as the last event's JSON.
fn suspended(suspension: &pyeval::Suspension) -> Value {
    use base64::Engine as _;
    json!({
        "suspension": base64::engine::general_purpose::STANDARD.encode(suspension.to_bytes()),
        "tool": suspension.tool,
        "arguments": serde_json::from_str::<Value>(&suspension.arguments).unwrap_or(Value::Null),
        "reason": suspension.reason,
    })
}

/// A failure as the last event: `{"error": {"kind", "message"}, "status"}`.
fn failure(failure: Failure) -> Event {
    let body: Value = json!({
        "error": { "kind": failure.kind, "message": failure.message },
        "status": failure.status.as_u16(),
    });
    Event::default().event("error").data(body.to_string())
}

/// The last event, with the memory it holds, if any.
type Last = (Event, Option<OwnedSemaphorePermit>);

/// The events of one evaluation as they come, then its end; dropping them (the client
/// went away) cancels it. An event's memory is given back once it is handed on.
struct Events {
    received: UnboundedReceiver<Queued>,
    /// The last event, once the evaluation has ended (calls it left behind may still hold
    /// senders of `received`, so its closing does not say so).
    ended: Option<oneshot::Receiver<Last>>,
    last: Option<Last>,
    task: Option<JoinHandle<()>>,
}

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(ended) = this.ended.as_mut() {
            // Running: events as they come.
            if let Poll::Ready(Some((event, _permit))) = this.received.poll_recv(cx) {
                return Poll::Ready(Some(Ok(event)));
            }
            match Pin::new(ended).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(last) => {
                    this.ended = None;
                    this.last = last.ok();
                }
            }
        }
        // Ended: what was sent before the end, then the end.
        if let Ok((event, _permit)) = this.received.try_recv() {
            return Poll::Ready(Some(Ok(event)));
        }
        Poll::Ready(this.last.take().map(|(event, _permit)| Ok(event)))
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
