//! Typed failures, in words a library user understands: why a run was stopped, why an
//! evaluation produced no outcome, why something could not be set up.

use std::time::Duration;

use crate::fuel::group_thousands;
use crate::guard::Refusal;

/// A run the host stopped before it finished: the same four ways on both paths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Stopped {
    /// The code used its whole fuel budget.
    #[error("out of fuel: the code used its whole budget of {} fuel units", group_thousands(*budget))]
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
    /// Growing memory would have taken the evaluator past the memory budget that all its
    /// instances share.
    #[error("memory budget exhausted: this evaluator's instances share {} MiB and need more", budget >> 20)]
    MemoryBudget {
        /// The evaluator's budget, in bytes.
        budget: usize,
    },
    /// The interpreter crashed (a WebAssembly trap other than the limits above).
    #[error("the interpreter crashed: {0}")]
    Trap(String),
    /// The caller dropped the evaluation before it finished; the instance's state is
    /// unknown, so its session is ended.
    #[error("the evaluation was cancelled before it finished")]
    Cancelled,
    /// A tool call suspended the evaluation ([`crate::ToolError::suspend`]); it goes on
    /// with [`crate::Evaluator::resume`].
    #[error("the evaluation was suspended at a call of {tool}")]
    Suspended {
        /// The tool whose call suspended it.
        tool: String,
    },
}

/// What a run's limits were, for telling why it stopped.
pub(crate) struct StopContext {
    /// The fuel budget, when metered.
    pub budget: Option<u64>,
    /// The wall-clock limit.
    pub wall_time: Duration,
    /// Why the limiter refused the guest memory, if it did.
    pub memory_refused: Option<crate::guard::Refusal>,
}

impl Stopped {
    /// Why a guest call failed with `error`, for errors that are not the guest's own
    /// doing (an exit status) or the host's (a full pool): each path checks those first.
    pub(crate) fn classify(error: &wasmtime::Error, context: &StopContext) -> Stopped {
        use wasmtime::Trap;
        match (error.downcast_ref::<Trap>(), context.memory_refused) {
            (Some(Trap::OutOfFuel), _) => Stopped::FuelExhausted {
                budget: context.budget.unwrap_or(0),
            },
            (Some(Trap::Interrupt), _) => Stopped::Timeout {
                limit: context.wall_time,
            },
            // Code that cannot go on without the memory it was refused aborts (C's
            // `abort`, a failed C++ `new`): wasm's `unreachable`. Other traps (a stack
            // overflow, an access out of bounds) are not for want of memory.
            (Some(Trap::UnreachableCodeReached) | None, Some(refusal)) => match refusal {
                Refusal::Cap(limit) => Stopped::MemoryLimit { limit },
                Refusal::Budget(budget) => Stopped::MemoryBudget { budget },
            },
            (Some(trap), _) => Stopped::Trap(trap.to_string()),
            (None, None) => Stopped::Trap(format!("{error:#}")),
        }
    }
}

/// Why something could not be set up: an engine, a component, a mount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// A file could not be read.
    #[error("cannot read {path}: {reason}")]
    Read {
        /// The file.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// The wasm given is not one this path can run.
    #[error("cannot load {what}: {reason}")]
    Load {
        /// The file or component that failed.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A setting is out of range or contradicts another.
    #[error("invalid setting: {0}")]
    Config(String),
    /// The engine, a mount or a store could not be made.
    #[error("{0}")]
    Host(String),
}

impl SetupError {
    /// A failure of the host with its chain of causes.
    pub(crate) fn host(error: impl Into<anyhow::Error>) -> Self {
        SetupError::Host(format!("{:#}", error.into()))
    }
}

/// Why an evaluation produced no outcome.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The host stopped the code: fuel, time, memory or a crash.
    #[error(transparent)]
    Stopped(#[from] Stopped),
    /// The session was stopped by an earlier evaluation and cannot evaluate any more.
    #[error("this session has ended ({0}); start a new one")]
    SessionEnded(Stopped),
    /// The code was refused before it ran (too large, or contains a NUL byte); a session
    /// stays usable.
    #[error("code refused: {0}")]
    InvalidCode(String),
    /// Files given to the code were refused before it ran: a bad path, more or larger
    /// files than the limits allow, or more than the instance can hold; a session stays
    /// usable.
    #[error("files refused: {0}")]
    InvalidFiles(String),
    /// A file asked for by path is not in the working directory, or is too large to
    /// return; a session stays usable.
    #[error("cannot read the file: {0}")]
    NoSuchFile(String),
    /// As many instances as the evaluator's pool holds are alive; nothing was run, and the
    /// same call can succeed once an evaluation ends or a session is dropped.
    #[error("too many live instances: this evaluator holds at most {limit} at once (evaluations in flight plus open sessions)")]
    TooManyInstances {
        /// The evaluator's instance limit.
        limit: u32,
    },
    /// The evaluator or a session could not be set up.
    #[error("cannot start the evaluation: {0}")]
    Setup(#[from] SetupError),
    /// A dump that cannot be restored here (see [`crate::DumpError`]).
    #[error("cannot restore the session: {0}")]
    InvalidDump(crate::dump::DumpError),
    /// A tool call suspended the evaluation: resume it with [`crate::Evaluator::resume`].
    #[error("{0}")]
    Suspended(Box<crate::Suspension>),
}

impl From<crate::dump::DumpError> for EvalError {
    fn from(error: crate::dump::DumpError) -> Self {
        EvalError::InvalidDump(error)
    }
}

/// What kind of failure an [`EvalError`] is: the one vocabulary every front end turns
/// into its own terms (an HTTP status, an exit status, a Python exception, a metric label).
/// Not `non_exhaustive`, so those matches are exhaustive and a new kind is a compile error
/// in each of them rather than a silent default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The fuel budget ran out.
    FuelExhausted,
    /// The wall-clock limit passed.
    Timeout,
    /// The instance's memory cap was reached.
    MemoryLimit,
    /// The evaluator's shared memory budget was exhausted.
    MemoryBudget,
    /// The evaluation was dropped before it finished.
    Cancelled,
    /// The interpreter crashed (a WebAssembly trap).
    Trap,
    /// The session was ended by an earlier evaluation.
    SessionEnded,
    /// The code was refused before it ran.
    InvalidCode,
    /// The files given were refused before the code ran.
    InvalidFiles,
    /// A file asked for is not there.
    NoSuchFile,
    /// The instance pool was full.
    TooManyInstances,
    /// The evaluator or session could not be set up.
    Setup,
    /// A session dump was refused.
    InvalidDump,
    /// A tool call suspended the evaluation.
    Suspended,
}

impl FailureKind {
    /// Every kind, for tables and tests.
    pub const ALL: [FailureKind; 14] = [
        FailureKind::FuelExhausted,
        FailureKind::Timeout,
        FailureKind::MemoryLimit,
        FailureKind::MemoryBudget,
        FailureKind::Cancelled,
        FailureKind::Trap,
        FailureKind::SessionEnded,
        FailureKind::InvalidCode,
        FailureKind::InvalidFiles,
        FailureKind::NoSuchFile,
        FailureKind::TooManyInstances,
        FailureKind::Setup,
        FailureKind::InvalidDump,
        FailureKind::Suspended,
    ];

    /// A short, stable name, for machines: `fuel_exhausted`, `timeout`, `memory_limit`,
    /// `memory_budget`, `cancelled`, `trap`, `session_ended`, `invalid_code`,
    /// `invalid_files`, `no_such_file`, `too_many_instances` or `setup`.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::FuelExhausted => "fuel_exhausted",
            FailureKind::Timeout => "timeout",
            FailureKind::MemoryLimit => "memory_limit",
            FailureKind::MemoryBudget => "memory_budget",
            FailureKind::Cancelled => "cancelled",
            FailureKind::Trap => "trap",
            FailureKind::SessionEnded => "session_ended",
            FailureKind::InvalidCode => "invalid_code",
            FailureKind::InvalidFiles => "invalid_files",
            FailureKind::NoSuchFile => "no_such_file",
            FailureKind::TooManyInstances => "too_many_instances",
            FailureKind::Setup => "setup",
            FailureKind::InvalidDump => "invalid_dump",
            FailureKind::Suspended => "suspended",
        }
    }
}

impl std::fmt::Display for FailureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Stopped {
    /// This stop's kind.
    pub fn kind(&self) -> FailureKind {
        match self {
            Stopped::FuelExhausted { .. } => FailureKind::FuelExhausted,
            Stopped::Timeout { .. } => FailureKind::Timeout,
            Stopped::MemoryLimit { .. } => FailureKind::MemoryLimit,
            Stopped::MemoryBudget { .. } => FailureKind::MemoryBudget,
            Stopped::Cancelled => FailureKind::Cancelled,
            Stopped::Suspended { .. } => FailureKind::Suspended,
            Stopped::Trap(_) => FailureKind::Trap,
        }
    }
}

impl EvalError {
    /// This error's kind (its name for machines is [`FailureKind::as_str`]).
    pub fn kind(&self) -> FailureKind {
        match self {
            EvalError::Stopped(stop) => stop.kind(),
            EvalError::SessionEnded(_) => FailureKind::SessionEnded,
            EvalError::InvalidCode(_) => FailureKind::InvalidCode,
            EvalError::InvalidFiles(_) => FailureKind::InvalidFiles,
            EvalError::NoSuchFile(_) => FailureKind::NoSuchFile,
            EvalError::TooManyInstances { .. } => FailureKind::TooManyInstances,
            EvalError::Setup(_) => FailureKind::Setup,
            EvalError::InvalidDump(_) => FailureKind::InvalidDump,
            EvalError::Suspended(_) => FailureKind::Suspended,
        }
    }

    /// The stop behind this error, whether it ended this evaluation or an earlier one.
    pub fn stopped(&self) -> Option<&Stopped> {
        match self {
            EvalError::Stopped(stop) | EvalError::SessionEnded(stop) => Some(stop),
            _ => None,
        }
    }
}
