//! One interpreter instance whose state persists across evaluations.

use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{ComponentExportIndex, ComponentType, Instance, Lift};
use wasmtime::{PoolConcurrencyLimitError, Store};

use crate::dump::{Image, Run};
use crate::error::{EvalError, SetupError, StopContext, Stopped};
use crate::evaluator::bindings::exports::pyeval::sandbox::evaluator::Tool as GrantedTool;
use crate::evaluator::Inner;
use crate::files::{FileLimits, InputFile, OutputFile};
use crate::guard::Guard;
use crate::lift::CappedText;
use crate::limits::Limits;
use crate::live_output::{LiveOutput, Stream};
use crate::outcome::{Outcome, PyException};
use crate::raw_output::RawOutput;
use crate::sandbox::{Grants, Guarded, SandboxState};
use crate::suspension::{JournalEntry, Suspension};
use crate::tools::Suspend;

/// One interpreter instance; successive evaluations share its state.
///
/// ```no_run
/// use pyeval::{Evaluator, Limits};
///
/// let evaluator = Evaluator::new()?;
/// let mut session = evaluator.session(&Limits::default())?;
/// session.eval("import math\nr = 2")?;
/// assert_eq!(session.eval("round(math.pi * r ** 2, 2)")?.value.as_deref(), Some("12.57"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Session {
    evaluator: Arc<Inner>,
    limits: Limits,
    store: Store<SandboxState>,
    instance: Option<Instance>,
    /// What the running evaluation writes straight to fds 1 and 2.
    stdout: RawOutput,
    stderr: RawOutput,
    /// The tools granted, as the guest is told of them when its instance is made.
    tools: Vec<GrantedTool>,
    /// Whether output goes to a listener as it is written, and whether the guest was told
    /// so (it writes `sys.stdout` and `sys.stderr` through to fds 1 and 2 then).
    live: bool,
    guest_live: bool,
    /// Files given and not yet written into the instance (at the next evaluation).
    pending_files: Vec<InputFile>,
    /// What the session was granted (without its files, which its instance holds), for
    /// a fork and for a dump's directories.
    grants: Grants,
    /// Where the next evaluation resumes from if a tool suspends it (none: it cannot be
    /// suspended), and the calls it answers from a journal.
    before: Option<Before>,
    replay: Vec<JournalEntry>,
    ended: Option<Stopped>,
    /// Whether this is a fresh evaluation's session, counted as running by its caller.
    pub(crate) fresh: bool,
}

/// The state an evaluation started in, as a suspension keeps it.
pub(crate) enum Before {
    /// A fresh instance.
    Fresh,
    /// The session's state, noted before the evaluation.
    Noted(Box<Image>),
    /// A dump of it (that of the suspension being resumed).
    Dumped(Vec<u8>),
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("limits", &self.limits)
            .field("started", &self.instance.is_some())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn start(
        evaluator: Arc<Inner>,
        limits: Limits,
        grants: &Grants,
    ) -> Result<Self, EvalError> {
        crate::files::check(&grants.files, limits.files, limits.memory_bytes)?;
        let stdout = RawOutput::new(Stream::Stdout, limits.output_bytes as usize);
        let stderr = RawOutput::new(Stream::Stderr, limits.output_bytes as usize);
        let mut builder = grants.wasi()?;
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .arg("python")
            .args(&grants.argv);
        // The host buffers raw fd output for it: one cap's worth per stream.
        let guard = Guard::new(
            limits.memory_bytes,
            evaluator.budget.clone(),
            2 * limits.output_bytes as usize,
        );
        let mut state = SandboxState::new(builder.build(), guard);
        state.tools.grant(&grants.tools);
        state.network.grant(grants.network.as_ref());
        let store = crate::sandbox::new_store(&evaluator.engine, state, &limits)?;
        let mut session = Session {
            evaluator,
            limits,
            store,
            instance: None,
            stdout,
            stderr,
            tools: grants.tools.iter().map(|tool| tool.granted()).collect(),
            live: false,
            guest_live: false,
            pending_files: grants.files.clone(),
            grants: Grants {
                files: Vec::new(),
                ..grants.clone()
            },
            before: None,
            replay: Vec::new(),
            ended: None,
            fresh: false,
        };
        session.set_live_output(grants.live_output.clone());
        Ok(session)
    }

    /// Sends the output of later evaluations to `listener` as it is written (none: only to
    /// their outcomes), in place of the listener granted before.
    pub fn set_live_output(&mut self, listener: Option<LiveOutput>) {
        self.live = listener.is_some();
        self.stdout.listen(listener.clone());
        self.stderr.listen(listener);
    }

    /// Gives the next evaluation `files` in its working directory, beside (or in place of)
    /// those already there. Refused, with nothing given, when a path is bad or the files
    /// are more or larger than [`FileLimits`] allow; a file the instance cannot hold (a
    /// directory at its path, no memory left) fails the next evaluation before it runs.
    pub fn add_files(&mut self, files: Vec<InputFile>) -> Result<(), EvalError> {
        let mut all: Vec<InputFile> = self
            .pending_files
            .iter()
            .filter(|old| files.iter().all(|new| new.path != old.path))
            .cloned()
            .collect();
        all.extend(files);
        crate::files::check(&all, self.limits.files, self.limits.memory_bytes)?;
        self.pending_files = all;
        Ok(())
    }

    /// What this session was granted (mounts, environment, tools, network, ...), with the
    /// files not yet given to its instance.
    pub fn grants(&self) -> Grants {
        Grants {
            files: self.pending_files.clone(),
            ..self.grants.clone()
        }
    }

    /// The limits each evaluation of this session runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Evaluates `code` in this session's interpreter. Callable from any thread, a tokio
    /// runtime's included.
    ///
    /// After a stop (fuel, time, memory, crash) the instance is not trusted again: this and
    /// every later call returns [`EvalError::SessionEnded`].
    pub fn eval(&mut self, code: &str) -> Result<Outcome, EvalError> {
        crate::runtime::block_on(self.eval_async(code))?
    }

    /// [`Session::eval`] for async callers, on a tokio runtime with timers enabled.
    pub async fn eval_async(&mut self, code: &str) -> Result<Outcome, EvalError> {
        check_code(code, self.limits.code_bytes)?;
        // What a suspension would resume from: a fresh instance, or the state noted now
        // if a granted tool may suspend.
        let before = if self.instance.is_none() {
            Some(Before::Fresh)
        } else if self.store.data().tools.any_may_suspend() {
            Some(Before::Noted(Box::new(self.image().await?)))
        } else {
            None
        };
        self.evaluate(code, before, Vec::new()).await
    }

    /// Evaluates `code`, which a tool may suspend if `before` says where from; the calls
    /// of `replay` are answered from it.
    pub(crate) async fn evaluate(
        &mut self,
        code: &str,
        before: Option<Before>,
        replay: Vec<JournalEntry>,
    ) -> Result<Outcome, EvalError> {
        let started = Instant::now();
        self.before = before;
        self.replay = replay;
        let result = self.run(Step::Eval(code)).await;
        // The state noted is a suspension's only.
        self.before = None;
        match result? {
            (Done::Evaluated(outcome, changes, charts), fuel_used) => {
                Ok(self.finish(*outcome, changes, charts, fuel_used, started.elapsed()))
            }
            (Done::FilesRefused(why), _) => Err(EvalError::InvalidFiles(why)),
            (_, _) => unreachable!("an evaluation evaluates"),
        }
    }

    /// The bytes of the file at `path` under the working directory (files given to the
    /// session and those its code wrote), at most [`FileLimits::max_bytes`] of them.
    pub fn read_file(&mut self, path: &str) -> Result<Vec<u8>, EvalError> {
        crate::runtime::block_on(self.read_file_async(path))?
    }

    /// [`Session::read_file`] for async callers.
    pub async fn read_file_async(&mut self, path: &str) -> Result<Vec<u8>, EvalError> {
        crate::files::check_path(path).map_err(EvalError::InvalidFiles)?;
        match self.run(Step::Read(path)).await? {
            (Done::Read(read), _) => read.map_err(EvalError::NoSuchFile),
            (Done::FilesRefused(why), _) => Err(EvalError::InvalidFiles(why)),
            (_, _) => unreachable!("reading a file reads"),
        }
    }

    /// This session's state as bytes, to restore later with [`crate::Evaluator::restore`]
    /// (in this process or another, on this machine or another, running the same pyeval
    /// and component). The dump holds everything the interpreter holds: variables,
    /// functions, classes, imported modules, generators mid-iteration, scratch files, the
    /// random state; not what the host held for it (files open on host directories are
    /// closed in the restored session). A dump is the guest's memory: treat it as the
    /// user's data.
    pub fn dump(&mut self) -> Result<Vec<u8>, EvalError> {
        crate::runtime::block_on(self.dump_async())?
    }

    /// [`Session::dump`] for async callers.
    pub async fn dump_async(&mut self) -> Result<Vec<u8>, EvalError> {
        let image = self.image().await?;
        Ok(image.encode(&self.evaluator.key))
    }

    /// A new session in the state this one is in, with its limits and grants; the two go
    /// on separately. Takes a new instance (and its memory's written pages).
    pub fn fork(&mut self) -> Result<Session, EvalError> {
        crate::runtime::block_on(self.fork_async())?
    }

    /// [`Session::fork`] for async callers.
    pub async fn fork_async(&mut self) -> Result<Session, EvalError> {
        let image = self.image().await?;
        let mut fork = Session::start(self.evaluator.clone(), self.limits.clone(), &self.grants)?;
        fork.restore(&image).await?;
        Ok(fork)
    }

    /// The pages of this session's memory that differ from a fresh instance's.
    async fn image(&mut self) -> Result<Image, EvalError> {
        self.evaluator.reference(&self.limits).await?;
        match self.run(Step::Dump).await? {
            (Done::Dumped(size, runs), _) => Ok(Image {
                size,
                mounts: self.grants.mount_paths(),
                runs,
            }),
            (Done::FilesRefused(why), _) => Err(EvalError::InvalidFiles(why)),
            (_, _) => unreachable!("a dump gives pages"),
        }
    }

    /// Writes `image` into this session's instance, which must not have started.
    pub(crate) async fn restore(&mut self, image: &Image) -> Result<(), EvalError> {
        debug_assert!(self.instance.is_none());
        match self.run(Step::Restore(image)).await? {
            (Done::Restored, _) => Ok(()),
            (Done::FilesRefused(why), _) => Err(EvalError::InvalidFiles(why)),
            (Done::RestoreRefused, _) => Err(EvalError::InvalidDump(
                crate::dump::DumpError::Damaged(format!(
                    "a fresh instance could not take its memory of {} MiB",
                    image.size >> 20
                )),
            )),
            (_, _) => unreachable!("a restore restores"),
        }
    }

    /// Takes `step` in the instance (made first if there is none, and given the files
    /// pending) within the limits, and the fuel it used; a stop ends the session.
    async fn run(&mut self, step: Step<'_>) -> Result<(Done, u64), EvalError> {
        if let Some(reason) = &self.ended {
            return Err(EvalError::SessionEnded(reason.clone()));
        }
        // A fresh evaluation's caller counts it as running from start to end.
        let _running = (!self.fresh).then(|| self.evaluator.standby.running());
        crate::sandbox::arm(&mut self.store, &self.limits)?;
        if matches!(step, Step::Dump | Step::Restore(_)) && self.evaluator.metered {
            // The host's work, not the code's: bounded by the wall-clock limit only, so a
            // restore under a small fuel budget is not stopped by copying pages.
            self.store.set_fuel(u64::MAX).map_err(SetupError::host)?;
        }
        if let Step::Eval(_) = step {
            let tools = &mut self.store.data_mut().tools;
            tools.start_evaluation(self.limits.tools, self.before.is_some());
            tools.replay(std::mem::take(&mut self.replay));
            let state = self.store.data_mut();
            let deadline = state.guard().deadline();
            state.network.start_evaluation(deadline);
        }
        // Until the step finishes: if its future is dropped midway, the instance is left
        // in an unknown state.
        self.ended = Some(Stopped::Cancelled);
        let fuel_before = self.store.get_fuel().ok();
        let output_bytes = self.limits.output_bytes;
        let guest = Guest {
            evaluator: &self.evaluator,
            store: &mut self.store,
            instance: &mut self.instance,
            output_bytes,
            tools: &self.tools,
            live: (self.live, &mut self.guest_live),
            files: self.limits.files,
            pending: &mut self.pending_files,
        };
        let result = crate::clock::with_deadline(
            &self.evaluator.engine,
            self.limits.wall_time,
            crate::lift::with_cap(output_bytes as usize, guest.take(step)),
        )
        .await;
        let fuel_used = fuel_before
            .zip(self.store.get_fuel().ok())
            .map_or(0, |(before, after)| before - after);
        let error = match result {
            Some(Ok(done)) => {
                self.ended = None;
                return Ok((done, fuel_used));
            }
            Some(Err(error)) if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() => {
                // No instance was made: the session can try again.
                self.ended = None;
                return Err(EvalError::TooManyInstances {
                    limit: self.evaluator.max_instances,
                });
            }
            Some(Err(error)) if error.is::<Suspend>() => {
                let suspend = error.downcast::<Suspend>().expect("a suspension");
                let Step::Eval(code) = step else {
                    unreachable!("only an evaluation calls tools")
                };
                let state = match self.before.take() {
                    Some(Before::Noted(image)) => Some(image.encode(&self.evaluator.key)),
                    Some(Before::Dumped(dump)) => Some(dump),
                    Some(Before::Fresh) | None => None,
                };
                self.ended = Some(Stopped::Suspended {
                    tool: suspend.tool.clone(),
                });
                return Err(EvalError::Suspended(Box::new(Suspension {
                    code: code.to_owned(),
                    call: suspend.call,
                    tool: suspend.tool,
                    arguments: suspend.arguments,
                    reason: suspend.reason,
                    journal: suspend.journal,
                    state,
                    component: self.evaluator.key.clone(),
                })));
            }
            Some(Err(error)) => Stopped::classify(
                &error,
                &StopContext {
                    budget: fuel_before,
                    wall_time: self.limits.wall_time,
                    memory_refused: self.store.data().memory_refused(),
                },
            ),
            None => Stopped::Timeout {
                limit: self.limits.wall_time,
            },
        };
        self.ended = Some(error.clone());
        Err(EvalError::Stopped(error))
    }

    /// Builds the public outcome, adding what the code wrote straight to fds 1 and 2.
    fn finish(
        &mut self,
        raw: RawOutcome,
        changes: RawChanges,
        charts: RawChanges,
        fuel_used: u64,
        wall_time: Duration,
    ) -> Outcome {
        let cap = self.limits.output_bytes as usize;
        let (stdout, stdout_truncated) =
            with_raw(raw.stdout, raw.stdout_truncated, self.stdout.take(), cap);
        let (stderr, stderr_truncated) =
            with_raw(raw.stderr, raw.stderr_truncated, self.stderr.take(), cap);
        Outcome {
            stdout,
            stderr,
            stdout_truncated,
            stderr_truncated,
            value: raw.value.map(|v| v.text),
            error: raw.error.map(|e| PyException {
                type_name: e.type_name.text,
                message: e.message.text,
                traceback: e.traceback.text,
            }),
            exit_code: raw.exit_code,
            files: changes.files,
            files_dropped: changes.dropped,
            charts: charts.files,
            charts_dropped: charts.dropped,
            fuel_used,
            wall_time,
        }
    }
}

/// Refuses code the guest must never see: oversized, or holding a NUL byte (which CPython's
/// compiler rejects anyway, after the host has carried it across).
pub(crate) fn check_code(code: &str, limit: usize) -> Result<(), EvalError> {
    if code.len() > limit {
        return Err(EvalError::InvalidCode(format!(
            "the code is {} bytes, over the limit of {limit} bytes",
            code.len()
        )));
    }
    if let Some(at) = code.find('\0') {
        return Err(EvalError::InvalidCode(format!(
            "the code contains a NUL byte (at byte {at})"
        )));
    }
    Ok(())
}

/// The WIT `outcome` as this host lifts it: each string no longer than the output cap.
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawOutcome {
    stdout: CappedText,
    stderr: CappedText,
    #[component(name = "stdout-truncated")]
    stdout_truncated: bool,
    #[component(name = "stderr-truncated")]
    stderr_truncated: bool,
    value: Option<CappedText>,
    error: Option<RawException>,
    #[component(name = "exit-code")]
    exit_code: Option<i32>,
    #[component(name = "files-changed")]
    files_changed: bool,
    charts: u32,
}

/// The WIT `exception`, lifted like [`RawOutcome`].
#[derive(ComponentType, Lift)]
#[component(record)]
struct RawException {
    #[component(name = "type-name")]
    type_name: CappedText,
    message: CappedText,
    traceback: CappedText,
}

/// What a session asks of its instance.
#[derive(Clone, Copy)]
enum Step<'a> {
    /// Evaluate this code, then list the files it changed and its charts.
    Eval(&'a str),
    /// Read the file at this path.
    Read(&'a str),
    /// Find the pages of memory that differ from a fresh instance's.
    Dump,
    /// Write this image into the instance as it is made (it must not have been made).
    Restore(&'a Image),
}

/// What a [`Step`] gave.
enum Done {
    Evaluated(Box<RawOutcome>, RawChanges, RawChanges),
    Read(Result<Vec<u8>, String>),
    /// The instance could not hold the files given (nothing else was done).
    FilesRefused(String),
    /// The memory's size and the pages that differ from a fresh instance's.
    Dumped(u64, Vec<Run>),
    Restored,
    /// The fresh instance could not grow to the image's size.
    RestoreRefused,
}

/// The files an evaluation changed, or its charts, as the host keeps them.
#[derive(Default)]
struct RawChanges {
    files: Vec<OutputFile>,
    /// Files not returned, past [`FileLimits::max_files`].
    dropped: u32,
}

impl RawChanges {
    /// What of `limits` these leave.
    fn left(&self, limits: FileLimits) -> FileLimits {
        let bytes: u64 = self
            .files
            .iter()
            .filter_map(|f| f.data.as_ref())
            .map(|d| d.len() as u64)
            .sum();
        FileLimits::new(
            limits.max_files.saturating_sub(self.files.len() as u32),
            limits.max_bytes.saturating_sub(bytes),
        )
    }
}

/// The WIT `changed-file`.
#[derive(ComponentType, Lift)]
#[component(record)]
struct ChangedFile {
    path: String,
    size: u64,
    data: Option<Vec<u8>>,
}

/// The WIT `changes`.
#[derive(ComponentType, Lift)]
#[component(record)]
struct Changes {
    files: Vec<ChangedFile>,
    more: u32,
}

/// The WIT `file`.
#[derive(ComponentType, wasmtime::component::Lower)]
#[component(record)]
struct GivenFile<'a> {
    path: &'a str,
    data: &'a [u8],
}

/// Bytes a guest may hand the host for one changed file beyond its contents: its path
/// and the record around it.
const FILE_OVERHEAD: usize = crate::files::PATH_MAX + 64;

/// A session's instance and what the guest is told when it is made.
struct Guest<'s> {
    evaluator: &'s Inner,
    store: &'s mut Store<SandboxState>,
    instance: &'s mut Option<Instance>,
    output_bytes: u32,
    tools: &'s [GrantedTool],
    /// Whether output is live, and what the guest was told last.
    live: (bool, &'s mut bool),
    files: FileLimits,
    /// Files to write before the step (kept if no instance could be made).
    pending: &'s mut Vec<InputFile>,
}

impl Guest<'_> {
    /// Instantiates on the first call (telling the guest its output limit and its tools),
    /// writes the pending files, tells the guest whether output is live when that changed,
    /// then takes `step`.
    async fn take(self, step: Step<'_>) -> wasmtime::Result<Done> {
        let Guest {
            evaluator,
            store,
            instance,
            output_bytes,
            tools,
            live: (live, told),
            files: limits,
            pending,
        } = self;
        let restoring = matches!(step, Step::Restore(_));
        let instance = match *instance {
            Some(_) if restoring => {
                return Err(wasmtime::format_err!("a restore needs a fresh instance"))
            }
            Some(instance) => instance,
            None => {
                let new = match evaluator.standby.take(store) {
                    Some(made) => made,
                    None => evaluator.instantiate(store).await?,
                };
                if let Step::Restore(image) = step {
                    if !crate::dump::write(evaluator, store, new, image).await? {
                        return Ok(Done::RestoreRefused);
                    }
                }
                new.get_typed_func::<(u32,), ()>(&mut *store, &evaluator.set_output_limit)?
                    .call_async(&mut *store, (output_bytes,))
                    .await?;
                // A restored guest holds the dumped session's tools until told these.
                if !tools.is_empty() || restoring {
                    new.get_typed_func::<(&[GrantedTool],), ()>(
                        &mut *store,
                        &evaluator.grant_tools,
                    )?
                    .call_async(&mut *store, (tools,))
                    .await?;
                }
                *instance = Some(new);
                // A restored guest was told what the dumped session's host told it.
                *told = restoring && !live;
                new
            }
        };
        let pending = std::mem::take(pending);
        if !pending.is_empty() {
            let given: Vec<GivenFile> = pending
                .iter()
                .map(|file| GivenFile {
                    path: &file.path,
                    data: &file.data,
                })
                .collect();
            let (written,) = instance
                .get_typed_func::<(&[GivenFile],), (Result<(), String>,)>(
                    &mut *store,
                    &evaluator.put_files,
                )?
                .call_async(&mut *store, (&given,))
                .await?;
            if let Err(why) = written {
                return Ok(Done::FilesRefused(why));
            }
        }
        match step {
            Step::Eval(code) => {
                if live != *told {
                    instance
                        .get_typed_func::<(bool,), ()>(&mut *store, &evaluator.set_live_output)?
                        .call_async(&mut *store, (live,))
                        .await?;
                    *told = live;
                }
                let eval = instance
                    .get_typed_func::<(&str,), (RawOutcome,)>(&mut *store, &evaluator.eval)?;
                let (outcome,) = eval.call_async(&mut *store, (code,)).await?;
                let changes = if outcome.files_changed {
                    returned(&evaluator.changed_files, store, instance, limits).await?
                } else {
                    RawChanges::default()
                };
                let charts = if outcome.charts > 0 {
                    let left = changes.left(limits);
                    let mut charts = returned(&evaluator.charts, store, instance, left).await?;
                    // (A guest that lists fewer than it counted is held to its count.)
                    let listed = charts.files.len() as u32 + charts.dropped;
                    charts.dropped += outcome.charts.saturating_sub(listed);
                    charts
                } else {
                    RawChanges::default()
                };
                Ok(Done::Evaluated(Box::new(outcome), changes, charts))
            }
            Step::Read(path) => {
                let read = instance.get_typed_func::<(&str, u64), (Result<Vec<u8>, String>,)>(
                    &mut *store,
                    &evaluator.read_file,
                )?;
                let before = bound_hostcall(store, limits.max_bytes);
                let result = read.call_async(&mut *store, (path, limits.max_bytes)).await;
                store.set_hostcall_fuel(before);
                let (read,) = result?;
                Ok(Done::Read(read))
            }
            Step::Dump => {
                let (size, runs) = crate::dump::read(evaluator, store, instance).await?;
                Ok(Done::Dumped(size, runs))
            }
            Step::Restore(_) => Ok(Done::Restored),
        }
    }
}

/// The files the last evaluation changed, or its charts (`export` is `changed-files` or
/// `charts`), within `limits` whatever the guest answers.
async fn returned(
    export: &ComponentExportIndex,
    store: &mut Store<SandboxState>,
    instance: Instance,
    limits: FileLimits,
) -> wasmtime::Result<RawChanges> {
    if limits.max_files == 0 {
        return Ok(RawChanges::default());
    }
    let list = instance.get_typed_func::<(u32, u64), (Changes,)>(&mut *store, export)?;
    let most = limits
        .max_bytes
        .saturating_add((limits.max_files as u64).saturating_mul(FILE_OVERHEAD as u64));
    let before = bound_hostcall(store, most);
    let result = list
        .call_async(&mut *store, (limits.max_files, limits.max_bytes))
        .await;
    store.set_hostcall_fuel(before);
    let (changes,) = result?;
    // The guest keeps to the limits unless code tampered with it: hold it to them here.
    let mut room = limits.max_bytes;
    let mut kept = Vec::new();
    let mut dropped = changes.more;
    for file in changes.files {
        if kept.len() >= limits.max_files as usize || crate::files::check_path(&file.path).is_err()
        {
            dropped = dropped.saturating_add(1);
            continue;
        }
        let data = file.data.filter(|data| data.len() as u64 <= room);
        if let Some(data) = &data {
            room -= data.len() as u64;
        }
        kept.push(OutputFile::new(file.path, file.size, data));
    }
    Ok(RawChanges {
        files: kept,
        dropped,
    })
}

/// Bounds the bytes the guest may hand back from the next call at `bytes` and some
/// (wasmtime's hostcall fuel); returns the bound before, to restore after the call.
fn bound_hostcall(store: &mut Store<SandboxState>, bytes: u64) -> usize {
    let before = store.hostcall_fuel();
    let bound = usize::try_from(bytes).unwrap_or(usize::MAX);
    store.set_hostcall_fuel(bound.saturating_add(FILE_OVERHEAD));
    before
}

/// `text` followed by raw fd output (and whether some of it was already dropped), within
/// the cap the two share; the truncated flag is set when either had to be cut. The guest caps its text itself, but the cap is enforced
/// here too: evaluated code can reach the guest's capture objects.
fn with_raw(
    text: CappedText,
    truncated: bool,
    (raw, dropped): (bytes::Bytes, bool),
    cap: usize,
) -> (String, bool) {
    let mut joined = text.text;
    let room = cap.saturating_sub(joined.len());
    joined.push_str(&String::from_utf8_lossy(&raw[..raw.len().min(room)]));
    let cut = text.cut || dropped || raw.len() > room;
    let mut end = joined.len().min(cap);
    while !joined.is_char_boundary(end) {
        end -= 1;
    }
    joined.truncate(end);
    (joined, truncated || cut)
}
