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
mod output_dir;
mod render;
mod repl;
mod service;
mod terminal;

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;

/// Runs the command line `args` (the program's name first) and returns its exit status.
/// `serve` and `mcp` as the first argument start a service (a script of either name runs
/// as `./serve`).
pub fn run(args: impl IntoIterator<Item = impl Into<OsString> + Clone>) -> u8 {
    let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let result = match args.get(1).and_then(|arg| arg.to_str()) {
        Some("serve") => parse::<service::ServeCli>(&args).map(service::serve),
        Some("mcp") => parse::<service::McpCli>(&args).map(service::mcp),
        _ => parse::<args::Cli>(&args[..]).map(run_python),
    };
    let status = match result {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => {
            eprintln!("pyeval: error: {e:#}");
            render::status::PYEVAL_ERROR
        }
        Err(status) => status,
    };
    let _ = std::io::stdout().flush();
    status
}

/// The options of a command line; on `--help`, `--version` or a mistake, the status to
/// exit with once clap has said so.
fn parse<T: Parser>(args: &[OsString]) -> Result<T, u8> {
    // A service's own name is its first two words.
    let args: Vec<OsString> = match T::command().get_name() {
        name if name.contains(' ') => std::iter::once(name.into())
            .chain(args.iter().skip(2).cloned())
            .collect(),
        _ => args.to_vec(),
    };
    T::try_parse_from(args).map_err(|e| {
        // Help and version are printed to stdout with status 0, mistakes to stderr.
        let _ = e.print();
        if e.use_stderr() {
            render::status::PYEVAL_ERROR
        } else {
            0
        }
    })
}

/// Runs Python like `python`, on either path.
fn run_python(args: args::Cli) -> anyhow::Result<u8> {
    match args.python.clone() {
        Some(python) => command_path::run(&args, python),
        None => eval_path::run(&args),
    }
}
