//! The limits a run is held to, on both paths.

use std::time::Duration;

use crate::error::SetupError;
use crate::files::FileLimits;
use crate::fuel::Fuel;
use crate::tools::ToolLimits;

/// Default cap on the guest's linear memory.
pub const DEFAULT_MEMORY_BYTES: usize = 256 << 20;
/// Default wall-clock deadline of one evaluation.
pub const DEFAULT_WALL_TIME: Duration = Duration::from_secs(10);
/// Longest wall-clock deadline accepted: a day. Longer ones are refused rather than let
/// deadline arithmetic overflow.
pub const MAX_WALL_TIME: Duration = Duration::from_secs(24 * 60 * 60);
/// Default cap on each of stdout and stderr.
pub const DEFAULT_OUTPUT_BYTES: u32 = 1 << 20;
/// Default cap on the size of the code of one evaluation.
pub const DEFAULT_CODE_BYTES: usize = 1 << 20;

/// Why a limit given as a number is out of its range (the front ends name the option).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// A wall-clock limit of 0 or less, longer than [`MAX_WALL_TIME`], or not a number.
    #[error("must be a number of seconds above 0 and at most {}", MAX_WALL_TIME.as_secs())]
    WallTime,
    /// A fuel budget below -1.
    #[error("must be a budget of at least 0, or -1 for no limit")]
    Fuel,
}

/// A wall-clock limit of `seconds`, in its range: above 0 and at most [`MAX_WALL_TIME`].
pub fn wall_time_from_secs(seconds: f64) -> Result<Duration, LimitError> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|limit| !limit.is_zero() && *limit <= MAX_WALL_TIME)
        .ok_or(LimitError::WallTime)
}

/// Hard limits of a run; `Limits::default()` gives the documented defaults, and the
/// `with_*` methods change one each.
///
/// The evaluator applies all of them per evaluation. The command path applies fuel, memory
/// and wall time to the whole run (its output goes straight to the host's streams).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Fuel budget (the evaluator's interpreter start-up is never charged).
    pub fuel: Fuel,
    /// Largest linear memory the guest may grow to, in bytes.
    pub memory_bytes: usize,
    /// Wall-clock deadline, including time blocked in host calls; at most [`MAX_WALL_TIME`].
    pub wall_time: Duration,
    /// Bytes of stdout and of stderr kept per evaluation; the rest is dropped. Also caps
    /// the value, the exception message and the traceback.
    pub output_bytes: u32,
    /// Largest code accepted, in UTF-8 bytes; larger code is refused before it runs.
    pub code_bytes: usize,
    /// Bounds on the calls of granted tools.
    pub tools: ToolLimits,
    /// Bounds on the files given to an evaluation and returned from it.
    pub files: FileLimits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: Fuel::default(),
            memory_bytes: DEFAULT_MEMORY_BYTES,
            wall_time: DEFAULT_WALL_TIME,
            output_bytes: DEFAULT_OUTPUT_BYTES,
            code_bytes: DEFAULT_CODE_BYTES,
            tools: ToolLimits::default(),
            files: FileLimits::default(),
        }
    }
}

impl Limits {
    /// These limits with a fuel budget of `fuel`.
    pub fn with_fuel(mut self, fuel: Fuel) -> Self {
        self.fuel = fuel;
        self
    }

    /// These limits with linear memory capped at `bytes`.
    pub fn with_memory_bytes(mut self, bytes: usize) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// These limits with a wall-clock deadline of `limit`.
    pub fn with_wall_time(mut self, limit: Duration) -> Self {
        self.wall_time = limit;
        self
    }

    /// These limits keeping `bytes` of each output.
    pub fn with_output_bytes(mut self, bytes: u32) -> Self {
        self.output_bytes = bytes;
        self
    }

    /// These limits accepting code of up to `bytes`.
    pub fn with_code_bytes(mut self, bytes: usize) -> Self {
        self.code_bytes = bytes;
        self
    }

    /// These limits with `tools` bounding tool calls.
    pub fn with_tool_limits(mut self, tools: ToolLimits) -> Self {
        self.tools = tools;
        self
    }

    /// These limits with `files` bounding the files given and returned.
    pub fn with_file_limits(mut self, files: FileLimits) -> Self {
        self.files = files;
        self
    }

    /// Refuses limits no run can be held to, on an engine that counts fuel or (`metered`
    /// false) does not.
    pub(crate) fn check(&self, metered: bool) -> Result<(), SetupError> {
        if !metered && self.fuel != Fuel::Unlimited {
            return Err(SetupError::Config(
                "this engine does not meter fuel: give it Fuel::Unlimited".into(),
            ));
        }
        if self.wall_time.is_zero() || self.wall_time > MAX_WALL_TIME {
            return Err(SetupError::Config(format!(
                "the wall-time limit must be above zero and at most {} s, not {:?}",
                MAX_WALL_TIME.as_secs(),
                self.wall_time
            )));
        }
        Ok(())
    }
}
