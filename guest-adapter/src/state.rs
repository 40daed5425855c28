//! The `state` exports: the instance's memory as a host dumps it and restores it into a
//! fresh instance (see wit/pyeval.wit).
//!
//! They are written by hand rather than through wit-bindgen, which would copy the memory
//! into a new list (and free it after) instead of handing the host a view of it, and
//! would allocate while the memory is being replaced.
//!
//! A restore lands each `write-memory`'s data in the far end of the stack, which nothing
//! uses between calls (CPython's build puts the stack first, so that end is just past
//! page 0), and copies it into place from there; what the dump has for the landing area
//! itself is dead stack, and is left out. Page 0 is never written (address 0 is the null
//! pointer to Rust), and the landing area is zeroed at the end, as in a fresh instance.
//! The memory grows only to the dumped size, so a restored session has the room it had.

use core::arch::wasm32;
use core::ptr::{self, addr_of};

/// Bytes in a wasm page.
const WASM_PAGE: usize = 64 << 10;

/// Most bytes one `write-memory` carries: the landing area's size.
const MAX_WRITE: usize = 1 << 20;

/// Where the landing area starts: past page 0.
const LANDING_START: usize = 4096;

/// Stack the restore's own calls may use above the landing area.
const STACK_MARGIN: usize = 64 << 10;

/// Where `write-memory`'s data lands while a restore runs (0 otherwise), and the size
/// being restored. Both live in memory a restore overwrites, so each write puts them back.
static mut LANDING: usize = 0;
static mut RESTORE_SIZE: usize = 0;

/// The `list<u8>` that `memory` returns: pointer and length.
static mut MEMORY_VIEW: [usize; 2] = [0; 2];

extern "C" {
    /// wit-bindgen's allocator for values the host passes in.
    fn cabi_realloc(old: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8;
    /// wasm-ld: the stack's lowest address and the one past its top.
    static __stack_low: u8;
    static __stack_high: u8;
}

/// What the host passes to exports is allocated here: in the landing room during a
/// restore, by wit-bindgen's allocator otherwise.
#[no_mangle]
unsafe extern "C" fn cabi_export_realloc(
    old: *mut u8,
    old_len: usize,
    align: usize,
    new_len: usize,
) -> *mut u8 {
    if LANDING != 0 && old.is_null() && new_len <= MAX_WRITE {
        return LANDING as *mut u8;
    }
    cabi_realloc(old, old_len, align, new_len)
}

#[export_name = "pyeval:sandbox/state@0.1.0#memory"]
unsafe extern "C" fn memory() -> *const [usize; 2] {
    // A 4 GiB memory's length does not fit: the host refuses a length that is not whole
    // pages.
    let len = wasm32::memory_size(0).saturating_mul(WASM_PAGE);
    MEMORY_VIEW = [0, len];
    addr_of!(MEMORY_VIEW)
}

#[export_name = "pyeval:sandbox/state@0.1.0#restore-begin"]
unsafe extern "C" fn restore_begin(size: u64) -> bool {
    let have = wasm32::memory_size(0) * WASM_PAGE;
    let (low, high) = (
        addr_of!(__stack_low) as usize,
        addr_of!(__stack_high) as usize,
    );
    // The landing area must lie in the stack, clear of what the restore's calls use.
    let stack_holds_it = low <= LANDING_START && LANDING_START + MAX_WRITE + STACK_MARGIN <= high;
    let fits = size.is_multiple_of(WASM_PAGE as u64) && size >= have as u64 && size < 1 << 32;
    if crate::awake() || LANDING != 0 || !fits || !stack_holds_it {
        return false;
    }
    let size = size as usize;
    if size > have && wasm32::memory_grow(0, (size - have) / WASM_PAGE) == usize::MAX {
        return false;
    }
    LANDING = LANDING_START;
    RESTORE_SIZE = size;
    true
}

#[export_name = "pyeval:sandbox/state@0.1.0#write-memory"]
unsafe extern "C" fn write_memory(offset: usize, data: *const u8, len: usize) {
    let (landing, size) = (LANDING, RESTORE_SIZE);
    let fits = offset > 0 && offset <= size && len <= size - offset && len <= MAX_WRITE;
    if landing == 0 || data as usize != landing || !fits {
        wasm32::unreachable();
    }
    // The parts of [offset, offset + len) below and above the landing area.
    let (end, landing_end) = (offset + len, landing + MAX_WRITE);
    for (from, to) in [(offset, end.min(landing)), (offset.max(landing_end), end)] {
        if from < to {
            ptr::copy_nonoverlapping(data.add(from - offset), from as *mut u8, to - from);
        }
    }
    LANDING = landing;
    RESTORE_SIZE = size;
}

#[export_name = "pyeval:sandbox/state@0.1.0#restore-end"]
unsafe extern "C" fn restore_end() {
    if LANDING != 0 {
        ptr::write_bytes(LANDING as *mut u8, 0, MAX_WRITE);
    }
    LANDING = 0;
    RESTORE_SIZE = 0;
}
