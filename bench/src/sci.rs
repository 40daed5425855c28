//! The sci component (target/pyeval-sci.wasm): fresh evaluations with numpy loaded, its
//! size and memory, and a numpy-heavy loop against native numpy on this machine (the
//! python that `PYEVAL_NATIVE_NUMPY` names, which `just bench` prepares).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use pyeval::{Evaluator, Fuel, Limits};
use serde_json::{json, Value};

use crate::{median_of, percentile, resident_per_instance, time};

/// Fresh evaluations timed for each percentile.
const RUNS: usize = 500;
/// The measure of a fresh evaluation that uses numpy.
const NUMPY_SUM: &str = "import numpy as np\nnp.arange(10**6).sum()";
/// numpy-heavy work: small matrix products, norms and sorts, 200 times.
const NUMPY_LOOP: &str = "import numpy as np\nrng = np.random.default_rng(0)\n\
    for _ in range(200):\n    a = rng.random((100, 100))\n    b = a @ a.T\n    \
    np.linalg.norm(b)\n    np.sort(a, axis=None)\n";
/// Runs of the loop in each place.
const LOOP_RUNS: usize = 7;

/// Measures the sci component; `stdlib_print_1` is the stdlib-only component's fresh
/// print(1) p50 from the same run, for comparison.
pub fn measure(stdlib_print_1: Duration) -> Result<(Value, Vec<String>)> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/pyeval-sci.wasm"
    ));
    let evaluator = Evaluator::builder()
        .component_file(&path)
        .on_compile(|| eprintln!("compiling the sci component..."))
        .build()?;
    let limits = Limits::default();
    for _ in 0..20 {
        evaluator.eval(NUMPY_SUM, &limits)?;
    }
    let latency = |code: &str| -> Result<Vec<Duration>> {
        let mut times = (0..RUNS)
            .map(|_| time(|| evaluator.eval(code, &limits)))
            .collect::<Result<Vec<_>>>()?;
        times.sort();
        Ok(times)
    };
    let print_1 = latency("print(1)")?;
    let numpy_sum = latency(NUMPY_SUM)?;
    let resident = resident_per_instance(&evaluator)?;
    let size = std::fs::metadata(&path)?.len();

    let unlimited = limits.with_fuel(Fuel::Unlimited);
    let in_pyeval = median_of(LOOP_RUNS, || {
        time(|| evaluator.eval(NUMPY_LOOP, &unlimited))
    })?;
    let native = std::env::var_os("PYEVAL_NATIVE_NUMPY")
        .context("PYEVAL_NATIVE_NUMPY names a python with numpy (`just bench` sets it)")?;
    let in_native = median_of(LOOP_RUNS, || {
        let run = |code: &str| -> Result<Duration> {
            let started = Instant::now();
            let status = std::process::Command::new(&native)
                .args(["-c", code])
                .status()?;
            anyhow::ensure!(status.success(), "native numpy failed");
            Ok(started.elapsed())
        };
        Ok(run(NUMPY_LOOP)?.saturating_sub(run("import numpy")?))
    })?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let value = json!({
        "component_bytes": size,
        "fresh_print_1": {
            "runs": RUNS,
            "p50_ms": ms(percentile(&print_1, 50.0)),
            "p99_ms": ms(percentile(&print_1, 99.0)),
            "stdlib_component_p50_ms": ms(stdlib_print_1),
        },
        "fresh_numpy_arange_sum": {
            "runs": RUNS,
            "p50_ms": ms(percentile(&numpy_sum, 50.0)),
            "p99_ms": ms(percentile(&numpy_sum, 99.0)),
        },
        "resident_bytes_per_live_instance": resident,
        "numpy_loop": {
            "evaluator_ms": ms(in_pyeval),
            "native_numpy_ms": ms(in_native),
            "ratio": in_pyeval.as_secs_f64() / in_native.as_secs_f64(),
        },
    });
    let rows = vec![
        format!(
            "| sci: fresh print(1), p50 / p99 ({RUNS} runs; stdlib component p50 {:.3} ms) | {:.3} / {:.3} ms |",
            ms(stdlib_print_1),
            ms(percentile(&print_1, 50.0)),
            ms(percentile(&print_1, 99.0))
        ),
        format!(
            "| sci: fresh `np.arange(10**6).sum()`, p50 / p99 | {:.3} / {:.3} ms |",
            ms(percentile(&numpy_sum, 50.0)),
            ms(percentile(&numpy_sum, 99.0))
        ),
        format!(
            "| sci: component size / resident memory per live instance | {:.1} MB / {:.2} MiB |",
            size as f64 / 1e6,
            resident as f64 / (1 << 20) as f64
        ),
        format!(
            "| sci: numpy loop (200 × 100×100 matmul, norm, sort): evaluator / native numpy | {:.0} / {:.0} ms ({:.1}x) |",
            ms(in_pyeval),
            ms(in_native),
            in_pyeval.as_secs_f64() / in_native.as_secs_f64()
        ),
    ];
    Ok((value, rows))
}
