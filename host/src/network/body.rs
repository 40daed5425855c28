//! A response body as the guest receives it: within the evaluation's response bytes and
//! time, and with the secrets the request carried masked back to their placeholders.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};
use wasmtime_wasi_http::Error as HttpError;

/// Each value a request carried, and the placeholder the guest knows it by.
pub(crate) type Masks = Vec<(Vec<u8>, Vec<u8>)>;

/// `incoming`, cut off (with an error) past the bytes left to the evaluation, after `idle`
/// (if given, and short: no later than the deadline) without a byte, or at `deadline`.
pub(crate) struct ResponseBody {
    incoming: hyper::body::Incoming,
    bytes_left: Arc<AtomicU64>,
    idle: Option<(Duration, Pin<Box<Sleep>>)>,
    deadline: Pin<Box<Sleep>>,
    masker: Masker,
}

/// Replaces secrets with their placeholders in a body that comes in chunks.
pub(crate) struct Masker {
    masks: Masks,
    /// The end of the last chunk, held back in case a secret straddles two chunks.
    held: Vec<u8>,
}

impl Masker {
    pub(crate) fn new(masks: Masks) -> Self {
        Masker {
            masks,
            held: Vec::new(),
        }
    }

    /// `data` with every secret replaced by its placeholder; the tail that could begin a
    /// secret is held back for the next chunk unless this is the `last`.
    pub(crate) fn feed(&mut self, data: &[u8], last: bool) -> Bytes {
        if self.masks.is_empty() {
            return Bytes::copy_from_slice(data);
        }
        let mut text = std::mem::take(&mut self.held);
        text.extend_from_slice(data);
        let mut text = replace_all(text, &self.masks);
        if !last {
            let longest = self.masks.iter().map(|(v, _)| v.len()).max().unwrap_or(1);
            let keep = (longest - 1).min(text.len());
            self.held = text.split_off(text.len() - keep);
        }
        Bytes::from(text)
    }
}

impl ResponseBody {
    pub(crate) fn new(
        incoming: hyper::body::Incoming,
        bytes_left: Arc<AtomicU64>,
        idle: Option<Duration>,
        deadline: Instant,
        masks: Masks,
    ) -> Self {
        ResponseBody {
            incoming,
            bytes_left,
            idle: idle.map(|idle| (idle, Box::pin(tokio::time::sleep(idle)))),
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            masker: Masker::new(masks),
        }
    }

    /// Takes `n` bytes from what the evaluation may still receive; false if fewer are left.
    fn take_bytes(&self, n: u64) -> bool {
        self.bytes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(n)
            })
            .is_ok()
    }
}

/// `text` with each value of `masks` replaced by its placeholder.
pub(crate) fn replace_all(mut text: Vec<u8>, masks: &Masks) -> Vec<u8> {
    for (value, placeholder) in masks {
        if value.is_empty() {
            continue;
        }
        let mut out = Vec::with_capacity(text.len());
        let mut rest = &text[..];
        while let Some(at) = rest.windows(value.len()).position(|w| w == &value[..]) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(placeholder);
            rest = &rest[at + value.len()..];
        }
        out.extend_from_slice(rest);
        text = out;
    }
    text
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        if !this.take_bytes(data.len() as u64) {
                            return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(None))));
                        }
                        if let Some((idle, timer)) = &mut this.idle {
                            timer.as_mut().reset(Instant::now() + *idle);
                        }
                        Frame::data(this.masker.feed(&data, false))
                    }
                    Err(trailers) => trailers,
                };
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) if !this.masker.held.is_empty() => {
                let rest = this.masker.feed(&[], true);
                Poll::Ready(Some(Ok(Frame::data(rest))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let idle_over = match &mut this.idle {
                    Some((_, timer)) => timer.as_mut().poll(cx).is_ready(),
                    None => false,
                };
                if this.deadline.as_mut().poll(cx).is_ready() || idle_over {
                    return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.masker.held.is_empty() && self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.masker.masks.is_empty() {
            self.incoming.size_hint()
        } else {
            SizeHint::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_across_chunks() {
        let masks: Masks = vec![(b"s3cret".to_vec(), b"pyeval-secret:T".to_vec())];
        assert_eq!(
            replace_all(b"a s3cret and s3cret".to_vec(), &masks),
            b"a pyeval-secret:T and pyeval-secret:T"
        );
        let mut masker = Masker::new(masks);
        let mut out = Vec::new();
        for chunk in [&b"xx s3"[..], b"cr", b"et yy s", b"3cret"] {
            out.extend_from_slice(&masker.feed(chunk, false));
        }
        out.extend_from_slice(&masker.feed(&[], true));
        assert_eq!(out, b"xx pyeval-secret:T yy pyeval-secret:T");
    }
}
