//! A session kept in a file across runs, as a dump of it: the command line's `--session
//! FILE`, and `pyeval mcp --session-dir`'s files.
//!
//! A run restores the session from the file (or starts one if there is no file yet),
//! evaluates, and writes the session back unless a limit stopped it: the file then keeps
//! the state from before the run. The file is replaced whole (written beside it, then
//! renamed), so an interrupted write never leaves half a session.

use std::path::Path;

use anyhow::{Context, Result};
use pyeval::{Evaluator, Grants, Limits, Session};

/// The session in `path`, or a new one if there is no such file.
pub fn open(
    evaluator: &Evaluator,
    path: &Path,
    limits: &Limits,
    grants: &Grants,
) -> Result<Session> {
    match std::fs::read(path) {
        Ok(dump) => evaluator.restore(&dump, limits, grants).with_context(|| {
            format!(
                "the session in {} was not restored (the file is left as it is)",
                path.display()
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok(evaluator.session_with(limits, grants)?)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read the session in {}", path.display())),
    }
}

/// Writes `session` to `path`, replacing what was there.
pub fn save(session: &mut Session, path: &Path) -> Result<()> {
    let dump = session.dump()?;
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let temporary = path.with_file_name(format!(
        ".{}.{}.partial",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temporary, dump)
        .and_then(|()| std::fs::rename(&temporary, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&temporary);
        })
        .with_context(|| format!("cannot write the session to {}", path.display()))
}

/// After a run that gave `result`: writes `session` back to `path`, or, when a limit
/// stopped the run, leaves the file as it was and says so on stderr.
pub fn keep(
    session: &mut Session,
    path: &Path,
    result: &Result<pyeval::Outcome, pyeval::EvalError>,
) -> Result<()> {
    match result {
        Ok(_) => save(session, path),
        Err(error) => {
            if error.stopped().is_some() {
                eprintln!(
                    "pyeval: the session in {} is left as it was before this run (the run was \
                     stopped)",
                    path.display()
                );
            }
            Ok(())
        }
    }
}
