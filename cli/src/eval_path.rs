//! The default path: the evaluator component, a typed outcome printed as text or JSON.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result};
use pyeval::{EvalError, Evaluator, Stdin};

use crate::args::Cli;
use crate::invocation::Invocation;
use pyeval_server::session_file;

use crate::{render, repl};

pub fn run(cli: &Cli) -> Result<u8> {
    let invocation =
        Invocation::parse(&cli.args, std::io::stdin().is_terminal()).map_err(anyhow::Error::msg)?;
    let limits = cli.limits()?;
    let mut grants = cli.grants()?;
    // The servers whose tools the code may call, on a runtime of their own that drives
    // their connections while the evaluation runs on this thread.
    let runtime = match cli.tools.tools_config {
        Some(_) => Some(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?,
        ),
        None => None,
    };
    let servers = match &runtime {
        Some(runtime) => cli.tools.connect(runtime)?,
        None => None,
    };
    grants
        .tools
        .extend(servers.iter().flat_map(|s| s.tools()).cloned());
    // The program reads this process's stdin, as under python, unless it came from there.
    grants.stdin = Stdin::Inherit;
    let (program, argv, show_value) = match invocation {
        Invocation::Interactive => {
            grants.stdin = Stdin::Empty;
            grants.live_output = Some(render::live_output());
            let evaluator = load(cli)?;
            return repl::run(&evaluator, &limits, &grants, cli);
        }
        Invocation::Version => (
            "import sys\nprint('Python', sys.version.split()[0])\n".to_owned(),
            Vec::new(),
            false,
        ),
        Invocation::Code { code, argv } => (code, argv, true),
        Invocation::Script { path, argv } => {
            let what = format!("the script {}", path.display());
            let file = std::fs::File::open(&path).with_context(|| format!("cannot read {what}"))?;
            (read_program(file, limits.code_bytes, &what)?, argv, false)
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
            grants.stdin = Stdin::Empty;
            (
                read_program(std::io::stdin(), limits.code_bytes, "the program on stdin")?,
                argv,
                false,
            )
        }
    };

    grants.argv = argv;
    // Output shows as it is written, as under python; JSON prints it in the outcome.
    let live = !cli.json;
    if live {
        grants.live_output = Some(render::live_output());
    }
    let evaluator = load(cli)?;
    let result = match &cli.session {
        None => evaluator.eval_with(&program, &limits, &grants),
        Some(path) => {
            let mut session = session_file::open(&evaluator, path, &limits, &grants)?;
            let result = session.eval(&program);
            session_file::keep(&mut session, path, &result)?;
            result
        }
    };
    if cli.stats {
        let used = match &result {
            Ok(outcome) => Some(outcome.fuel_used),
            Err(EvalError::Stopped(pyeval::Stopped::FuelExhausted { budget })) => Some(*budget),
            Err(_) => None,
        };
        render::fuel_stats(cli.limits.fuel, used);
        if let Ok(outcome) = &result {
            eprintln!(
                "pyeval: wall time: {:.3} ms",
                outcome.wall_time.as_secs_f64() * 1e3
            );
        }
    }
    match (&cli.output_dir, &result) {
        (Some(dir), Ok(outcome)) => crate::output_dir::write(dir, outcome)?,
        (None, Ok(outcome)) => crate::output_dir::note_unsaved_charts(outcome),
        _ => {}
    }
    Ok(if cli.json {
        render::json(&result)
    } else {
        render::text(&result, show_value, live)
    })
}

/// A program's text, read up to the code limit (one byte more says it is over), refusing
/// bytes that are not UTF-8.
fn read_program(input: impl Read, limit: usize, what: &str) -> Result<String> {
    let mut bytes = Vec::new();
    let most = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    input
        .take(most)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {what}"))?;
    if bytes.len() > limit {
        anyhow::bail!("{what} is over the limit of {limit} bytes of code");
    }
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{what} is not valid UTF-8 (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// The evaluator, telling the user when it compiles.
fn load(cli: &Cli) -> Result<Evaluator> {
    Ok(cli
        .component
        .builder()
        // One evaluation, or one session at a time (the REPL replaces an ended one), and
        // the fresh instance a session's dump is compared with.
        .max_instances(3)
        .on_compile(|| {
            eprintln!(
                "pyeval: compiling the evaluator for this machine (once; cached for later runs)"
            )
        })
        .build()?)
}
