//! The on-disk cache: compiled wasm code, keyed by what it was compiled from.
//!
//! Compiling CPython (a ~9 MB module) takes seconds; loading its precompiled form takes
//! milliseconds. Artifacts live in `$PYEVAL_CACHE_DIR`, else `$XDG_CACHE_HOME/pyeval`, else
//! `~/.cache/pyeval`, under `compiled/`, named by a hash of the input bytes, wasmtime's
//! version and the engine's settings, so a stale or foreign artifact is never loaded.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// The directory pyeval caches into (created on demand).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PYEVAL_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("pyeval");
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
    PathBuf::from(home).join(".cache").join("pyeval")
}

/// Precompiled components and modules on disk.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// A cache rooted at `dir/compiled`.
    pub fn new(dir: &Path) -> Self {
        CompileCache {
            dir: dir.join("compiled"),
        }
    }

    /// The cache in [`cache_dir`].
    pub fn default_location() -> Self {
        Self::new(&cache_dir())
    }

    /// Loads the component or module (`T`) compiled from the input named by `source_key`
    /// (a hash of it), or builds the input's bytes with `build`, compiles them and stores
    /// the result.
    ///
    /// `on_compile` runs before a compilation starts, so callers can tell the user why
    /// this run is slow.
    pub fn load<T: Compiled>(
        &self,
        engine: &Engine,
        source_key: &str,
        build: impl FnOnce() -> Result<Vec<u8>>,
        on_compile: impl FnOnce(),
    ) -> Result<T> {
        let path = self
            .dir
            .join(format!("{}.cwasm", artifact_key(engine, source_key)));
        if path.is_file() {
            // A stale or damaged artifact falls through and is replaced.
            if let Ok(loaded) = T::load_file(engine, &path) {
                return Ok(loaded);
            }
        }
        on_compile();
        let compiled = T::precompile(engine, &build()?).context("compiling the WebAssembly")?;
        // A cache that cannot be written only costs speed next time; do not fail the run.
        let _ = store_atomically(&path, &compiled);
        T::load_bytes(engine, &compiled).context("loading the freshly compiled code")
    }
}

/// Compiled wasm that the cache can hold: a component or a core module.
pub trait Compiled: Sized {
    /// Compiles `wasm` to the engine's serialized form.
    fn precompile(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>>;
    /// Loads a serialized artifact from disk.
    fn load_file(engine: &Engine, path: &Path) -> Result<Self>;
    /// Loads a serialized artifact from memory.
    fn load_bytes(engine: &Engine, bytes: &[u8]) -> Result<Self>;
}

// SAFETY (both impls): artifacts are written by this same wasmtime version with the same
// engine settings (both are in the file name), into a directory only pyeval writes, or come
// straight from the compiler; wasmtime re-checks the header when loading.

impl Compiled for Component {
    fn precompile(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>> {
        Ok(engine.precompile_component(wasm)?)
    }
    fn load_file(engine: &Engine, path: &Path) -> Result<Self> {
        Ok(unsafe { Component::deserialize_file(engine, path) }?)
    }
    fn load_bytes(engine: &Engine, bytes: &[u8]) -> Result<Self> {
        Ok(unsafe { Component::deserialize(engine, bytes) }?)
    }
}

impl Compiled for Module {
    fn precompile(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>> {
        Ok(engine.precompile_module(wasm)?)
    }
    fn load_file(engine: &Engine, path: &Path) -> Result<Self> {
        Ok(unsafe { Module::deserialize_file(engine, path) }?)
    }
    fn load_bytes(engine: &Engine, bytes: &[u8]) -> Result<Self> {
        Ok(unsafe { Module::deserialize(engine, bytes) }?)
    }
}

/// SHA-256 of `bytes`, in hex: the `source_key` of [`CompileCache::load`].
pub fn source_key(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hash of the source's key and of everything in the engine that changes compiled code.
fn artifact_key(engine: &Engine, source_key: &str) -> String {
    let mut engine_hasher = std::collections::hash_map::DefaultHasher::new();
    engine
        .precompile_compatibility_hash()
        .hash(&mut engine_hasher);
    let mut sha = Sha256::new();
    sha.update(source_key.as_bytes());
    sha.update(engine_hasher.finish().to_le_bytes());
    hex::encode(&sha.finalize()[..16])
}

fn store_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no parent")?;
    std::fs::create_dir_all(dir)?;
    let tmp = tempfile_path(dir);
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A fresh file name in `dir` for this process.
fn tempfile_path(dir: &Path) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    dir.join(format!(".tmp-{}-{nanos}", std::process::id()))
}
