//! Evaluated code's output as it is written, for a host that shows progress (a terminal,
//! a stream of server-sent events, MCP progress notifications): granted as a
//! [`LiveOutput`], it receives each piece of stdout and stderr as code writes it, within
//! the output limit. The outcome still holds all of it.

use std::fmt;
use std::sync::Arc;

/// One of evaluated code's standard streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    /// `sys.stdout` and file descriptor 1.
    Stdout,
    /// `sys.stderr` and file descriptor 2.
    Stderr,
}

impl Stream {
    /// `"stdout"` or `"stderr"`.
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

type Listener = dyn Fn(Stream, &str) + Send + Sync;

/// Receives evaluated code's output as it is written: each piece once, in order, on the
/// thread evaluating (so it should return quickly: hand the text on rather than block).
///
/// ```no_run
/// use pyeval::{Evaluator, Grants, LiveOutput, Limits};
///
/// let grants = Grants::new().with_live_output(LiveOutput::new(|stream, text| {
///     eprint!("[{}] {text}", stream.name());
/// }));
/// let code = "import time\nfor i in range(3):\n    print(i)\n    time.sleep(1)";
/// Evaluator::new()?.eval_with(code, &Limits::default(), &grants)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct LiveOutput(Arc<Listener>);

impl LiveOutput {
    /// Output goes to `listener` as it is written.
    pub fn new(listener: impl Fn(Stream, &str) + Send + Sync + 'static) -> Self {
        LiveOutput(Arc::new(listener))
    }

    /// Hands `text` written to `stream` on.
    pub(crate) fn send(&self, stream: Stream, text: &str) {
        (self.0)(stream, text)
    }
}

impl fmt::Debug for LiveOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LiveOutput(..)")
    }
}

/// Listeners are equal when they are the same one.
impl PartialEq for LiveOutput {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for LiveOutput {}

/// Bytes of one stream on their way to a listener as text: a UTF-8 sequence split across
/// two writes waits for its end.
#[derive(Default)]
pub(crate) struct Decoder {
    pending: Vec<u8>,
}

impl Decoder {
    /// The text `bytes` complete, holding back an unfinished character at their end.
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut text = String::new();
        let mut rest: &[u8] = &self.pending;
        loop {
            match std::str::from_utf8(rest) {
                Ok(valid) => {
                    text.push_str(valid);
                    rest = &[];
                    break;
                }
                Err(error) => {
                    let (valid, after) = rest.split_at(error.valid_up_to());
                    text.push_str(std::str::from_utf8(valid).unwrap_or_default());
                    match error.error_len() {
                        // An unfinished character at the end: kept for the next write.
                        None => {
                            rest = after;
                            break;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            rest = &after[bad..];
                        }
                    }
                }
            }
        }
        self.pending = rest.to_vec();
        text
    }

    /// What is held back, as text (an unfinished character is replaced); empties it.
    pub(crate) fn finish(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_writes_waits_for_its_end() {
        let mut decoder = Decoder::default();
        let euro = "€".as_bytes();
        assert_eq!(decoder.decode(&[b'a', euro[0]]), "a");
        assert_eq!(decoder.decode(&euro[1..]), "€");
        assert_eq!(decoder.decode(b"\xffb"), "\u{fffd}b");
        assert_eq!(decoder.decode(&euro[..2]), "");
        assert_eq!(decoder.finish(), "\u{fffd}");
        assert_eq!(decoder.finish(), "");
    }
}
