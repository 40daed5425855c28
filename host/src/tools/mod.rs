//! Tools the host grants to evaluated code ("code mode"): each is an `async` Python
//! function in the sandbox whose calls run here, on the host, while the guest's event loop
//! goes on (so `asyncio.gather` runs several at once).
//!
//! A [`Tool`] is a name, a description, a JSON Schema of its keyword arguments and an async
//! handler from JSON to JSON. Tools are granted like every other capability, in
//! [`crate::Grants`]; [`ToolCalls`] is one instance's side of the `host-tools` interface.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde_json::Value;

mod stubs;
pub use stubs::stubs;
use tokio::task::{AbortHandle, JoinSet};

use crate::evaluator::bindings::exports::pyeval::sandbox::evaluator::Tool as GrantedTool;
use crate::evaluator::bindings::pyeval::sandbox::host_tools::{self, Finished, Refusal, Started};
use crate::suspension::JournalEntry;

/// What a tool's handler returns: its result, or the error code sees as `ToolError`.
pub type ToolResult = Result<Value, ToolError>;

/// A handler's future.
pub type ToolFuture = Pin<Box<dyn Future<Output = ToolResult> + Send>>;

/// A tool's failure, as evaluated code sees it (`tools.ToolError` with its message); or a
/// handler's request to suspend the evaluation (see [`crate::Suspension`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    message: String,
    suspends: bool,
}

impl ToolError {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        ToolError {
            message: message.into(),
            suspends: false,
        }
    }

    /// Suspends the evaluation at this call, for `reason` (say, to wait for a person's
    /// approval): it stops with [`crate::EvalError::Suspended`], to be resumed later with
    /// the call's answer. In a session that has run before, only a tool granted with
    /// [`Tool::may_suspend`] may; another's answer is a `ToolError` saying so.
    pub fn suspend(reason: impl Into<String>) -> Self {
        ToolError {
            message: reason.into(),
            suspends: true,
        }
    }

    /// The message code sees, or the reason of a suspension.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether the handler asked to suspend the evaluation.
    pub fn suspends(&self) -> bool {
        self.suspends
    }
}

/// Why a tool could not be defined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolDefinitionError {
    /// Not an identifier, nor `group.name` with an identifier for the group.
    #[error("tool name {0:?} is not an identifier, nor GROUP.NAME with an identifier GROUP")]
    Name(String),
    /// The parameters are not a valid JSON Schema of an object.
    #[error("parameters of tool {name:?}: {reason}")]
    Parameters {
        /// The tool.
        name: String,
        /// What is wrong with its schema.
        reason: String,
    },
}

type Handler = dyn Fn(Value) -> ToolFuture + Send + Sync;

/// A function evaluated code may call, run by the host.
///
/// ```no_run
/// use pyeval::{Evaluator, Grants, Limits, Tool, ToolError};
/// use serde_json::json;
///
/// let search = Tool::new(
///     "search",
///     "Searches the web and returns the top results.",
///     json!({"type": "object",
///            "properties": {"query": {"type": "string"}},
///            "required": ["query"]}),
///     |args| async move {
///         let query = args["query"].as_str().unwrap_or_default().to_string();
///         if query.is_empty() {
///             return Err(ToolError::new("an empty query"));
///         }
///         Ok(json!({"results": [query]}))
///     },
/// )?;
/// let grants = Grants::new().with_tool(search);
/// let code = "import asyncio\nawait asyncio.gather(search(query='a'), search(query='b'))";
/// let outcome = Evaluator::new()?.eval_with(code, &Limits::default(), &grants)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Tool {
    name: String,
    description: String,
    parameters: Value,
    /// `parameters` as JSON text, as every instance granted the tool is told of it.
    parameters_text: Arc<str>,
    validator: Arc<jsonschema::Validator>,
    handler: Arc<Handler>,
    /// Whether its handler may suspend evaluations of a session that has run before, so
    /// the session keeps its state before each evaluation.
    may_suspend: bool,
}

impl Tool {
    /// The tool `name` (an identifier, or `group.name`: code reaches it as
    /// `group.name(...)`, or `group["name"](...)` when `name` is no identifier), described
    /// by `description`, taking keyword arguments that `parameters` (a JSON Schema of an
    /// object) admits, and answered by `handler`. A schema with `properties` and no
    /// `additionalProperties` admits no other arguments.
    pub fn new<F, Fut>(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: Value,
        handler: F,
    ) -> Result<Self, ToolDefinitionError>
    where
        F: Fn(Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ToolResult> + Send + 'static,
    {
        let name = name.into();
        if !valid_name(&name) {
            return Err(ToolDefinitionError::Name(name));
        }
        let invalid = |reason: String| ToolDefinitionError::Parameters {
            name: name.clone(),
            reason,
        };
        let Value::Object(schema) = &parameters else {
            return Err(invalid("not a JSON object".into()));
        };
        if schema.get("type").is_some_and(|t| t != "object") {
            return Err(invalid("its type is not \"object\"".into()));
        }
        let mut strict = schema.clone();
        if strict.contains_key("properties") && !strict.contains_key("additionalProperties") {
            strict.insert("additionalProperties".into(), Value::Bool(false));
        }
        let validator = jsonschema::validator_for(&Value::Object(strict))
            .map_err(|e| invalid(e.to_string()))?;
        Ok(Tool {
            name,
            description: description.into(),
            parameters_text: parameters.to_string().into(),
            parameters,
            validator: Arc::new(validator),
            handler: Arc::new(move |arguments| Box::pin(handler(arguments))),
            may_suspend: false,
        })
    }

    /// This tool, its handler allowed to suspend evaluations ([`ToolError::suspend`]) in
    /// sessions too: a session granted it notes its state before each evaluation (about
    /// as long as a dump takes, less the compression), to restore when it resumes.
    pub fn may_suspend(mut self) -> Self {
        self.may_suspend = true;
        self
    }

    /// Whether [`Tool::may_suspend`] was set.
    pub fn suspends(&self) -> bool {
        self.may_suspend
    }

    /// The name code calls it by.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What it does.
    pub fn description(&self) -> &str {
        &self.description
    }

    /// The JSON Schema of its keyword arguments.
    pub fn parameters(&self) -> &Value {
        &self.parameters
    }

    /// This tool as the guest is told of it.
    pub(crate) fn granted(&self) -> GrantedTool {
        GrantedTool {
            name: self.name.clone(),
            description: self.description.clone(),
            parameters: self.parameters_text.to_string(),
        }
    }

    /// Why `arguments` do not fit the schema, if they do not.
    fn check(&self, arguments: &Value) -> Result<(), String> {
        match self.validator.iter_errors(arguments).next() {
            None => Ok(()),
            Some(error) => {
                let at = error.instance_path().to_string();
                Err(match at.trim_start_matches('/') {
                    "" => error.to_string(),
                    at => format!("{at}: {error}"),
                })
            }
        }
    }
}

impl fmt::Debug for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tool")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("parameters", &self.parameters)
            .finish_non_exhaustive()
    }
}

/// Tools are equal when they are the same definition: name, description, schema and
/// handler.
impl PartialEq for Tool {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.parameters == other.parameters
            && Arc::ptr_eq(&self.handler, &other.handler)
            && self.may_suspend == other.may_suspend
    }
}

impl Eq for Tool {}

/// An identifier, or `group.name` with an identifier for `group` and any `name` without
/// a dot.
fn valid_name(name: &str) -> bool {
    let identifier = |s: &str| {
        let mut chars = s.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    match name.split_once('.') {
        None => identifier(name),
        Some((group, tool)) => identifier(group) && !tool.is_empty() && !tool.contains('.'),
    }
}

/// The bounds on one evaluation's tool calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ToolLimits {
    /// Calls one evaluation may start.
    pub calls: u32,
    /// Calls that may run at once (their results wait on the host until the guest takes
    /// them, so this bounds what the host holds for an instance).
    pub running: u32,
    /// Longest a call may run; past it, it fails with `ToolError`.
    pub call_time: Duration,
    /// Largest arguments, and largest result, of one call, in bytes of JSON.
    pub bytes: usize,
}

/// Default cap on the tool calls of one evaluation.
pub const DEFAULT_TOOL_CALLS: u32 = 1000;
/// Default cap on the calls of one evaluation running at once.
pub const DEFAULT_TOOL_CALLS_RUNNING: u32 = 64;
/// Default longest time of one tool call.
pub const DEFAULT_TOOL_CALL_TIME: Duration = Duration::from_secs(60);
/// Default cap on the JSON bytes of one call's arguments, and of its result.
pub const DEFAULT_TOOL_BYTES: usize = 1 << 20;

impl ToolLimits {
    /// These bounds with at most `calls` calls per evaluation.
    pub fn with_calls(mut self, calls: u32) -> Self {
        self.calls = calls;
        self
    }

    /// These bounds with at most `running` calls running at once.
    pub fn with_running(mut self, running: u32) -> Self {
        self.running = running;
        self
    }

    /// These bounds with calls failing after `call_time`.
    pub fn with_call_time(mut self, call_time: Duration) -> Self {
        self.call_time = call_time;
        self
    }

    /// These bounds with arguments and results each capped at `bytes` of JSON.
    pub fn with_bytes(mut self, bytes: usize) -> Self {
        self.bytes = bytes;
        self
    }
}

impl Default for ToolLimits {
    fn default() -> Self {
        ToolLimits {
            calls: DEFAULT_TOOL_CALLS,
            running: DEFAULT_TOOL_CALLS_RUNNING,
            call_time: DEFAULT_TOOL_CALL_TIME,
            bytes: DEFAULT_TOOL_BYTES,
        }
    }
}

/// A result as code receives it: its JSON text, or why not when that is more than `cap`
/// bytes.
pub(crate) fn result_text(value: &Value, cap: usize) -> Result<String, String> {
    let text = value.to_string();
    if text.len() > cap {
        return Err(format!(
            "the tool's result of {} bytes of JSON is more than the cap of {cap}",
            text.len()
        ));
    }
    Ok(text)
}

/// What code is told of a handler that panicked.
const PANICKED: &str = "the tool failed: its handler panicked";

/// A call's answer as the host keeps it: its result as JSON text or its error message, or
/// a request to suspend the evaluation (with its reason).
enum Answer {
    Done(Result<String, String>),
    Suspend(String),
}

/// A call's handle and its answer.
type Ended = (u64, Answer);

/// What stops an evaluation whose tool call suspended it: the guest is stopped with it,
/// and the session makes a [`crate::Suspension`] of it.
#[derive(Debug)]
pub(crate) struct Suspend {
    pub call: u32,
    pub tool: String,
    pub arguments: String,
    pub reason: String,
    pub journal: Vec<JournalEntry>,
}

impl fmt::Display for Suspend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "suspended at a call of {}: {}", self.tool, self.reason)
    }
}

impl std::error::Error for Suspend {}

/// One instance's tool calls: the tools granted to it, and the calls of the running
/// evaluation.
#[derive(Default)]
pub(crate) struct ToolCalls {
    granted: HashMap<String, Tool>,
    limits: ToolLimits,
    /// Calls the running evaluation has started.
    started: u32,
    next_handle: u64,
    running: JoinSet<Ended>,
    /// The running calls by handle, to cancel them.
    handles: HashMap<u64, AbortHandle>,
    /// The running calls' handles by task, for calls whose task panicked.
    tasks: HashMap<tokio::task::Id, u64>,
    /// Finished calls not yet returned by `wait`.
    finished: Vec<Finished>,
    /// The running calls by handle: which call of the evaluation each is, its tool and
    /// its arguments.
    calls: HashMap<u64, (u32, String, String)>,
    /// The running evaluation's calls answered so far, in the order they were answered.
    journal: Vec<JournalEntry>,
    /// Answers given without calling the handlers (a resumed evaluation's), by call.
    replay: HashMap<u32, JournalEntry>,
    /// Whether a handler may suspend the running evaluation.
    can_suspend: bool,
    /// The call that suspended it, once one has.
    suspended: Option<Suspend>,
}

impl ToolCalls {
    /// Grants `tools` in place of those granted before.
    pub(crate) fn grant(&mut self, tools: &[Tool]) {
        self.granted = tools.iter().map(|t| (t.name.clone(), t.clone())).collect();
    }

    /// Starts an evaluation under `limits`, which a handler may suspend if `can_suspend`:
    /// the calls of the last one are given up.
    pub(crate) fn start_evaluation(&mut self, limits: ToolLimits, can_suspend: bool) {
        self.limits = limits;
        self.started = 0;
        self.running.abort_all();
        self.running.detach_all();
        self.handles.clear();
        self.tasks.clear();
        self.finished.clear();
        self.calls.clear();
        self.journal.clear();
        self.replay.clear();
        self.can_suspend = can_suspend;
        self.suspended = None;
    }

    /// Answers the running evaluation's calls in `journal` from it instead of calling
    /// their handlers (a resumed evaluation's: see [`crate::Suspension`]).
    pub(crate) fn replay(&mut self, journal: Vec<JournalEntry>) {
        self.replay = journal
            .into_iter()
            .map(|entry| (entry.call, entry))
            .collect();
    }

    /// Whether any granted tool may suspend an evaluation of a session that has run.
    pub(crate) fn any_may_suspend(&self) -> bool {
        self.granted.values().any(|tool| tool.may_suspend)
    }

    /// The outcome code sees of the answer of call `call` (of `tool` with `arguments`),
    /// noted in the journal; or, for a suspension, none, noted to stop the evaluation.
    fn answered(
        &mut self,
        call: u32,
        tool: String,
        arguments: String,
        answer: Answer,
    ) -> Option<Result<String, String>> {
        let outcome = match answer {
            Answer::Done(outcome) => outcome,
            Answer::Suspend(reason) if self.can_suspend => {
                let journal = std::mem::take(&mut self.journal);
                self.suspended.get_or_insert(Suspend {
                    call,
                    tool,
                    arguments,
                    reason,
                    journal,
                });
                return None;
            }
            Answer::Suspend(_) => Err(format!(
                "the tool {tool:?} asked to suspend the evaluation, which this session \
                 cannot do: a tool that may suspend is granted as one (Tool::may_suspend)"
            )),
        };
        self.journal.push(JournalEntry {
            call,
            tool,
            arguments,
            outcome: outcome.clone(),
        });
        Some(outcome)
    }

    /// Keeps what a joined call task gave, unless the call was cancelled meanwhile.
    fn record(&mut self, joined: Result<(tokio::task::Id, Ended), tokio::task::JoinError>) {
        let (task, (handle, answer)) = match joined {
            Ok(done) => done,
            Err(error) => {
                let Some(handle) = self.tasks.get(&error.id()).copied() else {
                    return;
                };
                let message = if error.is_panic() {
                    PANICKED
                } else {
                    "the tool was cancelled"
                };
                (error.id(), (handle, Answer::Done(Err(message.to_string()))))
            }
        };
        self.tasks.remove(&task);
        if self.handles.remove(&handle).is_some() {
            let (call, tool, arguments) = self.calls.remove(&handle).unwrap_or_default();
            if let Some(outcome) = self.answered(call, tool, arguments, answer) {
                self.finished.push(Finished {
                    call: handle,
                    outcome,
                });
            }
        }
    }

    /// The error that stops the guest once a call has suspended the evaluation.
    fn stop_if_suspended(&mut self) -> wasmtime::Result<()> {
        match self.suspended.take() {
            Some(suspend) => {
                self.running.abort_all();
                Err(wasmtime::Error::new(suspend))
            }
            None => Ok(()),
        }
    }
}

impl host_tools::Host for ToolCalls {
    async fn start(
        &mut self,
        name: String,
        arguments: String,
    ) -> wasmtime::Result<Result<Started, Refusal>> {
        let Some(tool) = self.granted.get(&name).cloned() else {
            return Ok(Err(Refusal::Refused(format!(
                "no tool {name:?} is granted"
            ))));
        };
        if self.started >= self.limits.calls {
            return Ok(Err(Refusal::Refused(format!(
                "this evaluation has used all {} of its tool calls",
                self.limits.calls
            ))));
        }
        let running = self.handles.len() + self.finished.len();
        if running >= self.limits.running as usize {
            return Ok(Err(Refusal::Refused(format!(
                "{running} tool calls are running or unclaimed; await some first"
            ))));
        }
        let cap = self.limits.bytes;
        if arguments.len() > cap {
            return Ok(Err(Refusal::InvalidArguments(format!(
                "arguments of {} bytes of JSON are more than the cap of {cap}",
                arguments.len()
            ))));
        }
        let parsed: Value = match serde_json::from_str(&arguments) {
            Ok(parsed) => parsed,
            Err(e) => {
                return Ok(Err(Refusal::InvalidArguments(format!(
                    "arguments are not JSON: {e}"
                ))))
            }
        };
        if let Err(why) = tool.check(&parsed) {
            return Ok(Err(Refusal::InvalidArguments(why)));
        }
        let call = self.started;
        self.started += 1;
        if let Some(entry) = self.replay.remove(&call) {
            if entry.tool != name || entry.arguments != arguments {
                return Ok(Err(Refusal::Refused(format!(
                    "the resumed evaluation's call {} is {name}({arguments}), where it \
                     first was {}({}): it cannot be answered from the journal",
                    call + 1,
                    entry.tool,
                    entry.arguments
                ))));
            }
            let outcome = self.answered(call, name, arguments, Answer::Done(entry.outcome));
            return Ok(Ok(Started::Finished(outcome.expect("not a suspension"))));
        }
        let call_time = self.limits.call_time;
        let handler = (tool.handler)(parsed);
        let mut pending = Box::pin(async move {
            match tokio::time::timeout(call_time, handler).await {
                Err(_) => {
                    Answer::Done(Err(format!("the tool did not answer within {call_time:?}")))
                }
                Ok(Err(error)) if error.suspends => Answer::Suspend(error.message),
                Ok(Err(error)) => Answer::Done(Err(error.message)),
                Ok(Ok(value)) => Answer::Done(result_text(&value, cap)),
            }
        });
        // A handler with nothing to wait for answers here, without a task or an event-loop
        // turn in the guest.
        let mut now = Context::from_waker(Waker::noop());
        let answer =
            match std::panic::catch_unwind(AssertUnwindSafe(|| pending.as_mut().poll(&mut now))) {
                Ok(Poll::Ready(answer)) => Some(answer),
                Ok(Poll::Pending) => None,
                Err(_) => Some(Answer::Done(Err(PANICKED.into()))),
            };
        if let Some(answer) = answer {
            return match self.answered(call, name, arguments, answer) {
                Some(outcome) => Ok(Ok(Started::Finished(outcome))),
                None => self.stop_if_suspended().map(|()| unreachable!("suspended")),
            };
        }
        self.next_handle += 1;
        let handle = self.next_handle;
        let task = self.running.spawn(async move { (handle, pending.await) });
        self.tasks.insert(task.id(), handle);
        self.handles.insert(handle, task);
        self.calls.insert(handle, (call, name, arguments));
        Ok(Ok(Started::Running(handle)))
    }

    async fn wait(&mut self, timeout_ns: Option<u64>) -> wasmtime::Result<Vec<Finished>> {
        if self.finished.is_empty() && !self.running.is_empty() {
            let next = self.running.join_next_with_id();
            let joined = match timeout_ns {
                None => next.await,
                Some(ns) => tokio::time::timeout(Duration::from_nanos(ns), next)
                    .await
                    .ok()
                    .flatten(),
            };
            if let Some(joined) = joined {
                self.record(joined);
            }
        }
        while let Some(joined) = self.running.try_join_next_with_id() {
            self.record(joined);
        }
        self.stop_if_suspended()?;
        Ok(std::mem::take(&mut self.finished))
    }

    async fn cancel(&mut self, call: u64) -> wasmtime::Result<()> {
        if let Some(task) = self.handles.remove(&call) {
            task.abort();
        }
        self.calls.remove(&call);
        self.finished.retain(|f| f.call != call);
        Ok(())
    }
}

/// The `host-tools` interface's view of a store: its [`ToolCalls`].
pub(crate) struct HostTools;

impl wasmtime::component::HasData for HostTools {
    type Data<'a> = &'a mut ToolCalls;
}
