//! The `sci` component (target/pyeval-sci.wasm, which `just build-sci` makes): numpy, sympy
//! and the others of packages/sci.toml, loaded from its file. A corpus of the kind of code
//! chat-bot users and LLMs write, with the outcomes native CPython with the same packages
//! gives, through the library and through the wasmtime CLI; hostile code with numpy loaded;
//! and what differs from a 64-bit native build, so that a change to it is noticed.

#[path = "common/corpus.rs"]
mod corpus;

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use corpus::{wave_string, Snippet, Summary};
use pyeval::{EvalError, Evaluator, Fuel, Grants, Limits, Stopped};

fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// One evaluator of the sci component per test binary.
fn sci() -> &'static Evaluator {
    static EVALUATOR: OnceLock<Evaluator> = OnceLock::new();
    EVALUATOR.get_or_init(|| {
        Evaluator::builder()
            .component_file(repo().join("target/pyeval-sci.wasm"))
            .build()
            .expect("target/pyeval-sci.wasm loads (`just build-sci` makes it)")
    })
}

fn corpus() -> Vec<Snippet> {
    corpus::read(&repo().join("tests/sci_corpus.json"))
}

fn eval(code: &str, limits: &Limits) -> Result<pyeval::Outcome, EvalError> {
    sci().eval(code, limits)
}

fn value(code: &str) -> String {
    let outcome = eval(code, &Limits::default()).unwrap();
    assert!(outcome.error.is_none(), "{code:?}: {:?}", outcome.error);
    outcome.value.unwrap_or_default()
}

#[test]
fn corpus_through_pyeval() {
    for snippet in corpus() {
        let outcome = eval(&snippet.code, &Limits::default()).unwrap();
        let got = Summary::of(outcome);
        assert_eq!(got, snippet.expected, "{:?}", snippet.code);
    }
}

/// The wasmtime CLI, caching what it compiles in a temporary directory that lives as long
/// as the test binary (the sci component takes it seconds to compile).
fn wasmtime() -> Command {
    static CACHE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    let cli = std::env::var_os("PYEVAL_WASMTIME")
        .expect("PYEVAL_WASMTIME names the wasmtime CLI (`just test` installs it)");
    let (_, config) = CACHE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("cache.toml");
        let cache = dir.path().join("cache");
        std::fs::write(&config, format!("[cache]\ndirectory = {:?}\n", cache)).unwrap();
        let config = format!("cache-config={}", config.display());
        (dir, config)
    });
    let mut command = Command::new(cli);
    command
        .current_dir(repo())
        .args(["run", "-S", "http"])
        .args(["-C", config]);
    command
}

/// What `command` printed; fails the test unless it succeeded.
fn stdout_of(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn corpus_through_the_wasmtime_cli() {
    for snippet in corpus() {
        let call = format!("eval({})", wave_string(&snippet.code));
        let wave =
            stdout_of(wasmtime().args(["--invoke", &call, "target/pyeval-sci-portable.wasm"]));
        let got = Summary::from_wave(&wave);
        assert_eq!(got, snippet.expected, "{:?} gave {wave}", snippet.code);
    }
}

#[test]
fn the_wasmtime_cli_runs_it_as_a_command() {
    let out = stdout_of(
        wasmtime()
            .args(["target/pyeval-sci-portable.wasm", "-c"])
            .arg("import numpy, sympy; print(numpy.__version__, sympy.__version__)"),
    );
    assert_eq!(out, "2.4.6 1.14.0\n");
}

/// numpy's default integer is 64 bits wide, as on the 64-bit machines code is written on
/// (wasm32's own would be 32: `np.arange(10**6).sum()` wrapped to 1783293664): Python ints,
/// `arange`, `dtype(int)`, sums of smaller integers, counts, and RandomState's integers,
/// which draw the same values as on such a machine.
#[test]
fn numpys_default_integer_is_64_bits_wide() {
    let cases = [
        ("np.arange(10**6).sum()", "np.int64(499999500000)"),
        ("np.array([1, 2]).dtype.name", "'int64'"),
        (
            "np.dtype(int).name, np.int_.__name__, np.uint.__name__",
            "('int64', 'int64', 'uint64')",
        ),
        ("np.array([2**31]) * 2", "array([4294967296])"),
        ("np.array([7, 8], dtype=np.int32).sum()", "np.int64(15)"),
        ("np.array([True, True]).sum().dtype.name", "'int64'"),
        ("np.bincount([1, 1, 2])", "array([0, 2, 1])"),
        ("np.histogram([1, 2, 2], bins=2)[0]", "array([1, 2])"),
        (
            "np.random.seed(0); np.random.randint(0, 10, 5)",
            "array([5, 0, 3, 3, 7])",
        ),
        (
            "np.random.seed(0); np.random.permutation(4)",
            "array([2, 3, 1, 0])",
        ),
        // Where indices or counts (intp, 32 bits here) are asked for, int64 is taken.
        (
            "np.choose(np.array([0, 1]), [[1, 2], [3, 4]])",
            "array([1, 4])",
        ),
        ("np.repeat([1, 2], np.array([2, 1]))", "array([1, 1, 2])"),
        ("np.argmax([1, 3], out=np.zeros((), dtype=int))", "array(1)"),
    ];
    for (code, want) in cases {
        assert_eq!(
            value(&format!("import numpy as np\n{code}")),
            want,
            "{code}"
        );
    }
}

/// What stays as on a 32-bit platform: indices (`np.intp`, returned by `argsort`,
/// `nonzero` and the like) are 32 bits wide; and the floating-point status flags numpy
/// reads to warn are never raised in WebAssembly.
#[test]
fn what_differs_from_a_64_bit_build() {
    assert_eq!(
        value("import numpy as np\nnp.argsort([3, 1, 2])"),
        "array([1, 2, 0], dtype=int32)"
    );
    let divide =
        "import warnings, numpy as np\nwarnings.simplefilter('error')\nnp.array([1.0]) / 0";
    assert_eq!(value(divide), "array([inf])");
    // float128 is IEEE quad precision here (80-bit x87 extended on x86-64).
    assert_eq!(
        value("import numpy as np\nnp.finfo(np.longdouble).bits"),
        "128"
    );
}

/// pandas reads a CSV, groups, describes and parses dates; a DataFrame as the last
/// expression comes back as its text table.
#[test]
fn pandas_analyses_a_csv() {
    let code = "import io, pandas as pd\n\
        df = pd.read_csv(io.StringIO('city,temp,day\\nA,10,2024-01-01\\nB,20,2024-01-02\\nA,30,2024-01-03\\n'), parse_dates=['day'])\n\
        print(df.groupby('city').temp.mean().to_dict(), df.day.dt.day_name().tolist())\n\
        print(df.temp.describe()['std'], df.dtypes.astype(str).tolist())\n\
        df.pivot_table(index='city', values='temp', aggfunc='sum')";
    let outcome = eval(code, &Limits::default()).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        outcome.stdout,
        "{'A': 20.0, 'B': 20.0} ['Monday', 'Tuesday', 'Wednesday']\n\
         10.0 ['str', 'int64', 'datetime64[us]']\n"
    );
    assert_eq!(
        outcome.value.as_deref(),
        Some("      temp\ncity      \nA       40\nB       20")
    );
}

/// A two-digit year is read within 50 years of today's: dateutil's parser settings, made
/// before the snapshot, read the clock of each instance (the snapshot's is 1970's).
#[test]
fn two_digit_years_are_read_around_today() {
    let code = "import time, pandas as pd, dateutil.parser as p\n\
        (p.parse('12/20/21').year, pd.to_datetime('12/20/21').year, time.localtime().tm_year > 2025)";
    assert_eq!(value(code), "(2021, 2021, True)");
}

#[test]
fn each_fresh_evaluation_has_its_own_random_state() {
    let draw = "import numpy as np\n(np.random.rand(), np.random.default_rng().random())";
    let first = value(draw);
    let second = value(draw);
    assert_ne!(
        first, second,
        "the snapshot's random state leaked into both"
    );
    let (a, b) = first
        .trim_matches(|c| c == '(' || c == ')')
        .split_once(", ")
        .unwrap();
    assert_ne!(a, b);
    // Seeded, they are what numpy gives everywhere.
    assert_eq!(
        value("import numpy as np\nnp.random.seed(0)\nnp.random.rand()"),
        "0.5488135039273248"
    );
    // No normal deviate of the snapshot's is left over for the first draw.
    let normal = "import numpy as np\nnp.random.standard_normal()";
    assert_ne!(value(normal), value(normal));
    // Every `random.Random` made before the snapshot is reseeded, not only `random`'s own:
    // sympy (preloaded) keeps three of its own, one of whose methods its module binds (it
    // is seeded at wake), two seeded when first used (however they are used first).
    let sympy = "from sympy.core.random import rng, random\n\
        from sympy.core.random import _assumptions_rng as a\n\
        from sympy import Dummy\n\
        (rng.random(), random(), a.random(), Dummy._prng.randint(0, 10**9), Dummy._prng.getstate()[1][:3])";
    assert_ne!(
        value(sympy),
        value(sympy),
        "sympy's generators were frozen in the snapshot"
    );
    let first_use = "from sympy.core.random import _assumptions_rng as a\n\
        (type(a).__name__, a.getstate()[1][:3], type(a) is __import__('random').Random)";
    let (one, two) = (value(first_use), value(first_use));
    assert_ne!(one, two, "a generator seeded when first used");
    assert!(one.ends_with("True)"), "{one}");
    // A seed the code sets is kept.
    assert_eq!(
        value("from sympy import Dummy\nDummy._prng.seed(5)\nDummy._prng.random()"),
        value("import random\nrandom.Random(5).random()")
    );
}

/// numpy's global generator is reseeded through a C function the sandbox's bootstrap
/// keeps; code cannot point it at another generator's state.
#[test]
fn the_numpy_reseeding_cannot_be_redirected() {
    let code = "import sys, numpy as np\n\
        keep = sys.modules['_pyeval'].keep_mt19937\n\
        try:\n    keep(np.random.PCG64().capsule)\nexcept RuntimeError as e:\n    print(e)\n\
        sys.modules['_pyeval'].reseed_mt19937()\n\
        np.random.seed(0)\nnp.random.rand()";
    let outcome = eval(code, &Limits::default()).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.stdout, "keep_mt19937: already kept, or no numpy\n");
    assert_eq!(outcome.value.as_deref(), Some("0.5488135039273248"));
}

#[test]
fn a_session_keeps_its_arrays() {
    let mut session = sci().session(&Limits::default()).unwrap();
    session
        .eval("import numpy as np\na = np.arange(6).reshape(2, 3)")
        .unwrap();
    let outcome = session.eval("(a * 2).tolist()").unwrap();
    assert_eq!(outcome.value.as_deref(), Some("[[0, 2, 4], [6, 8, 10]]"));
}

#[test]
fn a_dumped_session_keeps_its_arrays_frames_and_charts() {
    let limits = Limits::default();
    let mut session = sci().session(&limits).unwrap();
    session
        .eval(
            "import numpy as np, pandas as pd, matplotlib.pyplot as plt\n\
             rng = np.random.default_rng(3)\n\
             a = rng.random((50, 4))\n\
             df = pd.DataFrame(a, columns=list('wxyz'))\n\
             df.to_csv('frame.csv', index=False)\n\
             plt.plot([1, 2, 3])",
        )
        .unwrap();
    let expect = session
        .eval("float(rng.random()), df.x.sum()")
        .unwrap()
        .value;
    session
        .eval("rng = np.random.default_rng(3); rng.random((50, 4))")
        .unwrap();
    let mut back = sci()
        .restore(&session.dump().unwrap(), &limits, &Grants::default())
        .unwrap();
    assert_eq!(
        back.eval("float(rng.random()), df.x.sum()").unwrap().value,
        expect
    );
    let read = back
        .eval("pd.read_csv('frame.csv').shape, (a @ a.T).shape")
        .unwrap();
    assert_eq!(read.value.as_deref(), Some("((50, 4), (50, 50))"));
    // The figure drawn before the dump is still open, and is returned as a chart.
    let chart = back.eval("plt.title('restored')").unwrap();
    assert_eq!(chart.charts.len(), 1, "{:?}", chart.error);
}

#[test]
fn hostile_code_with_numpy_is_contained() {
    let defaults = Limits::default();
    // Past what a 32-bit size can hold (2 GiB): refused by numpy itself.
    let huge = eval("import numpy as np\nnp.zeros(2**31)", &defaults).unwrap();
    assert_eq!(huge.error.unwrap().type_name, "ValueError");
    // Past the memory limit, within the address space.
    let big = eval("import numpy as np\na = np.ones(2**27)", &defaults).unwrap();
    assert_eq!(
        big.error.unwrap().type_name,
        "numpy._core._exceptions._ArrayMemoryError"
    );
    // A vectorized loop forever: fuel, then (unmetered) the deadline.
    let forever = "import numpy as np\nwhile True:\n    np.arange(10**6).sum()";
    let fuel = eval(
        forever,
        &defaults.clone().with_fuel(Fuel::Limited(200_000_000)),
    );
    assert!(
        matches!(fuel, Err(EvalError::Stopped(Stopped::FuelExhausted { .. }))),
        "{fuel:?}"
    );
    // (With room for the three 30 MiB matrices beside the 205 MiB the instance starts with.)
    let unmetered = defaults
        .clone()
        .with_fuel(Fuel::Unlimited)
        .with_memory_bytes(512 << 20)
        .with_wall_time(Duration::from_secs(1));
    let time = eval(forever, &unmetered);
    assert!(
        matches!(time, Err(EvalError::Stopped(Stopped::Timeout { .. }))),
        "{time:?}"
    );
    // One long call inside numpy's C code (a 2000×2000 matrix product) is stopped too.
    let matmul = "import numpy as np\na = np.ones((2000, 2000))\na @ a";
    let time = eval(matmul, &unmetered);
    assert!(
        matches!(time, Err(EvalError::Stopped(Stopped::Timeout { .. }))),
        "{time:?}"
    );
    // Printing a whole large array (about 49 KB of text): the output limit cuts it, the
    // outcome says so.
    let flood = "import sys, numpy as np\nnp.set_printoptions(threshold=sys.maxsize)\n\
                 print(np.arange(10**4))";
    let small_output = defaults.clone().with_output_bytes(16 << 10);
    let flood = eval(flood, &small_output).unwrap();
    assert!(flood.stdout_truncated && flood.error.is_none());
    assert_eq!(flood.stdout.len(), 16 << 10);
    // The evaluator still serves normal code after all of that.
    assert_eq!(value("import numpy as np\nint(np.ones(3).sum())"), "3");
}

/// A C++ allocation that fails cannot be caught in this build (no wasm exceptions): it ends
/// the evaluation as the memory limit, where native numpy raises `MemoryError`. A change
/// (exceptions made to work, or the stop misreported) should be noticed.
#[test]
fn a_failed_cxx_allocation_is_the_memory_limit() {
    let limits = Limits::default()
        .with_memory_bytes(200 << 20)
        .with_fuel(Fuel::Unlimited);
    let code = "import numpy as np\nnp.unique_values(np.arange(3 * 10**6, dtype=np.int32))";
    assert_eq!(
        eval(code, &limits).unwrap_err(),
        EvalError::Stopped(Stopped::MemoryLimit { limit: 200 << 20 })
    );
}

/// Two packages' extension modules that define one global symbol are refused when the
/// packages are gathered (linked into one binary, calls meant for one would reach the
/// other); one package's modules may share a symbol with each other.
#[test]
fn a_symbol_two_packages_define_is_refused() {
    let check = r#"
import subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, "tools")
import cpython, packages
toolchain = cpython.selected_build().out / "toolchain/bin"
lib = Path(tempfile.mkdtemp())
for name, code in [("a_x", "int shared(void) { return 1; }"),
                   ("a_y", "int shared(void) { return 2; }"),
                   ("b_z", "int shared(void) { return 3; }")]:
    (lib / f"{name}.c").write_text(code)
    subprocess.run([toolchain / "clang", "--target=wasm32-wasip1", "-c", lib / f"{name}.c",
                    "-o", lib / f"{name}.o"], check=True)
    subprocess.run([toolchain / "llvm-ar", "qc", lib / f"lib{name}.a", lib / f"{name}.o"],
                   check=True)
packages.check_symbols(lib, ["a.x liba_x.a", "a.y liba_y.a"])
try:
    packages.check_symbols(lib, ["a.x liba_x.a", "b.z libb_z.a"])
except packages.LockError as e:
    print(e)
"#;
    let out = stdout_of(
        Command::new("python3")
            .current_dir(repo())
            .args(["-c", check]),
    );
    assert_eq!(
        out,
        "b and a both define `shared`: rename one (see the flags in tools/native_wasi.py)\n"
    );
}

/// The first bytes of every PNG file.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// Room for several charts: drawing one takes about half a billion fuel units.
fn charting() -> Limits {
    Limits::default().with_fuel(Fuel::Limited(5_000_000_000))
}

fn chart_names(outcome: &pyeval::Outcome) -> Vec<&str> {
    for chart in &outcome.charts {
        assert_eq!(chart.media_type, "image/png");
        if let Some(data) = &chart.data {
            assert!(data.starts_with(PNG_SIGNATURE), "{} is no PNG", chart.path);
            assert_eq!(data.len() as u64, chart.size);
        }
    }
    outcome.charts.iter().map(|c| c.path.as_str()).collect()
}

#[test]
fn figures_come_back_as_charts() {
    // `plt.show()` draws and closes what is open then; the end draws the rest.
    let code = "import matplotlib.pyplot as plt\n\
        plt.plot([1, 2, 3], [2, 4, 1])\n\
        plt.title('first')\n\
        plt.show()\n\
        fig, ax = plt.subplots()\n\
        ax.bar(['a', 'b'], [3, 5])\n\
        print(plt.get_fignums())";
    let outcome = eval(code, &charting()).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    // (show() closed figure 1, so the next one takes its number.)
    assert_eq!(outcome.stdout, "[1]\n");
    assert_eq!(
        outcome.stderr, "",
        "no warning that the backend cannot show"
    );
    assert_eq!(chart_names(&outcome), ["chart-1.png", "chart-2.png"]);
    assert_eq!(outcome.charts_dropped, 0);
    // Closed once drawn: a session's next evaluation has none open, and no charts.
    let mut session = sci().session(&charting()).unwrap();
    let drew = session
        .eval("import matplotlib.pyplot as plt\nplt.plot([1, 2])\n1")
        .unwrap();
    assert_eq!(chart_names(&drew), ["chart-1.png"]);
    let after = session.eval("plt.get_fignums()").unwrap();
    assert_eq!(after.value.as_deref(), Some("[]"));
    assert!(after.charts.is_empty());
    // Without matplotlib there are none.
    assert!(eval("print(1)", &Limits::default())
        .unwrap()
        .charts
        .is_empty());
}

#[test]
fn charts_are_drawn_as_native_matplotlib_draws_them() {
    // The PNG decoded in the sandbox: the default figure size at 100 dpi, a white
    // background, the line in the default colour.
    let code = "import io, numpy as np, matplotlib.pyplot as plt\n\
        from PIL import Image\n\
        fig, ax = plt.subplots()\n\
        ax.plot([0, 1], [0, 1], linewidth=20)\n\
        buf = io.BytesIO(); fig.savefig(buf, format='png')\n\
        img = np.asarray(Image.open(buf).convert('RGB'))\n\
        print(img.shape, tuple(img[5, 5]), (img == (31, 119, 180)).all(-1).sum() > 1000)";
    let outcome = eval(code, &charting()).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(
        outcome.stdout,
        "(480, 640, 3) (np.uint8(255), np.uint8(255), np.uint8(255)) True\n"
    );
    // Saved to a file and left open: the file, and the chart.
    let outcome = eval(
        "import matplotlib.pyplot as plt\nplt.plot([3, 1])\nplt.savefig('plot.png')",
        &charting(),
    )
    .unwrap();
    assert_eq!(outcome.files[0].path, "plot.png");
    assert_eq!(chart_names(&outcome), ["chart-1.png"]);
}

#[test]
fn charts_share_the_files_limits() {
    let code = "import matplotlib.pyplot as plt\n\
        open('a.txt', 'w').write('x' * 100)\n\
        for i in range(3):\n    plt.figure(); plt.plot([i, 1])";
    // One file and one chart fit in two; the third is dropped, the second is listed
    // without its bytes (100 + 10 bytes leave no room for a PNG).
    let limits = charting().with_file_limits(pyeval::FileLimits::new(3, 110));
    let outcome = eval(code, &limits).unwrap();
    assert_eq!(outcome.files.len(), 1);
    assert_eq!(chart_names(&outcome), ["chart-1.png", "chart-2.png"]);
    assert!(outcome
        .charts
        .iter()
        .all(|c| c.data.is_none() && c.size > 1000));
    assert_eq!(outcome.charts_dropped, 1);
    let none = charting().with_file_limits(pyeval::FileLimits::new(0, 0));
    let outcome = eval(code, &none).unwrap();
    assert!(outcome.charts.is_empty());
}

#[test]
fn a_figure_that_cannot_be_drawn_is_reported() {
    // Bad mathtext fails when drawn, not when set.
    let code = "import matplotlib.pyplot as plt\n\
        plt.figure(); plt.title(r'$\\frac{1$')\n\
        plt.figure(); plt.plot([1, 2])";
    let outcome = eval(code, &charting()).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert!(
        outcome
            .stderr
            .starts_with("pyeval: figure 1 could not be drawn: ValueError: "),
        "{}",
        outcome.stderr
    );
    assert_eq!(chart_names(&outcome), ["chart-1.png"]);
}

#[test]
fn large_glyphs_are_rasterized_whole() {
    // FreeType's rasterizer bisects a band whose cells overflow its pool (here without
    // setjmp): a glyph this large takes that path many times, and must come out whole.
    let code = "import numpy as np, matplotlib.pyplot as plt\n\
        fig = plt.figure(figsize=(8, 8), dpi=100)\n\
        fig.text(0.05, 0.1, '@', fontsize=500)\n\
        fig.canvas.draw()\n\
        px = np.asarray(fig.canvas.buffer_rgba())[..., :3]\n\
        dark = (px < 128).all(-1)\n\
        rows = np.flatnonzero(dark.any(1))\n\
        print(dark.sum() > 50_000, rows.max() - rows.min() > 400, len(np.flatnonzero(np.diff(rows) > 1)))";
    let outcome = eval(code, &charting()).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.stdout, "True True 0\n");
}

#[test]
fn packaged_data_files_are_read_in_place() {
    // matplotlib opens its settings and fonts by path; writing one changes the session's
    // copy only.
    let code = "import matplotlib, os\n\
        path = os.path.join(matplotlib.get_data_path(), 'matplotlibrc')\n\
        before = open(path).read()\n\
        open(path, 'a').write('# mine\\n')\n\
        (len(open(path).read()) - len(before), 'fonts' in os.listdir(matplotlib.get_data_path()))";
    assert_eq!(value(code), "(7, True)");
    assert_eq!(
        value("import matplotlib, os\nopen(os.path.join(matplotlib.get_data_path(), 'matplotlibrc')).read().endswith('# mine\\n')"),
        "False"
    );
}

#[test]
fn a_qhull_error_ends_only_its_evaluation() {
    // Qhull reports a flat input by longjmp, which this build cannot take: the evaluation
    // traps, and the evaluator goes on.
    let code = "import matplotlib.tri as tri\ntri.Triangulation([0, 1, 2], [0, 1, 2]).triangles";
    let stopped = eval(code, &Limits::default()).unwrap_err();
    assert!(
        matches!(stopped, EvalError::Stopped(Stopped::Trap(_))),
        "{stopped:?}"
    );
    assert_eq!(value("1 + 1"), "2");
    // A proper triangulation works.
    assert_eq!(
        value("import matplotlib.tri as tri\nlen(tri.Triangulation([0, 1, 0, 1], [0, 0, 1, 1]).triangles)"),
        "2"
    );
}

/// A sales table as analysis code is given it (`sales.csv`): four regions, three products,
/// 26 weeks of 2024.
fn sales_csv() -> String {
    let mut csv = String::from("date,region,product,units,unit_price\n");
    for week in 0..26u32 {
        let (month, day) = (1 + week * 7 / 31, 1 + week * 7 % 31);
        for (r, region) in ["North", "South", "East", "West"].iter().enumerate() {
            for (p, (product, price)) in
                [("Widget", "2.50"), ("Gadget", "12.99"), ("Gizmo", "7.25")]
                    .iter()
                    .enumerate()
            {
                let units = (week * 7 + r as u32 * 13 + p as u32 * 29) % 40 + 5;
                let day = day.min(28);
                csv.push_str(&format!(
                    "2024-{month:02}-{day:02},{region},{product},{units},{price}\n"
                ));
            }
        }
    }
    csv
}

/// Analyses as chat-bot users and LLMs write them (a CSV in, pandas, charts out), compared
/// with native CPython running the same packages: the same text, and charts that match.
const ANALYSIS_CORPUS: &[&str] = &[
    "import pandas as pd\n\
     df = pd.read_csv('sales.csv', parse_dates=['date'])\n\
     df['revenue'] = df.units * df.unit_price\n\
     print(df.head())\n\
     print(df.describe())\n\
     print(df.dtypes)",
    "import pandas as pd, matplotlib.pyplot as plt\n\
     df = pd.read_csv('sales.csv')\n\
     df['revenue'] = df['units'] * df['unit_price']\n\
     by_region = df.groupby('region')['revenue'].sum().sort_values(ascending=False)\n\
     print(by_region.round(2))\n\
     print(f\"Top region: {by_region.index[0]} with ${by_region.iloc[0]:,.2f}\")\n\
     ax = by_region.plot(kind='bar', color='skyblue', figsize=(8, 5))\n\
     ax.set_title('Revenue by region'); ax.set_ylabel('Revenue ($)')\n\
     plt.xticks(rotation=0); plt.tight_layout()",
    "import pandas as pd, matplotlib.pyplot as plt\n\
     df = pd.read_csv('sales.csv', parse_dates=['date'])\n\
     df['revenue'] = df.units * df.unit_price\n\
     monthly = df.set_index('date').groupby('product').resample('ME')['revenue'].sum().unstack(0)\n\
     print(monthly.round(1).to_string())\n\
     print(monthly.pct_change().mean().round(4))\n\
     monthly.plot(marker='o', title='Monthly revenue by product')\n\
     plt.grid(alpha=0.3)",
    "import pandas as pd, numpy as np, matplotlib.pyplot as plt\n\
     df = pd.read_csv('sales.csv')\n\
     table = df.pivot_table(index='region', columns='product', values='units', aggfunc='sum', margins=True)\n\
     print(table)\n\
     core = table.iloc[:-1, :-1]\n\
     fig, ax = plt.subplots()\n\
     im = ax.imshow(core.values, cmap='YlGn')\n\
     ax.set_xticks(range(len(core.columns)), core.columns); ax.set_yticks(range(len(core.index)), core.index)\n\
     for i in range(core.shape[0]):\n\
     \x20   for j in range(core.shape[1]):\n\
     \x20       ax.text(j, i, core.iat[i, j], ha='center', va='center')\n\
     fig.colorbar(im, ax=ax, label='units')",
    "import pandas as pd\n\
     df = pd.read_csv('sales.csv', parse_dates=['date'])\n\
     targets = pd.DataFrame({'region': ['North', 'South', 'East', 'West'], 'target': [1900, 1850, 2000, 1700]})\n\
     units = df.groupby('region', as_index=False)['units'].sum()\n\
     merged = units.merge(targets, on='region', how='left')\n\
     merged['attained'] = (merged.units / merged.target * 100).round(1)\n\
     print(merged.sort_values('attained', ascending=False).to_string(index=False))\n\
     q = df.assign(quarter=df.date.dt.to_period('Q')).groupby(['quarter', 'product']).units.agg(['sum', 'mean', 'max'])\n\
     print(q)\n\
     print(pd.crosstab(df.region, df['units'] > 25, normalize='index').round(3))",
    "import pandas as pd, numpy as np, matplotlib.pyplot as plt\n\
     df = pd.read_csv('sales.csv', parse_dates=['date'])\n\
     daily = df.groupby('date').units.sum()\n\
     trend = daily.rolling(4).mean()\n\
     print(daily.describe().round(3))\n\
     print(trend.dropna().tail())\n\
     print('correlation of units and price:', round(df.units.corr(df.unit_price), 6))\n\
     fig, (a, b) = plt.subplots(2, 1, figsize=(8, 7), sharex=False)\n\
     a.plot(daily.index, daily.values, label='units'); a.plot(trend.index, trend.values, label='4-week mean'); a.legend()\n\
     b.hist(df.units, bins=np.arange(5, 46, 5), edgecolor='black'); b.set_xlabel('units per row')\n\
     fig.suptitle('Weekly units'); fig.tight_layout()",
    "import pandas as pd\n\
     df = pd.read_csv('sales.csv')\n\
     summary = df.groupby(['region', 'product']).agg(total=('units', 'sum'), average=('units', 'mean'))\n\
     summary.to_csv('summary.csv')\n\
     print(open('summary.csv').read())\n\
     print(df.region.value_counts().to_dict(), df['product'].nunique())\n\
     print(df.nlargest(3, 'units')[['region', 'product', 'units']])",
    "import matplotlib.pyplot as plt\n\
     xs = list(range(30))\n\
     plt.plot(xs, [x * x for x in xs], label='squares', marker='o')\n\
     plt.plot(xs, [20 * x for x in xs], '--', label='linear')\n\
     plt.title('Growth'); plt.xlabel('x'); plt.ylabel('y'); plt.legend(); plt.grid(True)",
    "import io, pandas as pd, matplotlib.pyplot as plt\n\
     df = pd.read_csv(io.StringIO('region,sales\\nNorth,120\\nSouth,95\\nEast,143\\nWest,80\\nNorth,60\\nEast,20\\n'))\n\
     totals = df.groupby('region').sales.sum().sort_values()\n\
     ax = totals.plot.bar(color='tab:green', title='Sales by region')\n\
     ax.set_ylabel('units')\n\
     plt.tight_layout()",
    "import numpy as np, matplotlib.pyplot as plt\n\
     rng = np.random.default_rng(1)\n\
     fig, (a, b) = plt.subplots(1, 2, figsize=(9, 4))\n\
     x = rng.normal(size=500)\n\
     a.hist(x, bins=25, color='steelblue', edgecolor='white'); a.set_title('Histogram')\n\
     b.scatter(x[:100], 2 * x[:100] + rng.normal(size=100), alpha=0.6); b.set_title('Scatter')\n\
     fig.suptitle('Two panels')",
    "import numpy as np, matplotlib.pyplot as plt\n\
     x = np.linspace(-3, 3, 80)\n\
     X, Y = np.meshgrid(x, x)\n\
     Z = np.exp(-(X**2 + Y**2))\n\
     fig, ax = plt.subplots()\n\
     cs = ax.contourf(X, Y, Z, levels=10, cmap='viridis'); fig.colorbar(cs)\n\
     ax.set_title(r'$e^{-(x^2+y^2)}$')",
];

/// The native python with numpy, pandas and matplotlib that tools/package_tests.py prepares.
fn native_python() -> &'static str {
    static PYTHON: OnceLock<String> = OnceLock::new();
    PYTHON.get_or_init(|| {
        // (The last line: preparing it first says so.)
        let out = stdout_of(
            Command::new("python3")
                .current_dir(repo())
                .args(["tools/package_tests.py", "--native-python"]),
        );
        out.lines().last().unwrap_or_default().to_owned()
    })
}

/// Each analysis of the corpus, given `sales.csv`, in the evaluator and in native CPython
/// with the same pandas and matplotlib: the same stdout, the same number of charts, each
/// chart the same size with over 99.5% of its pixels the same as native matplotlib's (the
/// bound the README states; FreeType 2.6.5 here, 2.6.1 in its wheel).
#[test]
fn analyses_match_native_pandas_and_matplotlib() {
    let dir = tempfile::tempdir().unwrap();
    let csv = sales_csv();
    std::fs::write(dir.path().join("sales.csv"), &csv).unwrap();
    let grants = Grants::new().with_file("sales.csv", csv.clone());
    let mut pairs = Vec::new();
    for (i, code) in ANALYSIS_CORPUS.iter().enumerate() {
        let outcome = sci().eval_with(code, &charting(), &grants).unwrap();
        assert!(outcome.error.is_none(), "{code}: {:?}", outcome.error);
        // Native CPython runs it in the directory with sales.csv, then saves the figures
        // left open, in order, as the evaluation's end does.
        let native = dir.path().join(format!("native-{i}"));
        std::fs::create_dir(&native).unwrap();
        std::fs::copy(dir.path().join("sales.csv"), native.join("sales.csv")).unwrap();
        let run = format!(
            "import matplotlib\nmatplotlib.use('Agg')\nexec({code:?})\n\
             import matplotlib.pyplot as plt\n\
             for i, n in enumerate(plt.get_fignums(), 1):\n    plt.figure(n).savefig(f'chart-{{i}}.png')"
        );
        let stdout = stdout_of(
            Command::new(native_python())
                .current_dir(&native)
                .args(["-c", &run]),
        );
        assert_eq!(outcome.stdout, stdout, "{code}");
        let names = chart_names(&outcome);
        let drawn = (1..)
            .map(|n| native.join(format!("chart-{n}.png")))
            .take_while(|path| path.is_file())
            .count();
        assert_eq!(names.len(), drawn, "{code}");
        for chart in &outcome.charts {
            let ours = dir.path().join(format!("ours-{i}-{}", chart.path));
            std::fs::write(&ours, chart.data.as_ref().unwrap()).unwrap();
            pairs.push((i, ours, native.join(&chart.path)));
        }
    }
    let pairs_literal: Vec<String> = pairs
        .iter()
        .map(|(i, ours, native)| format!("({i}, {ours:?}, {native:?})"))
        .collect();
    let compare = format!(
        "import numpy as np\nfrom PIL import Image\n\
         for i, ours, native in [{}]:\n\
         \x20   a = np.asarray(Image.open(ours).convert('RGB'), dtype=int)\n\
         \x20   b = np.asarray(Image.open(native).convert('RGB'), dtype=int)\n\
         \x20   if a.shape != b.shape:\n\
         \x20       print(i, native.rsplit('/', 1)[1], 0.0); continue\n\
         \x20   same = (a == b).all(-1).mean()\n\
         \x20   print(i, native.rsplit('/', 1)[1], f'{{same:.5f}}')",
        pairs_literal.join(", ")
    );
    for line in stdout_of(Command::new(native_python()).args(["-c", &compare])).lines() {
        eprintln!("analysis {line} of the pixels match native matplotlib's");
        let same: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
        let i: usize = line.split(' ').next().unwrap().parse().unwrap();
        assert!(same > 0.995, "{line}\n{}", ANALYSIS_CORPUS[i]);
    }
    assert_eq!(pairs.len(), 8, "the corpus draws eight charts");
}

#[test]
fn mpl_toolkits_draws_in_3d() {
    // mpl_toolkits is a namespace package in matplotlib's install.
    let code = "import numpy as np, matplotlib.pyplot as plt\n\
        from mpl_toolkits.mplot3d import Axes3D\n\
        ax = plt.figure().add_subplot(projection='3d')\n\
        t = np.linspace(0, 6, 50)\n\
        ax.plot(np.sin(t), np.cos(t), t)\n\
        type(ax).__name__";
    let outcome = eval(code, &charting()).unwrap();
    assert!(outcome.error.is_none(), "{:?}", outcome.error);
    assert_eq!(outcome.value.as_deref(), Some("'Axes3D'"));
    assert_eq!(chart_names(&outcome), ["chart-1.png"]);
}
