//! The on-disk cache of compiled wasm code, keyed by what it was compiled from.
//!
//! Compiling CPython (a ~9 MB module) takes seconds; loading its compiled form takes
//! milliseconds. Artifacts are named by a hash of the input bytes, wasmtime's version and
//! the engine's settings, so a stale or foreign artifact is never loaded. Compiled code is
//! loaded as native code, so the cache is private: its directory is created 0700, and a
//! directory or file that another user owns or can write is neither read nor written.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module};

/// Where compiled code is cached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheLocation {
    /// [`default_cache_dir`], or no cache when there is none.
    #[default]
    Default,
    /// This directory (created if missing).
    Dir(PathBuf),
    /// No cache: compile in memory every time the embedded form cannot be used.
    Disabled,
}

/// `$PYEVAL_CACHE_DIR`, else `$XDG_CACHE_HOME/pyeval`, else `$HOME/.cache/pyeval`; `None`
/// when none of them is set to an absolute path (never the working directory).
pub fn default_cache_dir() -> Option<PathBuf> {
    cache_dir_from(|var| std::env::var_os(var))
}

/// [`default_cache_dir`] with the environment read through `var`.
fn cache_dir_from(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> Option<PathBuf> {
    let absolute = |name: &str| var(name).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("PYEVAL_CACHE_DIR")
        .or_else(|| absolute("XDG_CACHE_HOME").map(|dir| dir.join("pyeval")))
        .or_else(|| absolute("HOME").map(|dir| dir.join(".cache").join("pyeval")))
}

/// Compiled components and modules on disk, if there is a place for them.
#[derive(Debug, Clone)]
pub(crate) struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    /// The cache at `location`, under `compiled/`.
    pub(crate) fn new(location: &CacheLocation) -> Self {
        let root = match location {
            CacheLocation::Default => default_cache_dir(),
            CacheLocation::Dir(dir) => Some(dir.clone()),
            CacheLocation::Disabled => None,
        };
        CompileCache {
            dir: root.map(|dir| dir.join("compiled")),
        }
    }

    /// Loads the component or module (`T`) compiled from the input named by `source_key`
    /// (a hash of it): from the cache; else from `precompiled` (compiled at build time,
    /// used when this engine accepts it); else compiles `wasm`. What was not read from
    /// the cache is stored in it. `on_compile` runs before a compilation starts.
    pub(crate) fn load<T: Compiled>(
        &self,
        engine: &Engine,
        source_key: &str,
        precompiled: Option<&[u8]>,
        wasm: &[u8],
        on_compile: impl FnOnce(),
    ) -> Result<T> {
        let path = self
            .private_dir()
            .map(|dir| dir.join(format!("{}.cwasm", artifact_key(engine, source_key))));
        if let Some(path) = path.as_deref().filter(|p| is_private_file(p)) {
            // A stale or damaged artifact falls through and is replaced.
            if let Ok(loaded) = T::load_file(engine, path) {
                return Ok(loaded);
            }
        }
        if let Some(bytes) = precompiled {
            if let Ok(loaded) = T::load_bytes(engine, bytes) {
                if let Some(path) = &path {
                    let _ = store_atomically(path, bytes);
                }
                return Ok(loaded);
            }
        }
        on_compile();
        let compiled = T::precompile(engine, wasm).context("compiling the WebAssembly")?;
        // A cache that cannot be written only costs speed next time; do not fail the run.
        if let Some(path) = &path {
            let _ = store_atomically(path, &compiled);
        }
        T::load_bytes(engine, &compiled).context("loading the freshly compiled code")
    }

    /// The cache directory, created 0700 if missing; `None` when there is none or it is
    /// not safe to use.
    fn private_dir(&self) -> Option<&Path> {
        let dir = self.dir.as_deref()?;
        if !dir.exists() {
            create_private_dir(dir).ok()?;
        }
        is_private(dir, true).then_some(dir)
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Whether `path` is a regular file (not a link) that only this user can have written.
fn is_private_file(path: &Path) -> bool {
    is_private(path, false)
}

/// Whether `path` is a directory (`dir`) or a regular file, not a symbolic link, owned by
/// this user and writable by nobody else.
#[cfg(unix)]
#[allow(unsafe_code, reason = "geteuid cannot fail")]
fn is_private(path: &Path, dir: bool) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return false;
    };
    let kind_ok = if dir { meta.is_dir() } else { meta.is_file() };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    kind_ok && meta.uid() == me && meta.mode() & 0o022 == 0
}

#[cfg(not(unix))]
fn is_private(path: &Path, dir: bool) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| if dir { m.is_dir() } else { m.is_file() })
}

/// Compiled wasm that the cache can hold: a component or a core module.
pub(crate) trait Compiled: Sized {
    /// Compiles `wasm` to the engine's serialized form.
    fn precompile(engine: &Engine, wasm: &[u8]) -> Result<Vec<u8>>;
    /// Loads a serialized artifact from disk.
    fn load_file(engine: &Engine, path: &Path) -> Result<Self>;
    /// Loads a serialized artifact from memory.
    fn load_bytes(engine: &Engine, bytes: &[u8]) -> Result<Self>;
}

// SAFETY (both impls): artifacts are written by this same wasmtime version with the same
// engine settings (both are in the file name) into a directory only this user can write
// (checked above, with the file itself), or come from the compiler, in this process or
// at build time (embedded); wasmtime re-checks version and settings when loading.

#[allow(
    unsafe_code,
    reason = "compiled code is loaded only from the build or the private cache, keyed by what it was compiled from"
)]
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

#[allow(
    unsafe_code,
    reason = "compiled code is loaded only from the build or the private cache, keyed by what it was compiled from"
)]
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
pub(crate) fn source_key(bytes: &[u8]) -> String {
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
    let tmp = dir.join(format!(
        ".tmp-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_new_cache_directory_is_private() {
        let root = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(&CacheLocation::Dir(root.path().join("a/b")));
        let dir = cache.private_dir().expect("created");
        let meta = std::fs::metadata(dir).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    }

    #[test]
    fn what_others_can_write_is_not_used() {
        let root = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(&CacheLocation::Dir(root.path().to_owned()));
        let dir = cache.private_dir().unwrap().to_owned();
        let file = dir.join("x.cwasm");
        std::fs::write(&file, b"code").unwrap();
        mode(&file, 0o600);
        assert!(is_private_file(&file));
        mode(&file, 0o666);
        assert!(
            !is_private_file(&file),
            "a world-writable artifact is loaded"
        );
        let link = dir.join("link.cwasm");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(!is_private_file(&link), "a symbolic link is followed");
        mode(&dir, 0o777);
        assert!(
            cache.private_dir().is_none(),
            "a world-writable directory is used"
        );
        mode(&dir, 0o700);
    }

    #[test]
    fn no_default_cache_without_an_absolute_location() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.into())
            }
        };
        assert_eq!(cache_dir_from(env(&[])), None);
        assert_eq!(cache_dir_from(env(&[("HOME", "")])), None);
        assert_eq!(cache_dir_from(env(&[("HOME", "rel")])), None);
        assert_eq!(
            cache_dir_from(env(&[("HOME", "/h"), ("XDG_CACHE_HOME", ".")])),
            Some(PathBuf::from("/h/.cache/pyeval"))
        );
        assert_eq!(
            cache_dir_from(env(&[("HOME", "/h"), ("PYEVAL_CACHE_DIR", "/p")])),
            Some(PathBuf::from("/p"))
        );
        assert!(CompileCache::new(&CacheLocation::Disabled).dir.is_none());
    }
}
