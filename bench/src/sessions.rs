//! Durable sessions: dumping a session to bytes, restoring it, forking it, and the size of
//! a dump, for a session holding `x = 1` and one holding about 10 MB of Python objects; a
//! session step and a fresh evaluation timed in the same run for comparison.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Result;
use pyeval::{Evaluator, Grants, Limits};
use serde_json::{json, Value};

use crate::percentile;

/// Dumps, restores and forks timed for each median.
const RUNS: usize = 200;
/// About 10 MB of Python objects: tuples of an int, a str and a float.
const TEN_MB: &str = "objects = [(i, f'item-{i}', i * 0.5) for i in range(80_000)]";

/// One session's figures.
struct Figures {
    dump: Duration,
    restore: Duration,
    fork: Duration,
    bytes: usize,
}

impl Figures {
    fn json(&self) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        json!({
            "dump_p50_ms": ms(self.dump),
            "restore_p50_ms": ms(self.restore),
            "fork_p50_ms": ms(self.fork),
            "dump_bytes": self.bytes,
        })
    }
}

/// Measures a session after `code` ran in it.
fn session_after(evaluator: &Evaluator, code: &str) -> Result<Figures> {
    let limits = Limits::default();
    let mut session = evaluator.session(&limits)?;
    session.eval(code)?;
    let (mut dumps, mut restores, mut forks) = (vec![], vec![], vec![]);
    let mut dump = session.dump()?;
    for _ in 0..RUNS {
        let started = Instant::now();
        dump = session.dump()?;
        dumps.push(started.elapsed());
        let started = Instant::now();
        let restored = evaluator.restore(&dump, &limits, &Grants::default())?;
        restores.push(started.elapsed());
        drop(restored);
        let started = Instant::now();
        let fork = session.fork()?;
        forks.push(started.elapsed());
        drop(fork);
    }
    for runs in [&mut dumps, &mut restores, &mut forks] {
        runs.sort();
    }
    Ok(Figures {
        dump: percentile(&dumps, 50.0),
        restore: percentile(&restores, 50.0),
        fork: percentile(&forks, 50.0),
        bytes: dump.len(),
    })
}

/// The measurements, as JSON, and the table's rows.
pub fn measure(evaluator: &Evaluator) -> Result<(Value, Vec<String>)> {
    let limits = Limits::default();
    let mut step = evaluator.session(&limits)?;
    step.eval("x = 0")?;
    let mut steps = (0..2000)
        .map(|_| {
            let started = Instant::now();
            step.eval("x += 1")?;
            Ok(started.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    steps.sort();
    let mut fresh = (0..500)
        .map(|_| {
            let started = Instant::now();
            evaluator.eval("print(1)", &limits)?;
            Ok(started.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    fresh.sort();
    let small = session_after(evaluator, "x = 1")?;
    let large = session_after(evaluator, TEN_MB)?;
    let sci_path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/pyeval-sci.wasm"
    ));
    let sci = if sci_path.exists() {
        let sci = Evaluator::builder().component_file(&sci_path).build()?;
        Some(session_after(
            &sci,
            "import numpy as np\nx = np.arange(10)",
        )?)
    } else {
        None
    };
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let json = json!({
        "runs": RUNS,
        "session_x_plus_1_p50_ms": ms(percentile(&steps, 50.0)),
        "fresh_print_1_p50_ms": ms(percentile(&fresh, 50.0)),
        "x_equals_1": small.json(),
        "ten_mb_of_objects": large.json(),
        "sci_numpy_array": sci.as_ref().map(Figures::json),
    });
    let row = |what: &str, f: &Figures| {
        format!(
            "| session {what}: dump / restore / fork p50, dump size | {:.2} / {:.2} / {:.2} ms, {:.0} KiB |",
            ms(f.dump),
            ms(f.restore),
            ms(f.fork),
            f.bytes as f64 / 1024.0
        )
    };
    let mut rows = vec![
        row("`x = 1`", &small),
        row("holding ~10 MB of objects", &large),
    ];
    if let Some(sci) = &sci {
        rows.push(row("of the sci component (numpy imported)", sci));
    }
    rows.push(format!(
        "| same run: session `x += 1` / fresh print(1), p50 | {:.3} / {:.3} ms |",
        ms(percentile(&steps, 50.0)),
        ms(percentile(&fresh, 50.0))
    ));
    Ok((json, rows))
}
