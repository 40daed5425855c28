//! A streamed evaluation (`Accept: text/event-stream`): server-sent events carry the
//! output as code writes it (`stdout`, `stderr`), each call of a client's tool (`call`,
//! see `client_tools`), and at the end the outcome (`outcome`) or the failure (`error`,
//! with the status a plain request would have had).
//!
//! Events wait in memory for the client: output is bounded by the output limit, calls by
//! the tool limits (a call waits for its answer, and a client answers only calls it has
//! read). A client that goes away cancels the evaluation, as it would a plain request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::http::{header, HeaderMap};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use pyeval::{EvalError, LiveOutput, Outcome, Stream};
use serde_json::{json, Value};
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::response::bounded;
use crate::wire::Failure;

tokio::task_local! {
    /// The events of the evaluation this task streams, if it streams one.
    static EVENTS: UnboundedSender<Event>;
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
        let event = Event::default().event(stream.name());
        send(event.data(json!({ "text": text }).to_string()));
    })
}

/// Sends `event` to the stream of the running evaluation; false when there is none (the
/// evaluation is not streamed, or its client went away).
pub fn send(event: Event) -> bool {
    EVENTS
        .try_with(|events| events.send(event).is_ok())
        .unwrap_or(false)
}

/// The events of the current evaluation, for a call to send to later (from a task of its
/// own, where [`send`] does not reach).
pub fn current() -> Option<UnboundedSender<Event>> {
    EVENTS.try_with(Clone::clone).ok()
}

/// A response streaming the events of `evaluation`, run as a task of its own, ending with
/// its outcome (at most `max_bytes` of JSON) or failure.
pub fn stream<F>(evaluation: F, max_bytes: usize) -> Response
where
    F: Future<Output = Result<Result<Outcome, EvalError>, Failure>> + Send + 'static,
{
    let (events, received) = mpsc::unbounded_channel();
    let (last, ended) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(EVENTS.scope(events, async move {
        let end = match evaluation.await {
            Ok(Ok(outcome)) => Event::default()
                .event("outcome")
                .data(String::from_utf8_lossy(&bounded(&outcome, max_bytes))),
            Ok(Err(error)) => failure(error.into()),
            Err(failure_) => failure(failure_),
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

/// A failure as the last event: `{"error": {"kind", "message"}, "status"}`.
fn failure(failure: Failure) -> Event {
    let body: Value = json!({
        "error": { "kind": failure.kind, "message": failure.message },
        "status": failure.status.as_u16(),
    });
    Event::default().event("error").data(body.to_string())
}

/// The events of one evaluation as they come, then its end; dropping them (the client
/// went away) cancels it.
struct Events {
    received: UnboundedReceiver<Event>,
    /// The last event, once the evaluation has ended (calls it left behind may still hold
    /// senders of `received`, so its closing does not say so).
    ended: Option<tokio::sync::oneshot::Receiver<Event>>,
    last: Option<Event>,
    task: Option<JoinHandle<()>>,
}

impl futures_core::Stream for Events {
    type Item = Result<Event, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(ended) = this.ended.as_mut() {
            // Running: events as they come.
            if let Poll::Ready(Some(event)) = this.received.poll_recv(cx) {
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
        if let Ok(event) = this.received.try_recv() {
            return Poll::Ready(Some(Ok(event)));
        }
        Poll::Ready(this.last.take().map(Ok))
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
