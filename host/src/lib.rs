//! pyeval: run untrusted Python in CPython compiled to WebAssembly (WASI), under hard limits.
//!
//! Two paths share one engine and limits layer:
//! - the evaluator ([`Evaluator`]): the pre-initialized `pyeval.wasm` component embedded in
//!   this crate; a fresh interpreter per evaluation in well under a millisecond, or a
//!   [`Session`] that keeps one; typed [`Outcome`]s;
//! - the command path ([`command`]): a stock CPython WASI build (`python.wasm`) run through
//!   `wasi:cli/run`, like `python`.

pub mod cache;
pub mod command;
pub mod engine;
pub mod error;
pub mod evaluator;
pub mod fuel;
pub mod limits;
pub mod mount;
pub mod sandbox;

pub use command::{CommandRun, CommandRunner, RunReport};
pub use error::RunError;
pub use evaluator::{EvalError, Evaluator, EvaluatorConfig, Outcome, PyException, Session};
pub use fuel::Fuel;
pub use limits::Limits;
pub use mount::Mount;
