//! The default path: the evaluator component, a typed outcome printed as text or JSON.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result};
use pyeval::{EvalError, Evaluator, Outcome};
use serde_json::json;

use super::invocation::Invocation;
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
            let source = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read the script {}", path.display()))?;
            (source, argv, false)
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
            let mut source = String::new();
            std::io::stdin()
                .read_to_string(&mut source)
                .context("reading the program from stdin")?;
            (source, argv, false)
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

/// The evaluator, telling the user when it compiles.
pub fn load() -> Result<Evaluator> {
    Ok(Evaluator::new(|| {
        eprintln!("pyeval: compiling the evaluator for this machine (once; cached for later runs)")
    })?)
}

/// Prints an outcome like python would, and returns the matching exit status.
pub fn print_text(result: &Result<Outcome, EvalError>, show_value: bool) -> ExitCode {
    match result {
        Ok(outcome) => {
            print!("{}", outcome.stdout);
            if show_value {
                if let Some(value) = &outcome.value {
                    println!("{value}");
                }
            }
            eprint!("{}", outcome.stderr);
            if let Some(error) = &outcome.error {
                eprint!("{}", error.traceback);
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
        EvalError::Setup(_) => status::PYEVAL_ERROR,
    }
}

fn error_kind(error: &EvalError) -> &'static str {
    match error {
        EvalError::FuelExhausted { .. } => "fuel_exhausted",
        EvalError::Timeout { .. } => "timeout",
        EvalError::MemoryLimit { .. } => "memory_limit",
        EvalError::Trap(_) => "trap",
        EvalError::SessionEnded(_) => "session_ended",
        EvalError::Setup(_) => "setup",
    }
}
