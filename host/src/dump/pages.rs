//! Which pages of a session's memory differ from a fresh instance's.
//!
//! A fresh instance of the evaluator (the reference, made once and never run) holds the
//! snapshot's memory; a session's pages are compared with its. Most pages of a session
//! were never written, and the kernel knows which: in the pool, an instance's memory maps
//! the snapshot's image copy-on-write, so a page the instance wrote (or the pool copied
//! back when the slot was reused) is private anonymous memory, while one it never wrote is
//! still the image's page, or absent. Where `/proc/self/pagemap` can be read, only the
//! written pages are compared; elsewhere all of them are.

use std::os::unix::fs::FileExt;

use wasmtime::component::{Instance, WasmList};
use wasmtime::Store;

use super::{Run, PAGE};
use crate::sandbox::SandboxState;

/// A fresh instance's memory, for comparing with sessions' memories.
pub(crate) struct Reference {
    store: Store<SandboxState>,
    /// Keeps the instance alive with its memory.
    _instance: Instance,
    memory: WasmList<u8>,
}

impl Reference {
    pub(crate) fn new(
        store: Store<SandboxState>,
        instance: Instance,
        memory: WasmList<u8>,
    ) -> Self {
        Reference {
            store,
            _instance: instance,
            memory,
        }
    }

    /// The fresh instance's memory.
    fn memory(&self) -> &[u8] {
        self.memory.as_le_slice(&self.store)
    }
}

/// The runs of pages of `memory` that differ from `reference`'s (or from zeros past its
/// end), leaving out page 0 (see the guest's `state` module: it is never restored).
pub(crate) fn changed_pages(memory: &[u8], reference: &Reference) -> Vec<Run> {
    let fresh = reference.memory();
    let pages = memory.len() / PAGE;
    let written = written_pages(memory);
    let mut runs: Vec<Run> = Vec::new();
    let mut last: Option<usize> = None;
    for page in 1..pages {
        if written
            .as_ref()
            .is_some_and(|w| !w.get(page).copied().unwrap_or(true))
        {
            continue;
        }
        let bytes = &memory[page * PAGE..][..PAGE];
        let same = match fresh.get(page * PAGE..(page + 1) * PAGE) {
            Some(before) => bytes == before,
            None => bytes.iter().all(|b| *b == 0),
        };
        if same {
            continue;
        }
        match runs.last_mut() {
            Some(run) if last == Some(page - 1) => run.data.extend_from_slice(bytes),
            _ => runs.push(Run {
                offset: (page * PAGE) as u64,
                data: bytes.to_vec(),
            }),
        }
        last = Some(page);
    }
    runs
}

/// For each page of `memory`, whether it may have been written since it was mapped:
/// present (or swapped out) and not a page of a file or of shared memory. `None` where the
/// kernel does not say (no `/proc/self/pagemap`, or pages not the size dumps count in).
fn written_pages(memory: &[u8]) -> Option<Vec<bool>> {
    /// Flags of a pagemap entry (the kernel's Documentation/admin-guide/mm/pagemap.rst).
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    const FILE_OR_SHARED: u64 = 1 << 61;
    if rustix::param::page_size() != PAGE {
        return None;
    }
    let start = memory.as_ptr() as usize;
    if !start.is_multiple_of(PAGE) {
        return None;
    }
    let pages = memory.len() / PAGE;
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
    let mut entries = vec![0u8; pages * 8];
    pagemap
        .read_exact_at(&mut entries, (start / PAGE * 8) as u64)
        .ok()?;
    Some(
        entries
            .chunks_exact(8)
            .map(|entry| {
                let flags = u64::from_le_bytes(entry.try_into().expect("8 bytes"));
                flags & (PRESENT | SWAPPED) != 0 && flags & FILE_OR_SHARED == 0
            })
            .collect(),
    )
}
