//! CPython as the `pyeval:sandbox/python` world.
//!
//! `pyeval_init` starts the interpreter and runs `bootstrap.py`; it is meant to run once,
//! under wasmtime-wizer, so that every instance of the resulting component starts with
//! Python already initialized. The exports then call into the bootstrap's `Session`.

use std::ffi::{c_char, CStr, CString};
use std::ptr;

use pyo3_ffi::*;

mod builtins;
mod heap;
mod host_tools;
mod http;
mod scratch;
mod state;

wit_bindgen::generate!({
    world: "python",
    path: "../wit",
    generate_all,
    // Written by hand in `state`.
    skip: ["memory", "restore-begin", "write-memory", "restore-end"],
});

use exports::pyeval::sandbox::evaluator::{self, Exception, Outcome};

/// The compiled standard library, packed by build.rs.
static STDLIB: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/stdlib.bin"));

/// The IANA time-zone data of the `tzdata` package, packed by build.rs.
static TZDATA: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/tzdata.bin"));

/// The packages this component was built with (tools/packages.py), packed by build.rs;
/// an empty pack in the stdlib-only component.
static PACKAGES: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/packages.bin"));

/// The packages' modules to import before the snapshot, one a line (after [`PRELOAD`]).
static PACKAGES_PRELOAD: &str = include_str!(concat!(env!("OUT_DIR"), "/preload.txt"));

/// Code the packages' lock file has run once before the snapshot (empty without).
static PACKAGES_WARMUP: &str = include_str!(concat!(env!("OUT_DIR"), "/warmup.py"));

/// The guest's Python half.
static BOOTSTRAP: &str = include_str!("bootstrap.py");

/// The sandbox's own modules (src/modules), by name: they stand in for standard ones the
/// sandbox cannot have as they are (`ssl`), or carry what the sandbox adds.
static MODULES: &[(&CStr, &str)] = &[
    (c"ssl", include_str!("modules/ssl.py")),
    (
        c"_pyeval_network",
        include_str!("modules/_pyeval_network.py"),
    ),
];

/// The file name of the bootstrap's code. It is import machinery (its importer runs
/// modules' code), and `warnings` skips frames whose file name holds both `importlib` and
/// `_bootstrap` when it attributes a warning, as it does for CPython's own importer.
const BOOTSTRAP_NAME: &CStr = c"<pyeval importlib._bootstrap>";

/// Options of `python` that `wasi:cli/run` accepts and ignores (the host's command line
/// reads the same file).
static IGNORED_OPTIONS: &str = include_str!("ignored_options.txt");

/// Modules imported before the snapshot, so a fresh instance has them for free. The list is
/// what sandboxed code commonly imports; the costly ones were measured in fuel on a fresh
/// instance without them: asyncio 131 M, argparse 26 M, xml.etree 20 M, sqlite3 5 M, csv 3 M
/// (the others, and the many modules they pull in, about 1 M or less).
static PRELOAD: &[&str] = &[
    "abc",
    "argparse",
    "ast",
    "asyncio",
    "base64",
    "bisect",
    "collections",
    "contextlib",
    "copy",
    "csv",
    "dataclasses",
    "datetime",
    "decimal",
    "enum",
    "fractions",
    "functools",
    "hashlib",
    "heapq",
    "itertools",
    "json",
    "math",
    "operator",
    "random",
    "re",
    "sqlite3",
    "statistics",
    "string",
    "textwrap",
    "time",
    "traceback",
    "types",
    "typing",
    "unicodedata",
    "xml.etree.ElementTree",
    "zoneinfo",
];

/// The environment variable that gives the interpreter's home while the snapshot is taken
/// (the build tool mounts the stdlib under it).
const PYTHON_HOME_VAR: &str = "PYEVAL_PYTHON_HOME";

extern "C" {
    /// wasi-libc: forget the preopened directories seen so far (those of the snapshot).
    fn __wasilibc_reset_preopens();
    /// wasi-libc: forget the environment seen so far, so the next read fetches it anew.
    fn __wasilibc_deinitialize_environ();
    /// src/compile_split.c: a new reference to the `compile_split` function.
    fn pyeval_compile_split() -> *mut PyObject;
    /// src/mt19937_seed.c: a new reference to `keep_mt19937` (0) or `reseed_mt19937` (1).
    fn pyeval_mt19937_function(index: std::ffi::c_int) -> *mut PyObject;
    /// src/sqlite_vfs.c: SQLite's default VFS locks only databases in host directories and
    /// seeds its PRNG from WASI's random_get.
    fn pyeval_sqlite_setup();
    /// src/sqlite_vfs.c: SQLite seeds its PRNG again when it next needs randomness.
    fn pyeval_sqlite_reseed();
    /// Registers the packages' extension modules as built-in modules (build.rs makes it).
    fn pyeval_packages_register() -> std::ffi::c_int;
}

/// The `Session` object of bootstrap.py, set by `pyeval_init`.
static mut SESSION: *mut PyObject = ptr::null_mut();

/// Initializes Python and the session. Exported for the pre-initializer.
#[no_mangle]
pub extern "C" fn pyeval_init() {
    wit_bindgen::rt::run_ctors_once();
    unsafe {
        start_interpreter();
        let site = site_packages();
        scratch::place_packaged(&site, PACKAGES);
        pyeval_sqlite_setup();
        let session = run_bootstrap();
        SESSION = session;
        scratch::enter_tmp();
        heap::seal();
        heap::drain_free_lists();
        // The snapshot must not remember the snapshotting host's directories (nor the
        // scratch tree the directories it saw).
        __wasilibc_reset_preopens();
        scratch::prepare();
        scratch::place_packaged(&site, PACKAGES);
    }
}

/// Where the packages are installed: `site-packages` in the standard library's directory
/// (an absolute path).
unsafe fn site_packages() -> Vec<u8> {
    let dir = PySys_GetObject(c"_stdlib_dir".as_ptr());
    let dir = expect(PyUnicode_AsUTF8String(dir), "reading sys._stdlib_dir");
    let mut path = CStr::from_ptr(PyBytes_AsString(dir)).to_bytes().to_vec();
    Py_DecRef(dir);
    path.extend_from_slice(b"/site-packages");
    path
}

unsafe fn start_interpreter() {
    // UTF-8 for file names, `open()` and the streams, as python has it on WASI (there it
    // comes from the C.UTF-8 locale, which an isolated start does not consult).
    if pyeval_packages_register() != 0 {
        panic!("registering the packages' extension modules failed");
    }
    let mut pre = std::mem::MaybeUninit::<PyPreConfig>::uninit();
    PyPreConfig_InitIsolatedConfig(pre.as_mut_ptr());
    let mut pre = pre.assume_init();
    pre.utf8_mode = 1;
    check(Py_PreInitialize(&pre), "pre-initializing Python");
    let mut config = std::mem::MaybeUninit::<PyConfig>::uninit();
    PyConfig_InitIsolatedConfig(config.as_mut_ptr());
    let mut config = config.assume_init();
    // The str hash secret is fixed when the interpreter starts, so it is frozen into the
    // snapshot either way; a fixed seed keeps the component reproducible.
    config.use_hash_seed = 1;
    config.hash_seed = 0;
    config.site_import = 0;
    config.write_bytecode = 0;
    config.install_signal_handlers = 0;
    config.user_site_directory = 0;
    let home = std::env::var(PYTHON_HOME_VAR)
        .unwrap_or_else(|_| panic!("{PYTHON_HOME_VAR} is not set while initializing"));
    let home = CString::new(home).expect("a home without NUL bytes");
    check(
        PyConfig_SetBytesString(&mut config, &mut config.home, home.as_ptr()),
        "setting PYTHONHOME",
    );
    check(
        PyConfig_SetBytesString(&mut config, &mut config.program_name, c"python".as_ptr()),
        "setting the program name",
    );
    check(Py_InitializeFromConfig(&config), "initializing Python");
    PyConfig_Clear(&mut config);
}

unsafe fn check(status: PyStatus, what: &str) {
    if PyStatus_Exception(status) != 0 {
        let message = if status.err_msg.is_null() {
            "unknown error".into()
        } else {
            CStr::from_ptr(status.err_msg).to_string_lossy()
        };
        panic!("{what}: {message}");
    }
}

/// Runs bootstrap.py as module `_pyeval` and returns its new `Session`.
unsafe fn run_bootstrap() -> *mut PyObject {
    let module = PyImport_AddModule(c"_pyeval".as_ptr());
    let globals = PyModule_GetDict(module);
    for (name, blob) in [
        (c"STDLIB_BLOB", STDLIB),
        (c"TZDATA_BLOB", TZDATA),
        (c"PACKAGES_BLOB", PACKAGES),
    ] {
        let view =
            PyMemoryView_FromMemory(blob.as_ptr() as *mut c_char, blob.len() as _, PyBUF_READ);
        PyDict_SetItemString(
            globals,
            name.as_ptr(),
            expect(view, "wrapping a packed blob"),
        );
    }
    PyDict_SetItemString(
        globals,
        c"compile_split".as_ptr(),
        expect(pyeval_compile_split(), "making compile_split"),
    );
    for (index, name) in [(0, c"keep_mt19937"), (1, c"reseed_mt19937")] {
        PyDict_SetItemString(
            globals,
            name.as_ptr(),
            expect(pyeval_mt19937_function(index), "making the numpy reseeding"),
        );
    }
    host_tools::install(globals);
    http::install(globals);
    PyDict_SetItemString(
        globals,
        c"IGNORED_OPTIONS".as_ptr(),
        str_object(IGNORED_OPTIONS),
    );
    PyDict_SetItemString(
        globals,
        c"PACKAGES_WARMUP".as_ptr(),
        str_object(PACKAGES_WARMUP),
    );
    let modules = PyDict_New();
    for (name, source) in MODULES {
        PyDict_SetItemString(modules, name.as_ptr(), str_object(source));
    }
    PyDict_SetItemString(globals, c"SANDBOX_MODULES".as_ptr(), modules);
    let file = PyUnicode_FromString(BOOTSTRAP_NAME.as_ptr());
    PyDict_SetItemString(globals, c"__file__".as_ptr(), file);
    // As every module has: native code (Cython's, for one) looks builtins up through the
    // calling frame's globals.
    PyDict_SetItemString(globals, c"__builtins__".as_ptr(), PyEval_GetBuiltins());
    let source = CString::new(BOOTSTRAP).unwrap();
    let code = expect(
        Py_CompileString(source.as_ptr(), BOOTSTRAP_NAME.as_ptr(), Py_file_input),
        "compiling the bootstrap",
    );
    expect(
        PyEval_EvalCode(code, globals, globals),
        "running the bootstrap",
    );

    let preload = PyList_New(0);
    for name in PRELOAD.iter().copied().chain(PACKAGES_PRELOAD.lines()) {
        let name = CString::new(name).unwrap();
        PyList_Append(preload, PyUnicode_FromString(name.as_ptr()));
    }
    let prepare = PyDict_GetItemString(globals, c"prepare".as_ptr());
    expect(
        PyObject_CallOneArg(prepare, preload),
        "preparing the session",
    )
}

/// Returns `obj`, or panics with Python's error when it is NULL.
unsafe fn expect(obj: *mut PyObject, what: &str) -> *mut PyObject {
    if obj.is_null() {
        PyErr_Print();
        panic!("{what} failed");
    }
    obj
}

/// Whether this instance has been woken (a fresh instance has not).
static mut AWAKE: bool = false;

/// Whether this instance has been woken: false only in a fresh instance, before any call.
fn awake() -> bool {
    unsafe { AWAKE }
}

/// `SESSION.wake(environ, argv)` on the first call into this instance: the snapshot's
/// environment, arguments and random state belong to the process that took it.
unsafe fn wake() {
    if AWAKE {
        return;
    }
    AWAKE = true;
    heap::claim_static_state();
    __wasilibc_deinitialize_environ();
    // The snapshot's SQLite PRNG state would otherwise be every instance's.
    pyeval_sqlite_reseed();
    let environ = PyList_New(0);
    for (key, value) in std::env::vars_os() {
        let pair = PyTuple_New(2);
        PyTuple_SetItem(pair, 0, str_object(&key.to_string_lossy()));
        PyTuple_SetItem(pair, 1, str_object(&value.to_string_lossy()));
        PyList_Append(environ, pair);
        Py_DecRef(pair);
    }
    let result = call_session(c"wake", &[environ, argv()]);
    if result.is_null() {
        PyErr_Print();
    } else {
        Py_DecRef(result);
    }
}

/// This instance's arguments as a list of str.
unsafe fn argv() -> *mut PyObject {
    let list = PyList_New(0);
    for arg in std::env::args_os() {
        let arg = str_object(&arg.to_string_lossy());
        PyList_Append(list, arg);
        Py_DecRef(arg);
    }
    list
}

unsafe fn str_object(text: &str) -> *mut PyObject {
    PyUnicode_FromStringAndSize(text.as_ptr() as *const c_char, text.len() as _)
}

/// Calls `SESSION.<method>(*args)`, consuming `args`; NULL (with Python's error set) on
/// failure.
unsafe fn call_session(method: &CStr, args: &[*mut PyObject]) -> *mut PyObject {
    let name = PyUnicode_FromString(method.as_ptr());
    let mut vector: Vec<*mut PyObject> = Vec::with_capacity(args.len() + 1);
    vector.push(SESSION);
    vector.extend_from_slice(args);
    let result = PyObject_VectorcallMethod(name, vector.as_ptr(), vector.len(), ptr::null_mut());
    Py_DecRef(name);
    for arg in args {
        Py_DecRef(*arg);
    }
    result
}

/// The UTF-8 text of a `bytes` object.
unsafe fn text(bytes: *mut PyObject) -> String {
    let data = PyBytes_AsString(bytes) as *const u8;
    let len = PyBytes_Size(bytes) as usize;
    String::from_utf8_lossy(std::slice::from_raw_parts(data, len)).into_owned()
}

unsafe fn optional_text(obj: *mut PyObject) -> Option<String> {
    (obj != Py_None()).then(|| text(obj))
}

/// A new reference to the attribute `name` of `record` (an `OutcomeRecord` or
/// `ExceptionRecord` of bootstrap.py, whose attributes always exist).
unsafe fn field(record: *mut PyObject, name: &CStr) -> *mut PyObject {
    expect(
        PyObject_GetAttrString(record, name.as_ptr()),
        "reading a record field",
    )
}

/// Reads field `name` of `record` with `read`, then releases it.
unsafe fn read_field<T>(
    record: *mut PyObject,
    name: &CStr,
    read: impl FnOnce(*mut PyObject) -> T,
) -> T {
    let value = field(record, name);
    let result = read(value);
    Py_DecRef(value);
    result
}

/// Converts the `OutcomeRecord` returned by `Session.evaluate` into an `Outcome`.
unsafe fn outcome(record: *mut PyObject) -> Outcome {
    let flag = |name| read_field(record, name, |v| PyObject_IsTrue(v) == 1);
    Outcome {
        stdout: read_field(record, c"stdout", |v| text(v)),
        stderr: read_field(record, c"stderr", |v| text(v)),
        stdout_truncated: flag(c"stdout_truncated"),
        stderr_truncated: flag(c"stderr_truncated"),
        value: read_field(record, c"value", |v| optional_text(v)),
        error: read_field(record, c"error", |error| {
            (error != Py_None()).then(|| Exception {
                type_name: read_field(error, c"type_name", |v| text(v)),
                message: read_field(error, c"message", |v| text(v)),
                traceback: read_field(error, c"traceback", |v| text(v)),
            })
        }),
        exit_code: read_field(record, c"exit_code", |code| {
            (code != Py_None()).then(|| PyLong_AsLong(code) as i32)
        }),
        files_changed: scratch::files::any_changed(),
        charts: read_field(record, c"charts", |n| PyLong_AsUnsignedLong(n) as u32),
    }
}

/// The outcome when the evaluation machinery itself failed (for instance, no memory left
/// to build the result).
unsafe fn internal_failure() -> Outcome {
    let (type_name, message) = take_error();
    Outcome {
        stdout: String::new(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        value: None,
        error: Some(Exception {
            traceback: format!("{type_name}: {message}\n"),
            type_name,
            message,
        }),
        exit_code: None,
        files_changed: scratch::files::any_changed(),
        charts: 0,
    }
}

/// Type name and message of the pending Python error, clearing it.
unsafe fn take_error() -> (String, String) {
    let exc = PyErr_GetRaisedException();
    if exc.is_null() {
        return ("SystemError".into(), "the evaluation failed".into());
    }
    let type_name = CStr::from_ptr((*Py_TYPE(exc)).tp_name)
        .to_string_lossy()
        .into_owned();
    let message = PyObject_Str(exc);
    let message = if message.is_null() {
        PyErr_Clear();
        String::new()
    } else {
        let utf8 = PyUnicode_AsUTF8String(message);
        Py_DecRef(message);
        if utf8.is_null() {
            PyErr_Clear();
            String::new()
        } else {
            let message = text(utf8);
            Py_DecRef(utf8);
            message
        }
    };
    (type_name, message)
}

struct Component;

impl evaluator::Guest for Component {
    fn set_output_limit(bytes: u32) {
        unsafe {
            wake();
            let limit = PyLong_FromUnsignedLong(bytes);
            PyObject_SetAttrString(SESSION, c"output_limit".as_ptr(), limit);
            Py_DecRef(limit);
        }
    }

    fn set_live_output(live: bool) {
        unsafe {
            wake();
            let flag = PyBool_FromLong(live.into());
            PyObject_SetAttrString(SESSION, c"live_output".as_ptr(), flag);
            Py_DecRef(flag);
        }
    }

    fn grant_tools(tools: Vec<evaluator::Tool>) {
        unsafe {
            wake();
            let list = PyList_New(0);
            for tool in tools {
                let item = PyTuple_New(3);
                PyTuple_SetItem(item, 0, str_object(&tool.name));
                PyTuple_SetItem(item, 1, str_object(&tool.description));
                PyTuple_SetItem(item, 2, str_object(&tool.parameters));
                PyList_Append(list, item);
                Py_DecRef(item);
            }
            let result = call_session(c"grant_tools", &[list]);
            if result.is_null() {
                PyErr_Print();
            } else {
                Py_DecRef(result);
            }
        }
    }

    fn put_files(files: Vec<evaluator::File>) -> Result<(), String> {
        files
            .iter()
            .try_for_each(|file| scratch::files::put(&file.path, &file.data))
    }

    fn changed_files(max_files: u32, max_bytes: u64) -> evaluator::Changes {
        let (files, more) = scratch::files::changed(max_files, max_bytes);
        evaluator::Changes {
            files: files
                .into_iter()
                .map(|file| evaluator::ChangedFile {
                    path: file.path,
                    size: file.size,
                    data: file.data,
                })
                .collect(),
            more,
        }
    }

    fn charts(max_charts: u32, max_bytes: u64) -> evaluator::Changes {
        let mut changes = evaluator::Changes {
            files: Vec::new(),
            more: 0,
        };
        unsafe {
            let list = call_session(c"charts", &[]);
            if list.is_null() {
                PyErr_Clear();
                return changes;
            }
            let mut room = max_bytes;
            for i in 0..PyList_Size(list).max(0) {
                let png = PyList_GetItem(list, i);
                let (mut data, mut size) = (ptr::null_mut(), 0);
                if PyBytes_AsStringAndSize(png, &mut data, &mut size) != 0 {
                    PyErr_Clear();
                    continue;
                }
                if changes.files.len() >= max_charts as usize {
                    changes.more += 1;
                    continue;
                }
                let size = size as u64;
                let fits = size <= room;
                if fits {
                    room -= size;
                }
                changes.files.push(evaluator::ChangedFile {
                    path: format!("chart-{}.png", i + 1),
                    size,
                    data: fits.then(|| {
                        std::slice::from_raw_parts(data as *const u8, size as usize).to_vec()
                    }),
                });
            }
            Py_DecRef(list);
        }
        changes
    }

    fn read_file(path: String, max_bytes: u64) -> Result<Vec<u8>, String> {
        scratch::files::read(&path, max_bytes)
    }

    fn eval(code: String) -> Outcome {
        scratch::files::evaluation_starts();
        unsafe {
            wake();
            let result = call_session(c"evaluate", &[str_object(&code)]);
            if result.is_null() {
                return internal_failure();
            }
            let outcome = outcome(result);
            Py_DecRef(result);
            outcome
        }
    }
}

impl exports::wasi::cli::run::Guest for Component {
    fn run() -> Result<(), ()> {
        let status = unsafe {
            wake();
            let result = call_session(c"main", &[argv()]);
            if result.is_null() {
                PyErr_Print();
                1
            } else {
                PyLong_AsLong(result) as i32
            }
        };
        match status {
            0 => Ok(()),
            // Statuses outside 0-255 wrap as they would in a POSIX shell.
            code => {
                wasi::cli::exit::exit_with_code(code as u8);
                Err(())
            }
        }
    }
}

export!(Component);
