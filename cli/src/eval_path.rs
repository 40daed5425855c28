//! The default path: the evaluator component, a typed outcome printed as text or JSON.

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result};
use pyeval::{EvalError, Evaluator};

use crate::args::Cli;
use crate::invocation::Invocation;
use crate::{render, repl};

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
        Invocation::Version => (
            "import sys\nprint('Python', sys.version.split()[0])\n".to_owned(),
            Vec::new(),
            false,
        ),
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
            Err(EvalError::Stopped(pyeval::Stopped::FuelExhausted { budget })) => Some(*budget),
            Err(_) => None,
        };
        render::fuel_stats(cli.fuel, used);
        if let Ok(outcome) = &result {
            eprintln!(
                "pyeval: wall time: {:.3} ms",
                outcome.wall_time.as_secs_f64() * 1e3
            );
        }
    }
    Ok(if cli.json {
        render::json(&result)
    } else {
        render::text(&result, show_value)
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
fn load() -> Result<Evaluator> {
    Ok(Evaluator::builder()
        // One evaluation, or one session at a time (the REPL replaces an ended one).
        .max_instances(2)
        .on_compile(|| {
            eprintln!(
                "pyeval: compiling the evaluator for this machine (once; cached for later runs)"
            )
        })
        .build()?)
}
