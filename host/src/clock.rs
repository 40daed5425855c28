//! Where running wasm finds its wall-clock deadline: at the fuel yields of a metered
//! engine, at the epoch ticks of an unmetered one; and the host-side bound that ends an
//! evaluation at its deadline, blocked in a host call or not.

use std::future::Future;
use std::time::Duration;

use wasmtime::Engine;

/// How often the epoch of an unmetered engine advances; its wall-clock deadlines are
/// checked at this granularity.
pub(crate) const TICK: Duration = Duration::from_millis(5);

/// Fuel a metered guest uses between yields to the host, which then checks the deadline
/// and lets other tasks of its runtime run: about a quarter of a millisecond of CPython's
/// work on a 2-core Xeon (a pure-Python loop runs 7-9 million units a millisecond there).
pub(crate) const YIELD_FUEL: u64 = 2_000_000;

/// Extra time allowed, past a deadline, for an unmetered guest's epoch to stop it before
/// the host abandons the evaluation (it may be blocked in a host call).
const BLOCKED_GRACE: Duration = Duration::from_millis(20);

/// An engine from pyeval's settings; an unmetered one with a thread advancing its epoch
/// every [`TICK`] (the thread stops when the engine is dropped).
pub(crate) fn engine(
    metered: bool,
    allocation: pyeval_engine::Allocation,
) -> anyhow::Result<Engine> {
    let engine = pyeval_engine::build(metered, allocation)?;
    if metered {
        return Ok(engine);
    }
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

/// `future`'s output, or `None` if it has not finished `limit` after starting: a metered
/// guest's run ends there (at its next yield, or in a host call); an unmetered guest's has
/// a grace period for its epoch to stop it first. Must run inside a tokio runtime with
/// timers.
pub(crate) async fn with_deadline<F: Future>(
    engine: &Engine,
    limit: Duration,
    future: F,
) -> Option<F::Output> {
    let grace = if engine.get_consume_fuel() {
        Duration::ZERO
    } else {
        BLOCKED_GRACE
    };
    tokio::time::timeout(limit.saturating_add(grace), future)
        .await
        .ok()
}
