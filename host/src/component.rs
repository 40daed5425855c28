//! Which evaluator component an [`crate::Evaluator`] runs: the one this crate was built
//! with (embedded, with its compiled form, in release builds; read from the build's files
//! in others, see build.rs), or one the caller supplies.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::SetupError;

/// The component this crate was built with: its bytes, their SHA-256 and its compiled
/// form, if the build made one.
struct BuiltIn {
    bytes: &'static [u8],
    sha256: &'static str,
    compiled: Option<&'static [u8]>,
}

/// The component `just build-component` made, embedded at build time.
#[cfg(pyeval_embedded)]
mod built_in {
    use super::{BuiltIn, SetupError};

    /// The component.
    static BYTES: &[u8] = include_bytes!(env!("PYEVAL_COMPONENT_PATH"));
    /// Its SHA-256, computed at build time.
    const SHA256: &str = env!("PYEVAL_COMPONENT_SHA256");
    /// It compiled for the default (metered) engine at build time; empty when the build
    /// had no compiled form.
    static COMPILED: &[u8] = include_bytes!(env!("PYEVAL_COMPILED_PATH"));

    /// The component, its SHA-256 and its compiled form, if any.
    pub(super) fn get() -> Result<BuiltIn, SetupError> {
        Ok(BuiltIn {
            bytes: BYTES,
            sha256: SHA256,
            compiled: (!COMPILED.is_empty()).then_some(COMPILED),
        })
    }

    /// How errors name it.
    pub(super) const NAME: &str = "the embedded evaluator component";
}

/// The component `just build-component` made, read from the build's files once a process.
#[cfg(not(pyeval_embedded))]
mod built_in {
    use std::path::Path;
    use std::sync::OnceLock;

    use super::{BuiltIn, SetupError};

    /// `target/pyeval.wasm` of the build; `.cwasm` and `.cwasm.source` beside it.
    const PATH: &str = env!("PYEVAL_COMPONENT_PATH");

    struct Files {
        bytes: Vec<u8>,
        sha256: String,
        compiled: Option<Vec<u8>>,
    }

    static FILES: OnceLock<Result<Files, SetupError>> = OnceLock::new();

    fn read() -> Result<Files, SetupError> {
        let path = Path::new(PATH);
        let bytes = std::fs::read(path).map_err(|e| SetupError::Read {
            path: PATH.to_owned(),
            reason: format!("{e} (this build reads the component from the build's files; run `just build-component`)"),
        })?;
        let sha256 = crate::cache::source_key(&bytes);
        // The compiled form, used only when it was compiled from these very bytes.
        let compiled_from = std::fs::read_to_string(path.with_extension("cwasm.source"));
        let compiled = match compiled_from {
            Ok(from) if from.lines().next() == Some(sha256.as_str()) => {
                std::fs::read(path.with_extension("cwasm")).ok()
            }
            _ => None,
        };
        Ok(Files {
            bytes,
            sha256,
            compiled,
        })
    }

    /// The component, its SHA-256 and its compiled form, if any.
    pub(super) fn get() -> Result<BuiltIn, SetupError> {
        let files = FILES.get_or_init(read).as_ref().map_err(Clone::clone)?;
        Ok(BuiltIn {
            bytes: &files.bytes,
            sha256: &files.sha256,
            compiled: files.compiled.as_deref(),
        })
    }

    /// How errors name it.
    pub(super) const NAME: &str = PATH;
}

/// Where the component comes from.
#[derive(Clone, Default)]
pub(crate) enum ComponentSource {
    /// The component this crate was built with.
    #[default]
    Embedded,
    /// Bytes the caller gave.
    Bytes(Arc<[u8]>),
    /// A file the caller named, read when the evaluator is built.
    File(PathBuf),
}

impl std::fmt::Debug for ComponentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ComponentSource::Embedded => f.write_str("Embedded"),
            ComponentSource::Bytes(bytes) => write!(f, "Bytes({} bytes)", bytes.len()),
            ComponentSource::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

/// A component's bytes, the key of its compiled form in the cache, and its compiled form
/// when one was made at build time.
pub(crate) struct Loaded<'a> {
    /// The component.
    pub bytes: Cow<'a, [u8]>,
    /// SHA-256 of the bytes, in hex.
    pub key: String,
    /// Compiled at build time for the default engine.
    pub compiled: Option<&'static [u8]>,
    /// How errors name it.
    pub name: String,
}

impl ComponentSource {
    /// Reads the component.
    pub(crate) fn load(&self) -> Result<Loaded<'_>, SetupError> {
        Ok(match self {
            ComponentSource::Embedded => {
                let built_in = built_in::get()?;
                Loaded {
                    bytes: Cow::Borrowed(built_in.bytes),
                    key: built_in.sha256.to_owned(),
                    compiled: built_in.compiled,
                    name: built_in::NAME.into(),
                }
            }
            ComponentSource::Bytes(bytes) => {
                let name = "the evaluator component given".to_owned();
                check_stamp(bytes, &name)?;
                Loaded {
                    key: crate::cache::source_key(bytes),
                    bytes: Cow::Borrowed(bytes),
                    compiled: None,
                    name,
                }
            }
            ComponentSource::File(path) => {
                let bytes = std::fs::read(path).map_err(|e| SetupError::Read {
                    path: path.display().to_string(),
                    reason: e.to_string(),
                })?;
                check_stamp(&bytes, &path.display().to_string())?;
                Loaded {
                    key: crate::cache::source_key(&bytes),
                    bytes: Cow::Owned(bytes),
                    compiled: None,
                    name: path.display().to_string(),
                }
            }
        })
    }
}

/// Refuses a component that does not name this pyeval in its
/// [`pyeval_engine::STAMP_SECTION`]: one built by another version, or not by pyeval.
fn check_stamp(bytes: &[u8], name: &str) -> Result<(), SetupError> {
    let refuse = |reason: String| SetupError::Load {
        what: name.to_owned(),
        reason,
    };
    let expected = pyeval_engine::stamp();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| refuse(format!("not a WebAssembly component: {e}")))?;
        if let wasmparser::Payload::CustomSection(section) = payload {
            if section.name() == pyeval_engine::STAMP_SECTION {
                let found = String::from_utf8_lossy(section.data());
                if found == expected {
                    return Ok(());
                }
                return Err(refuse(format!(
                    "it was built for {found}, this is {expected}: build it again with this \
                     version (`just build-component-with LOCK OUT.wasm`)"
                )));
            }
        }
    }
    Err(refuse(format!(
        "not a pyeval evaluator component (it has no {} section naming the pyeval it was \
         built for); build one with `just build-component-with LOCK OUT.wasm`",
        pyeval_engine::STAMP_SECTION
    )))
}

/// Whether the component this crate was built with comes with its compiled form (so a
/// first run on a new machine does not compile it).
pub fn embedded_is_precompiled() -> bool {
    built_in::get().is_ok_and(|built_in| built_in.compiled.is_some())
}
