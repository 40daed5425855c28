//! `pyeval._pyeval`: the pyeval library for Python callers. The `pyeval` package
//! re-exports it; `python -m pyeval` runs the command line through [`main`].

mod errors;
mod evaluator;
mod interrupt;
mod network;
mod options;
mod outcome;
mod tools;

use pyo3::prelude::*;

/// Runs the `pyeval` command line on `argv` (the program's name first) and returns its
/// exit status.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<std::ffi::OsString>) -> u8 {
    py.detach(|| pyeval_cli::run(argv))
}

/// The tools `tools` names (as `Evaluator.eval` takes them) written as Python stubs, for a
/// model's prompt: `async def search(*, query: str, limit: int = 10) -> Any: ...`.
#[pyfunction]
fn tool_stubs(py: Python<'_>, tools: Bound<'_, PyAny>) -> PyResult<String> {
    Ok(pyeval::tool_stubs(&tools::tools(py, Some(&tools), None)?))
}

#[pymodule]
fn _pyeval(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<evaluator::Evaluator>()?;
    module.add_class::<evaluator::Session>()?;
    module.add_class::<outcome::Outcome>()?;
    module.add_class::<outcome::ExceptionInfo>()?;
    module.add_class::<outcome::OutputFile>()?;
    module.add_class::<network::Network>()?;
    errors::register(module)?;
    module.add_function(wrap_pyfunction!(main, module)?)?;
    module.add_function(wrap_pyfunction!(tool_stubs, module)?)?;
    Ok(())
}
