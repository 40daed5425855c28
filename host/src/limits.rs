//! The limits one evaluation runs under.

use std::time::Duration;

use crate::fuel::Fuel;

/// Default cap on the guest's linear memory.
pub const DEFAULT_MEMORY_BYTES: usize = 256 << 20;
/// Default wall-clock deadline of one evaluation.
pub const DEFAULT_WALL_TIME: Duration = Duration::from_secs(10);
/// Default cap on each of stdout and stderr.
pub const DEFAULT_OUTPUT_BYTES: u32 = 1 << 20;
/// Default cap on the size of the code of one evaluation.
pub const DEFAULT_CODE_BYTES: usize = 1 << 20;

/// Hard limits of an evaluation; `Limits::default()` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Fuel budget per evaluation (the interpreter's start-up is never charged).
    pub fuel: Fuel,
    /// Largest linear memory the guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline per evaluation, including time blocked in host calls.
    pub wall_time: Duration,
    /// Bytes of stdout and of stderr kept per evaluation; the rest is dropped. Also caps
    /// the value, the exception message and the traceback.
    pub output_bytes: u32,
    /// Largest code accepted, in UTF-8 bytes; larger code is refused before it runs.
    pub code_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Fuel::default(),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            wall_time: DEFAULT_WALL_TIME,
            output_bytes: DEFAULT_OUTPUT_BYTES,
            code_bytes: DEFAULT_CODE_BYTES,
        }
    }
}
