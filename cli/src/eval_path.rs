//! The default path: the evaluator component, a typed outcome printed as text or JSON.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result};
use pyeval::{EvalError, Evaluator, EvaluatorConfig, Outcome};
use serde_json::json;

use super::invocation::Invocation;
use super::terminal::escape_controls;
use super::{print_fuel_stats, repl, status, Cli};

pub fn run(cli: &Cli) -> Result<ExitCode> {
    let invocation =
        Invocation::parse(&cli.args, std::io::stdin().is_terminal()).map_err(anyhow::Error::msg)?;
    let limits = cli.limits()?;
    let mut grants = cli.grants();
    let (program, argv, show_value) = match invocation {
        Invocation::Interactive => {
            let evaluator = load()?;
            return repl::run(&evaluator, &limits, &grants);
        }
        Invocation::Code { code, argv } => (code, argv, true),
        Invocation::Script { path, argv } => {
            let bytes = std::fs::read(&path)
                .with_context(|| format!("cannot read the script {}", path.display()))?;
            (utf8(bytes, &path.display().to_string())?, argv, false)
        }
        Invocation::Module { name, argv } => {
            let name = serde_json::to_string(&name)?;
            (
                format!("import runpy\nrunpy._run_module_as_main({name})\n"),
                argv,
                false,
            )
        }
        Invocation::Stdin { argv } => {
            let mut bytes = Vec::new();
            std::io::stdin()
                .read_to_end(&mut bytes)
                .context("reading the program from stdin")?;
            (utf8(bytes, "the program on stdin")?, argv, false)
        }
    };

    grants.argv = argv;
    let result = load()?.eval_with(&program, &limits, &grants);
    if cli.stats {
        let used = match &result {
            Ok(outcome) => Some(outcome.fuel_used),
            Err(EvalError::FuelExhausted { budget }) => Some(*budget),
            Err(_) => None,
        };
        print_fuel_stats(cli.fuel, used);
        if let Ok(outcome) = &result {
            eprintln!(
                "pyeval: wall time: {:.3} ms",
                outcome.wall_time.as_secs_f64() * 1e3
            );
        }
    }
    Ok(if cli.json {
        print_json(&result)
    } else {
        print_text(&result, show_value)
    })
}

/// Program text as a string, refusing bytes that are not UTF-8.
fn utf8(bytes: Vec<u8>, what: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{what} is not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The evaluator, telling the user when it compiles.
pub fn load() -> Result<Evaluator> {
    // One evaluation, or one session at a time (the REPL replaces an ended one).
    let config = EvaluatorConfig {
        max_instances: 2,
        ..EvaluatorConfig::default()
    };
    Ok(Evaluator::with_config(config, || {
        eprintln!("pyeval: compiling the evaluator for this machine (once; cached for later runs)")
    })?)
}

/// Prints an outcome like python would, and returns the matching exit status. Text bound
/// for a terminal has its control characters escaped.
pub fn print_text(result: &Result<Outcome, EvalError>, show_value: bool) -> ExitCode {
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
            print!("{}", shown(&outcome.stdout, out_tty));
            if show_value {
                if let Some(value) = &outcome.value {
                    println!("{}", shown(value, out_tty));
                }
            }
            eprint!("{}", shown(&outcome.stderr, err_tty));
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
            eprintln!("pyeval: {error}");
            ExitCode::from(error_status(error))
        }
    }
}

fn print_json(result: &Result<Outcome, EvalError>) -> ExitCode {
    match result {
        Ok(outcome) => {
            println!(
                "{}",
                serde_json::to_string(outcome).expect("outcomes serialize")
            );
            outcome_status(outcome)
        }
        Err(error) => {
            let failure =
                json!({ "failure": { "kind": error_kind(error), "message": error.to_string() } });
            println!("{failure}");
            ExitCode::from(error_status(error))
        }
    }
}

fn outcome_status(outcome: &Outcome) -> ExitCode {
    match (outcome.exit_code, &outcome.error) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(_)) => ExitCode::from(1),
        (None, None) => ExitCode::SUCCESS,
    }
}

/// The exit status of a failed evaluation.
pub fn error_status(error: &EvalError) -> u8 {
    match error {
        EvalError::FuelExhausted { .. } => status::FUEL_EXHAUSTED,
        EvalError::Timeout { .. } => status::TIMEOUT,
        EvalError::MemoryLimit { .. } => status::MEMORY_LIMIT,
        EvalError::Trap(_) | EvalError::SessionEnded(_) => status::TRAP,
        EvalError::Setup(_) | EvalError::InvalidCode(_) | EvalError::TooManyInstances { .. } => {
            status::PYEVAL_ERROR
        }
    }
}

fn error_kind(error: &EvalError) -> &'static str {
    match error {
        EvalError::FuelExhausted { .. } => "fuel_exhausted",
        EvalError::Timeout { .. } => "timeout",
        EvalError::MemoryLimit { .. } => "memory_limit",
        EvalError::Trap(_) => "trap",
        EvalError::SessionEnded(_) => "session_ended",
        EvalError::InvalidCode(_) => "invalid_code",
        EvalError::Setup(_) => "setup",
        EvalError::TooManyInstances { .. } => "too_many_instances",
    }
}
