//! `pyeval`: run Python like `python`, inside a WebAssembly sandbox with hard limits.
//!
//! A thin client of the `pyeval` library: `args` reads the command line, `invocation`
//! python's own arguments, the two paths run, and `render` turns results into text, JSON
//! and exit statuses.

mod args;
mod command_path;
mod eval_path;
mod invocation;
mod render;
mod repl;
mod terminal;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = args::Cli::parse();
    let result = match args.python.clone() {
        Some(python) => command_path::run(&args, python),
        None => eval_path::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pyeval: error: {e:#}");
            ExitCode::from(render::status::PYEVAL_ERROR)
        }
    }
}
