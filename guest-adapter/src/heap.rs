//! Sealing the snapshot's heap.
//!
//! Every instance maps the snapshot's memory copy-on-write, so each page the interpreter
//! writes costs the host a page fault and a 4 KiB copy. Most of those writes are reference
//! counts of objects that already existed in the snapshot (modules, functions, types, code,
//! strings) and the garbage collector's bookkeeping in their headers. Before the snapshot is
//! taken, `seal` makes every object it can reach immortal (CPython then never writes its
//! reference count) and moves the tracked ones out of the collector's generations.
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
/// freezes the collector's generations. Returns how many objects were sealed.
pub unsafe fn seal() -> usize {
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
    walk.seen.len()
}
