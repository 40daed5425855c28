//! The exceptions of a stopped or refused evaluation, all under `pyeval.EvalError`.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    pyeval,
    EvalError,
    PyException,
    "An evaluation produced no outcome."
);
create_exception!(
    pyeval,
    FuelExhausted,
    EvalError,
    "The code used its whole fuel budget."
);
create_exception!(
    pyeval,
    Timeout,
    EvalError,
    "The code ran past its wall-time limit."
);
create_exception!(
    pyeval,
    MemoryLimit,
    EvalError,
    "The code needed more memory than its limit (or the evaluator's shared budget)."
);
create_exception!(
    pyeval,
    Crashed,
    EvalError,
    "The interpreter crashed (a WebAssembly trap), or the evaluation was cancelled."
);
create_exception!(
    pyeval,
    InvalidCode,
    EvalError,
    "The code was refused before it ran: too large, or it holds a NUL character."
);
create_exception!(
    pyeval,
    InvalidFiles,
    EvalError,
    "Files given to the code were refused before it ran: a bad path, too many or too large."
);
create_exception!(
    pyeval,
    NoSuchFile,
    EvalError,
    "A file asked for by path is not in the session's working directory, or is too large."
);
create_exception!(
    pyeval,
    TooManyInstances,
    EvalError,
    "The evaluator holds as many live instances as it may; retry when one ends."
);
create_exception!(
    pyeval,
    SessionEnded,
    EvalError,
    "The session was stopped by an earlier evaluation, or closed; start a new one."
);
create_exception!(
    pyeval,
    SetupError,
    EvalError,
    "The evaluator, a session or a mount could not be set up."
);

create_exception!(
    pyeval,
    InvalidDump,
    EvalError,
    "A session dump was refused: from another component, damaged, or too large."
);

create_exception!(
    pyeval,
    Suspended,
    EvalError,
    "A tool call suspended the evaluation (its function raised `pyeval.Suspend`). \
     `suspension` holds it as bytes, for `Evaluator.resume`; `tool`, `arguments` (a dict) \
     and `reason` say which call, and why."
);
create_exception!(
    pyeval,
    Suspend,
    PyException,
    "Raised by a tool's function to suspend the evaluation at this call (to wait for a \
     person's approval, say): the evaluation raises `Suspended`, to resume later with \
     `Evaluator.resume` and the call's answer."
);

/// The Python exception for `error`.
pub fn to_py(error: pyeval::EvalError) -> PyErr {
    use pyeval::FailureKind as K;
    let message = error.to_string();
    if let pyeval::EvalError::Suspended(suspension) = &error {
        return suspended(message, suspension);
    }
    match error.kind() {
        K::FuelExhausted => FuelExhausted::new_err(message),
        K::Timeout => Timeout::new_err(message),
        K::MemoryLimit | K::MemoryBudget => MemoryLimit::new_err(message),
        K::Trap | K::Cancelled => Crashed::new_err(message),
        K::SessionEnded => SessionEnded::new_err(message),
        K::InvalidCode => InvalidCode::new_err(message),
        K::InvalidFiles => InvalidFiles::new_err(message),
        K::NoSuchFile => NoSuchFile::new_err(message),
        K::TooManyInstances => TooManyInstances::new_err(message),
        K::Setup => SetupError::new_err(message),
        K::InvalidDump => InvalidDump::new_err(message),
        K::Suspended => Suspended::new_err(message),
    }
}

pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("EvalError", py.get_type::<EvalError>())?;
    module.add("FuelExhausted", py.get_type::<FuelExhausted>())?;
    module.add("Timeout", py.get_type::<Timeout>())?;
    module.add("MemoryLimit", py.get_type::<MemoryLimit>())?;
    module.add("Crashed", py.get_type::<Crashed>())?;
    module.add("InvalidCode", py.get_type::<InvalidCode>())?;
    module.add("InvalidFiles", py.get_type::<InvalidFiles>())?;
    module.add("InvalidDump", py.get_type::<InvalidDump>())?;
    module.add("Suspended", py.get_type::<Suspended>())?;
    module.add("Suspend", py.get_type::<Suspend>())?;
    module.add("NoSuchFile", py.get_type::<NoSuchFile>())?;
    module.add("TooManyInstances", py.get_type::<TooManyInstances>())?;
    module.add("SessionEnded", py.get_type::<SessionEnded>())?;
    module.add("SetupError", py.get_type::<SetupError>())?;
    Ok(())
}

/// `Suspended` carrying `suspension`.
fn suspended(message: String, suspension: &pyeval::Suspension) -> PyErr {
    let error = Suspended::new_err(message);
    Python::attach(|py| {
        let value = error.value(py);
        let arguments = py
            .import("json")
            .and_then(|json| json.call_method1("loads", (&suspension.arguments,)));
        let set = value
            .setattr(
                "suspension",
                pyo3::types::PyBytes::new(py, &suspension.to_bytes()),
            )
            .and_then(|()| value.setattr("tool", &suspension.tool))
            .and_then(|()| value.setattr("arguments", arguments?))
            .and_then(|()| value.setattr("reason", &suspension.reason));
        set.err().unwrap_or(error)
    })
}
