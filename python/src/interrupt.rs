//! Evaluations run with the GIL released, so other Python threads go on (and evaluate in
//! parallel); a Ctrl-C in the main thread cancels the evaluation and raises
//! `KeyboardInterrupt`, as it would interrupt Python code.

use std::future::Future;
use std::time::Duration;

use pyo3::prelude::*;

/// How often a running evaluation looks for a pending signal.
const SIGNAL_CHECK: Duration = Duration::from_millis(50);

thread_local! {
    /// Each calling thread drives its evaluations on a runtime of its own.
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a tokio runtime starts");
}

/// Runs `work` to completion without the GIL. If a signal handler raises meanwhile (Ctrl-C
/// gives `KeyboardInterrupt`), `work` is dropped, which cancels the evaluation, and that
/// exception is returned.
pub fn run<T: Send>(py: Python<'_>, work: impl Future<Output = PyResult<T>> + Send) -> PyResult<T> {
    py.detach(|| {
        RUNTIME.with(|runtime| {
            runtime.block_on(async {
                tokio::select! {
                    result = work => result,
                    raised = signal() => Err(raised),
                }
            })
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
