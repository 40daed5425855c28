//! `--python`: a stock CPython WASI build run like `python`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use pyeval::cache::CompileCache;
use pyeval::{CommandRun, CommandRunner, Fuel, RunError};

use super::{print_fuel_stats, status, Cli};

/// Directory that `just build-cpython` links to its output.
fn default_cpython_dir() -> PathBuf {
    std::env::var_os("PYEVAL_CPYTHON_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/cpython")))
}

pub fn run(cli: &Cli, python: PathBuf) -> Result<ExitCode> {
    if !python.is_file() {
        bail!("{} does not exist or is not a file", python.display());
    }
    let beside = python.parent().map(|dir| dir.join("stdlib"));
    let stdlib = match &cli.stdlib {
        Some(dir) if dir.is_dir() => Some(dir.clone()),
        Some(dir) => bail!("--stdlib {} is not a directory", dir.display()),
        None => [beside, Some(default_cpython_dir().join("stdlib"))]
            .into_iter()
            .flatten()
            .find(|dir| dir.is_dir()),
    };

    let runner = CommandRunner::load(
        &python,
        stdlib,
        matches!(cli.fuel, Fuel::Limited(_)),
        &CompileCache::default_location(),
        || {
            eprintln!(
                "pyeval: compiling {} for this machine (once; cached for later runs)",
                python.display()
            )
        },
    )?;
    let limits = cli.limits()?;
    let request = CommandRun {
        args: cli.args.clone(),
        fuel: cli.fuel,
        memory_bytes: limits.memory_bytes,
        wall_time: limits.wall_time,
        grants: cli.grants(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(runner.run(&request))?;

    if cli.stats {
        print_fuel_stats(cli.fuel, report.fuel_consumed);
    }
    Ok(match report.status {
        Ok(code) => ExitCode::from(code as u8),
        Err(err) => {
            eprintln!("pyeval: {err}");
            ExitCode::from(match err {
                RunError::FuelExhausted { .. } => status::FUEL_EXHAUSTED,
                RunError::Timeout { .. } => status::TIMEOUT,
                RunError::MemoryLimit { .. } => status::MEMORY_LIMIT,
                RunError::Trap(_) => status::TRAP,
                RunError::Load { .. } => status::PYEVAL_ERROR,
            })
        }
    })
}
