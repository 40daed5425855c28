//! Lifting the evaluator's outcome without letting the guest size host buffers.
//!
//! Each string of the outcome is copied out of guest memory up to the output cap in force,
//! never whole: whatever the guest does to its own caps (they are reachable from Python),
//! the host allocates at most the cap per field. Lifting happens inside a poll of the call's
//! future; [`with_cap`] sets the cap for exactly those polls.

use std::cell::Cell;
use std::future::Future;

use wasmtime::component::__internal::wasmtime_environ::component::StringEncoding;
use wasmtime::component::__internal::{CanonicalAbiInfo, InstanceType, InterfaceType, LiftContext};
use wasmtime::component::{ComponentType, Lift};
use wasmtime::ValRaw;

thread_local! {
    /// Bytes a [`CappedText`] lifted on this thread keeps; 0 outside [`with_cap`].
    static CAP: Cell<usize> = const { Cell::new(0) };
}

/// Runs `future` with strings lifted during its polls capped at `cap` bytes.
pub(crate) async fn with_cap<F: Future>(cap: usize, future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        let outer = CAP.replace(cap);
        let polled = future.as_mut().poll(cx);
        CAP.set(outer);
        polled
    })
    .await
}

/// A WIT `string` lifted no further than the cap in force.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CappedText {
    /// The text kept: whole characters only.
    pub text: String,
    /// Whether the guest's string was longer.
    pub cut: bool,
}

// SAFETY: the ABI of a string (a pointer and a length, two flat values or 8 bytes in
// memory), which is what `typecheck` accepts.
#[allow(
    unsafe_code,
    reason = "a string's layout as the component model defines it"
)]
unsafe impl ComponentType for CappedText {
    type Lower = [ValRaw; 2];

    const ABI: CanonicalAbiInfo = CanonicalAbiInfo::POINTER_PAIR;

    fn typecheck(ty: &InterfaceType, _types: &InstanceType<'_>) -> wasmtime::Result<()> {
        match ty {
            InterfaceType::String => Ok(()),
            _ => wasmtime::bail!("expected `string`"),
        }
    }
}

// SAFETY: reads the pointer pair as the canonical ABI lays it out and checks it against
// the guest's memory before reading any byte.
#[allow(
    unsafe_code,
    reason = "lifts a string as the component model defines it, capped"
)]
unsafe impl Lift for CappedText {
    fn linear_lift_from_flat(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        src: &Self::Lower,
    ) -> wasmtime::Result<Self> {
        read(cx, src[0].get_u32(), src[1].get_u32())
    }

    fn linear_lift_from_memory(
        cx: &mut LiftContext<'_>,
        _ty: InterfaceType,
        bytes: &[u8],
    ) -> wasmtime::Result<Self> {
        let word = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|w| w.try_into().ok())
                .map(u32::from_le_bytes)
                .ok_or_else(|| wasmtime::format_err!("a string's pointer pair is cut short"))
        };
        read(cx, word(0)?, word(4)?)
    }
}

fn read(cx: &mut LiftContext<'_>, ptr: u32, len: u32) -> wasmtime::Result<CappedText> {
    if cx.options().string_encoding != StringEncoding::Utf8 {
        wasmtime::bail!("the evaluator component must pass strings as UTF-8");
    }
    let (ptr, len) = (ptr as usize, len as usize);
    let bytes = ptr
        .checked_add(len)
        .and_then(|end| cx.memory().get(ptr..end))
        .ok_or_else(|| wasmtime::format_err!("a string out of the guest's memory"))?;
    let cap = CAP.get();
    Ok(CappedText {
        text: utf8_prefix(&bytes[..len.min(cap)])?.to_owned(),
        cut: len > cap,
    })
}

/// `bytes` as text, less a character cut at its end.
fn utf8_prefix(bytes: &[u8]) -> wasmtime::Result<&str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(e) if e.error_len().is_none() => Ok(std::str::from_utf8(&bytes[..e.valid_up_to()])?),
        Err(e) => wasmtime::bail!("a guest string is not UTF-8: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::utf8_prefix;

    #[test]
    fn a_cut_character_is_dropped_and_bad_bytes_refused() {
        assert_eq!(utf8_prefix("héllo".as_bytes()).unwrap(), "héllo");
        assert_eq!(utf8_prefix(&"hé".as_bytes()[..2]).unwrap(), "h");
        assert!(utf8_prefix(b"a\xffb").is_err());
    }
}
