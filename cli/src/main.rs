//! `pyeval`: run Python like `python`, inside a WebAssembly sandbox with hard limits.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pyeval: error: {e:#}");
            ExitCode::from(cli::status::PYEVAL_ERROR)
        }
    }
}
