//! The evaluator path: a pre-initialized evaluator component, a fresh instance per
//! evaluation (or one instance per [`Session`]), typed outcomes.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Linker};
use wasmtime::{Engine, Store};

use crate::cache::{CacheLocation, CompileCache};
use crate::component::ComponentSource;
use crate::dump::{DumpError, Image, Reference};
use crate::error::{EvalError, SetupError};
use crate::guard::{Guard, MemoryBudget};
use crate::limits::Limits;
use crate::outcome::Outcome;
use crate::sandbox::{Grants, SandboxState};
use crate::session::Session;
use crate::standby::Standby;

pub(crate) mod bindings {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "python",
        // A tool call may stop the guest (a suspension).
        imports: { default: async, "pyeval:sandbox/host-tools": async | trappable },
        exports: { default: async },
        with: {
            "wasi:cli/exit": wasmtime_wasi::p2::bindings::cli::exit,
            "wasi:http": wasmtime_wasi_http::p2::bindings::http,
            "wasi:io": wasmtime_wasi::p2::bindings::io,
            "wasi:clocks": wasmtime_wasi::p2::bindings::clocks,
        },
    });
}

/// The interface of the world that evaluates.
const EVALUATOR_INTERFACE: &str = "pyeval:sandbox/evaluator@0.1.0";

/// The interface that hands the host the instance's memory.
const STATE_INTERFACE: &str = "pyeval:sandbox/state@0.1.0";

/// Instances an evaluator holds at once by default.
pub const DEFAULT_MAX_INSTANCES: u32 = 1000;

/// Compiles and holds an evaluator component; cheap to clone, shareable across threads.
///
/// ```no_run
/// use pyeval::{Evaluator, Limits};
///
/// let evaluator = Evaluator::new()?;
/// let outcome = evaluator.eval("print('hi')\n6 * 7", &Limits::default())?;
/// assert_eq!(outcome.stdout, "hi\n");
/// assert_eq!(outcome.value.as_deref(), Some("42"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Evaluator {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) pre: InstancePre<SandboxState>,
    /// The exports of the `evaluator` interface: `eval`, `set-output-limit`,
    /// `grant-tools`, `set-live-output`.
    pub(crate) eval: ComponentExportIndex,
    pub(crate) set_output_limit: ComponentExportIndex,
    pub(crate) grant_tools: ComponentExportIndex,
    pub(crate) set_live_output: ComponentExportIndex,
    /// The exports `put-files`, `changed-files`, `charts` and `read-file`.
    pub(crate) put_files: ComponentExportIndex,
    pub(crate) changed_files: ComponentExportIndex,
    pub(crate) charts: ComponentExportIndex,
    pub(crate) read_file: ComponentExportIndex,
    /// The exports of the `state` interface.
    pub(crate) state: StateExports,
    pub(crate) metered: bool,
    pub(crate) max_instances: u32,
    pub(crate) budget: Option<Arc<MemoryBudget>>,
    /// SHA-256 of the component (hex), which dumps name.
    pub(crate) key: String,
    /// A fresh instance that dumps compare sessions with, made by the first dump.
    pub(crate) reference: Mutex<Option<Reference>>,
    /// The next fresh instance, made ahead, and fresh evaluations' instances to end.
    pub(crate) standby: Standby,
    source: ComponentSource,
}

/// The exports `memory`, `restore-begin`, `write-memory` and `restore-end`.
pub(crate) struct StateExports {
    pub(crate) memory: ComponentExportIndex,
    pub(crate) restore_begin: ComponentExportIndex,
    pub(crate) write_memory: ComponentExportIndex,
    pub(crate) restore_end: ComponentExportIndex,
}

impl Inner {
    /// A new instance in `store`; if there is no slot or memory for it, the standby's are
    /// given back and it is tried once more.
    pub(crate) async fn instantiate(
        &self,
        store: &mut Store<SandboxState>,
    ) -> wasmtime::Result<Instance> {
        match self.pre.instantiate_async(&mut *store).await {
            Err(_) if self.standby.give_back().await => self.pre.instantiate_async(store).await,
            made => made,
        }
    }

    /// Makes the fresh instance dumps compare with, if it is not made yet. It takes one of
    /// the evaluator's instances for as long as the evaluator lives.
    pub(crate) async fn reference(&self, limits: &Limits) -> Result<(), EvalError> {
        if self.reference.lock().expect("not poisoned").is_some() {
            return Ok(());
        }
        let guard = Guard::new(limits.memory_bytes, self.budget.clone(), 0);
        let state = SandboxState::new(wasmtime_wasi::WasiCtxBuilder::new().build(), guard);
        let mut store = crate::sandbox::new_store(&self.engine, state, limits)?;
        let made = async {
            let instance = self.instantiate(&mut store).await?;
            let memory = crate::dump::view(&mut store, instance, &self.state.memory).await?;
            wasmtime::Result::<_>::Ok((instance, memory))
        };
        let (instance, memory) = match made.await {
            Ok(made) => made,
            Err(e)
                if e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>()
                    .is_some() =>
            {
                return Err(EvalError::TooManyInstances {
                    limit: self.max_instances,
                })
            }
            Err(e) => return Err(SetupError::host(e).into()),
        };
        let mut reference = self.reference.lock().expect("not poisoned");
        reference.get_or_insert_with(|| Reference::new(store, instance, memory));
        Ok(())
    }
}

impl std::fmt::Debug for Evaluator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("component", &self.inner.source)
            .field("metered", &self.inner.metered)
            .field("max_instances", &self.inner.max_instances)
            .field("memory_budget", &self.memory_budget())
            .finish_non_exhaustive()
    }
}

impl Evaluator {
    /// The embedded component with the default settings: fuel metered,
    /// [`DEFAULT_MAX_INSTANCES`] instances, compiled code cached in the default location.
    pub fn new() -> Result<Self, SetupError> {
        Self::builder().build()
    }

    /// A builder for any other settings.
    pub fn builder() -> EvaluatorBuilder {
        EvaluatorBuilder::default()
    }

    /// Evaluates `code` in a fresh interpreter: nothing is shared with any other call.
    pub fn eval(&self, code: &str, limits: &Limits) -> Result<Outcome, EvalError> {
        self.eval_with(code, limits, &Grants::default())
    }

    /// Like [`Evaluator::eval`], with mounts, environment variables and arguments granted.
    /// Callable from any thread, a tokio runtime's included.
    pub fn eval_with(
        &self,
        code: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<Outcome, EvalError> {
        crate::runtime::block_on(self.eval_async(code, limits, grants))?
    }

    /// [`Evaluator::eval_with`] for async callers: await it on a tokio runtime with timers
    /// enabled.
    pub async fn eval_async(
        &self,
        code: &str,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<Outcome, EvalError> {
        let _running = self.inner.standby.running();
        let mut session = self.session_with(limits, grants)?;
        session.fresh = true;
        let outcome = session.eval_async(code).await;
        self.inner.standby.retire(session);
        outcome
    }

    /// A session: one interpreter whose state persists across its evaluations.
    pub fn session(&self, limits: &Limits) -> Result<Session, EvalError> {
        self.session_with(limits, &Grants::default())
    }

    /// Like [`Evaluator::session`], with mounts, environment variables and arguments
    /// granted.
    pub fn session_with(&self, limits: &Limits, grants: &Grants) -> Result<Session, EvalError> {
        Session::start(self.inner.clone(), limits.clone(), grants)
    }

    /// A session in the state `dump` holds (see [`Session::dump`]), under `limits` and
    /// with `grants`, which must grant the same host directories, in the same order, as the
    /// dumped session's. Refused ([`EvalError::InvalidDump`]) when the dump was taken from
    /// another component, is damaged, or needs more memory than `limits` give.
    pub fn restore(
        &self,
        dump: &[u8],
        limits: &Limits,
        grants: &Grants,
    ) -> Result<Session, EvalError> {
        crate::runtime::block_on(self.restore_async(dump, limits, grants))?
    }

    /// [`Evaluator::restore`] for async callers.
    pub async fn restore_async(
        &self,
        dump: &[u8],
        limits: &Limits,
        grants: &Grants,
    ) -> Result<Session, EvalError> {
        let image = Image::decode(dump, &self.inner.key, limits.memory_bytes as u64)?;
        let given = grants.mount_paths();
        if image.mounts != given {
            return Err(DumpError::OtherMounts {
                dumped: image.mounts,
                given,
            }
            .into());
        }
        let mut session = self.session_with(limits, grants)?;
        session.restore(&image).await?;
        Ok(session)
    }

    /// Goes on with a suspended evaluation (see [`crate::Suspension`]): the session it ran
    /// in restored as it was before it, under `limits` and with `grants` (which grant the
    /// tools its code calls), its code run again with the calls it made answered from the
    /// journal and the suspended call answered with `answer`. The session and the
    /// evaluation's outcome; or, if another call suspends it, [`EvalError::Suspended`]
    /// again (with the calls so far in its journal).
    pub fn resume(
        &self,
        suspension: &crate::Suspension,
        answer: crate::ToolResult,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<(Session, Outcome), EvalError> {
        crate::runtime::block_on(self.resume_async(suspension, answer, limits, grants))?
    }

    /// [`Evaluator::resume`] for async callers.
    pub async fn resume_async(
        &self,
        suspension: &crate::Suspension,
        answer: crate::ToolResult,
        limits: &Limits,
        grants: &Grants,
    ) -> Result<(Session, Outcome), EvalError> {
        suspension.check(&self.inner.key, limits)?;
        let (mut session, before) = match &suspension.state {
            Some(dump) => (
                self.restore_async(dump, limits, grants).await?,
                crate::session::Before::Dumped(dump.clone()),
            ),
            None => (
                self.session_with(limits, grants)?,
                crate::session::Before::Fresh,
            ),
        };
        let replay = suspension.replay(answer, limits.tools.bytes);
        let outcome = session
            .evaluate(&suspension.code, Some(before), replay)
            .await?;
        Ok((session, outcome))
    }

    /// Whether this evaluator counts fuel.
    pub fn is_metered(&self) -> bool {
        self.inner.metered
    }

    /// Most instances alive at once.
    pub fn max_instances(&self) -> u32 {
        self.inner.max_instances
    }

    /// Bytes of memory its instances may grow by, together, if bounded.
    pub fn memory_budget(&self) -> Option<usize> {
        self.inner.budget.as_ref().map(|b| b.limit())
    }
}

/// How an [`Evaluator`] is built: which component, where its compiled code is cached,
/// whether fuel is metered, how many instances it holds.
///
/// ```no_run
/// use pyeval::{CacheLocation, Evaluator, Fuel, Limits};
///
/// // A component built with extra packages, loaded from a file.
/// let evaluator = Evaluator::builder()
///     .component_file("target/pyeval-sci.wasm")
///     .cache(CacheLocation::Dir("/var/cache/pyeval".into()))
///     .max_instances(64)
///     .on_compile(|| eprintln!("compiling the component once..."))
///     .build()?;
/// let limits = Limits::default().with_fuel(Fuel::Limited(50_000_000));
/// let mut session = evaluator.session(&limits)?;
/// session.eval("x = 41")?;
/// assert_eq!(session.eval("x + 1")?.value.as_deref(), Some("42"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct EvaluatorBuilder {
    source: ComponentSource,
    cache: CacheLocation,
    metered: bool,
    max_instances: u32,
    memory_budget: Option<usize>,
    on_compile: Option<Box<dyn FnOnce() + Send>>,
}

impl Default for EvaluatorBuilder {
    fn default() -> Self {
        EvaluatorBuilder {
            source: ComponentSource::Embedded,
            cache: CacheLocation::Default,
            metered: true,
            max_instances: DEFAULT_MAX_INSTANCES,
            memory_budget: default_memory_budget(),
            on_compile: None,
        }
    }
}

impl std::fmt::Debug for EvaluatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvaluatorBuilder")
            .field("component", &self.source)
            .field("cache", &self.cache)
            .field("metered", &self.metered)
            .field("max_instances", &self.max_instances)
            .field("memory_budget", &self.memory_budget)
            .field("on_compile", &self.on_compile.is_some())
            .finish()
    }
}

impl EvaluatorBuilder {
    /// Runs this component (the bytes of a `.wasm` file) instead of the embedded one.
    /// [`EvaluatorBuilder::build`] refuses a component not built for this version of pyeval
    /// (`just build-component-with`, e.g. target/pyeval-sci.wasm with numpy).
    pub fn component_bytes(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.source = ComponentSource::Bytes(Arc::from(bytes.into()));
        self
    }

    /// Runs the component in this file instead of the embedded one; it is read, and
    /// refused unless built for this version of pyeval, by [`EvaluatorBuilder::build`].
    pub fn component_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.source = ComponentSource::File(path.into());
        self
    }

    /// Where compiled code is cached (default: [`CacheLocation::Default`]).
    pub fn cache(mut self, location: CacheLocation) -> Self {
        self.cache = location;
        self
    }

    /// Whether the engine counts fuel (default: yes). Without it (a little faster) only
    /// [`crate::Fuel::Unlimited`] budgets are accepted.
    pub fn metered(mut self, metered: bool) -> Self {
        self.metered = metered;
        self
    }

    /// Instances alive at once, at most: evaluations in flight plus open sessions
    /// (default [`DEFAULT_MAX_INSTANCES`]). Each takes a slot of 4 GiB of reserved address
    /// space (not memory) in a pool that is reused, which is what makes fresh instances
    /// cheap.
    pub fn max_instances(mut self, instances: u32) -> Self {
        self.max_instances = instances;
        self
    }

    /// Bytes of memory all instances together may grow by past their snapshot (default:
    /// [`default_memory_budget`]; `None` for no bound). A growth past it fails, like
    /// one past an instance's own cap: Python raises `MemoryError`, or the evaluation stops
    /// with [`crate::Stopped::MemoryBudget`].
    pub fn memory_budget(mut self, bytes: Option<usize>) -> Self {
        self.memory_budget = bytes;
        self
    }

    /// Called once if the component has to be compiled (seconds), before compiling
    /// starts, so a caller can tell its user why this start is slow.
    pub fn on_compile(mut self, callback: impl FnOnce() + Send + 'static) -> Self {
        self.on_compile = Some(Box::new(callback));
        self
    }

    /// Loads and compiles the component (or loads its compiled form) and links it.
    pub fn build(self) -> Result<Evaluator, SetupError> {
        if self.max_instances == 0 {
            return Err(SetupError::Config(
                "an evaluator must hold at least 1 instance".into(),
            ));
        }
        let keep_resident = slot_keep_resident(self.memory_budget, self.max_instances);
        let budget = match self.memory_budget {
            Some(limit) => {
                let budget = MemoryBudget::new(limit);
                let set_aside = budget.take(keep_resident * self.max_instances as usize);
                debug_assert!(set_aside, "an eighth of the budget at most");
                Some(budget)
            }
            None => None,
        };
        let allocation = pyeval_engine::Allocation::Pooled {
            slots: self.max_instances,
            keep_resident,
        };
        let engine = crate::clock::engine(self.metered, allocation).map_err(SetupError::host)?;
        let loaded = self.source.load()?;
        let load_error = |e: anyhow::Error| SetupError::Load {
            what: loaded.name.clone(),
            reason: format!("{e:#}"),
        };
        let on_compile = self.on_compile;
        let component: Component = CompileCache::new(&self.cache)
            .load(&engine, &loaded.key, loaded.compiled, &loaded.bytes, || {
                if let Some(callback) = on_compile {
                    callback()
                }
            })
            .map_err(load_error)?;
        let mut linker = Linker::new(&engine);
        crate::sandbox::link_guest(&mut linker)?;
        let not_ours = |e: wasmtime::Error| SetupError::Load {
            what: loaded.name.clone(),
            reason: format!(
                "not an evaluator component of this pyeval version (world \
                 pyeval:sandbox/python@0.1.0): {e:#}"
            ),
        };
        let pre = linker.instantiate_pre(&component).map_err(not_ours)?;
        // Checks every export of the world against this version's WIT.
        bindings::PythonPre::new(pre.clone()).map_err(not_ours)?;
        let interface = component.get_export_index(None, EVALUATOR_INTERFACE);
        let export = |name: &str| {
            component
                .get_export_index(interface.as_ref(), name)
                .ok_or_else(|| not_ours(wasmtime::format_err!("no export {name}")))
        };
        let (eval, set_output_limit) = (export("eval")?, export("set-output-limit")?);
        let (grant_tools, set_live_output) = (export("grant-tools")?, export("set-live-output")?);
        let (put_files, changed_files, charts, read_file) = (
            export("put-files")?,
            export("changed-files")?,
            export("charts")?,
            export("read-file")?,
        );
        let interface = component.get_export_index(None, STATE_INTERFACE);
        let export = |name: &str| {
            component
                .get_export_index(interface.as_ref(), name)
                .ok_or_else(|| not_ours(wasmtime::format_err!("no export {name}")))
        };
        let state = StateExports {
            memory: export("memory")?,
            restore_begin: export("restore-begin")?,
            write_memory: export("write-memory")?,
            restore_end: export("restore-end")?,
        };
        let key = loaded.key.clone();
        drop(loaded);
        let inner = Arc::new(Inner {
            engine,
            pre,
            eval,
            set_output_limit,
            grant_tools,
            set_live_output,
            put_files,
            changed_files,
            charts,
            read_file,
            state,
            metered: self.metered,
            max_instances: self.max_instances,
            budget,
            key,
            reference: Mutex::new(None),
            standby: Standby::new(),
            source: self.source,
        });
        inner
            .standby
            .start(Arc::downgrade(&inner))
            .map_err(SetupError::host)?;
        Ok(Evaluator { inner })
    }
}

/// Share of a memory budget set aside for the pages pool slots keep resident between
/// instances: one eighth.
const KEPT_SHARE: usize = 8;

/// Bytes of written memory each of `slots` pool slots keeps resident: as many as
/// [`pyeval_engine::MAX_KEEP_RESIDENT`], but all slots together at most an eighth of
/// `budget`, in whole 64 KiB (wasm) pages.
fn slot_keep_resident(budget: Option<usize>, slots: u32) -> usize {
    const WASM_PAGE: usize = 64 << 10;
    let most = pyeval_engine::MAX_KEEP_RESIDENT;
    budget.map_or(most, |budget| {
        (budget / KEPT_SHARE / slots as usize).min(most) / WASM_PAGE * WASM_PAGE
    })
}

/// Three quarters of the memory this process may use: the machine's, or less if its
/// control group (a container's limit) says so. The rest is left to what the host holds
/// beside the instances: compiled code, the server's connections and responses. `None` where
/// neither can be read.
pub fn default_memory_budget() -> Option<usize> {
    let usable = match (physical_memory(), cgroup_memory_limit()) {
        (Some(machine), Some(group)) => machine.min(group),
        (machine, group) => machine.or(group)?,
    };
    Some(usable / 4 * 3)
}

/// The machine's physical memory, from `/proc/meminfo`.
fn physical_memory() -> Option<usize> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The memory limit of this process's control group: cgroup v2's `memory.max` or v1's
/// `memory.limit_in_bytes`, where the group's directory or the mount's root holds it.
fn cgroup_memory_limit() -> Option<usize> {
    let groups = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let (root, file) = if controllers.is_empty() {
            ("/sys/fs/cgroup", "memory.max")
        } else if controllers.split(',').any(|c| c == "memory") {
            ("/sys/fs/cgroup/memory", "memory.limit_in_bytes")
        } else {
            return None;
        };
        [format!("{root}{path}/{file}"), format!("{root}/{file}")]
            .iter()
            .find_map(|file| memory_limit(&std::fs::read_to_string(file).ok()?))
    })
}

/// A cgroup memory limit file's value; `None` for no limit (`max`, or v1's near-2^63).
fn memory_limit(text: &str) -> Option<usize> {
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes < 1 << 60).then_some(usize::try_from(bytes).ok()?)
}

#[cfg(test)]
mod tests {
    use super::{memory_limit, slot_keep_resident};

    #[test]
    fn pool_slots_keep_at_most_an_eighth_of_the_budget_resident() {
        let most = pyeval_engine::MAX_KEEP_RESIDENT;
        assert_eq!(slot_keep_resident(None, 1000), most);
        assert_eq!(slot_keep_resident(Some(64 << 30), 10), most);
        let per_slot = slot_keep_resident(Some(16 << 30), 1000);
        assert_eq!(per_slot, 2 << 20, "16 GiB / 8 / 1000 in whole wasm pages");
        assert_eq!(slot_keep_resident(Some(64 << 20), 1000), 0);
    }

    #[test]
    fn cgroup_limits_read_as_bytes_or_none() {
        assert_eq!(memory_limit("536870912\n"), Some(512 << 20));
        assert_eq!(memory_limit("max\n"), None);
        assert_eq!(memory_limit("9223372036854771712\n"), None);
        assert_eq!(memory_limit(""), None);
    }
}
