//! Sealing the snapshot's heap, and draining its allocators.
//!
//! Every instance maps the snapshot's memory copy-on-write, so each page the interpreter
//! writes costs the host a page fault and a 4 KiB copy. Most of those writes are reference
//! counts of objects that already existed in the snapshot (modules, functions, types, code,
//! strings) and the garbage collector's bookkeeping in their headers. Before the snapshot is
//! taken, `seal` makes every object it can reach immortal (CPython then never writes its
//! reference count) and moves the tracked ones out of the collector's generations.
//!
//! `drain_free_lists` then uses up the allocators' free blocks, so that an instance's new
//! objects are carved together from fresh memory instead of from holes all over the heap;
//! `claim_static_state`, run by each instance, keeps its writes to static data in one run.
//!
//! An immortal object is never freed: code that drops the last reference to one (say,
//! `del json.dumps`) leaks a few bytes instead, and `sys.getrefcount` reports a constant.

use std::collections::HashSet;
use std::ffi::{c_int, c_void, CStr};

use pyo3_ffi::*;

/// The reference count CPython reads as "immortal" on 32-bit targets.
const IMMORTAL: Py_ssize_t = (u32::MAX >> 2) as Py_ssize_t;

/// Attributes of a code object that hold objects; code objects are not traversable.
const CODE_MEMBERS: &[&CStr] = &[
    c"co_consts",
    c"co_names",
    c"co_filename",
    c"co_name",
    c"co_qualname",
    c"co_linetable",
    c"co_exceptiontable",
];

extern "C" {
    /// CPython: calls `callback` on every object the collector tracks, until it returns 0.
    fn PyUnstable_GC_VisitObjects(
        callback: unsafe extern "C" fn(*mut PyObject, *mut c_void) -> c_int,
        arg: *mut c_void,
    );
}

/// The objects found so far and those still to look into.
#[derive(Default)]
struct Walk {
    seen: HashSet<usize>,
    pending: Vec<*mut PyObject>,
}

impl Walk {
    fn add(&mut self, obj: *mut PyObject) {
        if !obj.is_null() && self.seen.insert(obj as usize) {
            self.pending.push(obj);
        }
    }
}

/// A `visitproc` for `tp_traverse`: 0 continues.
unsafe extern "C" fn visit_referent(obj: *mut PyObject, walk: *mut c_void) -> c_int {
    (*(walk as *mut Walk)).add(obj);
    0
}

/// A callback for `PyUnstable_GC_VisitObjects`: 1 continues.
unsafe extern "C" fn visit_tracked(obj: *mut PyObject, walk: *mut c_void) -> c_int {
    (*(walk as *mut Walk)).add(obj);
    1
}

/// Collects garbage, makes every object reachable from a tracked one immortal, and
/// freezes the collector's generations.
pub unsafe fn seal() {
    PyGC_Collect();
    let mut walk = Walk::default();
    let arg = &mut walk as *mut Walk as *mut c_void;
    PyUnstable_GC_VisitObjects(visit_tracked, arg);
    while let Some(obj) = walk.pending.pop() {
        if PyObject_IS_GC(obj) != 0 {
            if let Some(traverse) = (*Py_TYPE(obj)).tp_traverse {
                traverse(obj, visit_referent, arg);
            }
        } else if PyCode_Check(obj) != 0 {
            for name in CODE_MEMBERS {
                // The new reference is kept: the member is about to become immortal.
                let member = PyObject_GetAttrString(obj, name.as_ptr());
                if member.is_null() {
                    PyErr_Clear();
                }
                walk.add(member);
            }
        }
        if PyType_Check(obj) != 0 {
            // Static types are not traversable, and their dicts live outside the type.
            let ty = obj as *mut PyTypeObject;
            walk.add(PyType_GetDict(ty));
            walk.add((*ty).tp_mro);
            walk.add((*ty).tp_bases);
            walk.add((*ty).tp_base.cast());
        }
        walk.add(Py_TYPE(obj).cast());
        (*obj).ob_refcnt.ob_refcnt = IMMORTAL;
    }
    let gc = PyImport_ImportModule(c"gc".as_ptr());
    if !gc.is_null() {
        let frozen = PyObject_CallMethod(gc, c"freeze".as_ptr(), std::ptr::null());
        if frozen.is_null() {
            PyErr_Clear();
        } else {
            Py_DecRef(frozen);
        }
        Py_DecRef(gc);
    }
}

extern "C" {
    /// wasi-libc (dlmalloc).
    fn malloc(size: usize) -> *mut c_void;
    fn free(ptr: *mut c_void);
    /// wasi-libc: grows linear memory; `sbrk(0)` is its current end.
    fn sbrk(increment: isize) -> *mut c_void;
}

/// Largest block the allocators' free lists are drained with, in bytes.
const DRAIN_FROM: usize = 1 << 20;

/// Largest request pymalloc serves itself, and its granularity on 32-bit targets.
const PYMALLOC_MAX: usize = 512;
const PYMALLOC_STEP: usize = 8;

/// Uses up every free block of both allocators (dlmalloc's bins, pymalloc's pools), so that
/// after the snapshot every allocation is carved from fresh memory at the end of the heap.
/// Otherwise an instance's first allocations land in free blocks scattered over the
/// snapshot, and it writes a page for each; the drained blocks stay in the snapshot as
/// unused memory (about 2 MiB).
pub unsafe fn drain_free_lists() {
    let end = sbrk(0) as usize;

    // Grow the heap once: the top chunk then starts past `end`, so a block at or past
    // `end` comes from the top and means the free lists for that size are empty.
    while sbrk(0) as usize == end {
        // Kept from the optimizer, which may drop an allocation nothing reads.
        if std::hint::black_box(malloc(DRAIN_FROM)).is_null() {
            return;
        }
    }

    let mut size = DRAIN_FROM;
    while size >= PYMALLOC_STEP {
        loop {
            let block = malloc(size);
            if block.is_null() || block as usize >= end {
                free(block);
                break;
            }
        }
        size /= 2;
    }
    // pymalloc's new pools now come from fresh arenas, allocated past `end`.
    for size in (PYMALLOC_STEP..=PYMALLOC_MAX).step_by(PYMALLOC_STEP) {
        loop {
            let block = PyObject_Malloc(size);
            if block.is_null() || block as usize >= end {
                break;
            }
        }
    }
}

/// Writes every page of the interpreter's static state (`_PyRuntime` up to the heap),
/// leaving it unchanged. An evaluation writes a dozen scattered pages there anyway; written
/// as one run, they stay one region for the host, which restores a slot's written pages
/// region by region and, past a few dozen regions, unmaps the rest of memory instead.
pub unsafe fn claim_static_state() {
    extern "C" {
        static _PyRuntime: u8;
        static __heap_base: u8;
    }
    const PAGE: usize = 4096;
    /// The state is about 300 KiB; a larger span means the link put other data in between,
    /// which would cost more to restore than it saves.
    const MOST: usize = 1 << 20;
    let start = (&raw const _PyRuntime as usize) & !(PAGE - 1);
    let end = &raw const __heap_base as usize;
    if end < start || end - start > MOST {
        return;
    }
    for page in (start..end).step_by(PAGE) {
        let byte = page as *mut u8;
        byte.write_volatile(byte.read_volatile());
    }
}
