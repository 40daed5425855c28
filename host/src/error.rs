//! Typed failures of a run, in words a user understands.

use crate::fuel::group_thousands;

/// Why a guest run ended without an exit status of its own.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The guest used its whole fuel budget.
    #[error(
        "out of fuel: the program used its whole budget of {} fuel units; \
         raise it with --fuel N or INITIAL_FUEL=N (-1 disables the limit)",
        group_thousands(*budget)
    )]
    FuelExhausted {
        /// The budget that was used up.
        budget: u64,
    },
    /// The guest ran past its wall-clock limit.
    #[error("time limit exceeded: the program ran for more than {limit:?}; raise it with --timeout SECONDS")]
    Timeout {
        /// The limit.
        limit: std::time::Duration,
    },
    /// The interpreter needed more memory than allowed and could not recover.
    #[error("memory limit exceeded: the program needed more than {} MiB; raise it with --memory MIB", limit >> 20)]
    MemoryLimit {
        /// The cap on linear memory, in bytes.
        limit: usize,
    },
    /// The guest crashed (a WebAssembly trap other than running out of fuel).
    #[error("the program crashed inside the sandbox: {0}")]
    Trap(String),
    /// The module could not be loaded or linked: not a usable CPython WASI build.
    #[error("cannot load {what}: {reason}")]
    Load {
        /// The file or component that failed.
        what: String,
        /// What was wrong with it.
        reason: String,
    },
}
