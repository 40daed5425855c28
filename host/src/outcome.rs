//! What an evaluation produced, as the library reports it.

use std::time::Duration;

use serde::Serialize;

use crate::files::OutputFile;

/// An exception that escaped the evaluated code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct PyException {
    /// Type name, module-qualified unless builtin: `ZeroDivisionError`.
    pub type_name: String,
    /// `str()` of the exception.
    pub message: String,
    /// The traceback as Python prints it.
    pub traceback: String,
}

/// What one evaluation produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Outcome {
    /// Text written to stdout (capped at the output limit).
    pub stdout: String,
    /// Text written to stderr (capped at the output limit).
    pub stderr: String,
    /// Whether stdout was cut at the limit.
    pub stdout_truncated: bool,
    /// Whether stderr was cut at the limit.
    pub stderr_truncated: bool,
    /// `repr()` of a trailing expression's value, unless it is None or absent.
    pub value: Option<String>,
    /// The exception that ended the code, if any (other than SystemExit).
    pub error: Option<PyException>,
    /// The SystemExit status, if the code exited.
    pub exit_code: Option<i32>,
    /// Files under the working directory that the code created or changed, in path
    /// order, within [`crate::FileLimits`].
    pub files: Vec<OutputFile>,
    /// Changed files left out of `files`, past [`crate::FileLimits::max_files`].
    pub files_dropped: u32,
    /// Charts: the matplotlib figures the code showed (`plt.show()`) or left open, drawn
    /// as PNG images named `chart-N.png`, in the order drawn. They share
    /// [`crate::FileLimits`] with `files` (what the files leave); one whose bytes do not
    /// fit is listed without them.
    pub charts: Vec<OutputFile>,
    /// Charts left out of `charts`, past what [`crate::FileLimits::max_files`] left.
    pub charts_dropped: u32,
    /// Fuel this evaluation consumed (0 from an evaluator that does not meter).
    pub fuel_used: u64,
    /// Wall-clock time of the evaluation, instantiation included.
    #[serde(serialize_with = "serialize_micros", rename = "wall_time_us")]
    pub wall_time: Duration,
}

fn serialize_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}
