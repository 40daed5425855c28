//! Durable sessions: dumping a session to bytes, restoring it, forking it, and the size of
//! a dump, for a session holding `x = 1` and one holding about 10 MB of Python objects; a
//! session step and a fresh evaluation timed in the same run for comparison; and a served
//! session step with the sessions kept in Redis (a `redis-server` started on loopback, when
//! there is one) against one kept in memory.

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

/// Served session steps timed for each median.
const SERVED_STEPS: usize = 500;

/// A served session step's median with the sessions in memory, and kept in a Redis on
/// loopback (none without `redis-server`).
fn served_steps(evaluator: &Evaluator) -> Result<(Duration, Option<Duration>)> {
    let memory = crate::server::session_step(evaluator, None, SERVED_STEPS)?;
    let Some(mut redis) = LocalRedis::start() else {
        eprintln!("(no redis-server here: the Redis session store is not measured)");
        return Ok((memory, None));
    };
    let stored = crate::server::session_step(evaluator, Some(&redis.url), SERVED_STEPS);
    redis.stop();
    Ok((memory, Some(stored?)))
}

/// A `redis-server` on a free loopback port, in memory only.
struct LocalRedis {
    child: std::process::Child,
    url: String,
}

impl LocalRedis {
    fn start() -> Option<LocalRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = std::process::Command::new("redis-server")
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let mut redis = LocalRedis {
            child,
            url: format!("redis://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if started.elapsed() > Duration::from_secs(10) {
                redis.stop();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(redis)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
    let (served_memory, served_redis) = served_steps(evaluator)?;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let json = json!({
        "served_step_p50_ms": {
            "in_memory": ms(served_memory),
            "redis_store": served_redis.map(ms),
        },
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
    if let Some(redis) = served_redis {
        rows.push(format!(
            "| served session step `x += 1`, p50: in memory / kept in Redis (added) | {:.3} / {:.3} ms (+{:.3} ms) |",
            ms(served_memory),
            ms(redis),
            ms(redis.saturating_sub(served_memory))
        ));
    }
    rows.push(format!(
        "| same run: session `x += 1` / fresh print(1), p50 | {:.3} / {:.3} ms |",
        ms(percentile(&steps, 50.0)),
        ms(percentile(&fresh, 50.0))
    ));
    Ok((json, rows))
}
