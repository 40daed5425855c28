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
use pyeval::{EvalError, Evaluator, Fuel, Limits, Stopped};

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
    command.current_dir(repo()).arg("run").args(["-C", config]);
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
    // Every `random.Random` made before the snapshot is reseeded, not only `random`'s own:
    // sympy (preloaded) keeps one of its own.
    let sympy = "from sympy.core.random import rng\nrng.random()";
    assert_ne!(
        value(sympy),
        value(sympy),
        "sympy's generator was frozen in the snapshot"
    );
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
    let unmetered = defaults
        .clone()
        .with_fuel(Fuel::Unlimited)
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
