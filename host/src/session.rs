//! One interpreter instance whose state persists across evaluations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{ComponentType, Instance, Lift};
use wasmtime::{PoolConcurrencyLimitError, Store};

use crate::error::{EvalError, StopContext, Stopped};
use crate::evaluator::bindings::exports::pyeval::sandbox::evaluator::Tool as GrantedTool;
use crate::evaluator::Inner;
use crate::guard::Guard;
use crate::lift::CappedText;
use crate::limits::Limits;
use crate::live_output::{LiveOutput, Stream};
use crate::outcome::{Outcome, PyException};
use crate::raw_output::RawOutput;
use crate::sandbox::{Grants, SandboxState};

/// One interpreter instance; successive evaluations share its state.
///
/// ```no_run
/// use pyeval::{Evaluator, Limits};
///
/// let evaluator = Evaluator::new()?;
/// let mut session = evaluator.session(&Limits::default())?;
/// session.eval("import math\nr = 2")?;
/// assert_eq!(session.eval("round(math.pi * r ** 2, 2)")?.value.as_deref(), Some("12.57"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session {
    evaluator: Arc<Inner>,
    limits: Limits,
    store: Store<SandboxState>,
    instance: Option<Instance>,
    /// What the running evaluation writes straight to fds 1 and 2.
    stdout: RawOutput,
    stderr: RawOutput,
    /// The tools granted, as the guest is told of them when its instance is made.
    tools: Vec<GrantedTool>,
    /// Whether output goes to a listener as it is written, and whether the guest was told
    /// so (it writes `sys.stdout` and `sys.stderr` through to fds 1 and 2 then).
    live: bool,
    guest_live: bool,
    ended: Option<Stopped>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("limits", &self.limits)
            .field("started", &self.instance.is_some())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn start(
        evaluator: Arc<Inner>,
        limits: Limits,
        grants: &Grants,
    ) -> Result<Self, EvalError> {
        let stdout = RawOutput::new(Stream::Stdout, limits.output_bytes as usize);
        let stderr = RawOutput::new(Stream::Stderr, limits.output_bytes as usize);
        let mut builder = grants.wasi()?;
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg("python")
            .args(&grants.argv);
        // The host buffers raw fd output for it: one cap's worth per stream.
        let guard = Guard::new(
            limits.memory_bytes,
            evaluator.budget.clone(),
            2 * limits.output_bytes as usize,
        );
        let mut state = SandboxState::new(builder.build(), guard);
        state.tools.grant(&grants.tools);
        let store = crate::sandbox::new_store(&evaluator.engine, state, &limits)?;
        let mut session = Session {
            evaluator,
            limits,
            store,
            instance: None,
            stdout,
            stderr,
            tools: grants.tools.iter().map(|tool| tool.granted()).collect(),
            live: false,
            guest_live: false,
            ended: None,
        };
        session.set_live_output(grants.live_output.clone());
        Ok(session)
    }

    /// Sends the output of later evaluations to `listener` as it is written (none: only to
    /// their outcomes), in place of the listener granted before.
    pub fn set_live_output(&mut self, listener: Option<LiveOutput>) {
        self.live = listener.is_some();
        self.stdout.listen(listener.clone());
        self.stderr.listen(listener);
    }

    /// The limits each evaluation of this session runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Evaluates `code` in this session's interpreter. Callable from any thread, a tokio
    /// runtime's included.
    ///
    /// After a stop (fuel, time, memory, crash) the instance is not trusted again: this and
    /// every later call returns [`EvalError::SessionEnded`].
    pub fn eval(&mut self, code: &str) -> Result<Outcome, EvalError> {
        crate::runtime::block_on(self.eval_async(code))?
    }

    /// [`Session::eval`] for async callers, on a tokio runtime with timers enabled.
    pub async fn eval_async(&mut self, code: &str) -> Result<Outcome, EvalError> {
        if let Some(reason) = &self.ended {
            return Err(EvalError::SessionEnded(reason.clone()));
        }
        check_code(code, self.limits.code_bytes)?;
        let started = Instant::now();
        crate::sandbox::arm(&mut self.store, &self.limits)?;
        self.store
            .data_mut()
            .tools
            .start_evaluation(self.limits.tools);
        // Until the evaluation finishes: if its future is dropped midway, the instance is
        // left in an unknown state.
        self.ended = Some(Stopped::Cancelled);
        let fuel_before = self.store.get_fuel().ok();
        let output_bytes = self.limits.output_bytes;
        let result = crate::clock::with_deadline(
            self.limits.wall_time,
            crate::lift::with_cap(
                output_bytes as usize,
                run_eval(
                    &self.evaluator,
                    &mut self.store,
                    &mut self.instance,
                    code,
                    output_bytes,
                    &self.tools,
                    (self.live, &mut self.guest_live),
                ),
            ),
        )
        .await;
        let fuel_used = fuel_before
            .zip(self.store.get_fuel().ok())
            .map_or(0, |(before, after)| before - after);
        let error = match result {
            Some(Ok(outcome)) => {
                self.ended = None;
                return Ok(self.finish(outcome, fuel_used, started.elapsed()));
            }
            Some(Err(error)) if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() => {
                // No instance was made: the session can try again.
                self.ended = None;
                return Err(EvalError::TooManyInstances {
                    limit: self.evaluator.max_instances,
                });
            }
            Some(Err(error)) => Stopped::classify(
                &error,
                &StopContext {
                    budget: fuel_before,
                    wall_time: self.limits.wall_time,
                    memory_refused: self.store.data().memory_refused(),
                },
            ),
            None => Stopped::Timeout {
                limit: self.limits.wall_time,
            },
        };
        self.ended = Some(error.clone());
        Err(EvalError::Stopped(error))
    }

    /// Builds the public outcome, adding what the code wrote straight to fds 1 and 2.
    fn finish(&mut self, raw: RawOutcome, fuel_used: u64, wall_time: Duration) -> Outcome {
        let cap = self.limits.output_bytes as usize;
        let (stdout, stdout_truncated) =
            with_raw(raw.stdout, raw.stdout_truncated, self.stdout.take(), cap);
        let (stderr, stderr_truncated) =
            with_raw(raw.stderr, raw.stderr_truncated, self.stderr.take(), cap);
        Outcome {
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            value: raw.value.map(|v| v.text),
            error: raw.error.map(|e| PyException {
                type_name: e.type_name.text,
                message: e.message.text,
                traceback: e.traceback.text,
            }),
            exit_code: raw.exit_code,
            fuel_used,
            wall_time,
        }
    }
}

/// Refuses code the guest must never see: oversized, or holding a NUL byte (which CPython's
/// compiler rejects anyway, after the host has carried it across).
fn check_code(code: &str, limit: usize) -> Result<(), EvalError> {
    if code.len() > limit {
        return Err(EvalError::InvalidCode(format!(
            "the code is {} bytes, over the limit of {limit} bytes",
            code.len()
        )));
    }
    if let Some(at) = code.find('\0') {
        return Err(EvalError::InvalidCode(format!(
            "the code contains a NUL byte (at byte {at})"
        )));
    }
    Ok(())
}

/// The WIT `outcome` as this host lifts it: each string no longer than the output cap.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawOutcome {
    stdout: CappedText,
    stderr: CappedText,
    #[component(name = "stdout-truncated")]
    stdout_truncated: bool,
    #[component(name = "stderr-truncated")]
    stderr_truncated: bool,
    value: Option<CappedText>,
    error: Option<RawException>,
    #[component(name = "exit-code")]
    exit_code: Option<i32>,
}

/// The WIT `exception`, lifted like [`RawOutcome`].
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawException {
    #[component(name = "type-name")]
    type_name: CappedText,
    message: CappedText,
    traceback: CappedText,
}

/// Instantiates on the first call (telling the guest its output limit and its tools), tells
/// the guest whether output is `live` when that changed (`told` is what it was told last),
/// then evaluates.
async fn run_eval(
    evaluator: &Inner,
    store: &mut Store<SandboxState>,
    instance: &mut Option<Instance>,
    code: &str,
    output_bytes: u32,
    tools: &[GrantedTool],
    (live, told): (bool, &mut bool),
) -> wasmtime::Result<RawOutcome> {
    let instance = match *instance {
        Some(instance) => instance,
        None => {
            let new = evaluator.pre.instantiate_async(&mut *store).await?;
            new.get_typed_func::<(u32,), ()>(&mut *store, &evaluator.set_output_limit)?
                .call_async(&mut *store, (output_bytes,))
                .await?;
            if !tools.is_empty() {
                new.get_typed_func::<(&[GrantedTool],), ()>(&mut *store, &evaluator.grant_tools)?
                    .call_async(&mut *store, (tools,))
                    .await?;
            }
            *instance = Some(new);
            *told = false;
            new
        }
    };
    if live != *told {
        instance
            .get_typed_func::<(bool,), ()>(&mut *store, &evaluator.set_live_output)?
            .call_async(&mut *store, (live,))
            .await?;
        *told = live;
    }
    let eval = instance.get_typed_func::<(&str,), (RawOutcome,)>(&mut *store, &evaluator.eval)?;
    let (outcome,) = eval.call_async(&mut *store, (code,)).await?;
    Ok(outcome)
}

/// `text` followed by raw fd output (and whether some of it was already dropped), within
/// the cap the two share; the truncated flag is set when either had to be cut. The guest caps its text itself, but the cap is enforced
/// here too: evaluated code can reach the guest's capture objects.
fn with_raw(
    text: CappedText,
    truncated: bool,
    (raw, dropped): (bytes::Bytes, bool),
    cap: usize,
) -> (String, bool) {
    let mut joined = text.text;
    let room = cap.saturating_sub(joined.len());
    joined.push_str(&String::from_utf8_lossy(&raw[..raw.len().min(room)]));
    let cut = text.cut || dropped || raw.len() > room;
    let mut end = joined.len().min(cap);
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    joined.truncate(end);
    (joined, truncated || cut)
}
