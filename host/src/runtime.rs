//! The runtime behind the blocking methods: they drive the async ones to completion.

use std::future::Future;
use std::sync::OnceLock;

use crate::error::SetupError;

/// Runs `future` to completion and returns its output, from any thread.
///
/// Outside a tokio runtime it runs on this thread's own single-threaded runtime. Inside
/// one (where starting a runtime would panic, and blocking would stall its other tasks
/// on a current-thread runtime) it runs on a scoped thread of its own while this one waits.
pub(crate) fn block_on<F: Future + Send>(future: F) -> Result<F::Output, SetupError>
where
    F::Output: Send,
{
    if tokio::runtime::Handle::try_current().is_err() {
        return on_this_thread(future);
    }
    std::thread::scope(|scope| {
        let thread = std::thread::Builder::new()
            .name("pyeval-blocking".into())
            .spawn_scoped(scope, || on_this_thread(future))
            .map_err(SetupError::host)?;
        thread
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })
}

fn on_this_thread<F: Future>(future: F) -> Result<F::Output, SetupError> {
    thread_local! {
        static RUNTIME: OnceLock<tokio::runtime::Runtime> = const { OnceLock::new() };
    }
    RUNTIME.with(|cell| {
        if cell.get().is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(SetupError::host)?;
            let _ = cell.set(runtime);
        }
        let runtime = cell.get().expect("set above");
        Ok(runtime.block_on(future))
    })
}
