//! The guest's view of the world: which capabilities it is granted, and the one place a
//! store is made from limits and grants.
//!
//! Nothing of the host is visible unless granted here: no environment variables but the
//! ones given, no files but the mounts, no network but the hosts of a [`Network`] grant.

use wasmtime::component::{self, Resource};
use wasmtime::{Engine, ResourceLimiter, Store, UpdateDeadline};
use wasmtime_wasi::filesystem::Descriptor;
use wasmtime_wasi::p2::bindings::filesystem::types::ErrorCode;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::error::SetupError;
use crate::files::InputFile;
use crate::fuel::Fuel;
use crate::guard::{Guard, Refusal};
use crate::limits::Limits;
use crate::live_output::LiveOutput;
use crate::mount::Mount;
use crate::network::{Network, NetworkCalls};
use crate::tools::{HostTools, Tool, ToolCalls};

/// What a run is given beyond computing: host directories, environment variables and, on
/// the evaluator path, the arguments that become `sys.argv` and what stdin holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Grants {
    /// Host directories visible to the guest.
    pub mounts: Vec<Mount>,
    /// Environment variables the guest sees (and no others).
    pub env: Vec<(String, String)>,
    /// `sys.argv` of evaluated code (empty gives `['']`); the command path takes its
    /// arguments from the run instead.
    pub argv: Vec<String>,
    /// What evaluated code reads on stdin (the command path always reads the host's).
    pub stdin: Stdin,
    /// Functions of the host that evaluated code may call (the command path grants none).
    pub tools: Vec<Tool>,
    /// Who receives evaluated code's output as it is written (the command path writes to
    /// the host's stdout and stderr instead).
    pub live_output: Option<LiveOutput>,
    /// Files in evaluated code's working directory when it starts (the command path
    /// reads files from mounts instead).
    pub files: Vec<InputFile>,
    /// The hosts evaluated code may send HTTP(S) requests to (none: every request is
    /// refused; the command path has no network).
    pub network: Option<Network>,
}

/// What the guest reads on its standard input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Stdin {
    /// Nothing: reads see end of input at once.
    #[default]
    Empty,
    /// These bytes, then end of input.
    Bytes(Vec<u8>),
    /// This process's own stdin, as it arrives (for a command line).
    Inherit,
}

impl Grants {
    /// Nothing granted.
    pub fn new() -> Self {
        Self::default()
    }

    /// These grants and `mount`.
    pub fn with_mount(mut self, mount: Mount) -> Self {
        self.mounts.push(mount);
        self
    }

    /// These grants and the environment variable `key=value`.
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// These grants with `stdin` as the guest's standard input.
    pub fn with_stdin(mut self, stdin: Stdin) -> Self {
        self.stdin = stdin;
        self
    }

    /// These grants and `tool`.
    pub fn with_tool(mut self, tool: Tool) -> Self {
        self.tools.push(tool);
        self
    }

    /// These grants and the file `path` (under the working directory) holding `data`.
    pub fn with_file(mut self, path: impl Into<String>, data: impl Into<bytes::Bytes>) -> Self {
        self.files.push(InputFile::new(path, data));
        self
    }

    /// These grants with `network` as what evaluated code may reach.
    pub fn with_network(mut self, network: Network) -> Self {
        self.network = Some(network);
        self
    }

    /// These grants with output going to `listener` as it is written.
    pub fn with_live_output(mut self, listener: LiveOutput) -> Self {
        self.live_output = Some(listener);
        self
    }

    /// These grants with `sys.argv` of evaluated code set from `argv`.
    pub fn with_argv<I: IntoIterator<Item = S>, S: Into<String>>(mut self, argv: I) -> Self {
        self.argv = argv.into_iter().map(Into::into).collect();
        self
    }

    /// The guest paths of the host directories granted, in order (the order of their
    /// descriptors in the guest).
    pub(crate) fn mount_paths(&self) -> Vec<String> {
        self.mounts.iter().map(|m| m.guest.clone()).collect()
    }

    /// A WASI context builder that grants only these: no environment, files or network
    /// beyond them, and bounds on what the guest can make the host allocate.
    pub(crate) fn wasi(&self) -> Result<WasiCtxBuilder, SetupError> {
        let mut builder = WasiCtxBuilder::new();
        builder.max_random_size(MAX_RANDOM_BYTES);
        for mount in &self.mounts {
            let perms = if mount.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(mount.opened_path(), &mount.guest, perms)
                .map_err(|e| {
                    SetupError::Host(format!("mounting {}: {e:#}", mount.host.display()))
                })?;
        }
        for (key, value) in &self.env {
            builder.env(key, value);
        }
        for (key, placeholder) in self.network.iter().flat_map(Network::secret_env) {
            builder.env(key, placeholder);
        }
        match &self.stdin {
            Stdin::Empty => {}
            Stdin::Bytes(bytes) => {
                builder.stdin(MemoryInputPipe::new(bytes.clone()));
            }
            Stdin::Inherit => {
                builder.inherit_stdin();
            }
        }
        Ok(builder)
    }
}

/// Most bytes of randomness one guest call may ask the host for.
const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Most WASI resources (open files, streams) a guest may hold at once.
const MAX_RESOURCES: usize = 10_000;

/// Caps `table` at [`MAX_RESOURCES`].
pub(crate) fn cap_resources(table: &mut ResourceTable) {
    table.set_max_capacity(MAX_RESOURCES);
}

/// The filesystem interface whose `symlink-at` the guest may not use.
const WASI_FILESYSTEM: &str = "wasi:filesystem/types@0.2.12";
/// WASI preview1's errno `perm`: the operation is not permitted.
const ERRNO_PERM: i32 = 63;

/// Links the WASI 0.2 interfaces a guest may import: I/O streams and polling, clocks,
/// randomness, the command line's environment and standard streams, and the filesystem
/// (preopened mounts only). Sockets are not linked, so a component that imports them fails
/// to instantiate instead of opening host sockets. Symbolic links are refused: inside a
/// mount a link cannot lead out (paths resolve under the mount), but one left in a writable
/// mount would be followed by whatever reads that directory on the host later.
pub(crate) fn link_wasi<T: WasiView + 'static>(
    linker: &mut component::Linker<T>,
) -> Result<(), SetupError> {
    use wasmtime_wasi::cli::{WasiCli, WasiCliView};
    use wasmtime_wasi::clocks::{WasiClocks, WasiClocksView};
    use wasmtime_wasi::filesystem::{WasiFilesystem, WasiFilesystemView};
    use wasmtime_wasi::p2::bindings::{cli, clocks, filesystem, io, random};
    use wasmtime_wasi::random::{WasiRandom, WasiRandomView};

    let l = &mut *linker;
    (|| -> wasmtime::Result<()> {
        io::error::add_to_linker::<T, Io>(l, table::<T>)?;
        io::poll::add_to_linker::<T, Io>(l, table::<T>)?;
        io::streams::add_to_linker::<T, Io>(l, table::<T>)?;
        clocks::wall_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
        clocks::monotonic_clock::add_to_linker::<T, WasiClocks>(l, T::clocks)?;
        random::random::add_to_linker::<T, WasiRandom>(l, T::random)?;
        random::insecure::add_to_linker::<T, WasiRandom>(l, T::random)?;
        random::insecure_seed::add_to_linker::<T, WasiRandom>(l, T::random)?;
        cli::exit::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::environment::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::terminal_input::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::terminal_output::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::terminal_stdin::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::terminal_stdout::add_to_linker::<T, WasiCli>(l, T::cli)?;
        cli::terminal_stderr::add_to_linker::<T, WasiCli>(l, T::cli)?;
        filesystem::preopens::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
        filesystem::types::add_to_linker::<T, WasiFilesystem>(l, T::filesystem)?;
        l.allow_shadowing(true);
        l.instance(WASI_FILESYSTEM)?.func_wrap(
            "[method]descriptor.symlink-at",
            |_, (_, _, _): (Resource<Descriptor>, String, String)| {
                Ok((Err::<(), _>(ErrorCode::NotPermitted),))
            },
        )?;
        l.allow_shadowing(false);
        Ok(())
    })()
    .map_err(SetupError::host)
}

/// The `wasi:io` interfaces' view of a store: its resource table.
struct Io;

/// The resource table of `state`, where `wasi:io` keeps streams and pollables.
fn table<T: WasiView>(state: &mut T) -> &mut ResourceTable {
    state.ctx().table
}

impl component::HasData for Io {
    type Data<'a> = &'a mut ResourceTable;
}

/// Links what a component may import: WASI (as [`link_wasi`]), `wasi:http`, whose
/// requests go through the store's network grant, and `host-tools`, whose calls reach the
/// tools granted to the store.
pub(crate) fn link_guest(linker: &mut component::Linker<SandboxState>) -> Result<(), SetupError> {
    link_wasi(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker).map_err(SetupError::host)?;
    crate::evaluator::bindings::pyeval::sandbox::host_tools::add_to_linker::<_, HostTools>(
        linker,
        |state| &mut state.tools,
    )
    .map_err(SetupError::host)
}

/// Links WASI preview1 for a core module, except symbolic links (as [`link_wasi`]).
pub(crate) fn link_wasi_p1<T: Send + 'static>(
    linker: &mut wasmtime::Linker<T>,
    wasi: fn(&mut T) -> &mut wasmtime_wasi::p1::WasiP1Ctx,
) -> Result<(), SetupError> {
    wasmtime_wasi::p1::add_to_linker_async(linker, wasi).map_err(SetupError::host)?;
    linker.allow_shadowing(true);
    linker
        .func_wrap(
            "wasi_snapshot_preview1",
            "path_symlink",
            |_: i32, _: i32, _: i32, _: i32, _: i32| ERRNO_PERM,
        )
        .map_err(SetupError::host)?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Store data that carries a [`Guard`].
pub(crate) trait Guarded: Send + 'static {
    /// The guard the store enforces.
    fn guard(&mut self) -> &mut Guard;
}

/// A store for `data` under `limits` (refused when no run can be held to them): memory
/// capped, fuel and deadline set. The guest yields to the async runtime every
/// [`crate::clock::YIELD_FUEL`] of fuel (metered) or at every epoch tick (unmetered, which
/// is where the deadline is checked then), so a long evaluation neither outlives its
/// deadline nor holds a runtime thread for its whole wall time.
pub(crate) fn new_store<T: Guarded>(
    engine: &Engine,
    data: T,
    limits: &Limits,
) -> Result<Store<T>, SetupError> {
    limits.check(engine.get_consume_fuel())?;
    let mut store = Store::new(engine, data);
    store.limiter(|data| data.guard() as &mut dyn ResourceLimiter);
    if engine.get_consume_fuel() {
        store
            .fuel_async_yield_interval(Some(crate::clock::YIELD_FUEL))
            .map_err(SetupError::host)?;
    } else {
        store.epoch_deadline_callback(|mut cx| {
            if cx.data_mut().guard().past_deadline() {
                Err(wasmtime::Trap::Interrupt.into())
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
    }
    arm(&mut store, limits)?;
    Ok(store)
}

/// Sets the store's fuel (when the engine meters it) and wall-clock deadline afresh, for
/// the next run under `limits`.
pub(crate) fn arm<T: Guarded>(store: &mut Store<T>, limits: &Limits) -> Result<(), SetupError> {
    if store.engine().get_consume_fuel() {
        let budget = match limits.fuel {
            Fuel::Limited(n) => n,
            Fuel::Unlimited => u64::MAX,
        };
        store.set_fuel(budget).map_err(SetupError::host)?;
    }
    store.data_mut().guard().start_run(limits.wall_time);
    if !store.engine().get_consume_fuel() {
        store.set_epoch_deadline(1);
    }
    Ok(())
}

/// What a component's store carries for the guest: its WASI context, resource table,
/// guard, tool calls and network.
pub(crate) struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    guard: Guard,
    pub(crate) tools: ToolCalls,
    http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) network: NetworkCalls,
}

impl SandboxState {
    /// A state for `wasi` kept within `guard`.
    pub(crate) fn new(wasi: WasiCtx, guard: Guard) -> Self {
        let mut table = ResourceTable::new();
        cap_resources(&mut table);
        SandboxState {
            wasi,
            table,
            guard,
            tools: ToolCalls::default(),
            http: wasmtime_wasi_http::WasiHttpCtx::new(),
            network: NetworkCalls::default(),
        }
    }

    /// Why a growth of memory was refused, if one was.
    pub(crate) fn memory_refused(&self) -> Option<Refusal> {
        self.guard.refused()
    }
}

impl Guarded for SandboxState {
    fn guard(&mut self) -> &mut Guard {
        &mut self.guard
    }
}

impl WasiView for SandboxState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for SandboxState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.network,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether a component importing the WASI interface `name`, with its resource type
    /// `resource`, links against [`link_wasi`].
    fn links(name: &str, resource: &str) -> bool {
        let engine = Engine::default();
        let wat = format!(
            r#"(component (import "{name}" (instance (export "{resource}" (type (sub resource))))))"#
        );
        let component = component::Component::new(&engine, wat).unwrap();
        let mut linker = component::Linker::<SandboxState>::new(&engine);
        link_wasi(&mut linker).unwrap();
        linker.instantiate_pre(&component).is_ok()
    }

    #[test]
    fn sockets_are_not_linked() {
        for (interface, resource) in [
            ("network", "network"),
            ("tcp", "tcp-socket"),
            ("udp", "udp-socket"),
            ("ip-name-lookup", "resolve-address-stream"),
        ] {
            let name = format!("wasi:sockets/{interface}@0.2.12");
            assert!(!links(&name, resource), "{name} is linked");
        }
    }

    #[test]
    fn what_the_evaluator_imports_is_linked() {
        for (name, resource) in [
            ("wasi:io/streams@0.2.12", "output-stream"),
            ("wasi:io/poll@0.2.12", "pollable"),
            ("wasi:cli/terminal-output@0.2.12", "terminal-output"),
            ("wasi:filesystem/types@0.2.12", "descriptor"),
        ] {
            assert!(links(name, resource), "{name} is not linked");
        }
    }
}
