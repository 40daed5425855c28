//! What an evaluation gives back.

use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// An exception that escaped the evaluated code.
#[pyclass(module = "pyeval", frozen, get_all)]
#[derive(Clone)]
pub struct ExceptionInfo {
    /// The exception's qualified type name, e.g. `"ZeroDivisionError"`.
    type_name: String,
    /// `str()` of the exception.
    message: String,
    /// The formatted traceback, as python prints it.
    traceback: String,
}

/// A file the evaluation created or changed in its working directory.
#[pyclass(module = "pyeval", frozen)]
pub struct OutputFile {
    file: pyeval::OutputFile,
}

#[pymethods]
impl OutputFile {
    /// Its path under the working directory, e.g. `"out/chart.png"`.
    #[getter]
    fn path(&self) -> &str {
        &self.file.path
    }

    /// Its size in bytes.
    #[getter]
    fn size(&self) -> u64 {
        self.file.size
    }

    /// Its media type, guessed from its name, e.g. `"image/png"`.
    #[getter]
    fn media_type(&self) -> &str {
        &self.file.media_type
    }

    /// Its bytes, or None when they did not fit in the files' byte limit.
    #[getter]
    fn data<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyBytes>> {
        self.file.data.as_deref().map(|data| PyBytes::new(py, data))
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let path = self.file.path.clone().into_pyobject(py)?.repr()?;
        Ok(format!(
            "OutputFile({path}, {} bytes, {}{})",
            self.file.size,
            self.file.media_type,
            if self.file.data.is_some() {
                ""
            } else {
                ", bytes not kept"
            }
        ))
    }
}

/// The result of an evaluation that ran to its end.
#[pyclass(module = "pyeval", frozen, get_all)]
pub struct Outcome {
    /// What the code printed to stdout, up to the output limit.
    stdout: String,
    /// What the code printed to stderr, up to the output limit.
    stderr: String,
    /// Whether stdout was cut at the output limit.
    stdout_truncated: bool,
    /// Whether stderr was cut at the output limit.
    stderr_truncated: bool,
    /// `repr()` of the last expression's value, if the code ended with one (not None).
    value: Option<String>,
    /// The exception that escaped, if any.
    error: Option<ExceptionInfo>,
    /// The status passed to `exit()` / `sys.exit()`, if the code called it.
    exit_code: Option<i32>,
    /// Files the code created or changed in its working directory, in path order.
    files: Vec<Py<OutputFile>>,
    /// Changed files left out of `files`, past the files limit.
    files_dropped: u32,
    /// Charts: matplotlib figures the code showed or left open, as PNG files named
    /// `chart-N.png` (sharing the files limits with `files`).
    charts: Vec<Py<OutputFile>>,
    /// Charts left out of `charts`, past the files limit.
    charts_dropped: u32,
    /// Fuel the evaluation consumed.
    fuel_used: u64,
    /// Wall time of the evaluation, in seconds.
    wall_time: f64,
}

#[pymethods]
impl Outcome {
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let value = self.value.clone().into_pyobject(py)?.repr()?;
        let error = self
            .error
            .as_ref()
            .map(|e| e.type_name.clone())
            .into_pyobject(py)?
            .repr()?;
        Ok(format!(
            "Outcome(value={value}, error={error}, exit_code={}, stdout={} chars, \
             stderr={} chars, fuel_used={}, wall_time={:.6})",
            self.exit_code
                .map_or("None".to_owned(), |code| code.to_string()),
            self.stdout.chars().count(),
            self.stderr.chars().count(),
            self.fuel_used,
            self.wall_time
        ))
    }
}

#[pymethods]
impl ExceptionInfo {
    fn __repr__(&self) -> String {
        format!("ExceptionInfo({}: {})", self.type_name, self.message)
    }
}

impl Outcome {
    /// The Python object of `outcome`.
    pub fn new(py: Python<'_>, outcome: pyeval::Outcome) -> PyResult<Self> {
        let wrap = |files: Vec<pyeval::OutputFile>| {
            files
                .into_iter()
                .map(|file| Py::new(py, OutputFile { file }))
                .collect::<PyResult<Vec<_>>>()
        };
        let (files, charts) = (wrap(outcome.files)?, wrap(outcome.charts)?);
        Ok(Outcome {
            stdout: outcome.stdout,
            stderr: outcome.stderr,
            stdout_truncated: outcome.stdout_truncated,
            stderr_truncated: outcome.stderr_truncated,
            value: outcome.value,
            error: outcome.error.map(|e| ExceptionInfo {
                type_name: e.type_name,
                message: e.message,
                traceback: e.traceback,
            }),
            exit_code: outcome.exit_code,
            files,
            files_dropped: outcome.files_dropped,
            charts,
            charts_dropped: outcome.charts_dropped,
            fuel_used: outcome.fuel_used,
            wall_time: outcome.wall_time.as_secs_f64(),
        })
    }
}
