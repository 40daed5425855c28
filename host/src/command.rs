//! The command path: a stock CPython WASI build (`python.wasm`, a core module with
//! `_start`) run like `python`; or any component exporting `wasi:cli/run`, pyeval.wasm
//! included.
//!
//! Core modules run on wasmtime-wasi's preview1 implementation, as `wasmtime run` runs
//! them: wrapping them with the preview1 command adapter instead would lose the exit status
//! (the adapter reports every non-zero `proc_exit` as plain failure, status 1).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{self, Component};
use wasmtime::{Engine, Module, Store, Trap};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, I32Exit};

use crate::cache::{source_key, CompileCache};
use crate::error::RunError;
use crate::fuel::Fuel;
use crate::sandbox::{Grants, MemoryCap, SandboxState};

/// Where the guest finds the standard library: CPython's compiled-in prefix is
/// `/usr/local`, so no environment variable is needed to locate it.
pub const GUEST_STDLIB: &str = "/usr/local/lib/python3.13";

/// A loaded, compiled program, ready to run any number of times.
pub struct CommandRunner {
    engine: Engine,
    program: Program,
    stdlib: Option<PathBuf>,
}

enum Program {
    /// A preview1 core module with `_start`.
    Module(Module, wasmtime::Linker<P1State>),
    /// A component exporting `wasi:cli/run`.
    Component(Component, component::Linker<SandboxState>),
}

/// Store data of a core module: its preview1 context and memory cap.
struct P1State {
    wasi: WasiP1Ctx,
    memory: MemoryCap,
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
    /// Wall-clock limit of the whole run, including time blocked in host calls.
    pub wall_time: Duration,
    /// Mounts and environment.
    pub grants: Grants,
}

/// How a run ended.
#[derive(Debug)]
pub struct RunReport {
    /// The guest's exit status, or why it had none.
    pub status: Result<i32, RunError>,
    /// Fuel consumed (None when metering was off).
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
        let bytes = std::fs::read(python_wasm)
            .with_context(|| format!("reading {}", python_wasm.display()))?;
        let engine = crate::engine::build(metered, crate::engine::Allocation::OnDemand)?;
        let load_error = |e: anyhow::Error| RunError::Load {
            what: python_wasm.display().to_string(),
            reason: format!("{e:#}"),
        };
        let key = source_key(&bytes);
        let program = if wasmparser::Parser::is_component(&bytes) {
            let component = cache
                .load(&engine, &key, || Ok(bytes), on_compile)
                .map_err(load_error)?;
            let mut linker = component::Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
            Program::Component(component, linker)
        } else {
            let module = cache
                .load(&engine, &key, || Ok(bytes), on_compile)
                .map_err(load_error)?;
            let mut linker = wasmtime::Linker::new(&engine);
            wasmtime_wasi::p1::add_to_linker_async(&mut linker, |state: &mut P1State| {
                &mut state.wasi
            })?;
            Program::Module(module, linker)
        };
        Ok(CommandRunner {
            engine,
            program,
            stdlib,
        })
    }

    /// Runs the program once with the host's stdin, stdout and stderr.
    pub async fn run(&self, run: &CommandRun) -> Result<RunReport> {
        let mut builder = run.grants.builder()?;
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
        let budget = match run.fuel {
            Fuel::Limited(n) => Some(n),
            Fuel::Unlimited => None,
        };
        let limit = run.wall_time;
        let (status, remaining, memory_refused) = match &self.program {
            Program::Module(module, linker) => {
                let state = P1State {
                    wasi: builder.build_p1(),
                    memory: MemoryCap::new(run.memory_bytes),
                };
                let mut store = self.store(state, budget, limit, |s| &mut s.memory)?;
                let status =
                    crate::engine::with_deadline(limit, run_module(&mut store, module, linker))
                        .await;
                (status, store.get_fuel().ok(), store.data().memory.refused())
            }
            Program::Component(component, linker) => {
                let state = SandboxState::with_memory_limit(builder.build(), run.memory_bytes);
                let mut store = self.store(state, budget, limit, |s| s.limiter())?;
                let status = crate::engine::with_deadline(
                    limit,
                    run_component(&mut store, component, linker),
                )
                .await;
                (
                    status,
                    store.get_fuel().ok(),
                    store.data().memory_limit_hit(),
                )
            }
        };
        let status = match status {
            Some(status) => status.or_else(|e| {
                classify_exit(e, budget, limit, memory_refused.then_some(run.memory_bytes))
            }),
            None => Err(RunError::Timeout { limit }),
        };
        Ok(RunReport {
            status,
            fuel_consumed: budget.zip(remaining).map(|(b, r)| b - r),
        })
    }

    fn store<T: Send + 'static>(
        &self,
        state: T,
        budget: Option<u64>,
        limit: Duration,
        limiter: impl (FnMut(&mut T) -> &mut dyn wasmtime::ResourceLimiter) + Send + Sync + 'static,
    ) -> Result<Store<T>> {
        let mut store = Store::new(&self.engine, state);
        store.limiter(limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(crate::engine::ticks_for(limit));
        if let Some(fuel) = budget {
            store.set_fuel(fuel)?;
        }
        Ok(store)
    }
}

async fn run_module(
    store: &mut Store<P1State>,
    module: &Module,
    linker: &wasmtime::Linker<P1State>,
) -> wasmtime::Result<i32> {
    let instance = linker.instantiate_async(&mut *store, module).await?;
    let start = instance.get_typed_func::<(), ()>(&mut *store, "_start")?;
    start.call_async(&mut *store, ()).await?;
    Ok(0)
}

async fn run_component(
    store: &mut Store<SandboxState>,
    component: &Component,
    linker: &component::Linker<SandboxState>,
) -> wasmtime::Result<i32> {
    let command = Command::instantiate_async(&mut *store, component, linker).await?;
    Ok(match command.wasi_cli_run().call_run(&mut *store).await? {
        Ok(()) => 0,
        Err(()) => 1,
    })
}

/// Turns a run's error into an exit status (`proc_exit`, `exit`) or a typed failure;
/// `memory_cap` is the cap when the limiter refused the guest memory.
fn classify_exit(
    error: wasmtime::Error,
    budget: Option<u64>,
    limit: Duration,
    memory_cap: Option<usize>,
) -> Result<i32, RunError> {
    if let Some(exit) = error.downcast_ref::<I32Exit>() {
        return Ok(exit.0);
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Err(RunError::FuelExhausted {
            budget: budget.unwrap_or(0),
        }),
        Some(Trap::Interrupt) => Err(RunError::Timeout { limit }),
        _ if memory_cap.is_some() => Err(RunError::MemoryLimit {
            limit: memory_cap.unwrap_or_default(),
        }),
        Some(trap) => Err(RunError::Trap(trap.to_string())),
        None => Err(RunError::Trap(format!("{error:#}"))),
    }
}
