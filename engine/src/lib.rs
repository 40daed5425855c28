//! How pyeval configures wasmtime for CPython.
//!
//! The library runs code with these engines, and the component build precompiles the
//! evaluator with the very same settings so the library can embed the compiled form; both
//! must agree, so the settings live here only.

use anyhow::{Context, Result};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Where CPython's WASI build looks for its standard library: its compiled-in prefix is
/// `/usr/local`. The command path mounts a stdlib directory here, and the evaluator's
/// snapshot is taken with one here.
pub const GUEST_STDLIB: &str = "/usr/local/lib/python3.13";

/// Deepest wasm call stack a guest may use. CPython recurses deeply in C (the JSON decoder,
/// `repr` of nested containers); wasmtime's 512 KiB default traps before Python's own
/// recursion limit can raise `RecursionError`.
pub const MAX_WASM_STACK: usize = 4 << 20;

/// Most table elements an instance may have (CPython needs a few thousand).
pub const MAX_TABLE_ELEMENTS: usize = 1 << 16;

/// Largest linear memory a pooled slot holds: all of wasm32's address space, so that any
/// memory limit fits (the slot is address space reserved, not memory used).
pub const SLOT_MEMORY_BYTES: usize = 4 << 30;

/// Most bytes of written memory a slot restores by copying when its instance ends, instead
/// of unmapping them; the next instance in the slot then takes no page faults on them. A
/// fresh evaluation writes a few hundred KiB; a larger working set is unmapped beyond this.
pub const MAX_KEEP_RESIDENT: usize = 32 << 20;

/// Core instances, and tables, in one instance of the evaluator component (the module, the
/// preview1 adapter and the shims that link them), with room to spare.
const CORE_INSTANCES_PER_SLOT: u32 = 8;

/// How an engine finds memory and stacks for its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Mapped anew for every instance: for one-off runs.
    OnDemand,
    /// Reusable slots for at most this many live instances: for many short-lived instances
    /// of one component. A slot keeps the component's memory image mapped between
    /// instances; on Linux 6.7 and later only the pages an instance wrote are restored.
    Pooled {
        /// Instances alive at once, at most.
        slots: u32,
        /// Bytes of written memory each slot keeps resident between instances (at most
        /// [`MAX_KEEP_RESIDENT`]), where only written pages are restored.
        keep_resident: usize,
    },
}

/// Builds an engine for async execution; `metered` turns fuel accounting on. A metered
/// engine's code checks its fuel at every loop and call, where the host also finds its
/// wall-clock deadline (each store yields every so much fuel); an unmetered engine's code
/// checks an epoch instead, which nothing advances yet: that is the caller's clock.
/// (Checking both cost a metered guest a tenth of its time: CPython's dispatch loop ran
/// two checks per bytecode.)
pub fn build(metered: bool, allocation: Allocation) -> Result<Engine> {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .consume_fuel(metered)
        .epoch_interruption(!metered)
        // The snapshot's heap is tens of MB: let it always become a copy-on-write image
        // instead of being copied into every instance.
        .memory_guaranteed_dense_image_size(256 << 20)
        .max_wasm_stack(MAX_WASM_STACK)
        // The fiber that runs the guest must hold the whole wasm stack plus host frames.
        .async_stack_size(MAX_WASM_STACK + (1 << 20));
    portable_code(&mut config)?;
    match allocation {
        Allocation::OnDemand => Ok(Engine::new(&config)?),
        Allocation::Pooled {
            slots,
            keep_resident,
        } => {
            // Restoring only written pages needs the PAGEMAP_SCAN ioctl; without it, keeping
            // memory resident would copy the whole region back every time. It also needs the
            // pages to stay in RAM: a written page swapped out is not seen as written, and
            // would outlive its instance in the slot.
            if !swap_in_use() {
                config.allocation_strategy(pool(slots, Some(keep_resident)));
                if let Ok(engine) = Engine::new(&config) {
                    return Ok(engine);
                }
            }
            config.allocation_strategy(pool(slots, None));
            Engine::new(&config)
                .map_err(anyhow::Error::from)
                .with_context(|| {
                    format!(
                        "reserving {slots} instance slots ({} GiB of address space each)",
                        SLOT_MEMORY_BYTES >> 30
                    )
                })
        }
    }
}

/// The evaluator component compiled for a metered, pooled engine: what the library embeds
/// and loads without compiling (wasmtime refuses it where the settings or CPU differ).
pub fn precompile_evaluator(component: &[u8]) -> Result<Vec<u8>> {
    let allocation = Allocation::Pooled {
        slots: 1,
        keep_resident: MAX_KEEP_RESIDENT,
    };
    let engine = build(true, allocation)?;
    Ok(engine.precompile_component(component)?)
}

/// Whether this machine can move memory out of RAM (a swap file or partition, zram).
fn swap_in_use() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|swaps| lists_a_swap(&swaps))
}

/// Whether `/proc/swaps` text lists any swap area (below its heading line).
fn lists_a_swap(swaps: &str) -> bool {
    swaps.lines().skip(1).any(|line| !line.trim().is_empty())
}

/// A pooling allocator with `slots` of each resource; with `scan`, each slot keeps that
/// many bytes of written memory resident and restores them page by page (the engine fails
/// to build without kernel support).
fn pool(slots: u32, scan: Option<usize>) -> InstanceAllocationStrategy {
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots * CORE_INSTANCES_PER_SLOT)
        .total_tables(slots * CORE_INSTANCES_PER_SLOT)
        .total_memories(slots)
        .total_stacks(slots)
        .max_memory_size(SLOT_MEMORY_BYTES)
        .table_elements(MAX_TABLE_ELEMENTS);
    if let Some(keep_resident) = scan {
        pool.linear_memory_keep_resident(keep_resident.min(MAX_KEEP_RESIDENT))
            .table_keep_resident(MAX_TABLE_ELEMENTS * std::mem::size_of::<usize>())
            .pagemap_scan(Enabled::Yes);
    }
    InstanceAllocationStrategy::Pooling(pool)
}

/// Compiles for x86-64-v2 (SSE4.2, POPCNT: every x86-64 server of the last decade) instead
/// of the widest features of the machine that compiles, so precompiled code can be shared
/// between machines; wasmtime refuses code the host cannot run, and callers recompile.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[allow(unsafe_code, reason = "a Cranelift flag wasmtime cannot check for us")]
fn portable_code(config: &mut Config) -> Result<()> {
    config.target("x86_64-unknown-linux-gnu")?;
    // SAFETY: a named ISA level; wasmtime checks the host supports it before running code.
    unsafe {
        config.cranelift_flag_enable("x86-64-v2");
    }
    Ok(())
}

/// Other platforms compile for the host.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn portable_code(_config: &mut Config) -> Result<()> {
    Ok(())
}

/// The custom section in which a component names the pyeval it was built for; the library
/// refuses a component given to it without this version's [`stamp`].
pub const STAMP_SECTION: &str = "pyeval-version";

/// The contract a component is built against: this version and the WIT it implements.
pub fn stamp() -> String {
    const WIT: &str = include_str!("../../wit/pyeval.wit");
    // FNV-1a: a fingerprint of the WIT text, not a security measure.
    let hash = WIT.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("pyeval {} wit {hash:016x}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_areas_are_seen() {
        let heading = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
        assert!(!lists_a_swap(heading));
        assert!(!lists_a_swap(""));
        assert!(lists_a_swap(&format!(
            "{heading}/dev/zram0                              partition\t8388604\t\t0\t\t100\n"
        )));
        assert!(lists_a_swap(&format!(
            "{heading}/swapfile                               file\t\t2097148\t\t0\t\t-2\n"
        )));
    }

    /// Machines without PAGEMAP_SCAN get the plain pool; it must build (and so must the
    /// scanning one on this machine, or the evaluator would silently fall back).
    #[test]
    fn both_pools_build() {
        for scan in [None, Some(MAX_KEEP_RESIDENT)] {
            let mut config = Config::new();
            config.allocation_strategy(pool(2, scan));
            let built = Engine::new(&config);
            let supported = std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .ok()
                .and_then(|release| {
                    let mut parts = release.trim().split(['.', '-']);
                    let major: u32 = parts.next()?.parse().ok()?;
                    let minor: u32 = parts.next()?.parse().ok()?;
                    Some((major, minor) >= (6, 7))
                })
                .unwrap_or(false);
            if scan.is_some() && !supported {
                continue;
            }
            assert!(built.is_ok(), "scan {scan:?}: {:?}", built.err());
        }
    }
}
