//! The evaluator path: the pre-initialized `pyeval.wasm` component, a fresh instance per
//! evaluation (or one instance per [`Session`]), typed outcomes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

use crate::cache::CompileCache;
use crate::fuel::Fuel;
use crate::limits::Limits;
use crate::sandbox::{Grants, SandboxState};

mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "python",
        exports: { default: async },
    });
}

use bindings::exports::pyeval::sandbox::evaluator as wit;
use bindings::{Python, PythonPre};

/// The component, embedded at build time.
static COMPONENT: &[u8] = include_bytes!(env!("PYEVAL_COMPONENT_PATH"));
/// Its SHA-256, computed at build time.
const COMPONENT_SHA256: &str = env!("PYEVAL_COMPONENT_SHA256");

/// An exception that escaped the evaluated code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Fuel this evaluation consumed (0 from an evaluator that does not meter).
    pub fuel_used: u64,
    /// Wall-clock time of the evaluation, instantiation included.
    #[serde(serialize_with = "serialize_micros", rename = "wall_time_us")]
    pub wall_time: Duration,
}

fn serialize_micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_micros() as u64)
}

/// Why an evaluation produced no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// The code used its whole fuel budget.
    #[error("out of fuel: the code used its whole budget of {} fuel units; raise it with --fuel N (-1 for no limit)", crate::fuel::group_thousands(*budget))]
    FuelExhausted {
        /// The budget that was used up.
        budget: u64,
    },
    /// The code ran past its wall-clock deadline.
    #[error("time limit exceeded: the code ran for more than {limit:?}")]
    Timeout {
        /// The deadline.
        limit: Duration,
    },
    /// The interpreter needed more memory than allowed and could not recover.
    #[error("memory limit exceeded: the code needed more than {} MiB", limit >> 20)]
    MemoryLimit {
        /// The cap on linear memory, in bytes.
        limit: usize,
    },
    /// The interpreter crashed (a WebAssembly trap).
    #[error("the interpreter crashed: {0}")]
    Trap(String),
    /// The session was ended by an earlier failure and cannot evaluate any more.
    #[error("this session has ended ({0}); start a new one")]
    SessionEnded(Box<EvalError>),
    /// The code was refused before it ran (too large, or contains a NUL byte); a session
    /// stays usable.
    #[error("code refused: {0}")]
    InvalidCode(String),
    /// As many instances as the evaluator's pool holds are alive; nothing was run, and the
    /// same call can succeed once an evaluation ends or a session is dropped.
    #[error("too many live instances: this evaluator holds at most {limit} at once (evaluations in flight plus open sessions)")]
    TooManyInstances {
        /// [`EvaluatorConfig::max_instances`] of the evaluator.
        limit: u32,
    },
    /// The evaluator could not be set up.
    #[error("cannot start the evaluator: {0}")]
    Setup(String),
}

/// Instances an evaluator holds at once by default.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;

/// How an [`Evaluator`] is built; `EvaluatorConfig::default()` meters fuel and holds
/// [`DEFAULT_MAX_INSTANCES`] instances.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatorConfig {
    /// Whether the engine counts fuel; without it (a little faster) only
    /// [`Fuel::Unlimited`] budgets are accepted.
    pub metered: bool,
    /// Instances alive at once, at most: evaluations in flight plus open sessions. Each
    /// takes a slot of 4 GiB of reserved address space (not memory) in a pool that is
    /// reused, which is what makes fresh instances cheap.
    pub max_instances: u32,
}

impl Default for EvaluatorConfig {
    fn default() -> Self {
        EvaluatorConfig {
            metered: true,
            max_instances: DEFAULT_MAX_INSTANCES,
        }
    }
}

/// Compiles and holds the evaluator component; cheap to clone, shareable across threads.
#[derive(Clone)]
pub struct Evaluator {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    pre: PythonPre<SandboxState>,
    config: EvaluatorConfig,
}

impl Evaluator {
    /// Loads the embedded component, compiling it on the first use on this machine (the
    /// compiled form is cached on disk). `on_compile` runs before a compilation starts.
    pub fn new(on_compile: impl FnOnce()) -> Result<Self, EvalError> {
        Self::with_config(EvaluatorConfig::default(), on_compile)
    }

    /// Like [`Evaluator::new`]; with `metered` false the engine counts no fuel (a little
    /// faster), and only [`Fuel::Unlimited`] budgets are accepted.
    pub fn with_metering(metered: bool, on_compile: impl FnOnce()) -> Result<Self, EvalError> {
        let config = EvaluatorConfig {
            metered,
            ..EvaluatorConfig::default()
        };
        Self::with_config(config, on_compile)
    }

    /// Like [`Evaluator::new`], built as `config` says.
    pub fn with_config(
        config: EvaluatorConfig,
        on_compile: impl FnOnce(),
    ) -> Result<Self, EvalError> {
        if config.max_instances == 0 {
            return Err(EvalError::Setup("max_instances must be at least 1".into()));
        }
        let allocation = crate::engine::Allocation::Pooled {
            slots: config.max_instances,
        };
        let engine = crate::engine::build(config.metered, allocation).map_err(setup_error)?;
        let component: Component = CompileCache::default_location()
            .load(
                &engine,
                COMPONENT_SHA256,
                || Ok(COMPONENT.to_vec()),
                on_compile,
            )
            .map_err(setup_error)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(setup_error)?;
        let pre = linker.instantiate_pre(&component).map_err(setup_error)?;
        let pre = PythonPre::new(pre).map_err(setup_error)?;
        Ok(Evaluator {
            inner: Arc::new(Inner {
                engine,
                pre,
                config,
            }),
        })
    }

    /// Evaluates `code` in a fresh interpreter: nothing is shared with any other call.
    pub fn eval(&self, code: &str, limits: &Limits) -> Result<Outcome, EvalError> {
        self.eval_with(code, limits, &Grants::default())
    }

    /// Like [`Evaluator::eval`], with mounts and environment variables granted.
    pub fn eval_with(
        &self,
        code: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<Outcome, EvalError> {
        crate::engine::block_on(self.eval_async(code, limits, grants))
    }

    /// [`Evaluator::eval_with`] for async callers: await it on a tokio runtime with timers
    /// enabled (the sync methods run their own runtime and cannot be called from one).
    pub async fn eval_async(
        &self,
        code: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<Outcome, EvalError> {
        let mut session = self.session_with(limits, grants)?;
        session.eval_async(code).await
    }

    /// A session: one interpreter whose state persists across its evaluations.
    pub fn session(&self, limits: &Limits) -> Result<Session, EvalError> {
        self.session_with(limits, &Grants::default())
    }

    /// Like [`Evaluator::session`], with mounts and environment variables granted.
    pub fn session_with(&self, limits: &Limits, grants: &Grants) -> Result<Session, EvalError> {
        Session::start(self.clone(), limits.clone(), grants)
    }
}

/// One interpreter instance; successive evaluations share its state.
pub struct Session {
    evaluator: Evaluator,
    limits: Limits,
    store: Store<SandboxState>,
    python: Option<Python>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    /// Bytes of raw fd output already reported by earlier evaluations.
    raw_seen: (usize, usize),
    ended: Option<EvalError>,
}

impl Session {
    fn start(evaluator: Evaluator, limits: Limits, grants: &Grants) -> Result<Self, EvalError> {
        if !evaluator.inner.config.metered && limits.fuel != Fuel::Unlimited {
            return Err(EvalError::Setup(
                "this evaluator does not meter fuel: give it Fuel::Unlimited".into(),
            ));
        }
        let stdout = MemoryOutputPipe::new(limits.output_bytes as usize);
        let stderr = MemoryOutputPipe::new(limits.output_bytes as usize);
        let mut builder = grants.builder().map_err(setup_error)?;
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg("python")
            .args(&grants.argv);
        let state = SandboxState::with_memory_limit(builder.build(), limits.memory_bytes);
        let mut store = Store::new(&evaluator.inner.engine, state);
        store.limiter(|state| state.limiter());
        store.epoch_deadline_trap();
        Ok(Session {
            evaluator,
            limits,
            store,
            python: None,
            stdout,
            stderr,
            raw_seen: (0, 0),
            ended: None,
        })
    }

    /// Evaluates `code` in this session's interpreter.
    ///
    /// After a trap (fuel, time, memory) the instance is not trusted again: this and every
    /// later call returns [`EvalError::SessionEnded`].
    pub fn eval(&mut self, code: &str) -> Result<Outcome, EvalError> {
        crate::engine::block_on(self.eval_async(code))
    }

    /// [`Session::eval`] for async callers, on a tokio runtime with timers enabled.
    pub async fn eval_async(&mut self, code: &str) -> Result<Outcome, EvalError> {
        if let Some(reason) = &self.ended {
            return Err(EvalError::SessionEnded(Box::new(reason.clone())));
        }
        check_code(code, self.limits.code_bytes)?;
        let started = Instant::now();
        let budget = match self.limits.fuel {
            Fuel::Limited(n) => n,
            Fuel::Unlimited => u64::MAX,
        };
        let metered = self.evaluator.inner.config.metered;
        if metered {
            self.store
                .set_fuel(budget)
                .map_err(|e| EvalError::Trap(e.to_string()))?;
        }
        self.store
            .set_epoch_deadline(crate::engine::ticks_for(self.limits.wall_time));
        let result = crate::engine::with_deadline(
            self.limits.wall_time,
            run_eval(
                &self.evaluator,
                &mut self.store,
                &mut self.python,
                code,
                self.limits.output_bytes,
            ),
        )
        .await;
        let fuel_used = if metered {
            budget - self.store.get_fuel().unwrap_or(0)
        } else {
            0
        };
        let outcome = match result {
            Some(Ok(outcome)) => Ok(outcome),
            Some(Err(error)) => Err(self.classify(error, budget)),
            None => Err(EvalError::Timeout {
                limit: self.limits.wall_time,
            }),
        };
        match outcome {
            Ok(wit) => Ok(self.finish(wit, fuel_used, started.elapsed())),
            // No instance was made: the session can try again.
            Err(error @ EvalError::TooManyInstances { .. }) => Err(error),
            Err(error) => {
                self.ended = Some(error.clone());
                Err(error)
            }
        }
    }

    fn classify(&self, error: wasmtime::Error, budget: u64) -> EvalError {
        if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
            return EvalError::TooManyInstances {
                limit: self.evaluator.inner.config.max_instances,
            };
        }
        match error.downcast_ref::<Trap>() {
            Some(Trap::OutOfFuel) => EvalError::FuelExhausted { budget },
            Some(Trap::Interrupt) => EvalError::Timeout {
                limit: self.limits.wall_time,
            },
            _ if self.store.data().memory_limit_hit() => EvalError::MemoryLimit {
                limit: self.limits.memory_bytes,
            },
            Some(trap) => EvalError::Trap(trap.to_string()),
            None => EvalError::Trap(format!("{error:#}")),
        }
    }

    /// Builds the public outcome, adding what the code wrote straight to fds 1 and 2.
    fn finish(&mut self, wit: wit::Outcome, fuel_used: u64, wall_time: Duration) -> Outcome {
        let cap = self.limits.output_bytes as usize;
        let (raw_out, raw_err) = (self.stdout.contents(), self.stderr.contents());
        let (seen_out, seen_err) =
            std::mem::replace(&mut self.raw_seen, (raw_out.len(), raw_err.len()));
        let (stdout, stdout_truncated) =
            with_raw(wit.stdout, wit.stdout_truncated, &raw_out[seen_out..], cap);
        let (stderr, stderr_truncated) =
            with_raw(wit.stderr, wit.stderr_truncated, &raw_err[seen_err..], cap);
        Outcome {
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            value: wit.value.map(|v| cut(v, cap)),
            error: wit.error.map(|e| PyException {
                type_name: cut(e.type_name, cap),
                message: cut(e.message, cap),
                traceback: cut(e.traceback, cap),
            }),
            exit_code: wit.exit_code,
            fuel_used,
            wall_time,
        }
    }
}

/// A failure to set the evaluator or a session up, with its chain of causes.
fn setup_error(error: impl std::fmt::Display) -> EvalError {
    EvalError::Setup(format!("{error:#}"))
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

async fn run_eval(
    evaluator: &Evaluator,
    store: &mut Store<SandboxState>,
    python: &mut Option<Python>,
    code: &str,
    output_bytes: u32,
) -> wasmtime::Result<wit::Outcome> {
    if python.is_none() {
        let instance = evaluator.inner.pre.instantiate_async(&mut *store).await?;
        if output_bytes != crate::limits::DEFAULT_OUTPUT_BYTES {
            instance
                .pyeval_sandbox_evaluator()
                .call_set_output_limit(&mut *store, output_bytes)
                .await?;
        }
        *python = Some(instance);
    }
    let instance = python.as_ref().expect("instantiated above");
    instance
        .pyeval_sandbox_evaluator()
        .call_eval(&mut *store, code)
        .await
}

/// `text` cut to at most `cap` bytes on a character boundary.
fn cut(mut text: String, cap: usize) -> String {
    if text.len() > cap {
        let mut end = cap;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `text` followed by raw fd output, within the cap the two share; the truncated flag is
/// set when either had to be cut. The guest caps its text itself, but the cap is enforced
/// here too: evaluated code can reach the guest's capture objects.
fn with_raw(text: String, truncated: bool, raw: &[u8], cap: usize) -> (String, bool) {
    let mut joined = text;
    joined.push_str(&String::from_utf8_lossy(raw));
    let within = joined.len() <= cap;
    (cut(joined, cap), truncated || !within)
}
