//! What the guest's built-in functions (src/host_tools.rs, src/http.rs) share: defining
//! and installing them, and reading their arguments. Each reader returns `None` with
//! Python's error set when an argument is not what it should be.

use std::ffi::CStr;
use std::ptr;

use pyo3_ffi::*;

/// A fast-call function named `name`.
pub const fn fast(name: &'static CStr, function: PyCFunctionFast) -> PyMethodDef {
    PyMethodDef {
        ml_name: name.as_ptr(),
        ml_meth: PyMethodDefPointer {
            PyCFunctionFast: function,
        },
        ml_flags: METH_FASTCALL,
        ml_doc: ptr::null(),
    }
}

/// Puts the functions `defs` define into `globals` under their names.
pub unsafe fn install(globals: *mut PyObject, defs: &[*mut PyMethodDef]) {
    for &def in defs {
        let function = crate::expect(
            PyCFunction_NewEx(def, ptr::null_mut(), ptr::null_mut()),
            "making a built-in function",
        );
        PyDict_SetItemString(globals, (*def).ml_name, function);
        Py_DecRef(function);
    }
}

/// Whether a call passed `expected` arguments; if not, `TypeError` names the `usage`.
pub unsafe fn takes(nargs: Py_ssize_t, expected: Py_ssize_t, usage: &CStr) -> bool {
    if nargs != expected {
        PyErr_SetString(PyExc_TypeError, usage.as_ptr());
    }
    nargs == expected
}

/// The UTF-8 text of a str argument.
pub unsafe fn utf8<'a>(obj: *mut PyObject) -> Option<&'a str> {
    let mut size: Py_ssize_t = 0;
    let data = PyUnicode_AsUTF8AndSize(obj, &mut size);
    if data.is_null() {
        return None;
    }
    let bytes = std::slice::from_raw_parts(data as *const u8, size as usize);
    std::str::from_utf8(bytes).ok()
}

/// The bytes of a bytes argument.
pub unsafe fn bytes<'a>(obj: *mut PyObject) -> Option<&'a [u8]> {
    let mut data: *mut std::ffi::c_char = ptr::null_mut();
    let mut size: Py_ssize_t = 0;
    if PyBytes_AsStringAndSize(obj, &mut data, &mut size) < 0 {
        return None;
    }
    Some(std::slice::from_raw_parts(data as *const u8, size as usize))
}

/// A timeout argument in seconds (a number, or `None` for none) as nanoseconds; a
/// negative one is 0, a huge one the longest there is.
pub unsafe fn timeout_ns(obj: *mut PyObject) -> Option<Option<u64>> {
    if obj == Py_None() {
        return Some(None);
    }
    let seconds = PyFloat_AsDouble(obj);
    if seconds == -1.0 && !PyErr_Occurred().is_null() {
        return None;
    }
    Some(Some((seconds.max(0.0) * 1e9) as u64))
}
