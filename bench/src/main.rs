//! `pyeval-bench [OUT.json]`: measures the evaluator and the command path on this machine,
//! prints a table and writes the numbers as JSON (default `bench/results.json`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pyeval::cache::CompileCache;
use pyeval::sandbox::Grants;
use pyeval::{CommandRun, CommandRunner, Evaluator, Fuel, Limits};
use serde_json::json;

/// Fresh evaluations timed for the latency percentiles.
const FRESH_RUNS: usize = 2000;
/// Session evaluations timed.
const SESSION_RUNS: usize = 5000;
/// How long each throughput measurement runs.
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(3);
/// Runs of the stock interpreter (each starts CPython).
const COMMAND_RUNS: usize = 20;

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench/results.json"));
    let evaluator = Evaluator::new(|| eprintln!("compiling the evaluator..."))?;
    let limits = Limits::default();

    // Warm up: page in the compiled code and the snapshot image.
    for _ in 0..50 {
        evaluator.eval("print(1)", &limits)?;
    }
    let mut fresh = Vec::with_capacity(FRESH_RUNS);
    let mut fuel = Vec::with_capacity(FRESH_RUNS);
    for _ in 0..FRESH_RUNS {
        let started = Instant::now();
        let outcome = evaluator.eval("print(1)", &limits)?;
        fresh.push(started.elapsed());
        fuel.push(outcome.fuel_used);
        assert_eq!(outcome.stdout, "1\n");
    }
    fresh.sort();
    fuel.sort();

    let mut session = evaluator.session(&limits)?;
    session.eval("x = 0")?;
    let mut in_session = Vec::with_capacity(SESSION_RUNS);
    for _ in 0..SESSION_RUNS {
        let started = Instant::now();
        session.eval("x += 1")?;
        in_session.push(started.elapsed());
    }
    in_session.sort();

    let throughput_1 = throughput(&evaluator, 1);
    let throughput_2 = throughput(&evaluator, 2);
    let command = command_path()?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let results = json!({
        "fresh_print_1": {
            "runs": FRESH_RUNS,
            "p50_ms": ms(percentile(&fresh, 50.0)),
            "p95_ms": ms(percentile(&fresh, 95.0)),
            "p99_ms": ms(percentile(&fresh, 99.0)),
            "fuel_p50": fuel[fuel.len() / 2],
        },
        "session_x_plus_1": { "runs": SESSION_RUNS, "p50_ms": ms(percentile(&in_session, 50.0)) },
        "throughput_per_s": { "threads_1": throughput_1, "threads_2": throughput_2 },
        "command_path_pass": {
            "runs": COMMAND_RUNS,
            "p50_ms": ms(command.0),
            "fuel": command.1,
        },
        "ratio_command_over_fresh_p50": command.0.as_secs_f64() / percentile(&fresh, 50.0).as_secs_f64(),
    });
    println!("| measurement | value |");
    println!("| --- | --- |");
    println!(
        "| fresh instance + print(1), p50 / p95 / p99 ({FRESH_RUNS} runs) | {:.3} / {:.3} / {:.3} ms |",
        ms(percentile(&fresh, 50.0)),
        ms(percentile(&fresh, 95.0)),
        ms(percentile(&fresh, 99.0))
    );
    println!(
        "| fuel of fresh print(1), median | {} |",
        fuel[fuel.len() / 2]
    );
    println!(
        "| session eval `x += 1`, p50 | {:.4} ms |",
        ms(percentile(&in_session, 50.0))
    );
    println!("| fresh evaluations/s, 1 thread | {throughput_1:.0} |");
    println!("| fresh evaluations/s, 2 threads | {throughput_2:.0} |");
    println!(
        "| command path (stock python.wasm) `-c pass`, p50 ({COMMAND_RUNS} runs) | {:.1} ms, {} fuel |",
        ms(command.0),
        command.1
    );
    println!(
        "| command path / evaluator, p50 | {:.0}x |",
        results["ratio_command_over_fresh_p50"]
            .as_f64()
            .unwrap_or(0.0)
    );
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&results)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("\nwritten to {}", out.display());
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[index]
}

/// Fresh `print(1)` evaluations per second with `threads` threads sharing one evaluator.
fn throughput(evaluator: &Evaluator, threads: usize) -> f64 {
    let started = Instant::now();
    let counts: Vec<usize> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = 0;
                    while started.elapsed() < THROUGHPUT_WINDOW {
                        evaluator
                            .eval("print(1)", &Limits::default())
                            .expect("evaluation succeeds");
                        done += 1;
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    counts.iter().sum::<usize>() as f64 / started.elapsed().as_secs_f64()
}

/// p50 wall time and fuel of `print(1)` on the stock python.wasm (interpreter start-up
/// included), with its compiled code cached.
fn command_path() -> Result<(Duration, u64)> {
    let cpython = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/cpython"));
    let runner = CommandRunner::load(
        &cpython.join("python.wasm"),
        Some(cpython.join("stdlib")),
        true,
        &CompileCache::default_location(),
        || eprintln!("compiling python.wasm..."),
    )?;
    let request = CommandRun {
        args: vec!["-c".into(), "pass".into()],
        fuel: Fuel::Limited(10_000_000_000),
        memory_bytes: pyeval::limits::DEFAULT_MEMORY_BYTES,
        wall_time: pyeval::limits::DEFAULT_WALL_TIME,
        grants: Grants::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut times = Vec::new();
    let mut fuel = 0;
    for _ in 0..COMMAND_RUNS {
        let started = Instant::now();
        let report = runtime.block_on(runner.run(&request))?;
        times.push(started.elapsed());
        fuel = report.fuel_consumed.unwrap_or(0);
    }
    times.sort();
    Ok((percentile(&times, 50.0), fuel))
}
