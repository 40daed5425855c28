//! `Evaluator` and `Session`: the library's, with keyword arguments for limits and grants.

use std::collections::BTreeMap;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::errors::{to_py, SessionEnded, SetupError};
use crate::interrupt;
use crate::options::{grants, input_files, limits, live_output, Input};
use crate::outcome::Outcome;

/// Holds the compiled evaluator component and makes a fresh interpreter for every
/// evaluation. Safe to share between threads: evaluations run without the GIL.
#[pyclass(module = "pyeval", frozen)]
pub struct Evaluator {
    inner: pyeval::Evaluator,
}

#[pymethods]
impl Evaluator {
    /// `max_instances`: live interpreters at most (evaluations in flight plus open
    /// sessions); `metered`: count fuel (without it, fuel limits are refused);
    /// `memory_budget`: bytes that all instances may grow past their start, together;
    /// `component`: a component file to use instead of the built-in one.
    #[new]
    #[pyo3(signature = (*, max_instances=None, metered=true, memory_budget=None, component=None))]
    fn new(
        py: Python<'_>,
        max_instances: Option<u32>,
        metered: bool,
        memory_budget: Option<usize>,
        component: Option<std::path::PathBuf>,
    ) -> PyResult<Self> {
        let mut builder = pyeval::Evaluator::builder().metered(metered);
        if let Some(instances) = max_instances {
            builder = builder.max_instances(instances);
        }
        if memory_budget.is_some() {
            builder = builder.memory_budget(memory_budget);
        }
        if let Some(path) = component {
            builder = builder.component_file(path);
        }
        let inner = py
            .detach(|| builder.build())
            .map_err(|e| SetupError::new_err(e.to_string()))?;
        Ok(Evaluator { inner })
    }

    /// Evaluates `code` in a fresh interpreter and returns its `Outcome`; a stopped run
    /// raises a subclass of `EvalError`. Limits: `fuel` (-1 for none), `memory` (bytes),
    /// `timeout` (seconds), `max_output` (bytes of stdout and of stderr kept), `max_files`
    /// and `max_file_bytes` (files given and returned, each way). Grants: `mounts`
    /// (`"HOST[:GUEST][:ro|:rw]"`), `env`, `argv`, `stdin` (str or bytes), `files` (a dict
    /// of paths under the working directory to str or bytes), `tools` (functions the code
    /// may call: a dict of names to functions, or a list of functions and `Tool`s),
    /// `network` (the hosts it may send HTTP(S) requests to: a `Network`, or a list of host
    /// rules such as `["api.github.com"]`; none without). Files
    /// the code creates or changes in its working directory come back in `Outcome.files`. `on_output(stream, text)` is called with output as it is written
    /// (`stream` is `"stdout"` or `"stderr"`), on the thread evaluating.
    #[pyo3(signature = (code, *, fuel=None, memory=None, timeout=None, max_output=None,
                        max_files=None, max_file_bytes=None, mounts=None, env=None,
                        argv=None, stdin=None, files=None, tools=None, network=None,
                        on_output=None, _loop=None))]
    #[allow(clippy::too_many_arguments)]
    fn eval(
        &self,
        py: Python<'_>,
        code: &str,
        fuel: Option<i64>,
        memory: Option<usize>,
        timeout: Option<f64>,
        max_output: Option<u32>,
        max_files: Option<u32>,
        max_file_bytes: Option<u64>,
        mounts: Option<Vec<String>>,
        env: Option<BTreeMap<String, String>>,
        argv: Option<Vec<String>>,
        stdin: Option<Input>,
        files: Option<BTreeMap<String, Input>>,
        tools: Option<Bound<'_, PyAny>>,
        network: Option<Bound<'_, PyAny>>,
        on_output: Option<Py<PyAny>>,
        _loop: Option<Py<PyAny>>,
    ) -> PyResult<Outcome> {
        let limits = limits(
            fuel,
            memory,
            timeout,
            max_output,
            (max_files, max_file_bytes),
        )?;
        let mut grants = grants(mounts, env, argv, stdin, files)?;
        grants.network = crate::network::network(network)?;
        if let Some(listener) = live_output(py, on_output)? {
            grants = grants.with_live_output(listener);
        }
        for tool in crate::tools::tools(py, tools.as_ref(), _loop)? {
            grants = grants.with_tool(tool);
        }
        let evaluator = &self.inner;
        let outcome = interrupt::run(py, async move {
            evaluator
                .eval_async(code, &limits, &grants)
                .await
                .map_err(to_py)
        })?;
        Outcome::new(py, outcome)
    }

    /// `eval` for asyncio code: awaits the evaluation, run on the loop's default executor.
    #[pyo3(signature = (code, **options))]
    fn eval_async<'py>(
        slf: &Bound<'py, Self>,
        code: String,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        in_executor(slf.as_any(), code, options)
    }

    /// A `Session`: one interpreter whose variables, imports and files persist across its
    /// evaluations, under the same keyword arguments as `eval` (the limits apply to each
    /// evaluation). Use it as a context manager, or `close()` it.
    #[pyo3(signature = (*, fuel=None, memory=None, timeout=None, max_output=None,
                        max_files=None, max_file_bytes=None, mounts=None, env=None,
                        argv=None, stdin=None, files=None, tools=None, network=None,
                        on_output=None))]
    #[allow(clippy::too_many_arguments)]
    fn session(
        &self,
        py: Python<'_>,
        fuel: Option<i64>,
        memory: Option<usize>,
        timeout: Option<f64>,
        max_output: Option<u32>,
        max_files: Option<u32>,
        max_file_bytes: Option<u64>,
        mounts: Option<Vec<String>>,
        env: Option<BTreeMap<String, String>>,
        argv: Option<Vec<String>>,
        stdin: Option<Input>,
        files: Option<BTreeMap<String, Input>>,
        tools: Option<Bound<'_, PyAny>>,
        network: Option<Bound<'_, PyAny>>,
        on_output: Option<Py<PyAny>>,
    ) -> PyResult<Session> {
        let limits = limits(
            fuel,
            memory,
            timeout,
            max_output,
            (max_files, max_file_bytes),
        )?;
        let mut grants = grants(mounts, env, argv, stdin, files)?;
        grants.network = crate::network::network(network)?;
        let listener = live_output(py, on_output)?;
        // Coroutine functions run on the loop that made the session, if one runs here.
        let running = py
            .import("asyncio")?
            .call_method0("get_running_loop")
            .ok()
            .map(Bound::unbind);
        for tool in crate::tools::tools(py, tools.as_ref(), running)? {
            grants = grants.with_tool(tool);
        }
        let session = py
            .detach(|| self.inner.session_with(&limits, &grants))
            .map_err(to_py)?;
        Ok(Session::new(session, listener))
    }

    /// Goes on with an evaluation that raised `Suspended`: `data` is its `suspension`,
    /// `result` the suspended call's answer (JSON-able), or `error` the message of the
    /// `ToolError` it raises instead. The session is restored as it was before the
    /// evaluation, under the same keyword arguments as `session` (whose `tools` answer
    /// the calls after it), and the code runs again: the calls it made before are
    /// answered as they were, without calling their functions. Returns the session and
    /// the evaluation's `Outcome`; raises `Suspended` again if another call suspends it.
    #[pyo3(signature = (data, result=None, *, error=None, **options))]
    fn resume(
        slf: &Bound<'_, Self>,
        data: Vec<u8>,
        result: Option<Bound<'_, PyAny>>,
        error: Option<String>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<(Py<Session>, Outcome)> {
        let py = slf.py();
        let suspension = pyeval::Suspension::from_bytes(&data)
            .map_err(|e| to_py(pyeval::EvalError::InvalidDump(e)))?;
        let answer = match (error, result) {
            (Some(message), _) => Err(pyeval::ToolError::new(message)),
            (None, Some(result)) => {
                let json: String = py
                    .import("json")?
                    .call_method1("dumps", (result,))?
                    .extract()?;
                Ok(serde_json::from_str(&json)
                    .map_err(|e| PyValueError::new_err(format!("the result: {e}")))?)
            }
            (None, None) => Ok(serde_json::Value::Null),
        };
        let evaluator = slf.get().inner.clone();
        let mut outcome = None;
        let session = Session::made_from(slf, options, |given| {
            let (session, resumed) =
                evaluator.resume(&suspension, answer, given.limits(), &given.grants())?;
            outcome = Some(resumed);
            Ok(session)
        })?;
        let outcome = outcome.expect("a resumed session comes with its outcome");
        Ok((session, Outcome::new(py, outcome)?))
    }

    /// A `Session` in the state `data` holds (what `Session.dump()` returned, in this
    /// process or another), under the same keyword arguments as `session`; `mounts` must
    /// name the dumped session's directories, in the same order. Raises `InvalidDump` for
    /// a dump of another component, a damaged one, or one needing more memory than allowed.
    #[pyo3(signature = (data, **options))]
    fn restore(
        slf: &Bound<'_, Self>,
        data: Vec<u8>,
        options: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<Session>> {
        let evaluator = slf.get().inner.clone();
        Session::made_from(slf, options, |given| {
            evaluator.restore(&data, given.limits(), &given.grants())
        })
    }

    /// Whether this evaluator counts fuel.
    #[getter]
    fn metered(&self) -> bool {
        self.inner.is_metered()
    }

    /// Live interpreters this evaluator holds at most.
    #[getter]
    fn max_instances(&self) -> u32 {
        self.inner.max_instances()
    }
}

/// One interpreter whose state persists across evaluations; evaluations on it run one at
/// a time. After a stopped evaluation (fuel, time, memory, crash) it raises
/// `SessionEnded`.
#[pyclass(module = "pyeval", frozen)]
pub struct Session {
    inner: Arc<tokio::sync::Mutex<Option<pyeval::Session>>>,
    /// The session's `on_output`, for evaluations that name none of their own.
    listener: Option<pyeval::LiveOutput>,
}

impl Session {
    /// `evaluator.session(**options)`, its interpreter replaced by the one `make` makes
    /// under the session's limits and grants (a restored or resumed one).
    fn made_from(
        evaluator: &Bound<'_, Evaluator>,
        options: Option<&Bound<'_, PyDict>>,
        make: impl FnOnce(&pyeval::Session) -> Result<pyeval::Session, pyeval::EvalError> + Send,
    ) -> PyResult<Py<Session>> {
        let session: Py<Session> = evaluator.call_method("session", (), options)?.extract()?;
        let inner = session.get().inner.clone();
        evaluator.py().detach(|| {
            let mut slot = inner.blocking_lock();
            let given = open(&mut slot)?;
            *slot = Some(make(given).map_err(to_py)?);
            Ok::<_, PyErr>(())
        })?;
        Ok(session)
    }

    fn new(session: pyeval::Session, listener: Option<pyeval::LiveOutput>) -> Self {
        Session {
            inner: Arc::new(tokio::sync::Mutex::new(Some(session))),
            listener,
        }
    }
}

#[pymethods]
impl Session {
    /// This session's state as bytes, for `Evaluator.restore` (here or in another process
    /// running the same pyeval and component): its variables, functions, classes, imported
    /// modules, generators, files and random state. Treat it as the user's data: it is the
    /// interpreter's memory.
    fn dump<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        let inner = self.inner.clone();
        let data = interrupt::run(py, async move {
            let mut session = inner.lock().await;
            let session = open(&mut session)?;
            session.dump_async().await.map_err(to_py)
        })?;
        Ok(PyBytes::new(py, &data))
    }

    /// A new `Session` in this one's state, with its limits and grants; the two go on
    /// separately.
    fn fork(&self, py: Python<'_>) -> PyResult<Session> {
        let inner = self.inner.clone();
        let fork = interrupt::run(py, async move {
            let mut session = inner.lock().await;
            let session = open(&mut session)?;
            session.fork_async().await.map_err(to_py)
        })?;
        Ok(Session::new(fork, self.listener.clone()))
    }

    /// Evaluates `code` in this session's interpreter and returns its `Outcome`;
    /// `on_output` in place of the session's for this evaluation.
    #[pyo3(signature = (code, *, on_output=None))]
    fn eval(&self, py: Python<'_>, code: &str, on_output: Option<Py<PyAny>>) -> PyResult<Outcome> {
        let inner = self.inner.clone();
        let listener = live_output(py, on_output)?.or_else(|| self.listener.clone());
        let outcome = interrupt::run(py, async move {
            let mut session = inner.lock().await;
            let session = open(&mut session)?;
            session.set_live_output(listener);
            session.eval_async(code).await.map_err(to_py)
        })?;
        Outcome::new(py, outcome)
    }

    /// Puts `files` (a dict of paths under the working directory to str or bytes) in the
    /// session's working directory before its next evaluation; raises `InvalidFiles` for a
    /// bad path or more than the files limits allow.
    fn add_files(&self, py: Python<'_>, files: BTreeMap<String, Input>) -> PyResult<()> {
        let files = input_files(Some(files));
        let inner = self.inner.clone();
        py.detach(|| {
            let mut session = inner.blocking_lock();
            let session = open(&mut session)?;
            session.add_files(files).map_err(to_py)
        })
    }

    /// The bytes of the file at `path` in the session's working directory (given to it or
    /// written by its code); raises `NoSuchFile` when it is not there or is larger than
    /// the files' byte limit.
    fn read_file<'py>(&self, py: Python<'py>, path: &str) -> PyResult<Bound<'py, PyBytes>> {
        let inner = self.inner.clone();
        let data = interrupt::run(py, async move {
            let mut session = inner.lock().await;
            let session = open(&mut session)?;
            session.read_file_async(path).await.map_err(to_py)
        })?;
        Ok(PyBytes::new(py, &data))
    }

    /// `eval` for asyncio code: awaits the evaluation, run on the loop's default executor.
    #[pyo3(signature = (code, **options))]
    fn eval_async<'py>(
        slf: &Bound<'py, Self>,
        code: String,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        in_executor(slf.as_any(), code, options)
    }

    /// Ends the session and frees its interpreter; later evaluations raise `SessionEnded`.
    fn close(&self, py: Python<'_>) {
        let inner = self.inner.clone();
        // Waits for an evaluation in flight on another thread.
        py.detach(|| inner.blocking_lock().take());
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _type: Py<PyAny>,
        _value: Py<PyAny>,
        _traceback: Py<PyAny>,
    ) -> bool {
        self.close(py);
        false
    }
}

/// The session a `Session` holds, unless it was closed.
fn open(slot: &mut Option<pyeval::Session>) -> PyResult<&mut pyeval::Session> {
    slot.as_mut()
        .ok_or_else(|| SessionEnded::new_err("this session is closed"))
}

/// `loop.run_in_executor(None, functools.partial(obj.eval, code, **options))` on the
/// running asyncio loop: an awaitable of the outcome. The evaluation releases the GIL, so
/// the loop goes on meanwhile; an evaluator's coroutine tools run on it (`_loop`).
fn in_executor<'py>(
    obj: &Bound<'py, PyAny>,
    code: String,
    options: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = obj.py();
    let running = py.import("asyncio")?.call_method0("get_running_loop")?;
    let options = match options {
        Some(options) if options.contains("tools")? => {
            let options = options.copy()?;
            options.set_item("_loop", &running)?;
            Some(options)
        }
        other => other.cloned(),
    };
    let options = options.as_ref();
    let call = py
        .import("functools")?
        .getattr("partial")?
        .call((obj.getattr("eval")?, code), options)?;
    running.call_method1("run_in_executor", (py.None(), call))
}
