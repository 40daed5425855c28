//! How results reach the user: text like `python` prints it, one JSON object, the fuel
//! report, and the one table of exit statuses. Hints name the options that change a limit.

use std::io::{IsTerminal, Write};

use pyeval::{EvalError, FailureKind, Fuel, LiveOutput, Outcome, Stopped, Stream};
use serde_json::json;

use crate::terminal::escape_controls;

/// Exit statuses of pyeval itself; any other status is the guest's own.
pub mod status {
    /// pyeval could not run the program: bad flag, missing file, unusable .wasm.
    pub const PYEVAL_ERROR: u8 = 2;
    /// The interpreter needed more memory than allowed and could not recover.
    pub const MEMORY_LIMIT: u8 = 122;
    /// The program crashed inside the sandbox (a WebAssembly trap).
    pub const TRAP: u8 = 123;
    /// The program ran past its wall-clock deadline.
    pub const TIMEOUT: u8 = 124;
    /// The program used its whole fuel budget.
    pub const FUEL_EXHAUSTED: u8 = 125;
}

/// The exit status of a failure of this kind.
fn kind_status(kind: FailureKind) -> u8 {
    match kind {
        FailureKind::FuelExhausted => status::FUEL_EXHAUSTED,
        FailureKind::Timeout => status::TIMEOUT,
        FailureKind::MemoryLimit | FailureKind::MemoryBudget => status::MEMORY_LIMIT,
        FailureKind::Trap | FailureKind::Cancelled => status::TRAP,
        FailureKind::SessionEnded
        | FailureKind::InvalidCode
        | FailureKind::InvalidFiles
        | FailureKind::NoSuchFile
        | FailureKind::TooManyInstances
        | FailureKind::Setup
        | FailureKind::InvalidDump
        // (No tool the command line grants suspends an evaluation.)
        | FailureKind::Suspended => status::PYEVAL_ERROR,
    }
}

/// The exit status of a stopped run.
pub fn stopped_status(stopped: &Stopped) -> u8 {
    kind_status(stopped.kind())
}

/// The exit status of a failed evaluation: a session ended by an earlier stop exits as
/// that stop did.
pub fn error_status(error: &EvalError) -> u8 {
    kind_status(error.stopped().map_or(error.kind(), Stopped::kind))
}

/// What the user can do about a stop, naming this command's options.
fn hint(stopped: &Stopped) -> &'static str {
    match stopped {
        Stopped::FuelExhausted { .. } => {
            "; raise it with --fuel N or INITIAL_FUEL=N (-1 disables the limit)"
        }
        Stopped::Timeout { .. } => "; raise it with --timeout SECONDS",
        Stopped::MemoryLimit { .. } => "; raise it with --memory MIB",
        _ => "",
    }
}

/// A stopped run as one line for stderr.
pub fn stopped_message(stopped: &Stopped) -> String {
    format!("{stopped}{}", hint(stopped))
}

/// A failed evaluation as one line for stderr.
fn error_message(error: &EvalError) -> String {
    match error {
        EvalError::Stopped(stopped) => stopped_message(stopped),
        other => other.to_string(),
    }
}

/// Prints an outcome like python would, and returns the matching exit status; its stdout
/// and stderr only when they were not shown live (see [`live_output`]). Text bound for a
/// terminal has its control characters escaped.
pub fn text(result: &Result<Outcome, EvalError>, show_value: bool, live: bool) -> u8 {
    let out_tty = std::io::stdout().is_terminal();
    let err_tty = std::io::stderr().is_terminal();
    let shown = |text: &str, tty: bool| {
        if tty {
            escape_controls(text).into_owned()
        } else {
            text.to_owned()
        }
    };
    match result {
        Ok(outcome) => {
            if !live {
                print!("{}", shown(&outcome.stdout, out_tty));
            }
            if show_value {
                if let Some(value) = &outcome.value {
                    println!("{}", shown(value, out_tty));
                }
            }
            if !live {
                eprint!("{}", shown(&outcome.stderr, err_tty));
            }
            if let Some(error) = &outcome.error {
                eprint!("{}", shown(&error.traceback, err_tty));
            }
            for (name, truncated) in [
                ("stdout", outcome.stdout_truncated),
                ("stderr", outcome.stderr_truncated),
            ] {
                if truncated {
                    eprintln!("pyeval: {name} was truncated at the output limit (--max-output)");
                }
            }
            outcome_status(outcome)
        }
        Err(error) => {
            eprintln!("pyeval: {}", error_message(error));
            error_status(error)
        }
    }
}

/// Evaluated code's output written to this process's stdout and stderr as it comes, as
/// python writes it (escaped for a terminal).
pub fn live_output() -> LiveOutput {
    let out_tty = std::io::stdout().is_terminal();
    let err_tty = std::io::stderr().is_terminal();
    LiveOutput::new(move |stream, text| {
        let (mut sink, tty): (Box<dyn Write>, bool) = match stream {
            Stream::Stdout => (Box::new(std::io::stdout().lock()), out_tty),
            Stream::Stderr => (Box::new(std::io::stderr().lock()), err_tty),
        };
        let text = if tty {
            escape_controls(text)
        } else {
            text.into()
        };
        // A closed pipe (`| head`) stops the showing, not the evaluation.
        let _ = sink.write_all(text.as_bytes()).and_then(|()| sink.flush());
    })
}

/// Prints an outcome, or the failure, as one JSON object; returns the exit status.
pub fn json(result: &Result<Outcome, EvalError>) -> u8 {
    match result {
        Ok(outcome) => {
            println!(
                "{}",
                serde_json::to_string(outcome).expect("outcomes serialize")
            );
            outcome_status(outcome)
        }
        Err(error) => {
            let failure = json!({
                "failure": { "kind": error.kind().as_str(), "message": error_message(error) }
            });
            println!("{failure}");
            error_status(error)
        }
    }
}

fn outcome_status(outcome: &Outcome) -> u8 {
    match (outcome.exit_code, &outcome.error) {
        (Some(code), _) => code as u8,
        (None, Some(_)) => 1,
        (None, None) => 0,
    }
}

/// Prints the fuel report of `--stats`: remaining, initial and consumed (with percent).
pub fn fuel_stats(fuel: Fuel, consumed: Option<u64>) {
    match (fuel, consumed) {
        (Fuel::Limited(initial), Some(used)) => {
            let percent = if initial == 0 {
                100.0
            } else {
                used as f64 * 100.0 / initial as f64
            };
            eprintln!(
                "pyeval: fuel remaining: {}",
                Fuel::Limited(initial.saturating_sub(used))
            );
            eprintln!("pyeval: initial fuel: {}", Fuel::Limited(initial));
            eprintln!(
                "pyeval: fuel consumed: {} ({percent:.2}%)",
                Fuel::Limited(used)
            );
        }
        (_, Some(used)) => eprintln!("pyeval: fuel: unlimited ({} consumed)", Fuel::Limited(used)),
        _ => eprintln!("pyeval: fuel: unlimited (metering off)"),
    }
}
