//! What an evaluation gives back.

use pyo3::prelude::*;

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

impl From<pyeval::Outcome> for Outcome {
    fn from(outcome: pyeval::Outcome) -> Self {
        Outcome {
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
            fuel_used: outcome.fuel_used,
            wall_time: outcome.wall_time.as_secs_f64(),
        }
    }
}
