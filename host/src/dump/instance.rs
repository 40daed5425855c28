//! An instance's memory through its `state` exports (wit/pyeval.wit): viewed and
//! compared for a dump, written for a restore.

use wasmtime::component::{ComponentExportIndex, Instance, WasmList};
use wasmtime::Store;

use super::{Image, Run, WASM_PAGE};
use crate::evaluator::Inner;
use crate::sandbox::SandboxState;

/// Most bytes the guest's `write-memory` takes at once (its landing area's size).
const MAX_WRITE: usize = 1 << 20;

/// A view of `instance`'s whole linear memory, through its `memory` export (`export`).
pub(crate) async fn view(
    store: &mut Store<SandboxState>,
    instance: Instance,
    export: &ComponentExportIndex,
) -> wasmtime::Result<WasmList<u8>> {
    let memory = instance.get_typed_func::<(), (WasmList<u8>,)>(&mut *store, export)?;
    // Nothing is copied, but wasmtime counts the list's bytes against what a call may copy.
    let before = store.hostcall_fuel();
    store.set_hostcall_fuel(usize::MAX);
    let result = memory.call_async(&mut *store, ()).await;
    store.set_hostcall_fuel(before);
    Ok(result?.0)
}

/// The size of `instance`'s memory, and the runs of its pages that differ from the
/// evaluator's reference instance (which must have been made).
pub(crate) async fn read(
    evaluator: &Inner,
    store: &mut Store<SandboxState>,
    instance: Instance,
) -> wasmtime::Result<(u64, Vec<Run>)> {
    let memory = view(store, instance, &evaluator.state.memory).await?;
    let memory = memory.as_le_slice(&*store);
    let size = memory.len() as u64;
    if !size.is_multiple_of(WASM_PAGE) {
        return Err(wasmtime::format_err!(
            "a memory of {size} bytes cannot be dumped"
        ));
    }
    let reference = evaluator.reference.lock().expect("not poisoned");
    let reference = reference.as_ref().expect("made before the dump");
    Ok((size, super::pages::changed_pages(memory, reference)))
}

/// Writes `image` into the fresh `instance`; false if it could not grow to its size.
pub(crate) async fn write(
    evaluator: &Inner,
    store: &mut Store<SandboxState>,
    instance: Instance,
    image: &Image,
) -> wasmtime::Result<bool> {
    let exports = &evaluator.state;
    let (grown,) = instance
        .get_typed_func::<(u64,), (bool,)>(&mut *store, &exports.restore_begin)?
        .call_async(&mut *store, (image.size,))
        .await?;
    if !grown {
        return Ok(false);
    }
    let write = instance.get_typed_func::<(u32, &[u8]), ()>(&mut *store, &exports.write_memory)?;
    for run in &image.runs {
        for (i, chunk) in run.data.chunks(MAX_WRITE).enumerate() {
            let offset = u32::try_from(run.offset + (i * MAX_WRITE) as u64)?;
            write.call_async(&mut *store, (offset, chunk)).await?;
        }
    }
    instance
        .get_typed_func::<(), ()>(&mut *store, &exports.restore_end)?
        .call_async(&mut *store, ())
        .await?;
    Ok(true)
}
