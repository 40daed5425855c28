//! The `tools=` keyword: Python functions (or `pyeval.Tool`s) made host tools. A plain
//! function is called right away on the thread evaluating, as a function call would be (so
//! calls of plain functions run one after another); a coroutine function's calls run on
//! threads of the blocking pool, at the same time as others, each on the caller's event
//! loop under `eval_async`.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use serde_json::Value;

/// The tools `spec` names (a dict of names to functions, or a list of functions and
/// `Tool`s), calling coroutine functions on `caller_loop` when it runs.
pub fn tools(
    py: Python<'_>,
    spec: Option<&Bound<'_, PyAny>>,
    caller_loop: Option<Py<PyAny>>,
) -> PyResult<Vec<pyeval::Tool>> {
    let Some(spec) = spec else {
        return Ok(Vec::new());
    };
    let helper = py.import("pyeval._tools")?;
    let described: Vec<(String, String, String, Py<PyAny>, bool, bool)> =
        helper.call_method1("describe", (spec,))?.extract()?;
    let call = Arc::new(helper.getattr("call")?.unbind());
    let caller_loop = Arc::new(caller_loop);
    described
        .into_iter()
        .map(
            |(name, description, schema, function, coroutine, may_suspend)| {
                let schema: Value = serde_json::from_str(&schema)
                    .map_err(|e| PyValueError::new_err(format!("schema of tool {name:?}: {e}")))?;
                let (call, caller_loop, function) =
                    (call.clone(), caller_loop.clone(), Arc::new(function));
                pyeval::Tool::new(name, description, schema, move |arguments: Value| {
                    let (call, caller_loop, function) =
                        (call.clone(), caller_loop.clone(), function.clone());
                    async move {
                        let run = move || {
                            Python::attach(|py| {
                                call.bind(py)
                                    .call1((
                                        function.bind(py),
                                        arguments.to_string(),
                                        &*caller_loop,
                                    ))
                                    .and_then(|result| result.extract::<String>())
                                    .map_err(|error| describe(py, &error))
                            })
                        };
                        let text = if coroutine {
                            tokio::task::spawn_blocking(run).await.map_err(|e| {
                                pyeval::ToolError::new(format!("the tool failed: {e}"))
                            })??
                        } else {
                            run()?
                        };
                        serde_json::from_str(&text)
                            .map_err(|e| pyeval::ToolError::new(format!("the tool's result: {e}")))
                    }
                })
                .map(|tool| {
                    if may_suspend {
                        tool.may_suspend()
                    } else {
                        tool
                    }
                })
                .map_err(|e| PyValueError::new_err(e.to_string()))
            },
        )
        .collect()
}

/// A Python exception as the sandbox sees it: `TypeName: message`; `pyeval.Suspend` asks
/// to suspend the evaluation, its message the reason.
fn describe(py: Python<'_>, error: &PyErr) -> pyeval::ToolError {
    if error.is_instance_of::<crate::errors::Suspend>(py) {
        return pyeval::ToolError::suspend(error.value(py).to_string());
    }
    let name = error
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".into());
    pyeval::ToolError::new(format!("{name}: {}", error.value(py)))
}
