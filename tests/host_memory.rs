//! The host's own memory per evaluation is bounded by the output cap, whatever the guest
//! does to its caps: a counting allocator measures the host heap (guest linear memory is
//! mapped by the engine, not allocated here) while tampering code returns tens of MB.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use pyeval::{Fuel, Limits};

/// The system allocator, counting the bytes live and the most live since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code, reason = "a global allocator is an unsafe trait")]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Host heap grown, at its peak, while `code` is evaluated under `limits`.
fn peak_during(code: &str, limits: &Limits) -> (usize, pyeval::Outcome) {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let outcome = common::evaluator().eval(code, limits).unwrap();
    (PEAK.load(Ordering::Relaxed) - before, outcome)
}

#[test]
fn tampered_caps_cannot_make_the_host_allocate() {
    const CAP: u32 = 4096;
    let limits = Limits::default()
        .with_fuel(Fuel::Unlimited)
        .with_output_bytes(CAP)
        .with_memory_bytes(512 << 20);
    // Warm: the first evaluation sets up the engine's own structures.
    peak_during("1", &limits);
    let lift_the_caps = "import sys\n\
        session = sys._getframe(1).f_locals['self']\n\
        session.output_limit = 10**9\n\
        sys.modules['_pyeval']._cut = lambda data, limit: data\n\
        sys.stdout.buffer.raw._room = 10**9\n\
        sys.stderr.buffer.raw._room = 10**9\n";
    let attacks = [
        ("value", "'v' * 30_000_000"),
        ("stdout", "print('o' * 30_000_000)"),
        ("stderr", "sys.stderr.write('e' * 30_000_000)"),
        ("exception", "raise ValueError('m' * 30_000_000)"),
    ];
    for (name, attack) in attacks {
        let (peak, outcome) = peak_during(&format!("{lift_the_caps}{attack}"), &limits);
        let longest = [
            outcome.stdout.len(),
            outcome.stderr.len(),
            outcome.value.as_ref().map_or(0, String::len),
            outcome.error.as_ref().map_or(0, |e| e.traceback.len()),
        ];
        assert!(
            longest.iter().all(|len| *len <= CAP as usize),
            "{name}: {longest:?}"
        );
        // Every field at the cap, plus the engine's bookkeeping, and nothing like the 30 MB
        // the guest returned.
        assert!(
            peak < 4 << 20,
            "{name}: the host's heap grew by {peak} bytes"
        );
    }
}
