//! The command line: python's arguments, pyeval's limits, and the two paths.

mod command_path;
mod eval_path;
mod invocation;
mod repl;
pub mod status;
mod terminal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{ArgAction, Parser};
use pyeval::fuel::group_thousands;
use pyeval::sandbox::Grants;
use pyeval::{Fuel, Limits, Mount};

/// Run Python in a WebAssembly sandbox. Arguments after the options are Python's own,
/// as `python` takes them: `-c CODE`, `SCRIPT ARGS...`, `-m MODULE`, `-` (stdin).
#[derive(Parser, Debug)]
#[command(name = "pyeval", version, disable_version_flag = true)]
pub struct Cli {
    /// Run a stock CPython WASI build (a core module with `_start`, such as
    /// target/cpython/python.wasm) or a component exporting wasi:cli/run, instead of the
    /// evaluator.
    #[arg(long, value_name = "FILE.wasm")]
    python: Option<PathBuf>,

    /// Standard library of that build, mounted read-only at /usr/local/lib/python3.13
    /// [default: the `stdlib` directory beside FILE.wasm, else that of `just build-cpython`].
    #[arg(long, value_name = "DIR", requires = "python")]
    stdlib: Option<PathBuf>,

    /// Fuel budget (roughly, wasm instructions); underscores allowed; -1 for no limit.
    #[arg(
        long,
        env = "INITIAL_FUEL",
        default_value = "1_000_000_000",
        value_name = "N",
        allow_negative_numbers = true
    )]
    fuel: Fuel,

    /// Cap on the interpreter's memory, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = (pyeval::limits::DEFAULT_MEMORY_BYTES >> 20) as u64)]
    memory: u64,

    /// Wall-clock limit of a run, in seconds, including time blocked in host calls.
    #[arg(long, value_name = "SECONDS", default_value_t = pyeval::limits::DEFAULT_WALL_TIME.as_secs_f64())]
    timeout: f64,

    /// Bytes of stdout and of stderr kept (evaluator only); the rest is dropped.
    #[arg(long, value_name = "BYTES", default_value_t = pyeval::limits::DEFAULT_OUTPUT_BYTES)]
    max_output: u32,

    /// Print the outcome as one JSON object (evaluator only).
    #[arg(long, conflicts_with = "python")]
    json: bool,

    /// After the run, print fuel remaining, initial fuel and percent consumed to stderr.
    #[arg(long)]
    stats: bool,

    /// Make a host directory visible: HOST[:GUEST][:ro|:rw], read-only by default. Repeatable.
    #[arg(long = "mount", value_name = "HOST[:GUEST][:ro|:rw]")]
    mounts: Vec<Mount>,

    /// Set an environment variable in the guest (it sees no others). Repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// Print version.
    #[arg(long, action = ArgAction::Version)]
    version: Option<bool>,

    /// Python's arguments.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "PYTHON ARGS"
    )]
    args: Vec<String>,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {s:?}")),
    }
}

impl Cli {
    fn limits(&self) -> Result<Limits> {
        if !(self.timeout > 0.0 && self.timeout.is_finite()) {
            anyhow::bail!("--timeout must be a positive number of seconds");
        }
        Ok(Limits {
            fuel: self.fuel,
            memory_bytes: usize::try_from(self.memory.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            wall_time: Duration::from_secs_f64(self.timeout),
            output_bytes: self.max_output,
            code_bytes: pyeval::limits::DEFAULT_CODE_BYTES,
        })
    }

    fn grants(&self) -> Grants {
        Grants {
            mounts: self.mounts.clone(),
            env: self.env.clone(),
            argv: Vec::new(),
        }
    }
}

/// Runs what the command line asks for and returns the exit status.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match cli.python.clone() {
        Some(python) => command_path::run(&cli, python),
        None => eval_path::run(&cli),
    }
}

/// Prints the fuel report of `--stats`.
fn print_fuel_stats(fuel: Fuel, consumed: Option<u64>) {
    match (fuel, consumed) {
        (Fuel::Limited(initial), Some(used)) => {
            let percent = if initial == 0 {
                100.0
            } else {
                used as f64 * 100.0 / initial as f64
            };
            eprintln!(
                "pyeval: fuel remaining: {}",
                group_thousands(initial.saturating_sub(used))
            );
            eprintln!("pyeval: initial fuel: {}", group_thousands(initial));
            eprintln!(
                "pyeval: fuel consumed: {} ({percent:.2}%)",
                group_thousands(used)
            );
        }
        (_, Some(used)) => eprintln!(
            "pyeval: fuel: unlimited ({} consumed)",
            group_thousands(used)
        ),
        _ => eprintln!("pyeval: fuel: unlimited (metering off)"),
    }
}
