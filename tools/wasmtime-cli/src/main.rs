//! `wasmtime run ...`: the upstream wasmtime CLI's `run` command, as `wasmtime` parses it.

use clap::Parser;

/// The wasmtime CLI, with its `run` subcommand only.
#[derive(Parser)]
#[command(name = "wasmtime", version)]
enum Wasmtime {
    /// Runs a WebAssembly module or component.
    Run(wasmtime_cli::commands::RunCommand),
}

fn main() -> wasmtime::Result<()> {
    match Wasmtime::parse() {
        Wasmtime::Run(command) => command.execute(),
    }
}
