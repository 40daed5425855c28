//! Keyword arguments to limits and grants, checked the way the command line checks flags.

use std::collections::BTreeMap;

use pyeval::{FileLimits, Fuel, Grants, InputFile, Limits, LiveOutput, Mount, Stdin};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// What evaluated code reads on stdin: text (sent as UTF-8) or bytes.
#[derive(FromPyObject)]
pub enum Input {
    Text(String),
    Bytes(Vec<u8>),
}

/// The limits of one evaluation or session; None keeps the default.
pub fn limits(
    fuel: Option<i64>,
    memory: Option<usize>,
    timeout: Option<f64>,
    max_output: Option<u32>,
    (max_files, max_file_bytes): (Option<u32>, Option<u64>),
) -> PyResult<Limits> {
    let mut limits = Limits::default();
    if let Some(fuel) = fuel {
        limits = limits.with_fuel(
            Fuel::from_signed(fuel).map_err(|e| PyValueError::new_err(format!("fuel {e}")))?,
        );
    }
    if let Some(memory) = memory {
        limits = limits.with_memory_bytes(memory);
    }
    if let Some(timeout) = timeout {
        let limit = pyeval::wall_time_from_secs(timeout)
            .map_err(|e| PyValueError::new_err(format!("timeout {e}")))?;
        limits = limits.with_wall_time(limit);
    }
    if let Some(bytes) = max_output {
        limits = limits.with_output_bytes(bytes);
    }
    if max_files.is_some() || max_file_bytes.is_some() {
        let default = FileLimits::default();
        limits = limits.with_file_limits(FileLimits::new(
            max_files.unwrap_or(default.max_files),
            max_file_bytes.unwrap_or(default.max_bytes),
        ));
    }
    Ok(limits)
}

/// What the code is given: mounts (`"HOST[:GUEST][:ro|:rw]"`, read-only by default),
/// environment variables, `sys.argv`, stdin, files in its working directory.
pub fn grants(
    mounts: Option<Vec<String>>,
    env: Option<BTreeMap<String, String>>,
    argv: Option<Vec<String>>,
    stdin: Option<Input>,
    files: Option<BTreeMap<String, Input>>,
) -> PyResult<Grants> {
    let mut grants = Grants::new();
    grants.files = input_files(files);
    for spec in mounts.unwrap_or_default() {
        let mount: Mount = spec
            .parse()
            .map_err(|e: pyeval::MountError| PyValueError::new_err(e.to_string()))?;
        grants = grants.with_mount(mount);
    }
    for (key, value) in env.unwrap_or_default() {
        grants = grants.with_env(key, value);
    }
    if let Some(argv) = argv {
        grants = grants.with_argv(argv);
    }
    if let Some(input) = stdin {
        grants = grants.with_stdin(Stdin::Bytes(input.into_bytes()));
    }
    Ok(grants)
}

/// `files`, a dict of paths under the working directory to their contents (str is written
/// as UTF-8), as the library's files.
pub fn input_files(files: Option<BTreeMap<String, Input>>) -> Vec<InputFile> {
    files
        .unwrap_or_default()
        .into_iter()
        .map(|(path, data)| InputFile::new(path, data.into_bytes()))
        .collect()
}

impl Input {
    /// The bytes: text as UTF-8.
    pub fn into_bytes(self) -> Vec<u8> {
        match self {
            Input::Text(text) => text.into_bytes(),
            Input::Bytes(bytes) => bytes,
        }
    }
}

/// `on_output`, a callable taking the stream's name (`"stdout"` or `"stderr"`) and the text
/// written, as a listener: called on the thread evaluating, holding the GIL; an exception
/// it raises is reported as unraisable and output goes on.
pub fn live_output(py: Python<'_>, on_output: Option<Py<PyAny>>) -> PyResult<Option<LiveOutput>> {
    let Some(callback) = on_output else {
        return Ok(None);
    };
    if !callback.bind(py).is_callable() {
        return Err(PyTypeError::new_err("on_output must be callable"));
    }
    Ok(Some(LiveOutput::new(move |stream, text| {
        Python::attach(|py| {
            if let Err(error) = callback.call1(py, (stream.name(), text)) {
                error.write_unraisable(py, Some(callback.bind(py)));
            }
        })
    })))
}
