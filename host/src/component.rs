//! Which evaluator component an [`crate::Evaluator`] runs: the one embedded in this crate
//! (with its compiled form, made at build time), or one the caller supplies.

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::SetupError;

/// The component `just build-component` made, embedded at build time.
static EMBEDDED: &[u8] = include_bytes!(env!("PYEVAL_COMPONENT_PATH"));
/// Its SHA-256, computed at build time.
const EMBEDDED_SHA256: &str = env!("PYEVAL_COMPONENT_SHA256");
/// The embedded component compiled for the default (metered) engine at build time; empty
/// when the build had no compiled form.
static EMBEDDED_COMPILED: &[u8] = include_bytes!(env!("PYEVAL_COMPILED_PATH"));

/// Where the component comes from.
#[derive(Clone, Default)]
pub(crate) enum ComponentSource {
    /// The component embedded in this crate.
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
            ComponentSource::Embedded => Loaded {
                bytes: Cow::Borrowed(EMBEDDED),
                key: EMBEDDED_SHA256.to_owned(),
                compiled: (!EMBEDDED_COMPILED.is_empty()).then_some(EMBEDDED_COMPILED),
                name: "the embedded evaluator component".into(),
            },
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

/// Whether the embedded component was compiled at build time (so a first run on a new
/// machine does not compile it).
pub fn embedded_is_precompiled() -> bool {
    !EMBEDDED_COMPILED.is_empty()
}
