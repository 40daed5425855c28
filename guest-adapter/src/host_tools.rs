//! The built-in functions through which bootstrap.py's `tools` module reaches the host's
//! `host-tools` interface: `_tool_start`, `_tool_wait` and `_tool_cancel`. They keep to
//! plain values (ints, strs, tuples); bootstrap.py makes Python's exceptions of them.

use std::ptr;

use pyo3_ffi::*;

use crate::builtins::{fast, takes, timeout_ns, utf8};
use crate::pyeval::sandbox::host_tools::{self, Refusal, Started};

/// Puts the three functions into `globals` under their names.
pub unsafe fn install(globals: *mut PyObject) {
    crate::builtins::install(
        globals,
        &[
            ptr::addr_of_mut!(START),
            ptr::addr_of_mut!(WAIT),
            ptr::addr_of_mut!(CANCEL),
        ],
    );
}

static mut START: PyMethodDef = fast(c"_tool_start", start);
static mut WAIT: PyMethodDef = fast(c"_tool_wait", wait);
static mut CANCEL: PyMethodDef = fast(c"_tool_cancel", cancel);

/// `_tool_start(name, arguments)`: `(0, handle)` for a running call, `(1, message)` for
/// arguments the schema refuses, `(2, message)` for a call refused otherwise, `(3, json)`
/// and `(4, message)` for a call that finished at once with a result or an error.
unsafe extern "C" fn start(
    _: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    if !takes(nargs, 2, c"_tool_start(name, arguments)") {
        return ptr::null_mut();
    }
    let (Some(name), Some(arguments)) = (utf8(*args), utf8(*args.add(1))) else {
        return ptr::null_mut();
    };
    let (kind, value) = match host_tools::start(name, arguments) {
        Ok(Started::Running(call)) => (0, PyLong_FromUnsignedLongLong(call)),
        Ok(Started::Finished(Ok(json))) => (3, crate::str_object(&json)),
        Ok(Started::Finished(Err(message))) => (4, crate::str_object(&message)),
        Err(Refusal::InvalidArguments(message)) => (1, crate::str_object(&message)),
        Err(Refusal::Refused(message)) => (2, crate::str_object(&message)),
    };
    let pair = PyTuple_New(2);
    PyTuple_SetItem(pair, 0, PyLong_FromLong(kind));
    PyTuple_SetItem(pair, 1, value);
    pair
}

/// `_tool_wait(timeout)`: the calls finished since the last wait, each `(handle, ok,
/// text)`, after waiting at most `timeout` seconds (`None`: until one finishes).
unsafe extern "C" fn wait(
    _: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    if !takes(nargs, 1, c"_tool_wait(timeout)") {
        return ptr::null_mut();
    }
    let Some(timeout_ns) = timeout_ns(*args) else {
        return ptr::null_mut();
    };
    let finished = host_tools::wait(timeout_ns);
    let list = PyList_New(0);
    for call in finished {
        let (ok, text) = match call.outcome {
            Ok(text) => (true, text),
            Err(text) => (false, text),
        };
        let item = PyTuple_New(3);
        PyTuple_SetItem(item, 0, PyLong_FromUnsignedLongLong(call.call));
        PyTuple_SetItem(item, 1, PyBool_FromLong(ok.into()));
        PyTuple_SetItem(item, 2, crate::str_object(&text));
        PyList_Append(list, item);
        Py_DecRef(item);
    }
    list
}

/// `_tool_cancel(handle)`.
unsafe extern "C" fn cancel(
    _: *mut PyObject,
    args: *mut *mut PyObject,
    nargs: Py_ssize_t,
) -> *mut PyObject {
    if !takes(nargs, 1, c"_tool_cancel(handle)") {
        return ptr::null_mut();
    }
    let call = PyLong_AsUnsignedLongLong(*args);
    if !PyErr_Occurred().is_null() {
        return ptr::null_mut();
    }
    host_tools::cancel(call);
    Py_NewRef(Py_None())
}
