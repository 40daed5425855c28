//! Evaluations run with the GIL released, so other Python threads go on (and evaluate in
//! parallel); a Ctrl-C in the main thread cancels the evaluation and raises
//! `KeyboardInterrupt`, as it would interrupt Python code. A signal handler that evaluates
//! while an evaluation of its thread waits gets a thread of its own for that.

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;

/// How often a running evaluation looks for a pending signal.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

/// A calling thread's runtime. When the thread ends, it is shut down without waiting for
/// blocking work it may still hold (dropping it would wait for that work, however long).
struct ThreadRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ThreadRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

thread_local! {
    /// Each calling thread drives its evaluations on a runtime of its own.
    static RUNTIME: ThreadRuntime = ThreadRuntime(Some(
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a tokio runtime starts"),
    ));
}

/// Runs `work` to completion without the GIL. If a signal handler raises meanwhile (Ctrl-C
/// gives `KeyboardInterrupt`), `work` is dropped, which cancels the evaluation, and that
/// exception is returned.
pub fn run<T: Send>(py: Python<'_>, work: impl Future<Output = PyResult<T>> + Send) -> PyResult<T> {
    py.detach(|| {
        if tokio::runtime::Handle::try_current().is_err() {
            return drive(work);
        }
        // This thread is already driving an evaluation (a signal handler runs inside its
        // wait for signals), and a runtime cannot block inside another.
        std::thread::scope(|scope| {
            scope
                .spawn(|| drive(work))
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    })
}

/// Runs `work` on this thread's runtime, watching for signals.
fn drive<T: Send>(work: impl Future<Output = PyResult<T>> + Send) -> PyResult<T> {
    RUNTIME.with(|runtime| {
        let runtime = runtime
            .0
            .as_ref()
            .expect("the runtime lives as long as its thread");
        runtime.block_on(async {
            tokio::select! {
                result = work => result,
                raised = signal() => Err(raised),
            }
        })
    })
}

/// Resolves to the exception of the first signal handler that raises.
async fn signal() -> PyErr {
    loop {
        tokio::time::sleep(SIGNAL_CHECK).await;
        if let Err(raised) = Python::attach(|py| py.check_signals()) {
            return raised;
        }
    }
}
