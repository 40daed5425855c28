//! The sci component (target/pyeval-sci.wasm): fresh evaluations with numpy, pandas and
//! matplotlib loaded, its size and memory, and a numpy-heavy loop, a pandas groupby and a
//! chart against native numpy, pandas and matplotlib on this machine (the python that
//! `PYEVAL_NATIVE_NUMPY` names, which `just bench` prepares).

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
/// The measure of a fresh evaluation that uses pandas.
const PANDAS_SUM: &str = "import pandas as pd\npd.DataFrame({'a': range(1000)}).a.sum()";
/// The measure of a fresh chart: a line chart, drawn to PNG at the end (a chart
/// of the outcome).
const LINE_CHART: &str = "import matplotlib.pyplot as plt\n\
    plt.plot(range(100), [i * i for i in range(100)], label='squares')\n\
    plt.title('A line chart')\nplt.legend()";
/// The same chart drawn to PNG by native matplotlib, as the evaluator draws a chart.
const LINE_CHART_NATIVE: &str = "import io, matplotlib\nmatplotlib.use('Agg')\n\
    import matplotlib.pyplot as plt\n\
    plt.plot(range(100), [i * i for i in range(100)], label='squares')\n\
    plt.title('A line chart')\nplt.legend()\n\
    plt.savefig(io.BytesIO(), format='png', bbox_inches='tight')";
/// Fresh charts timed for each percentile (each takes tens of milliseconds).
const CHART_RUNS: usize = 100;
/// A groupby over 100,000 rows, as analysis code does.
const PANDAS_GROUPBY: &str = "import numpy as np, pandas as pd\n\
    rng = np.random.default_rng(0)\n\
    df = pd.DataFrame({'key': rng.integers(0, 100, 100_000), 'value': rng.random(100_000)})\n\
    df.groupby('key').value.agg(['mean', 'sum', 'count'])\n";
/// Sessions alive while resident memory is measured: fewer than the stdlib component's, as
/// each starts with about 160 MiB of linear memory (numpy, pandas, sympy and networkx
/// loaded), which the evaluator's default memory budget would not hold 100 times.
const LIVE_INSTANCES: usize = 50;
/// Runs of the loop and the groupby in each place.
const LOOP_RUNS: usize = 7;

/// Measures the sci component, beside a new evaluator of the stdlib-only component whose
/// fresh print(1) is timed just before the sci component's, for comparison (the bench's
/// own evaluator has run larger code by then).
pub fn measure() -> Result<(Value, Vec<String>)> {
    let stdlib = &Evaluator::new()?;
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/pyeval-sci.wasm"
    ));
    let evaluator = Evaluator::builder()
        .component_file(&path)
        .on_compile(|| eprintln!("compiling the sci component..."))
        .build()?;
    let limits = Limits::default();
    let latency = |code: &str| -> Result<Vec<Duration>> {
        let mut times = (0..RUNS)
            .map(|_| time(|| evaluator.eval(code, &limits)))
            .collect::<Result<Vec<_>>>()?;
        times.sort();
        Ok(times)
    };
    // Each in a loop of its own, one after the other (taken in turn, each would evict the
    // other's memory from the caches).
    let own_loop = |evaluator: &Evaluator| -> Result<Vec<Duration>> {
        for _ in 0..200 {
            evaluator.eval("print(1)", &limits)?;
        }
        let mut times = (0..RUNS)
            .map(|_| time(|| evaluator.eval("print(1)", &limits)))
            .collect::<Result<Vec<_>>>()?;
        times.sort();
        Ok(times)
    };
    // `print(1)` first, as for the stdlib component: a pool slot keeps pages that larger
    // code wrote, which slows later fresh evaluations in it (see the README).
    let stdlib_print_1 = percentile(&own_loop(stdlib)?, 50.0);
    let print_1 = own_loop(&evaluator)?;
    for _ in 0..20 {
        evaluator.eval(NUMPY_SUM, &limits)?;
    }
    let numpy_sum = latency(NUMPY_SUM)?;
    let pandas_sum = latency(PANDAS_SUM)?;
    let mut chart = (0..CHART_RUNS)
        .map(|_| {
            let started = Instant::now();
            let outcome = evaluator.eval(LINE_CHART, &limits)?;
            anyhow::ensure!(outcome.charts.len() == 1, "the line chart drew no chart");
            Ok(started.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    chart.sort();
    let resident = resident_per_instance(&evaluator, LIVE_INSTANCES)?;
    let size = std::fs::metadata(&path)?.len();

    let unlimited = limits.with_fuel(Fuel::Unlimited);
    let in_pyeval = |code: &str| median_of(LOOP_RUNS, || time(|| evaluator.eval(code, &unlimited)));
    let native = std::env::var_os("PYEVAL_NATIVE_NUMPY").context(
        "PYEVAL_NATIVE_NUMPY names a python with numpy and pandas (`just bench` sets it)",
    )?;
    // The time of `code` in a new native process that has imported what it uses, timed by
    // the process itself.
    let in_native = |code: &str, imports: &str| {
        let timed = format!(
            "{imports}\nimport time\nstarted = time.perf_counter()\nexec({code:?})\n\
             print(time.perf_counter() - started)"
        );
        median_of(LOOP_RUNS, || {
            let out = std::process::Command::new(&native)
                .args(["-c", &timed])
                .output()?;
            anyhow::ensure!(out.status.success(), "native python failed: {code}");
            let seconds: f64 = String::from_utf8(out.stdout)?.trim().parse()?;
            Ok(Duration::from_secs_f64(seconds))
        })
    };
    let (loop_pyeval, loop_native) = (
        in_pyeval(NUMPY_LOOP)?,
        in_native(NUMPY_LOOP, "import numpy")?,
    );
    let (groupby_pyeval, groupby_native) = (
        in_pyeval(PANDAS_GROUPBY)?,
        in_native(PANDAS_GROUPBY, "import numpy, pandas")?,
    );
    // Native matplotlib draws the chart in a process that has imported it (the evaluator's
    // snapshot has).
    let chart_native = in_native(
        LINE_CHART_NATIVE,
        "import io, matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot",
    )?;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let value = json!({
        "component_bytes": size,
        "fresh_print_1": {
            "runs": RUNS,
            "p50_ms": ms(percentile(&print_1, 50.0)),
            "p99_ms": ms(percentile(&print_1, 99.0)),
            "stdlib_component_p50_ms": ms(stdlib_print_1),
            "ratio_to_stdlib": percentile(&print_1, 50.0).as_secs_f64() / stdlib_print_1.as_secs_f64(),
        },
        "fresh_numpy_arange_sum": {
            "runs": RUNS,
            "p50_ms": ms(percentile(&numpy_sum, 50.0)),
            "p99_ms": ms(percentile(&numpy_sum, 99.0)),
        },
        "fresh_pandas_dataframe_sum": {
            "runs": RUNS,
            "p50_ms": ms(percentile(&pandas_sum, 50.0)),
            "p99_ms": ms(percentile(&pandas_sum, 99.0)),
        },
        "fresh_line_chart_png": {
            "runs": CHART_RUNS,
            "p50_ms": ms(percentile(&chart, 50.0)),
            "p99_ms": ms(percentile(&chart, 99.0)),
            "native_matplotlib_ms": ms(chart_native),
        },
        "resident_bytes_per_live_instance": resident,
        "numpy_loop": {
            "evaluator_ms": ms(loop_pyeval),
            "native_numpy_ms": ms(loop_native),
            "ratio": loop_pyeval.as_secs_f64() / loop_native.as_secs_f64(),
        },
        "pandas_groupby_100k_rows": {
            "evaluator_ms": ms(groupby_pyeval),
            "native_pandas_ms": ms(groupby_native),
            "ratio": groupby_pyeval.as_secs_f64() / groupby_native.as_secs_f64(),
        },
    });
    let rows = vec![
        format!(
            "| sci: fresh print(1), p50 / p99 ({RUNS} runs, after as many of the stdlib component's: p50 {:.3} ms, {:.2}x) | {:.3} / {:.3} ms |",
            ms(stdlib_print_1),
            percentile(&print_1, 50.0).as_secs_f64() / stdlib_print_1.as_secs_f64(),
            ms(percentile(&print_1, 50.0)),
            ms(percentile(&print_1, 99.0))
        ),
        format!(
            "| sci: fresh `np.arange(10**6).sum()`, p50 / p99 | {:.3} / {:.3} ms |",
            ms(percentile(&numpy_sum, 50.0)),
            ms(percentile(&numpy_sum, 99.0))
        ),
        format!(
            "| sci: fresh `pd.DataFrame({{'a': range(1000)}}).a.sum()`, p50 / p99 | {:.3} / {:.3} ms |",
            ms(percentile(&pandas_sum, 50.0)),
            ms(percentile(&pandas_sum, 99.0))
        ),
        format!(
            "| sci: fresh line chart to PNG, p50 / p99 ({CHART_RUNS} runs; native matplotlib {:.1} ms) | {:.3} / {:.3} ms |",
            ms(chart_native),
            ms(percentile(&chart, 50.0)),
            ms(percentile(&chart, 99.0))
        ),
        format!(
            "| sci: component size / resident memory per live instance ({LIVE_INSTANCES} alive) | {:.1} MB / {:.2} MiB |",
            size as f64 / 1e6,
            resident as f64 / (1 << 20) as f64
        ),
        format!(
            "| sci: numpy loop (200 × 100×100 matmul, norm, sort): evaluator / native numpy | {:.0} / {:.0} ms ({:.1}x) |",
            ms(loop_pyeval),
            ms(loop_native),
            loop_pyeval.as_secs_f64() / loop_native.as_secs_f64()
        ),
        format!(
            "| sci: pandas groupby over 100,000 rows: evaluator / native pandas | {:.0} / {:.0} ms ({:.1}x) |",
            ms(groupby_pyeval),
            ms(groupby_native),
            groupby_pyeval.as_secs_f64() / groupby_native.as_secs_f64()
        ),
    ];
    Ok((value, rows))
}
