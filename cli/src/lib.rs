//! `pyeval`: run Python like `python`, inside a WebAssembly sandbox with hard limits.
//!
//! A thin client of the `pyeval` library: `args` reads the command line, `invocation`
//! python's own arguments, the two paths run, and `render` turns results into text, JSON
//! and exit statuses. [`run`] is the whole command, for the binary and for the Python
//! package's `python -m pyeval`.

mod args;
mod command_path;
mod eval_path;
mod invocation;
mod render;
mod repl;
mod terminal;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

/// Runs the command line `args` (the program's name first) and returns its exit status.
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> u8 {
    let args = match args::Cli::try_parse_from(args) {
        Ok(args) => args,
        Err(e) => {
            // Help and version are printed to stdout with status 0, mistakes to stderr.
            let _ = e.print();
            return if e.use_stderr() {
                render::status::PYEVAL_ERROR
            } else {
                0
            };
        }
    };
    let result = match args.python.clone() {
        Some(python) => command_path::run(&args, python),
        None => eval_path::run(&args),
    };
    let status = match result {
        Ok(status) => status,
        Err(e) => {
            eprintln!("pyeval: error: {e:#}");
            render::status::PYEVAL_ERROR
        }
    };
    let _ = std::io::stdout().flush();
    status
}
