//! `pyeval-bench [OUT.json]`: measures the evaluator and the command path on this machine,
//! prints a table and writes the numbers as JSON (default `bench/results.json`).
//! `pyeval-bench --server-only` measures just the HTTP server, `--sci-only` just the sci
//! component, `--tools-only` just tool calls, `--sessions-only` just session dumps; none of
//! them writes anything.

mod network;
mod sci;
mod server;
mod sessions;
mod tools;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pyeval::{CacheLocation, CommandRunner, Evaluator, Fuel, Grants, Limits};
use serde_json::json;

/// Fresh evaluations timed for the latency percentiles.
const FRESH_RUNS: usize = 2000;
/// Session evaluations timed.
const SESSION_RUNS: usize = 5000;
/// How long each throughput measurement runs.
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(3);
/// Runs of the stock interpreter (each starts CPython).
const COMMAND_RUNS: usize = 20;
/// Runs of the whole `pyeval` process.
const PROCESS_RUNS: usize = 30;
/// Instances kept alive to measure resident memory per instance.
const LIVE_INSTANCES: usize = 100;
/// A pure-Python CPU-bound loop of 10^6 iterations.
const CPU_LOOP: &str = "total = 0\nfor i in range(10**6):\n    total += i\n";
/// Runs of each CPU-bound measurement.
const CPU_RUNS: usize = 7;

fn main() -> Result<()> {
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("bench/results.json"));
    let evaluator = Evaluator::builder()
        .on_compile(|| eprintln!("compiling the evaluator..."))
        .build()?;
    if out.as_os_str() == "--server-only" {
        // A quick look at the server alone; nothing is written.
        let (served, mixed) = server::measure(&evaluator)?;
        for load in served.iter().chain([&mixed]) {
            println!("{}", load.json());
        }
        return Ok(());
    }
    let limits = Limits::default();
    if out.as_os_str() == "--tools-only" {
        let mut fresh = (0..500)
            .map(|_| time(|| evaluator.eval("print(1)", &limits)))
            .collect::<Result<Vec<_>>>()?;
        fresh.sort();
        for row in tools::measure(&evaluator, percentile(&fresh, 50.0))?.1 {
            println!("{row}");
        }
        return Ok(());
    }
    if out.as_os_str() == "--network-only" {
        for row in network::measure(&evaluator)?.1 {
            println!("{row}");
        }
        return Ok(());
    }
    if out.as_os_str() == "--sessions-only" {
        for row in sessions::measure(&evaluator)?.1 {
            println!("{row}");
        }
        return Ok(());
    }
    if out.as_os_str() == "--sci-only" {
        for row in sci::measure()?.1 {
            println!("{row}");
        }
        return Ok(());
    }

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
    let faults = faults_per_fresh_eval(&evaluator)?;
    let command = command_path("print(1)", COMMAND_RUNS)?;
    let (process_warm, process_first) = whole_process()?;
    let rss_per_instance = resident_per_instance(&evaluator, LIVE_INSTANCES)?;
    let soak = soak(&evaluator)?;
    let cross_talk = secrets_across_threads(&evaluator)?;
    // On an evaluator of its own: the soak above leaves this one's pool slots holding
    // more written pages (which a fresh instance then restores), and the server's numbers
    // are compared with the fresh ones measured on a clean pool.
    let (served, mixed) = server::measure(&Evaluator::new()?)?;

    let (build_embedded, build_cached, build_compiled) = evaluator_start()?;

    let unlimited = Limits::default().with_fuel(Fuel::Unlimited);
    let unmetered = Evaluator::builder()
        .metered(false)
        .on_compile(|| eprintln!("compiling (fuel off)..."))
        .build()?;
    let cpu_metered = median_of(CPU_RUNS, || time(|| evaluator.eval(CPU_LOOP, &unlimited)))?;
    let cpu_unmetered = median_of(CPU_RUNS, || time(|| unmetered.eval(CPU_LOOP, &unlimited)))?;
    let cpu_command = command_path(CPU_LOOP, CPU_RUNS)?
        .0
        .saturating_sub(command.0);
    let cpu_native = median_of(CPU_RUNS, || {
        let started = Instant::now();
        let status = std::process::Command::new("python3")
            .args(["-c", CPU_LOOP])
            .status()?;
        anyhow::ensure!(status.success(), "native python3 failed");
        let total = started.elapsed();
        let started = Instant::now();
        std::process::Command::new("python3")
            .args(["-c", "pass"])
            .status()?;
        Ok(total.saturating_sub(started.elapsed()))
    })?;
    let metering_overhead = cpu_metered.as_secs_f64() / cpu_unmetered.as_secs_f64() - 1.0;
    drop(unmetered);
    let (sci, sci_rows) = sci::measure()?;
    let (tools, tool_rows) = tools::measure(&evaluator, percentile(&fresh, 50.0))?;
    // On an evaluator of its own, as the server's: its fresh evaluations are compared.
    let (network, network_rows) = network::measure(&Evaluator::new()?)?;
    let (sessions, session_rows) = sessions::measure(&Evaluator::new()?)?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let results = json!({
        "fresh_print_1": {
            "runs": FRESH_RUNS,
            "p50_ms": ms(percentile(&fresh, 50.0)),
            "p95_ms": ms(percentile(&fresh, 95.0)),
            "p99_ms": ms(percentile(&fresh, 99.0)),
            "fuel_p50": fuel[fuel.len() / 2],
            "minor_page_faults": faults,
        },
        "session_x_plus_1": { "runs": SESSION_RUNS, "p50_ms": ms(percentile(&in_session, 50.0)) },
        "throughput_per_s": { "threads_1": throughput_1, "threads_2": throughput_2 },
        "command_path_print_1": {
            "runs": COMMAND_RUNS,
            "p50_ms": ms(command.0),
            "fuel": command.1,
        },
        "ratio_command_over_fresh_p50": command.0.as_secs_f64() / percentile(&fresh, 50.0).as_secs_f64(),
        "process_print_1": { "warm_p50_ms": ms(process_warm), "first_run_ms": ms(process_first) },
        "evaluator_start": {
            "empty_cache_embedded_compiled_ms": ms(build_embedded),
            "warm_cache_ms": ms(build_cached),
            "compiling_ms": ms(build_compiled),
        },
        "resident_bytes_per_live_instance": rss_per_instance,
        "soak": {
            "fresh_evaluations": SOAK_RUNS,
            "seconds": soak.seconds,
            "resident_mib_every_10000": soak.resident_mib,
            "drift_after_warm_up": soak.drift,
            "endings": soak.endings,
        },
        "secrets_across_threads": {
            "threads": SECRET_THREADS,
            "evaluations": SECRET_THREADS * SECRET_RUNS,
            "cross_talk": cross_talk,
        },
        "server": {
            "fresh_print_1": served.iter().map(server::Load::json).collect::<Vec<_>>(),
            "mixed_8_clients": mixed.json(),
            "added_p50_ms_1_client": ms(served[0].p50.saturating_sub(percentile(&fresh, 50.0))),
            "throughput_over_in_process_2_threads": served.iter().map(|l| l.per_s).fold(0.0, f64::max) / throughput_2,
        },
        "cpu_loop_1e6": {
            "evaluator_ms": ms(cpu_metered),
            "evaluator_fuel_off_ms": ms(cpu_unmetered),
            "command_path_ms": ms(cpu_command),
            "native_python3_ms": ms(cpu_native),
            "fuel_metering_overhead": metering_overhead,
        },
        "sci": sci,
        "tools": tools,
        "network": network,
        "sessions": sessions,
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
    println!("| page faults per fresh print(1) | {faults:.1} |");
    println!(
        "| session eval `x += 1`, p50 | {:.4} ms |",
        ms(percentile(&in_session, 50.0))
    );
    println!("| fresh evaluations/s, 1 thread | {throughput_1:.0} |");
    println!("| fresh evaluations/s, 2 threads | {throughput_2:.0} |");
    for load in &served {
        println!(
            "| served fresh print(1), {} clients: per s / p50 / p99 / errors | {:.0} / {:.3} / {:.3} ms / {} |",
            load.clients,
            load.per_s,
            ms(load.p50),
            ms(load.p99),
            load.errors
        );
    }
    println!(
        "| served mixed load (fresh, sessions, timeouts, hostile), 8 clients: per s / p50 / p99 / errors | {:.0} / {:.3} / {:.3} ms / {} |",
        mixed.per_s,
        ms(mixed.p50),
        ms(mixed.p99),
        mixed.errors
    );
    println!(
        "| server over in-process: added p50 at 1 client / best throughput vs 2 threads | {:.3} ms / {:.0}% |",
        results["server"]["added_p50_ms_1_client"].as_f64().unwrap_or(0.0),
        100.0 * results["server"]["throughput_over_in_process_2_threads"].as_f64().unwrap_or(0.0)
    );
    println!(
        "| command path (stock python.wasm) `-c 'print(1)'`, p50 ({COMMAND_RUNS} runs) | {:.1} ms, {} fuel |",
        ms(command.0),
        command.1
    );
    println!(
        "| command path / evaluator, p50 | {:.0}x |",
        results["ratio_command_over_fresh_p50"]
            .as_f64()
            .unwrap_or(0.0)
    );
    println!(
        "| `pyeval -c 'print(1)'` process, warm p50 ({PROCESS_RUNS} runs) / first run | {:.1} ms / {:.0} ms |",
        ms(process_warm),
        ms(process_first)
    );
    println!(
        "| `Evaluator` start: empty cache (compiled form embedded) / warm cache / compiling the component | {:.0} / {:.0} / {:.0} ms |",
        ms(build_embedded),
        ms(build_cached),
        ms(build_compiled)
    );
    println!(
        "| resident memory per live instance ({LIVE_INSTANCES} alive) | {:.2} MiB |",
        rss_per_instance as f64 / (1 << 20) as f64
    );
    println!(
        "| 10^6-iteration loop: evaluator / fuel off / command path / native python3 | {:.0} / {:.0} / {:.0} / {:.0} ms |",
        ms(cpu_metered),
        ms(cpu_unmetered),
        ms(cpu_command),
        ms(cpu_native)
    );
    println!(
        "| loop vs native: evaluator / command path | {:.1}x / {:.1}x |",
        cpu_metered.as_secs_f64() / cpu_native.as_secs_f64(),
        cpu_command.as_secs_f64() / cpu_native.as_secs_f64()
    );
    println!(
        "| fuel metering overhead on the loop | {:.1}% |",
        metering_overhead * 100.0
    );
    println!(
        "| soak: {SOAK_RUNS} fresh evaluations of a mixed corpus ({:.0} s), resident MiB every 10,000 | {} |",
        soak.seconds,
        soak.resident_mib
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "| soak: resident memory drift after the first 10,000 | {:.1}% |",
        soak.drift * 100.0
    );
    println!(
        "| {SECRET_THREADS} threads x {SECRET_RUNS} evaluations with their own secrets: cross-talk | {cross_talk} |"
    );
    for row in sci_rows
        .iter()
        .chain(&tool_rows)
        .chain(&network_rows)
        .chain(&session_rows)
    {
        println!("{row}");
    }
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

/// Minor page faults the host takes per fresh `print(1)`, on this thread (Linux only; 0
/// elsewhere).
fn faults_per_fresh_eval(evaluator: &Evaluator) -> Result<f64> {
    const RUNS: usize = 500;
    let Some(before) = minor_faults() else {
        return Ok(0.0);
    };
    for _ in 0..RUNS {
        evaluator.eval("print(1)", &Limits::default())?;
    }
    let after = minor_faults().context("reading page faults")?;
    Ok((after - before) as f64 / RUNS as f64)
}

/// Minor page faults of the calling thread so far.
fn minor_faults() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the parenthesised command name; minflt is the 10th field overall.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(7)?.parse().ok()
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

/// p50 wall time and fuel of `-c CODE` on the stock python.wasm (interpreter start-up
/// included), with its compiled code cached.
fn command_path(code: &str, runs: usize) -> Result<(Duration, u64)> {
    let cpython = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/cpython"));
    let runner = CommandRunner::builder(cpython.join("python.wasm"))
        .stdlib(cpython.join("stdlib"))
        .build(|| eprintln!("compiling python.wasm..."))?;
    let args = ["-c".to_owned(), code.to_owned()];
    let limits = Limits::default()
        .with_fuel(Fuel::Limited(100_000_000_000))
        .with_wall_time(Duration::from_secs(60));
    let mut times = Vec::new();
    let mut fuel = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let report = runner.run(&args, &limits, &Grants::default())?;
        times.push(started.elapsed());
        anyhow::ensure!(
            matches!(report.status, Ok(0)),
            "python.wasm failed: {:?}",
            report.status
        );
        fuel = report.fuel_consumed.unwrap_or(0);
    }
    times.sort();
    Ok((percentile(&times, 50.0), fuel))
}

/// The whole `pyeval -c 'print(1)'` process: p50 with a warm cache, and one first run
/// with an empty cache (which compiles the component).
fn whole_process() -> Result<(Duration, Duration)> {
    let pyeval = std::env::current_exe()?.with_file_name("pyeval");
    let run = |cache: Option<&std::path::Path>| -> Result<Duration> {
        let mut command = std::process::Command::new(&pyeval);
        command
            .args(["-c", "print(1)"])
            .stdout(std::process::Stdio::null());
        command.stderr(std::process::Stdio::null());
        if let Some(dir) = cache {
            command.env("PYEVAL_CACHE_DIR", dir);
        }
        let started = Instant::now();
        let status = command
            .status()
            .with_context(|| format!("running {}", pyeval.display()))?;
        anyhow::ensure!(status.success(), "pyeval failed");
        Ok(started.elapsed())
    };
    run(None)?;
    let warm = median_of(PROCESS_RUNS, || run(None))?;
    let empty = std::env::temp_dir().join(format!("pyeval-bench-{}", std::process::id()));
    let first = run(Some(&empty));
    let _ = std::fs::remove_dir_all(&empty);
    Ok((warm, first?))
}

/// How long building an evaluator takes: with an empty cache (the embedded compiled form
/// is loaded and written to the cache), with that cache warm, and compiling the component
/// (as for a component loaded from a file, which has no embedded compiled form).
fn evaluator_start() -> Result<(Duration, Duration, Duration)> {
    anyhow::ensure!(
        pyeval::embedded_is_precompiled(),
        "this build embeds no compiled form of the component (run `just build-component`)"
    );
    let empty = std::env::temp_dir().join(format!("pyeval-bench-start-{}", std::process::id()));
    let timed = |builder: pyeval::EvaluatorBuilder| -> Result<Duration> {
        let started = Instant::now();
        let evaluator = builder.build()?;
        let elapsed = started.elapsed();
        drop(evaluator);
        Ok(elapsed)
    };
    let embedded = timed(Evaluator::builder().cache(CacheLocation::Dir(empty.clone())));
    let cached = timed(Evaluator::builder().cache(CacheLocation::Dir(empty.clone())));
    let _ = std::fs::remove_dir_all(&empty);
    let component = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/pyeval.wasm"
    ));
    let compiled = timed(
        Evaluator::builder()
            .component_file(component)
            .cache(CacheLocation::Disabled),
    );
    Ok((embedded?, cached?, compiled?))
}

/// Fresh evaluations in the soak.
const SOAK_RUNS: usize = 100_000;
/// The soak samples resident memory after every this many evaluations.
const SOAK_SAMPLE: usize = 10_000;
/// Threads, and evaluations per thread, of the cross-talk check.
const SECRET_THREADS: usize = 8;
const SECRET_RUNS: usize = 1000;

/// What the soak measured.
struct Soak {
    seconds: f64,
    resident_mib: Vec<f64>,
    /// (largest - smallest) / smallest of the samples after the first.
    drift: f64,
    endings: serde_json::Value,
}

/// [`SOAK_RUNS`] fresh evaluations cycling through normal, hostile and huge-output code,
/// with the host's resident memory sampled every [`SOAK_SAMPLE`].
fn soak(evaluator: &Evaluator) -> Result<Soak> {
    let small = Limits::default().with_fuel(Fuel::Limited(2_000_000));
    let tight = Limits::default().with_memory_bytes(48 << 20);
    let corpus: [(&str, &Limits); 8] = [
        ("print('hello')", &Limits::default()),
        (
            "import json\njson.dumps({'k': list(range(100))})",
            &Limits::default(),
        ),
        (
            "import sqlite3\nsqlite3.connect(':memory:').execute('select 1').fetchone()",
            &Limits::default(),
        ),
        ("while True: pass", &small),
        ("x = bytearray(64 << 20)", &tight),
        ("print('x' * (2 << 20))", &Limits::default()),
        ("x = [0] * 10**9", &Limits::default()),
        ("1 / 0", &Limits::default()),
    ];
    let mut endings = std::collections::BTreeMap::<&str, u64>::new();
    let mut resident_mib = Vec::new();
    let started = Instant::now();
    for run in 0..SOAK_RUNS {
        let (code, limits) = corpus[run % corpus.len()];
        let ending = match evaluator.eval(code, limits) {
            Ok(outcome) if outcome.error.is_some() => "exception",
            Ok(outcome) if outcome.stdout_truncated => "truncated",
            Ok(_) => "ok",
            Err(pyeval::EvalError::Stopped(pyeval::Stopped::FuelExhausted { .. })) => "fuel",
            Err(other) => anyhow::bail!("soak: {code:?} ended with {other}"),
        };
        *endings.entry(ending).or_default() += 1;
        if (run + 1) % SOAK_SAMPLE == 0 {
            resident_mib.push(resident_bytes()? as f64 / (1 << 20) as f64);
        }
    }
    let settled = &resident_mib[1..];
    let low = settled.iter().cloned().fold(f64::INFINITY, f64::min);
    let high = settled.iter().cloned().fold(0.0, f64::max);
    Ok(Soak {
        seconds: started.elapsed().as_secs_f64(),
        drift: (high - low) / low,
        resident_mib,
        endings: serde_json::to_value(endings)?,
    })
}

/// [`SECRET_THREADS`] threads each making [`SECRET_RUNS`] fresh evaluations that plant a
/// secret of their own (in a global, in builtins, in `sys.modules`, in the environment) and
/// check that none of another's is there; returns how many saw something not theirs.
fn secrets_across_threads(evaluator: &Evaluator) -> Result<usize> {
    let checks = |thread: usize| -> Result<usize> {
        let mut seen = 0;
        for run in 0..SECRET_RUNS {
            let secret = format!("secret-{thread}-{run}");
            let code = "import builtins, os, sys\n\
                 stale = [n for n in ('planted',) if n in globals()]\n\
                 stale += [getattr(builtins, 'planted', None), sys.modules.get('planted')]\n\
                 planted = builtins.planted = sys.modules['planted'] = os.environ['SECRET']\n\
                 print(planted, [s for s in stale if s])";
            let grants = Grants::new().with_env("SECRET", secret.clone());
            let outcome = evaluator.eval_with(code, &Limits::default(), &grants)?;
            if outcome.stdout != format!("{secret} []\n") {
                seen += 1;
            }
        }
        Ok(seen)
    };
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..SECRET_THREADS)
            .map(|thread| scope.spawn(move || checks(thread)))
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a secrets thread panicked"))
            .sum()
    })
}

/// Resident memory added per live instance, with `instances` sessions alive.
fn resident_per_instance(evaluator: &Evaluator, instances: usize) -> Result<u64> {
    let before = resident_bytes()?;
    let mut sessions = Vec::with_capacity(instances);
    for i in 0..instances {
        let mut session = evaluator.session(&Limits::default())?;
        session.eval(&format!("x = {i}"))?;
        sessions.push(session);
    }
    let after = resident_bytes()?;
    drop(sessions);
    Ok(after.saturating_sub(before) / instances as u64)
}

fn resident_bytes() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm.split_whitespace().nth(1).context("statm")?.parse()?;
    Ok(pages * 4096)
}

fn time(f: impl FnOnce() -> Result<pyeval::Outcome, pyeval::EvalError>) -> Result<Duration> {
    let started = Instant::now();
    let outcome = f()?;
    anyhow::ensure!(outcome.error.is_none(), "{:?}", outcome.error);
    Ok(started.elapsed())
}

fn median_of(runs: usize, mut f: impl FnMut() -> Result<Duration>) -> Result<Duration> {
    let mut times = (0..runs).map(|_| f()).collect::<Result<Vec<_>>>()?;
    times.sort();
    Ok(percentile(&times, 50.0))
}
