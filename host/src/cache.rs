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
use wasmtime::Engine;

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

/// Precompiled components on disk.
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

    /// Loads the component compiled from the input named by `source_key` (a hash of it), or
    /// builds its bytes with `build`, compiles them and stores the result.
    ///
    /// `on_compile` runs before a compilation starts, so callers can tell the user why
    /// this run is slow.
    pub fn component(
        &self,
        engine: &Engine,
        source_key: &str,
        build: impl FnOnce() -> Result<Vec<u8>>,
        on_compile: impl FnOnce(),
    ) -> Result<Component> {
        let path = self
            .dir
            .join(format!("{}.cwasm", artifact_key(engine, source_key)));
        if path.is_file() {
            // SAFETY: the artifact was written by `Engine::precompile_component` of this
            // same wasmtime version and engine settings (both are in its file name), into a
            // directory only pyeval writes; wasmtime re-checks the header when loading.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => return Ok(component),
                Err(_) => {
                    // Stale or damaged: fall through and replace it.
                }
            }
        }
        on_compile();
        let bytes = build()?;
        let compiled = engine
            .precompile_component(&bytes)
            .map_err(anyhow::Error::from)
            .context("compiling the WebAssembly component")?;
        // A cache that cannot be written only costs speed next time; do not fail the run.
        let _ = store_atomically(&path, &compiled);
        // SAFETY: `compiled` was produced just now by this engine.
        unsafe { Component::deserialize(engine, &compiled) }
            .map_err(anyhow::Error::from)
            .context("loading the freshly compiled component")
    }
}

/// SHA-256 of `bytes`, in hex: the `source_key` of [`CompileCache::component`].
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
    let tmp = dir.join(format!(".tmp-{}-{}", std::process::id(), rand_suffix()));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}
