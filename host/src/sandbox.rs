//! The guest's view of the world: what a store holds and which capabilities it grants.
//!
//! Nothing of the host is visible unless granted here: no environment variables but the
//! ones given, no files but the mounts, no network.

use anyhow::{Context, Result};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{FsPerms, ResourceTable, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::mount::Mount;

/// What a store carries for the guest: its WASI context, resource table and memory cap.
pub struct SandboxState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
}

impl SandboxState {
    /// A state whose linear memories may not grow past `max_bytes`.
    pub fn with_memory_limit(wasi: WasiCtx, max_bytes: usize) -> Self {
        let mut table = ResourceTable::new();
        table.set_max_capacity(MAX_RESOURCES);
        SandboxState {
            wasi,
            table,
            memory: MemoryCap::new(max_bytes),
        }
    }

    /// The limiter to install with `Store::limiter`.
    pub fn limiter(&mut self) -> &mut dyn ResourceLimiter {
        &mut self.memory
    }

    /// Whether the guest asked for more memory than its cap allows.
    pub fn memory_limit_hit(&self) -> bool {
        self.memory.refused()
    }
}

/// Refuses memory growth past a cap, remembering that it did.
pub(crate) struct MemoryCap {
    max_bytes: usize,
    refused: bool,
}

impl MemoryCap {
    /// A cap of `max_bytes` per linear memory.
    pub(crate) fn new(max_bytes: usize) -> Self {
        MemoryCap {
            max_bytes,
            refused: false,
        }
    }

    /// Whether a growth past the cap was refused.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = desired <= self.max_bytes;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= crate::engine::MAX_TABLE_ELEMENTS)
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

/// What a run is given beyond computing: host directories, environment variables and, on
/// the evaluator path, the arguments that become `sys.argv`.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    /// Host directories visible to the guest.
    pub mounts: Vec<Mount>,
    /// Environment variables the guest sees (and no others).
    pub env: Vec<(String, String)>,
    /// `sys.argv` of evaluated code (empty gives `['']`); the command path takes its
    /// arguments from [`crate::CommandRun`] instead.
    pub argv: Vec<String>,
}

/// Most bytes of randomness one guest call may ask the host for.
const MAX_RANDOM_BYTES: u64 = 1 << 20;
/// Most WASI resources (open files, streams) a guest may hold at once.
const MAX_RESOURCES: usize = 10_000;

impl Grants {
    /// A WASI context builder that grants only these: no environment, files or network
    /// beyond them, and bounds on what the guest can make the host allocate.
    pub fn builder(&self) -> Result<WasiCtxBuilder> {
        let mut builder = WasiCtxBuilder::new();
        builder.max_random_size(MAX_RANDOM_BYTES);
        self.apply(&mut builder)?;
        Ok(builder)
    }

    fn apply(&self, builder: &mut WasiCtxBuilder) -> Result<()> {
        for mount in &self.mounts {
            let perms = if mount.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            builder
                .preopened_dir(&mount.host, &mount.guest, perms)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("mounting {}", mount.host.display()))?;
        }
        for (key, value) in &self.env {
            builder.env(key, value);
        }
        Ok(())
    }
}
