//! The `pyeval` binary: [`pyeval_cli::run`] on this process's arguments.

use std::process::ExitCode;

fn main() -> ExitCode {
    ExitCode::from(pyeval_cli::run(std::env::args_os()))
}
