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
        static RUNTIME: OnceLock<Background> = const { OnceLock::new() };
    }
    RUNTIME.with(|cell| {
        if cell.get().is_none() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(SetupError::host)?;
            let _ = cell.set(Background(Some(runtime)));
        }
        let runtime = cell.get().and_then(|b| b.0.as_ref()).expect("set above");
        Ok(runtime.block_on(future))
    })
}

/// A runtime that, when its thread ends, does not wait for its blocking tasks: a guest
/// abandoned at its deadline may have left one blocked in a host call (a read from a FIFO
/// in a mount, say) that would otherwise hold the thread, or the process, forever.
struct Background(Option<tokio::runtime::Runtime>);

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}
