//! `--python`: a stock CPython WASI build run like `python`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use pyeval::CommandRunner;

use crate::args::Cli;
use crate::render;

/// Directory that `just build-cpython` links to its output.
fn default_cpython_dir() -> PathBuf {
    std::env::var_os("PYEVAL_CPYTHON_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/cpython")))
}

pub fn run(cli: &Cli, python: PathBuf) -> Result<u8> {
    if !python.is_file() {
        bail!("{} does not exist or is not a file", python.display());
    }
    let limits = cli.limits()?;
    let beside = python.parent().map(|dir| dir.join("stdlib"));
    let stdlib = match &cli.stdlib {
        Some(dir) if dir.is_dir() => Some(dir.clone()),
        Some(dir) => bail!("--stdlib {} is not a directory", dir.display()),
        None => [beside, Some(default_cpython_dir().join("stdlib"))]
            .into_iter()
            .flatten()
            .find(|dir| dir.is_dir()),
    };
    let mut builder = CommandRunner::builder(&python).metered(cli.limits.fuel.needs_metering());
    if let Some(stdlib) = stdlib {
        builder = builder.stdlib(stdlib);
    }
    let runner = builder.build(|| {
        eprintln!(
            "pyeval: compiling {} for this machine (once; cached for later runs)",
            python.display()
        )
    })?;
    let report = runner.run(&cli.args, &limits, &cli.grants()?)?;

    if cli.stats {
        render::fuel_stats(cli.limits.fuel, report.fuel_consumed);
    }
    Ok(match report.status {
        Ok(code) => code as u8,
        Err(stopped) => {
            eprintln!("pyeval: {}", render::stopped_message(&stopped));
            render::stopped_status(&stopped)
        }
    })
}
