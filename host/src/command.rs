//! The command path: a stock CPython WASI build (`python.wasm`, a core module with
//! `_start`) run like `python`; or any component exporting `wasi:cli/run`, the evaluator
//! component included.
//!
//! Core modules run on wasmtime-wasi's preview1 implementation, as `wasmtime run` runs
//! them: wrapping them with the preview1 command adapter instead would lose the exit status
//! (the adapter reports every non-zero `proc_exit` as plain failure, status 1).

use std::path::{Path, PathBuf};

use wasmtime::component::{self, Component};
use wasmtime::{Engine, Module, Store};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiView};

use crate::cache::{source_key, CacheLocation, CompileCache};
use crate::error::{SetupError, StopContext, Stopped};
use crate::fuel::Fuel;
use crate::guard::Guard;
use crate::limits::Limits;
use crate::sandbox::{Grants, Guarded, SandboxState};

pub use pyeval_engine::GUEST_STDLIB;

/// A loaded, compiled program, ready to run any number of times.
pub struct CommandRunner {
    engine: Engine,
    program: Program,
    stdlib: Option<PathBuf>,
    path: PathBuf,
}

impl std::fmt::Debug for CommandRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.program {
            Program::Module(..) => "core module",
            Program::Component(..) => "component",
        };
        f.debug_struct("CommandRunner")
            .field("program", &self.path)
            .field("kind", &kind)
            .field("stdlib", &self.stdlib)
            .field("metered", &self.engine.get_consume_fuel())
            .finish_non_exhaustive()
    }
}

enum Program {
    /// A preview1 core module with `_start`.
    Module(Module, wasmtime::Linker<P1State>),
    /// A component exporting `wasi:cli/run`.
    Component(Component, component::Linker<SandboxState>),
}

/// Store data of a core module: its preview1 context and guard.
struct P1State {
    wasi: WasiP1Ctx,
    guard: Guard,
}

impl Guarded for P1State {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunReport {
    /// The guest's exit status, or why the host stopped it.
    pub status: Result<i32, Stopped>,
    /// Fuel consumed (None when metering was off).
    pub fuel_consumed: Option<u64>,
}

/// How a [`CommandRunner`] is loaded.
#[derive(Debug, Clone)]
pub struct CommandRunnerBuilder {
    program: PathBuf,
    stdlib: Option<PathBuf>,
    metered: bool,
    cache: CacheLocation,
}

impl CommandRunnerBuilder {
    /// Mounts `dir` read-only at [`GUEST_STDLIB`], where a stock build looks for its
    /// standard library (default: nothing mounted).
    pub fn stdlib(mut self, dir: impl Into<PathBuf>) -> Self {
        self.stdlib = Some(dir.into());
        self
    }

    /// Whether fuel is counted (default: yes); runs with a limited budget need it.
    pub fn metered(mut self, metered: bool) -> Self {
        self.metered = metered;
        self
    }

    /// Where compiled code is cached (default: [`CacheLocation::Default`]).
    pub fn cache(mut self, location: CacheLocation) -> Self {
        self.cache = location;
        self
    }

    /// Reads and compiles the program (or loads its compiled form); `on_compile` is called
    /// when a compilation is about to start.
    pub fn build(self, on_compile: impl FnOnce()) -> Result<CommandRunner, SetupError> {
        let name = self.program.display().to_string();
        let bytes = std::fs::read(&self.program).map_err(|e| SetupError::Read {
            path: name.clone(),
            reason: e.to_string(),
        })?;
        if let Some(dir) = &self.stdlib {
            if !dir.is_dir() {
                return Err(SetupError::Config(format!(
                    "the stdlib {} is not a directory",
                    dir.display()
                )));
            }
        }
        let engine = crate::clock::engine(self.metered, pyeval_engine::Allocation::OnDemand)
            .map_err(SetupError::host)?;
        let load_error = |e: anyhow::Error| SetupError::Load {
            what: name.clone(),
            reason: format!("{e:#}"),
        };
        let cache = CompileCache::new(&self.cache);
        let key = source_key(&bytes);
        let program = if wasmparser::Parser::is_component(&bytes) {
            let component = cache
                .load(&engine, &key, None, &bytes, on_compile)
                .map_err(load_error)?;
            let mut linker = component::Linker::new(&engine);
            crate::sandbox::link_guest(&mut linker)?;
            Program::Component(component, linker)
        } else {
            let module = cache
                .load(&engine, &key, None, &bytes, on_compile)
                .map_err(load_error)?;
            let mut linker = wasmtime::Linker::new(&engine);
            crate::sandbox::link_wasi_p1(&mut linker, |state: &mut P1State| &mut state.wasi)?;
            Program::Module(module, linker)
        };
        Ok(CommandRunner {
            engine,
            program,
            stdlib: self.stdlib,
            path: self.program,
        })
    }
}

impl CommandRunner {
    /// A builder for the program in `python_wasm`.
    pub fn builder(python_wasm: impl Into<PathBuf>) -> CommandRunnerBuilder {
        CommandRunnerBuilder {
            program: python_wasm.into(),
            stdlib: None,
            metered: true,
            cache: CacheLocation::Default,
        }
    }

    /// Runs the program once with `args` (python's arguments, after the program name), the
    /// host's stdin, stdout and stderr, under `limits` (fuel, memory and wall time, for the
    /// whole run) and `grants` (mounts and environment). Callable from any thread, a tokio
    /// runtime's included.
    pub fn run(
        &self,
        args: &[String],
        limits: &Limits,
        grants: &Grants,
    ) -> Result<RunReport, SetupError> {
        crate::runtime::block_on(self.run_async(args, limits, grants))?
    }

    /// [`CommandRunner::run`] for async callers, on a tokio runtime with timers enabled.
    pub async fn run_async(
        &self,
        args: &[String],
        limits: &Limits,
        grants: &Grants,
    ) -> Result<RunReport, SetupError> {
        let mut builder = grants.wasi()?;
        builder
            .inherit_stdin()
            .inherit_stdout()
            .inherit_stderr()
            .arg("python")
            .args(args);
        if let Some(stdlib) = &self.stdlib {
            builder
                .preopened_dir(stdlib, GUEST_STDLIB, FsPerms::ReadOnly)
                .map_err(|e| {
                    SetupError::Host(format!(
                        "opening the stdlib directory {}: {e:#}",
                        stdlib.display()
                    ))
                })?;
        }
        let deadline = limits.wall_time;
        let (result, fuel_left, memory_refused) = match &self.program {
            Program::Module(module, linker) => {
                let mut wasi = builder.build_p1();
                crate::sandbox::cap_resources(wasi.ctx().table);
                let state = P1State {
                    wasi,
                    guard: Guard::new(limits.memory_bytes, None, 0),
                };
                let mut store = crate::sandbox::new_store(&self.engine, state, limits)?;
                let result = crate::clock::with_deadline(
                    &self.engine,
                    deadline,
                    run_module(&mut store, module, linker),
                )
                .await;
                (result, store.get_fuel().ok(), store.data().guard.refused())
            }
            Program::Component(component, linker) => {
                let state =
                    SandboxState::new(builder.build(), Guard::new(limits.memory_bytes, None, 0));
                let mut store = crate::sandbox::new_store(&self.engine, state, limits)?;
                let result = crate::clock::with_deadline(
                    &self.engine,
                    deadline,
                    run_component(&mut store, component, linker),
                )
                .await;
                (result, store.get_fuel().ok(), store.data().memory_refused())
            }
        };
        let budget = match limits.fuel {
            Fuel::Limited(n) => Some(n),
            Fuel::Unlimited => None,
        };
        let status = match result {
            Some(Ok(status)) => Ok(status),
            Some(Err(error)) => match error.downcast_ref::<I32Exit>() {
                Some(exit) => Ok(exit.0),
                None => Err(Stopped::classify(
                    &error,
                    &StopContext {
                        budget,
                        wall_time: deadline,
                        memory_refused,
                    },
                )),
            },
            None => Err(Stopped::Timeout { limit: deadline }),
        };
        Ok(RunReport {
            status,
            fuel_consumed: budget.zip(fuel_left).map(|(b, left)| b - left),
        })
    }

    /// The program's path.
    pub fn program(&self) -> &Path {
        &self.path
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
