//! What evaluated code writes straight to file descriptors 1 and 2 (`os.write(1, ...)`,
//! C extensions' `printf`, and `sys.stdout` itself when output is live): kept per
//! evaluation, within its cap, and handed to the [`LiveOutput`] listening, if one is.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

use crate::live_output::{Decoder, LiveOutput, Stream};

/// A capped buffer for one standard stream. Once full, writes fail as on a closed pipe
/// (`OSError` in Python), so a runaway writer stops at once; [`RawOutput::take`] empties
/// it, so the cap holds per evaluation, not over a session's life.
#[derive(Clone)]
pub(crate) struct RawOutput {
    stream: Stream,
    capacity: usize,
    kept: Arc<Mutex<Kept>>,
}

/// What a [`RawOutput`] holds since it was last taken.
#[derive(Default)]
struct Kept {
    bytes: BytesMut,
    /// Whether a write was refused (or cut) for want of room.
    refused: bool,
    /// Who is told of each write as it happens.
    listener: Option<LiveOutput>,
    decoder: Decoder,
}

impl RawOutput {
    /// An empty buffer for `stream` keeping at most `capacity` bytes between two takes.
    pub(crate) fn new(stream: Stream, capacity: usize) -> Self {
        RawOutput {
            stream,
            capacity,
            kept: Arc::default(),
        }
    }

    /// Tells `listener` (none: no one) of later writes.
    pub(crate) fn listen(&self, listener: Option<LiveOutput>) {
        self.lock().listener = listener;
    }

    /// What was written since the last take, and whether a write was refused for want of
    /// room; the buffer starts empty again.
    pub(crate) fn take(&self) -> (Bytes, bool) {
        let mut kept = self.lock();
        let tail = kept.decoder.finish();
        let listener = kept.listener.clone();
        let taken = (std::mem::take(&mut kept.bytes).freeze(), kept.refused);
        kept.refused = false;
        drop(kept);
        if let Some(listener) = listener.filter(|_| !tail.is_empty()) {
            listener.send(self.stream, &tail);
        }
        taken
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Bytes that still fit; none is remembered as a refusal.
    fn room(&self) -> usize {
        let mut kept = self.lock();
        let room = self.capacity.saturating_sub(kept.bytes.len());
        kept.refused |= room == 0;
        room
    }

    /// Keeps what fits of `bytes` and says how much that was.
    fn keep(&self, bytes: &[u8]) -> usize {
        let mut kept = self.lock();
        let fits = bytes
            .len()
            .min(self.capacity.saturating_sub(kept.bytes.len()));
        kept.bytes.extend_from_slice(&bytes[..fits]);
        kept.refused |= fits < bytes.len();
        let Some(listener) = kept.listener.clone() else {
            return fits;
        };
        let text = kept.decoder.decode(&bytes[..fits]);
        // The listener runs without the lock: it may take its time, or write itself.
        drop(kept);
        if !text.is_empty() {
            listener.send(self.stream, &text);
        }
        fits
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for RawOutput {
    async fn ready(&mut self) {}
}

#[wasmtime_wasi::async_trait]
impl OutputStream for RawOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.keep(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        match self.room() {
            0 => Err(StreamError::Closed),
            room => Ok(room),
        }
    }
}

impl AsyncWrite for RawOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.keep(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for RawOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for RawOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_holds_between_takes_and_a_take_empties() {
        let mut out = RawOutput::new(Stream::Stdout, 4);
        assert_eq!(out.check_write().unwrap(), 4);
        out.write(Bytes::from_static(b"abc")).unwrap();
        assert_eq!(out.check_write().unwrap(), 1);
        out.write(Bytes::from_static(b"d")).unwrap();
        assert!(matches!(out.check_write(), Err(StreamError::Closed)));
        assert_eq!(out.take(), (Bytes::from_static(b"abcd"), true));
        assert_eq!(out.check_write().unwrap(), 4);
        out.write(Bytes::from_static(b"gh")).unwrap();
        assert_eq!(out.take(), (Bytes::from_static(b"gh"), false));
    }

    #[test]
    fn a_listener_is_told_of_what_is_kept_as_it_is_written() {
        let heard = Arc::new(Mutex::new(Vec::new()));
        let out = RawOutput::new(Stream::Stderr, 5);
        let log = heard.clone();
        out.listen(Some(LiveOutput::new(move |stream, text| {
            log.lock()
                .unwrap()
                .push(format!("{}:{text}", stream.name()))
        })));
        let euro = "€".as_bytes();
        out.clone().write(Bytes::from(vec![b'a', euro[0]])).unwrap();
        out.clone().write(Bytes::from(euro[1..].to_vec())).unwrap();
        out.clone().write(Bytes::from_static(b"xyz")).unwrap();
        assert_eq!(out.take().0.len(), 5);
        out.listen(None);
        out.clone().write(Bytes::from_static(b"unheard")).unwrap();
        assert_eq!(*heard.lock().unwrap(), ["stderr:a", "stderr:€", "stderr:x"]);
    }
}
