//! pyeval: run untrusted Python in CPython compiled to WebAssembly (WASI), under hard limits.
//!
//! Two paths share one engine, one set of [`Limits`] and [`Grants`], and one account of
//! why a run was [`Stopped`]:
//! - the evaluator ([`Evaluator`]): a pre-initialized evaluator component (embedded in this
//!   crate, or loaded with [`Evaluator::builder`]); a fresh interpreter per evaluation in
//!   well under a millisecond, or a [`Session`] that keeps one; typed [`Outcome`]s;
//! - the command path ([`CommandRunner`]): a stock CPython WASI build (`python.wasm`), or
//!   any `wasi:cli/run` component, run like `python` on the host's stdio.
//!
//! ```no_run
//! use pyeval::{Evaluator, Fuel, Limits, Stopped, EvalError};
//!
//! let evaluator = Evaluator::new()?;
//! let limits = Limits::default().with_fuel(Fuel::Limited(10_000_000));
//! match evaluator.eval("while True: pass", &limits) {
//!     Err(EvalError::Stopped(Stopped::FuelExhausted { budget })) => assert_eq!(budget, 10_000_000),
//!     other => panic!("{other:?}"),
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod cache;
mod clock;
mod command;
mod component;
mod dump;
mod error;
mod evaluator;
mod files;
mod fuel;
mod guard;
mod lift;
mod limits;
mod live_output;
mod mount;
pub mod network;
mod outcome;
mod raw_output;
mod runtime;
mod sandbox;
mod session;
mod standby;
mod suspension;
mod tools;

pub use cache::{default_cache_dir, CacheLocation};
pub use command::{CommandRunner, CommandRunnerBuilder, RunReport, GUEST_STDLIB};
pub use component::embedded_is_precompiled;
pub use dump::DumpError;
pub use error::{EvalError, FailureKind, SetupError, Stopped};
pub use evaluator::{default_memory_budget, Evaluator, EvaluatorBuilder, DEFAULT_MAX_INSTANCES};
pub use files::{
    check_path as check_file_path, media_type, FileLimits, InputFile, OutputFile,
    DEFAULT_FILE_BYTES, DEFAULT_MAX_FILES,
};
pub use fuel::{Fuel, ParseFuelError, DEFAULT_FUEL};
pub use limits::{
    wall_time_from_secs, LimitError, Limits, DEFAULT_CODE_BYTES, DEFAULT_MEMORY_BYTES,
    DEFAULT_OUTPUT_BYTES, DEFAULT_WALL_TIME, MAX_WALL_TIME,
};
pub use live_output::{LiveOutput, Stream};
pub use mount::{Mount, MountError};
pub use outcome::{Outcome, PyException};
pub use sandbox::{Grants, Stdin};
pub use session::Session;
pub use suspension::{JournalEntry, Suspension};
pub use tools::{
    stubs as tool_stubs, Tool, ToolDefinitionError, ToolError, ToolFuture, ToolLimits, ToolResult,
    DEFAULT_TOOL_BYTES, DEFAULT_TOOL_CALLS, DEFAULT_TOOL_CALLS_RUNNING, DEFAULT_TOOL_CALL_TIME,
};
