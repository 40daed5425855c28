//! Work on fresh instances done off their callers' path: a thread per evaluator makes the
//! next fresh instance before an evaluation asks for one, and ends the instances of
//! finished fresh evaluations (giving a pool slot's written pages back), while a core is
//! free beside the caller: with as many evaluations running as there are cores, each does
//! its own (a fresh evaluation counts from its start to its end, a session's step while
//! it runs), since the thread would only take time from them. Not for components with a
//! large memory image (see [`MAX_IMAGE_BYTES`]).
//!
//! An instance made ahead has run no guest code: the session that takes it moves its own
//! store data (WASI context, grants, limits) into the instance's store before the guest's
//! first call, so the guest sees nothing of how it was made.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock, Weak};
use std::time::Duration;

use wasmtime::component::Instance;
use wasmtime::Store;

use crate::evaluator::Inner;
use crate::fuel::Fuel;
use crate::guard::Guard;
use crate::limits::Limits;
use crate::sandbox::{Guarded, SandboxState};
use crate::session::Session;

/// Jobs the thread may have waiting; past them, a caller does its own work.
const MAX_PENDING: usize = 2;

/// Largest memory image of a component whose instances the standby makes and ends. Past
/// it, giving a slot's pages back on another thread slows the evaluation running beside
/// it more than it saves (the kernel's page-table work and TLB shootdowns reach the
/// evaluating core): on a 2-core Xeon, the stdlib component (32.5 MiB) went from 0.27 to
/// 0.21 ms per fresh `print(1)`, the sci component (211 MiB) from 0.54 to 0.60 ms.
const MAX_IMAGE_BYTES: usize = 128 << 20;

/// An instance made ahead, in a store of its own.
struct Ready {
    store: Store<SandboxState>,
    instance: Instance,
}

enum Job {
    /// Make an instance ready, if none is.
    Make,
    /// End a finished session.
    Retire(Box<Session>),
}

/// One evaluator's instance made ahead, and the thread that makes and ends instances.
pub(crate) struct Standby {
    ready: Mutex<Option<Ready>>,
    /// The thread's queue, once it is started.
    jobs: OnceLock<Sender<Job>>,
    /// Jobs sent and not yet done: each may hold a pool slot and memory of the budget.
    pending: AtomicUsize,
    /// Steps of sessions running (evaluations, dumps, restores), and the cores this
    /// process may use.
    running: AtomicUsize,
    cores: usize,
    /// Set when the component's memory is too large for work beside evaluations to pay.
    off: AtomicBool,
}

/// A session's step running, counted while this lives.
pub(crate) struct Running<'a>(&'a Standby);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Standby {
    /// A standby whose thread is not started yet: it does nothing until then.
    pub(crate) fn new() -> Self {
        Standby {
            ready: Mutex::new(None),
            jobs: OnceLock::new(),
            pending: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            off: AtomicBool::new(false),
        }
    }

    /// Starts the thread of `evaluator` (whose standby this is) and has it make an
    /// instance ready. The thread ends with the evaluator.
    pub(crate) fn start(&self, evaluator: Weak<Inner>) -> std::io::Result<()> {
        let (sender, jobs) = channel::<Job>();
        std::thread::Builder::new()
            .name("pyeval-standby".into())
            .spawn(move || {
                while let Ok(job) = jobs.recv() {
                    let Some(evaluator) = evaluator.upgrade() else {
                        break;
                    };
                    match job {
                        Job::Make => make(&evaluator),
                        Job::Retire(session) => drop(session),
                    }
                    evaluator.standby.pending.fetch_sub(1, Ordering::AcqRel);
                }
            })?;
        if self.jobs.set(sender).is_ok() {
            self.send(Job::Make, 0);
        }
        Ok(())
    }

    /// Counts a session's step as running until the value returned is dropped.
    pub(crate) fn running(&self) -> Running<'_> {
        self.running.fetch_add(1, Ordering::AcqRel);
        Running(self)
    }

    /// Sends `job` to the thread if a core is free for it beside the caller and the
    /// `others` steps running; otherwise drops it (a retired session ends here).
    fn send(&self, job: Job, others: usize) {
        if self.off.load(Ordering::Acquire)
            || others + 1 >= self.cores
            || self.pending.load(Ordering::Acquire) >= MAX_PENDING
        {
            return;
        }
        if let Some(jobs) = self.jobs.get() {
            self.pending.fetch_add(1, Ordering::AcqRel);
            if jobs.send(job).is_err() {
                self.pending.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// Ends `session` on the standby thread (here if it is busy, or no core is free).
    pub(crate) fn retire(&self, session: Session) {
        // Called by a fresh evaluation's caller, which counts itself as running.
        let others = self.running.load(Ordering::Acquire).saturating_sub(1);
        self.send(Job::Retire(Box::new(session)), others);
    }

    /// The instance made ahead, moved into `store` with `store`'s data (the session's) and
    /// the fuel `store` was armed with: `store` then holds that instance, in the session's
    /// state and limits. None if no instance is ready, or the session's limits could not
    /// hold it (its memory cap is below the instance's memory, or the budget has no room
    /// for its output buffers).
    pub(crate) fn take(&self, store: &mut Store<SandboxState>) -> Option<Instance> {
        let fuel = store.get_fuel();
        let taken = self.ready.lock().expect("not poisoned").take();
        // Called in a step, counted as running (or in a fresh evaluation, which is).
        let others = self.running.load(Ordering::Acquire).saturating_sub(1);
        self.send(Job::Make, others);
        let mut ready = taken?;
        std::mem::swap(store.data_mut(), ready.store.data_mut());
        let (session, made) = (ready.store.data_mut(), store.data_mut());
        if !session.guard().take_over(made.guard()) {
            // The session's own store, untouched, goes on to make its instance itself.
            std::mem::swap(store.data_mut(), ready.store.data_mut());
            *self.ready.lock().expect("not poisoned") = Some(ready);
            return None;
        }
        std::mem::swap(store, &mut ready.store);
        match fuel {
            Ok(fuel) => store.set_fuel(fuel).expect("a metered store"),
            Err(_) => store.set_epoch_deadline(1),
        }
        Some(ready.instance)
    }

    /// Gives back what the standby holds or is about to hold (the instance made ahead,
    /// instances being made or ended) when an instance could not be made for want of a
    /// slot or of memory: whether there was any, so that making it again may succeed.
    pub(crate) async fn give_back(&self) -> bool {
        let held = self.ready.lock().expect("not poisoned").take().is_some();
        let busy = self.pending.load(Ordering::Acquire) > 0;
        // Other evaluations keep sending jobs: wait a while, not until none is left.
        for _ in 0..200 {
            if self.pending.load(Ordering::Acquire) == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_micros(50)).await;
        }
        // What the thread made meanwhile goes too.
        let made = self.ready.lock().expect("not poisoned").take().is_some();
        held || busy || made
    }
}

/// Makes an instance of `evaluator` ready, unless one is (failures are left to the
/// evaluation that would have taken it, which makes its own).
fn make(evaluator: &Inner) {
    if evaluator
        .standby
        .ready
        .lock()
        .expect("not poisoned")
        .is_some()
    {
        return;
    }
    let limits = Limits {
        fuel: Fuel::Unlimited,
        ..Limits::default()
    };
    // The cap is the session's to check, when it takes the instance.
    let guard = Guard::new(usize::MAX, evaluator.budget.clone(), 0);
    let state = SandboxState::new(wasmtime_wasi::WasiCtxBuilder::new().build(), guard);
    let Ok(mut store) = crate::sandbox::new_store(&evaluator.engine, state, &limits) else {
        return;
    };
    let made = crate::runtime::block_on(evaluator.pre.instantiate_async(&mut store));
    if store.data_mut().guard().memory() > MAX_IMAGE_BYTES {
        evaluator.standby.off.store(true, Ordering::Release);
        return;
    }
    if let Ok(Ok(instance)) = made {
        let mut ready = evaluator.standby.ready.lock().expect("not poisoned");
        if ready.is_none() {
            *ready = Some(Ready { store, instance });
        }
    }
}
