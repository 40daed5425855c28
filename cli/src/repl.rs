//! A small interactive loop on one session, for a terminal.

use std::io::{BufRead, Write};

use anyhow::Result;
use pyeval::{Evaluator, Grants, Limits};

use crate::args::Cli;
use pyeval_server::session_file;

use crate::render;

/// Reads statements from stdin and evaluates each in one session until end of input.
/// A block (a line ending in `:`) continues until an empty line. Output shows as it is
/// written when `grants` has a live listener; files the code changes are written under
/// `--output-dir` after each input, when given; the session is kept in `--session`'s
/// file after each input, when given.
pub fn run(evaluator: &Evaluator, limits: &Limits, grants: &Grants, cli: &Cli) -> Result<u8> {
    eprintln!("pyeval: Python 3.13 in a sandbox; each input runs under the limits. Ctrl-D exits.");
    let output_dir = cli.output_dir.as_deref();
    // The session in --session's file (as it was before a stopped input), or a new one.
    let start = || match &cli.session {
        Some(path) => session_file::open(evaluator, path, limits, grants),
        None => Ok(evaluator.session_with(limits, grants)?),
    };
    let mut session = start()?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        let Some(source) = read_statement(&mut lines)? else {
            return Ok(0);
        };
        if source.trim().is_empty() {
            continue;
        }
        let result = session.eval(&source);
        let status = render::text(&result, true, grants.live_output.is_some());
        match (output_dir, &result) {
            (Some(dir), Ok(outcome)) => crate::output_dir::write(dir, outcome)?,
            (None, Ok(outcome)) => crate::output_dir::note_unsaved_charts(outcome),
            _ => {}
        }
        if let Some(path) = &cli.session {
            session_file::keep(&mut session, path, &result)?;
        }
        match &result {
            Ok(outcome) if outcome.exit_code.is_some() => return Ok(status),
            Ok(_) => {}
            Err(_) => {
                match cli.session {
                    Some(_) => eprintln!("pyeval: going on from the session file"),
                    None => eprintln!("pyeval: starting a new session"),
                }
                session = start()?;
            }
        }
    }
}

fn read_statement(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
) -> Result<Option<String>> {
    prompt(">>> ")?;
    let Some(first) = lines.next().transpose()? else {
        return Ok(None);
    };
    let mut source = first.clone();
    if first.trim_end().ends_with(':') || first.trim_end().ends_with('\\') {
        loop {
            prompt("... ")?;
            match lines.next().transpose()? {
                Some(line) if !line.trim().is_empty() => {
                    source.push('\n');
                    source.push_str(&line);
                }
                _ => break,
            }
        }
    }
    source.push('\n');
    Ok(Some(source))
}

fn prompt(text: &str) -> Result<()> {
    let mut stderr = std::io::stderr();
    stderr.write_all(text.as_bytes())?;
    stderr.flush()?;
    Ok(())
}
