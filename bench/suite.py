"""`just bench-suite`: pyperformance's pure-Python benchmarks in pyeval's evaluator (fuel
metered and not), on native CPython 3.13, and in eryx and Monty where they run; a table of
times relative to native (geometric mean first), written into the results file under
"suite".

    python bench/suite.py RESULTS.json [--only NAME,...]

Every runtime runs the same program for a benchmark: pyperformance's `run_benchmark.py`
with a small stand-in for `pyperf` in front of it, which calls the benchmark once to warm
up and then RUNS times, timing each call with `time.perf_counter` inside the interpreter
(so no runtime's start-up is counted), and prints the times. A runtime's figure is the
median of its runs. pyperformance's files come from its wheel, pinned by hash in
bench/requirements-suite.txt; eryx and Monty from the peers' environment (see
bench/python_bench.py).
"""

import ast
import glob
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import python_bench  # noqa: E402  (the peers' environment)

# pyperformance's pure-Python benchmarks that need nothing beyond the standard library.
BENCHMARKS = ["nbody", "float", "fannkuch", "richards", "spectral_norm", "deltablue", "go",
              "pidigits", "hexiom", "regex_v8", "chaos", "raytrace", "nqueens"]
RUNS = 5
MARKER = "suite-times:"

# In place of `import pyperf`: the parts of its API the benchmarks above use, written in
# the subset of Python Monty runs (no imports beyond `time`, no `sys.modules`).
HARNESS = f'''
import time as _suite_time

class _SuiteArgs:
    pass

class _SuiteArgParser:
    def __init__(self):
        self.args = _SuiteArgs()

    def add_argument(self, *names, **options):
        dest = options.get("dest")
        if dest is None:
            dest = names[-1].lstrip("-").replace("-", "_")
        setattr(self.args, dest, options.get("default"))

class _SuiteRunner:
    def __init__(self, *args, **options):
        self.metadata = {{}}
        self.argparser = _SuiteArgParser()

    def parse_args(self, *args):
        return self.argparser.args

    def _report(self, call):
        call()
        times = []
        for _ in range({RUNS}):
            times.append(call())
        print("{MARKER}", times)

    def bench_func(self, name, func, *args, **options):
        def call():
            started = _suite_time.perf_counter()
            func(*args)
            return _suite_time.perf_counter() - started
        self._report(call)

    def bench_time_func(self, name, func, *args, **options):
        self._report(lambda: func(1, *args))

class _SuitePyperf:
    Runner = _SuiteRunner
    perf_counter = _suite_time.perf_counter

pyperf = _SuitePyperf()
'''


def pinned_version():
    """pyperformance's version as bench/requirements-suite.txt pins it."""
    for line in open(os.path.join(HERE, "requirements-suite.txt")):
        if line.startswith("pyperformance=="):
            return line.split("==")[1].split()[0]
    raise SystemExit("bench/requirements-suite.txt pins no pyperformance")


def benchmark_sources(cache):
    """{name: program} for BENCHMARKS, from pyperformance's wheel (downloaded once)."""
    wheel = os.path.join(cache, "wheels", f"pyperformance-{pinned_version()}-py3-none-any.whl")
    if not os.path.exists(wheel):
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--disable-pip-version-check", "--require-hashes", "-r",
                        os.path.join(HERE, "requirements-suite.txt"), "-d",
                        os.path.dirname(wheel)], check=True)
    wheel = zipfile.ZipFile(wheel)
    programs = {}
    for name in BENCHMARKS:
        source = wheel.read(f"pyperformance/data-files/benchmarks/bm_{name}/run_benchmark.py")
        source = source.decode().replace("\nimport pyperf\n", "\n")
        source = source.replace('if __name__ == "__main__":', "if True:")
        source = source.replace("if __name__ == '__main__':", "if True:")
        programs[name] = HARNESS + source
    return programs


def times_in(stdout):
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            return ast.literal_eval(line[len(MARKER):].strip())
    raise ValueError(f"no times in the output: {stdout[-500:]!r}")


def native_python():
    """A native CPython 3.13, or None."""
    candidates = [os.environ.get("PYEVAL_NATIVE_PYTHON313"), shutil.which("python3.13")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3")))
    return python_bench.first_python(candidates, "sys.version_info[:2] == (3, 13)")


PEER_RUNNER = r'''
import json, sys
kind, program = sys.argv[1], sys.stdin.read()
if kind == "eryx":
    import eryx
    limits = eryx.ResourceLimits(execution_timeout_ms=600_000)
    result = eryx.Sandbox(resource_limits=limits).execute(program)
    print(json.dumps({"stdout": result.stdout_text}))
else:
    import pydantic_monty
    out = []
    try:
        with pydantic_monty.Monty() as pool:
            with pool.checkout() as session:
                session.feed_run(program, print_callback=lambda _s, text: out.append(text))
    except Exception as error:
        print(json.dumps({"error": f"{type(error).__name__}: {error}"}))
        sys.exit(0)
    print(json.dumps({"stdout": "".join(out)}))
'''


def run_native(python, program):
    # On stdin: regex_v8's program is longer than one argument may be.
    done = subprocess.run([python, "-"], input=program, capture_output=True, text=True,
                          check=True)
    return times_in(done.stdout)


def run_pyeval(evaluator, program, metered):
    options = {"fuel": 10**15 if metered else -1}
    outcome = evaluator.eval(program, timeout=600.0, **options)
    if outcome.error is not None:
        raise RuntimeError(outcome.error)
    return times_in(outcome.stdout)


def run_peer(python, kind, program):
    done = subprocess.run([python, "-c", PEER_RUNNER, kind], input=program,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr else "failed")
    answer = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in answer:
        raise RuntimeError(answer["error"])
    return times_in(answer["stdout"])


def geometric_mean(ratios):
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) if ratios else None


def main():
    import pyeval

    path = sys.argv[1]
    only = None
    if "--only" in sys.argv:
        only = sys.argv[sys.argv.index("--only") + 1].split(",")
    cache = os.environ.get("PYEVAL_SUITE_CACHE", os.path.join(HERE, "..", "target", "suite"))
    programs = benchmark_sources(cache)
    native = native_python()
    if native is None:
        raise SystemExit("bench-suite needs a native CPython 3.13 (python3.13 on PATH, or "
                         "PYEVAL_NATIVE_PYTHON313)")
    peers = python_bench.peers_python()
    runtimes = {
        "native": lambda p: run_native(native, p),
        "pyeval": lambda p: run_pyeval(metered, p, True),
        "pyeval_unmetered": lambda p: run_pyeval(unmetered, p, False),
    }
    if peers is not None:
        runtimes["eryx"] = lambda p: run_peer(peers, "eryx", p)
        runtimes["monty"] = lambda p: run_peer(peers, "monty", p)
    metered = pyeval.Evaluator()
    unmetered = pyeval.Evaluator(metered=False)
    medians = {}
    for name, program in programs.items():
        if only and name not in only:
            continue
        medians[name] = {}
        for runtime, run in runtimes.items():
            try:
                medians[name][runtime] = statistics.median(run(program)) * 1e3
            except Exception as error:  # a peer that cannot run it: recorded as such
                if runtime.startswith("pyeval") or runtime == "native":
                    raise
                medians[name][runtime] = f"does not run: {str(error)[:160]}"
            print(f"{name:14} {runtime:17} {medians[name][runtime]}", file=sys.stderr, flush=True)
    table = summarize(medians, runtimes)
    results = json.load(open(path))
    results["suite"] = {
        "runs": RUNS,
        "native": subprocess.run([native, "-c", "import sys; print(sys.version.split()[0])"],
                                 capture_output=True, text=True).stdout.strip(),
        "median_ms": medians,
        "geometric_mean_over_native": table,
    }
    with open(path, "w") as out:
        json.dump(results, out, indent=2, sort_keys=True)
        out.write("\n")
    print_table(medians, runtimes, table)


def summarize(medians, runtimes):
    """{runtime: geometric mean of time / native time over the benchmarks it runs,
    with how many it runs}; eryx also over pyeval's time on the benchmarks both run."""
    table = {}
    for runtime in runtimes:
        if runtime == "native":
            continue
        ratios = [row[runtime] / row["native"] for row in medians.values()
                  if isinstance(row.get(runtime), float)]
        table[runtime] = {"geometric_mean": geometric_mean(ratios), "benchmarks": len(ratios)}
    for peer in ("eryx", "monty"):
        if peer in runtimes:
            ratios = [row["pyeval"] / row[peer] for row in medians.values()
                      if isinstance(row.get(peer), float)]
            table[f"pyeval_over_{peer}"] = {"geometric_mean": geometric_mean(ratios),
                                            "benchmarks": len(ratios)}
    return table


def print_table(medians, runtimes, table):
    others = [r for r in runtimes if r != "native"]
    print("| benchmark | native ms | " + " | ".join(f"{r} / native" for r in others) + " |")
    print("|---|---|" + "---|" * len(others))
    means = []
    for runtime in others:
        mean = table[runtime]["geometric_mean"]
        means.append(f"**{mean:.2f}x** ({table[runtime]['benchmarks']})" if mean else "-")
    print("| **geometric mean** | | " + " | ".join(means) + " |")
    for name, row in medians.items():
        cells = []
        for runtime in others:
            value = row.get(runtime)
            cells.append(f"{value / row['native']:.2f}x" if isinstance(value, float)
                         else "does not run")
        print(f"| {name} | {row['native']:.1f} | " + " | ".join(cells) + " |")
    for peer in ("eryx", "monty"):
        if f"pyeval_over_{peer}" in table and table[f"pyeval_over_{peer}"]["geometric_mean"]:
            entry = table[f"pyeval_over_{peer}"]
            print(f"\npyeval's time over {peer}'s: {entry['geometric_mean']:.2f}x "
                  f"(geometric mean over the {entry['benchmarks']} both run)")


if __name__ == "__main__":
    main()
