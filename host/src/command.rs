//! The command path: a stock CPython WASI build (`python.wasm`, a core module with
//! `_start`) run like `python`, through the `wasi_snapshot_preview1` command adapter; or any
//! component that exports `wasi:cli/run`, pyeval.wasm included.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, Trap};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtxBuilder};

use crate::cache::{source_key, CompileCache};
use crate::error::RunError;
use crate::fuel::Fuel;
use crate::sandbox::{Grants, SandboxState};

/// Where the guest finds the standard library: CPython's compiled-in prefix is
/// `/usr/local`, so no environment variable is needed to locate it.
pub const GUEST_STDLIB: &str = "/usr/local/lib/python3.13";

/// A loaded, compiled `python.wasm`, ready to run any number of times.
pub struct CommandRunner {
    engine: Engine,
    linker: Linker<SandboxState>,
    component: Component,
    stdlib: Option<PathBuf>,
}

/// One run of the command: Python's arguments and the limits and grants it runs under.
#[derive(Debug, Clone)]
pub struct CommandRun {
    /// Arguments after the program name, exactly as `python` takes them.
    pub args: Vec<String>,
    /// Fuel budget of the whole run (interpreter start-up included).
    pub fuel: Fuel,
    /// Cap on the guest's linear memory, in bytes.
    pub memory_bytes: usize,
    /// Mounts and environment.
    pub grants: Grants,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// The guest's exit status, or why it had none.
    pub status: Result<i32, RunError>,
    /// Fuel budget and consumption (None when metering was off).
    pub fuel_consumed: Option<u64>,
}

impl CommandRunner {
    /// Loads `python_wasm` and compiles it (or loads its compiled form from `cache`).
    /// `metered` must be true to run with a limited fuel budget.
    /// `on_compile` is called when a compilation is about to start.
    pub fn load(
        python_wasm: &Path,
        stdlib: Option<PathBuf>,
        metered: bool,
        cache: &CompileCache,
        on_compile: impl FnOnce(),
    ) -> Result<Self> {
        let module = std::fs::read(python_wasm)
            .with_context(|| format!("reading {}", python_wasm.display()))?;
        let engine = crate::engine::build(metered)?;
        let what = python_wasm.display().to_string();
        let component = cache
            .component(
                &engine,
                &source_key(&module),
                || wrap_command(&module),
                on_compile,
            )
            .map_err(|e| RunError::Load {
                what,
                reason: format!("{e:#}"),
            })?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        Ok(CommandRunner {
            engine,
            linker,
            component,
            stdlib,
        })
    }

    /// Runs the program once with the host's stdin, stdout and stderr.
    pub async fn run(&self, run: &CommandRun) -> Result<RunReport> {
        let mut builder = WasiCtxBuilder::new();
        builder
            .inherit_stdin()
            .inherit_stdout()
            .inherit_stderr()
            .arg("python")
            .args(&run.args);
        if let Some(stdlib) = &self.stdlib {
            builder
                .preopened_dir(stdlib, GUEST_STDLIB, FsPerms::ReadOnly)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("opening the stdlib directory {}", stdlib.display()))?;
        }
        run.grants.apply(&mut builder)?;
        let state = SandboxState::with_memory_limit(builder.build(), run.memory_bytes);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state.limiter());
        // The command path has no wall-clock limit of its own.
        store.epoch_deadline_trap();
        store.set_epoch_deadline(u64::MAX / 2);
        let budget = match run.fuel {
            Fuel::Limited(n) => {
                store.set_fuel(n)?;
                Some(n)
            }
            Fuel::Unlimited => None,
        };

        let status =
            match Command::instantiate_async(&mut store, &self.component, &self.linker).await {
                Ok(command) => match command.wasi_cli_run().call_run(&mut store).await {
                    Ok(Ok(())) => Ok(0),
                    Ok(Err(())) => Ok(1),
                    Err(e) => classify_exit(e, budget),
                },
                Err(e) => Err(RunError::Load {
                    what: "python.wasm".into(),
                    reason: format!("{e:#}"),
                }),
            };
        let fuel_consumed = budget.map(|b| b - store.get_fuel().unwrap_or(0));
        Ok(RunReport {
            status,
            fuel_consumed,
        })
    }
}

/// Turns a run's error into an exit status (for `proc_exit`) or a typed failure.
fn classify_exit(error: wasmtime::Error, budget: Option<u64>) -> Result<i32, RunError> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Err(RunError::FuelExhausted {
            budget: budget.unwrap_or(0),
        }),
        Some(trap) => Err(RunError::Trap(trap.to_string())),
        None => Err(RunError::Trap(format!("{error:#}"))),
    }
}

/// Wraps a core module that exports `_start` into a component exporting `wasi:cli/run`;
/// a component (such as pyeval.wasm) is taken as it is.
fn wrap_command(module: &[u8]) -> Result<Vec<u8>> {
    if wasmparser::Parser::is_component(module) {
        return Ok(module.to_vec());
    }
    wit_component::ComponentEncoder::default()
        .module(module)
        .context("not a WASI command module")?
        .adapter(
            "wasi_snapshot_preview1",
            WASI_SNAPSHOT_PREVIEW1_COMMAND_ADAPTER,
        )
        .context("loading the wasi_snapshot_preview1 command adapter")?
        .validate(true)
        .encode()
        .context("adapting the module to the component model")
}
