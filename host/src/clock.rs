//! The epoch clock, whose ticks are where running wasm checks its wall-clock deadline, and
//! the host-side bound for a guest blocked in a host call.

use std::future::Future;
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch advances; wall-clock deadlines are checked at this granularity.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Extra time allowed, past a deadline, for the host to notice a guest blocked in a host
/// call before the evaluation is abandoned.
const BLOCKED_GRACE: Duration = Duration::from_millis(20);

/// An engine from pyeval's settings, with a thread advancing its epoch every [`TICK`]
/// (the thread stops when the engine is dropped).
pub(crate) fn engine(
    metered: bool,
    allocation: pyeval_engine::Allocation,
) -> anyhow::Result<Engine> {
    let engine = pyeval_engine::build(metered, allocation)?;
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("pyeval-epoch".into())
        .spawn(move || loop {
            std::thread::sleep(TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })?;
    Ok(engine)
}

/// `future`'s output, or `None` if it is still blocked (in a host call that epochs cannot
/// interrupt) `limit` after starting, plus a grace period for the epoch to fire first; must
/// run inside a tokio runtime with timers.
pub(crate) async fn with_deadline<F: Future>(limit: Duration, future: F) -> Option<F::Output> {
    tokio::time::timeout(limit.saturating_add(BLOCKED_GRACE), future)
        .await
        .ok()
}
