#!/usr/bin/env python3
"""Run a package's own tests in the sci component and natively: `just package-tests`.

    package_tests.py PACKAGE --pyeval BIN --component SCI.wasm [--quick] [--json FILE] [MODULE...]

PACKAGE is numpy, pandas or matplotlib. The packages' tests (kept out of the component by
tools/packages.py) are mounted into the evaluator with pytest and hypothesis (and
stand-in `ctypes` and `mmap` modules, whose every attribute is missing: many test modules
import them at the top, and this build of CPython has neither), and each test module runs
under pytest there (limits lifted: no fuel limit, 30 minutes, 3 GiB), writing JUnit XML.
The same modules run under the same pytest on the native wheels of the same versions. A
test counts for pyeval if it passes natively; the summary gives how many of those pass in
pyeval (matched by id, or by function where the ids name the platform's types), and groups
the others by their first line of failure (or skip reason). A test that crashes the
interpreter counts as crashed, and its module runs on without it. The run fails below
--min-ratio of the natively passing tests.
"""

import argparse
import concurrent.futures
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
import cpython  # noqa: E402

REQUIREMENTS = REPO / "tools/package-tests-requirements.txt"
# numpy: the array core, ufuncs, numeric, lib, linalg, fft and random.
NUMPY = [
    "numpy._core.tests.test_multiarray",
    "numpy._core.tests.test_numeric",
    "numpy._core.tests.test_ufunc",
    "numpy._core.tests.test_umath",
    "numpy._core.tests.test_shape_base",
    "numpy._core.tests.test_indexing",
    "numpy._core.tests.test_dtype",
    "numpy._core.tests.test_scalarmath",
    "numpy.lib.tests.test_function_base",
    "numpy.lib.tests.test_shape_base",
    "numpy.lib.tests.test_arraysetops",
    "numpy.lib.tests.test_nanfunctions",
    "numpy.lib.tests.test_twodim_base",
    "numpy.lib.tests.test_index_tricks",
    "numpy.linalg.tests.test_linalg",
    "numpy.fft.tests.test_pocketfft",
    "numpy.fft.tests.test_helper",
    "numpy.random.tests.test_generator_mt19937",
    "numpy.random.tests.test_random",
    "numpy.random.tests.test_direct",
]
# pandas: what analyses use (construction, repr, reductions, describe, sorting, CSV, groupby,
# merge, concat, pivot, parsing, formatting, datetimes, indexing, resampling, rolling).
PANDAS = [
    "pandas.tests.frame.test_constructors",
    "pandas.tests.frame.test_repr",
    "pandas.tests.frame.test_reductions",
    "pandas.tests.frame.methods.test_describe",
    "pandas.tests.frame.methods.test_sort_values",
    "pandas.tests.frame.methods.test_to_csv",
    "pandas.tests.groupby.test_groupby",
    "pandas.tests.groupby.aggregate.test_aggregate",
    "pandas.tests.groupby.test_apply",
    "pandas.tests.reshape.merge.test_merge",
    "pandas.tests.reshape.concat.test_concat",
    "pandas.tests.reshape.test_pivot",
    "pandas.tests.io.parser.common.test_common_basic",
    "pandas.tests.io.formats.test_format",
    "pandas.tests.tools.test_to_datetime",
    "pandas.tests.series.test_constructors",
    "pandas.tests.indexing.test_loc",
    "pandas.tests.resample.test_datetime_index",
    "pandas.tests.window.test_rolling",
]
# matplotlib: figures, axes and layout, artists, paths and transforms, colours, contours,
# images, text and mathtext, ticks and dates, Agg and PNG, rcParams and styles, 3D axes.
MATPLOTLIB = [
    "matplotlib.tests.test_axes",
    "matplotlib.tests.test_figure",
    "matplotlib.tests.test_pyplot",
    "matplotlib.tests.test_subplots",
    "matplotlib.tests.test_gridspec",
    "matplotlib.tests.test_constrainedlayout",
    "matplotlib.tests.test_lines",
    "matplotlib.tests.test_patches",
    "matplotlib.tests.test_collections",
    "matplotlib.tests.test_path",
    "matplotlib.tests.test_transforms",
    "matplotlib.tests.test_colors",
    "matplotlib.tests.test_colorbar",
    "matplotlib.tests.test_contour",
    "matplotlib.tests.test_image",
    "matplotlib.tests.test_legend",
    "matplotlib.tests.test_text",
    "matplotlib.tests.test_mathtext",
    "matplotlib.tests.test_ticker",
    "matplotlib.tests.test_dates",
    "matplotlib.tests.test_category",
    "matplotlib.tests.test_scale",
    "matplotlib.tests.test_spines",
    "matplotlib.tests.test_polar",
    "matplotlib.tests.test_triangulation",
    "matplotlib.tests.test_agg",
    "matplotlib.tests.test_png",
    "matplotlib.tests.test_backend_bases",
    "matplotlib.tests.test_rcparams",
    "matplotlib.tests.test_style",
    "matplotlib.tests.test_cbook",
    "matplotlib.tests.test_artist",
    "mpl_toolkits.mplot3d.tests.test_axes3d",
]
# What `just test` runs of each: a few modules, quick to run.
QUICK = {
    "numpy": ["numpy.linalg.tests.test_regression", "numpy.fft.tests.test_helper",
              "numpy.random.tests.test_seed_sequence"],
    "pandas": ["pandas.tests.frame.methods.test_describe", "pandas.tests.reshape.test_pivot"],
    "matplotlib": ["matplotlib.tests.test_pyplot", "matplotlib.tests.test_transforms"],
}
SUITES = {"numpy": NUMPY, "pandas": PANDAS, "matplotlib": MATPLOTLIB}
# Tests named under each reason the summary gives (the JSON file has them all).
SHOWN = 20
LIMITS = ["--fuel", "-1", "--timeout", "1800", "--memory", "3072", "--max-output", "64000000"]
GUEST_PYTEST, GUEST_TESTS, GUEST_OUT = "/pytest", "/package-tests", "/results"
# Pure-Python wheels of the requirements that only the native venv takes: the component
# has its own.
IN_THE_COMPONENT = ("python_dateutil-", "tzdata-", "packaging-", "cycler-", "fonttools-",
                    "pyparsing-")
# Run in the evaluator: the packages are in the component, their tests in the mounted tree,
# so each package's path gets its tests' directory; then pytest.
RUNNER = """\
import importlib, json, os, sys, types, pytest
from _pytest.junitxml import mangle_test_address
# Many of numpy's test modules import ctypes or mmap at the top, which this build of
# CPython lacks: stand-ins let them be collected, and a test that uses one fails on its
# first attribute. numpy's own modules that fall back without ctypes are imported first.
import numpy.ctypeslib, numpy.testing
for name in ("ctypes", "mmap"):
    try:
        importlib.import_module(name)
    except ImportError:
        stand_in = types.ModuleType(name, "stand-in: this sandbox lacks the module")
        def _missing(attribute, name=name):
            raise AttributeError(f"{{name}}.{{attribute}}: this sandbox lacks {{name}}")
        stand_in.__getattr__ = _missing
        sys.modules[name] = stand_in
for root, dirs, files in os.walk({tests!r}):
    if os.path.basename(root) == "tests":
        parent = os.path.dirname(root)
        package = os.path.relpath(parent, {tests!r}).replace(os.sep, ".")
        importlib.import_module(package).__path__.append(parent)
        dirs[:] = []
# Each test's start and each phase's outcome go to the log as they happen (a line each,
# the file closed after it): a test that crashes the interpreter is the one started last.
class Log:
    def write(self, *event):
        with open({log!r}, "a") as log:
            log.write(json.dumps(event) + "\\n")
    def pytest_runtest_logstart(self, nodeid, location):
        self.write("start", nodeid, self.test(nodeid))
    def test(self, nodeid):
        # The test's id as JUnit XML gives it (the native run's results).
        names = mangle_test_address(nodeid)
        return ".".join(names[:-1]) + "::" + names[-1]
    def pytest_runtest_logreport(self, report):
        crash = getattr(report.longrepr, "reprcrash", None)
        if crash is not None:
            detail = crash.message
        elif isinstance(report.longrepr, tuple):
            detail = report.longrepr[2].removeprefix("Skipped: ")
        else:
            detail = str(report.longrepr or "")
        self.write("report", report.nodeid, self.test(report.nodeid), report.when,
                   report.outcome, detail)
    def pytest_sessionfinish(self, session, exitstatus):
        self.write("finished")
# (No fd-level capture or faulthandler: both need os.dup, which WASI lacks; a base
# directory for tmp_path given, as pytest would otherwise name it after os.getuid(), which
# WASI lacks.)
sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", "-p", "no:faulthandler",
                      "--capture=sys", "--basetemp", "/tmp/pytest", "--pyargs", {module!r},
                      *[f"--deselect={{test}}" for test in {done!r}]], plugins=[Log()]))
"""
# A module whose tests crash the interpreter more often than this is given up.
MAX_CRASHES = 50


def prepare(packages):
    """The test tree, the guest's pytest, and the native venv, cached by their inputs."""
    root = cpython.cache_root() / f"package-tests-{packages.name.rsplit('-', 1)[1]}"
    stamp = root / "ready"
    # (Its inputs: the requirements and these steps, not the rest of this script.)
    inputs = REQUIREMENTS.read_text() + inspect.getsource(prepare)
    if stamp.is_file() and stamp.read_text() == inputs:
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "wheels").mkdir(parents=True)
    print(f"[pyeval] preparing the packages' tests in {root}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet",
                    "--disable-pip-version-check", "--no-deps", "--only-binary", ":all:",
                    "--require-hashes", "-r", REQUIREMENTS, "-d", root / "wheels"], check=True)
    for wheel in (root / "wheels").glob("*-none-any.whl"):
        if wheel.name.startswith(IN_THE_COMPONENT):
            continue
        with zipfile.ZipFile(wheel) as z:
            z.extractall(root / "pytest")
    shutil.copytree(packages / "tests", root / "tests")
    # (numpy's and pandas' fixtures live in a conftest.py beside their package's code.)
    for conftest in packages.glob("site/*/conftest.py"):
        if (root / "tests" / conftest.parent.name).is_dir():
            shutil.copy(conftest, root / "tests" / conftest.parent.name / "conftest.py")
    subprocess.run([sys.executable, "-m", "venv", root / "native"], check=True)
    subprocess.run([root / "native/bin/pip", "install", "--quiet", "--disable-pip-version-check",
                    "--no-index", "--find-links", root / "wheels", "--require-hashes",
                    "-r", REQUIREMENTS], check=True)
    # matplotlib's wheels leave out the images its tests compare with (its test packages
    # refuse to import without them): the native packages get those of the sources.
    site = next((root / "native/lib").glob("python3*/site-packages"))
    for images in (root / "tests").rglob("baseline_images"):
        native = site / images.relative_to(root / "tests")
        if native.parent.is_dir() and not native.exists():
            shutil.copytree(images, native)
    stamp.write_text(inputs)
    return root


def run_module(args, root, module):
    """(native results, pyeval results), each {test id: (outcome, detail)}."""
    with tempfile.TemporaryDirectory(prefix="pyeval-package-tests-") as out:
        out = Path(out)
        (out / "pyeval").mkdir()
        native_xml = out / "native.xml"
        subprocess.run([root / "native/bin/python", "-m", "pytest", "-q", "-p",
                        "no:cacheprovider", "--junitxml", native_xml, "--pyargs", module],
                       cwd=out, capture_output=True, env={**os.environ, "PYTHONPATH": ""})
        return read(native_xml), run_in_pyeval(args, root, module, out / "pyeval")


def run_in_pyeval(args, root, module, out):
    """The module's results in the evaluator. A test that crashes the interpreter counts as
    crashed, and the module goes on without it and the tests done."""
    log = out / f"{module}.log"
    results, done = {}, []
    for _ in range(MAX_CRASHES):
        code = RUNNER.format(tests=GUEST_TESTS, module=module, log=f"{GUEST_OUT}/{log.name}",
                             done=done)
        ran = subprocess.run(
            [args.pyeval, "--component", args.component, *LIMITS,
             "--mount", f"{root / 'pytest'}:{GUEST_PYTEST}",
             "--mount", f"{root / 'tests'}:{GUEST_TESTS}",
             "--mount", f"{out}:{GUEST_OUT}:rw",
             "--env", f"PYTHONPATH={GUEST_PYTEST}", "-c", code],
            capture_output=True, text=True)
        events = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        running = None  # (node id, test id) of a test started and not torn down
        for event in events:
            if event[0] == "start":
                running = event[1:]
                done.append(event[1])
            elif event[0] == "report":
                _, nodeid, test, when, outcome, detail = event
                detail = (detail.strip().splitlines() or [""])[0][:120]
                # A test's outcome is its first phase that did not pass (as JUnit XML has it).
                if results.get(test, ("passed",))[0] == "passed":
                    results[test] = (outcome, detail)
                if when == "teardown":
                    running = None
            elif event[0] == "finished":
                return results
        tail = " / ".join((ran.stdout + ran.stderr).strip().splitlines()[-2:])
        if running is None:
            results["<module>"] = ("crashed", tail)
            return results
        results[running[1]] = ("crashed", tail)
    return results


def read(xml):
    results = {}
    if not Path(xml).is_file():
        return results
    for case in ET.parse(xml).getroot().iter("testcase"):
        test = f"{case.get('classname')}::{case.get('name')}"
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "failed"}.get(child.tag, "skipped")
                detail = (child.get("message") or "").strip().splitlines()[:1]
                detail = detail[0][:120] if detail else child.tag
                break
        results[test] = (outcome, detail)
    return results


def compare(native, guest):
    """(natively passing tests, those that pass in pyeval, the others). A test counts by its
    id; a parametrized one whose ids name the platform's integer types (`int64_0` and
    `int64_1` here, where native numpy says `int32` and `int64`) counts by its function:
    as many of its unmatched native passes as it has passes under ids native lacks."""
    def function(test):
        return test.split("[", 1)[0]
    passed = [t for t, (o, _) in native.items() if o == "passed"]
    spare = Counter(function(t) for t, (o, _) in guest.items()
                    if o == "passed" and t not in native)
    both, others = [], []
    for t in passed:
        if guest.get(t, ("missing",))[0] == "passed":
            both.append(t)
        elif t not in guest and spare[function(t)] > 0:
            spare[function(t)] -= 1
            both.append(t)
        else:
            others.append(t)
    return passed, both, others


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", choices=SUITES)
    parser.add_argument("--pyeval", type=Path)
    parser.add_argument("--component", type=Path)
    parser.add_argument("--quick", action="store_true", help="only the `just test` subset")
    parser.add_argument("--json", type=Path, help="write the summary here")
    parser.add_argument("--min-ratio", type=float, default=0.95,
                        help="fail below this share of the natively passing tests")
    parser.add_argument("--native-python", action="store_true",
                        help="only prepare, and print the native python with the packages")
    parser.add_argument("modules", nargs="*")
    args = parser.parse_intermixed_args()
    packages = Path(subprocess.run([sys.executable, REPO / "tools/packages.py",
                                    REPO / "packages/sci.toml"], check=True,
                                   stdout=subprocess.PIPE, text=True).stdout.strip())
    root = prepare(packages)
    if args.native_python:
        print(root / "native/bin/python")
        return
    if not (args.package and args.pyeval and args.component):
        parser.error("PACKAGE, --pyeval and --component are required")
    modules = args.modules or (QUICK if args.quick else SUITES)[args.package]
    rows, tests = [], defaultdict(list)  # {reason: the tests that failed for it}
    total_native = total_both = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {pool.submit(run_module, args, root, m): m for m in modules}
        for future in concurrent.futures.as_completed(futures):
            module = futures[future]
            native, guest = future.result()
            passed_native, both, others = compare(native, guest)
            for t in others:
                outcome, detail = guest.get(t, ("missing", ""))
                if "<module>" in guest:
                    outcome, detail = guest["<module>"]
                if outcome != "passed":
                    # (Grouped without their numbers: sizes, counts, errors' RMS.)
                    reason = re.sub(r"\d+(\.\d+)?", "N", f"{outcome}: {detail}")
                    # (The JUnit ids leave the module out: `::test` or `.Class::test`.)
                    tests[reason].append(f"{module}{t}")
            count = Counter(o for o, _ in guest.values())
            rows.append((module, len(passed_native), len(both), count["passed"],
                         count["failed"] + count["crashed"], count["skipped"]))
            total_native += len(passed_native)
            total_both += len(both)
            print(f"[pyeval] {module}: {len(both)}/{len(passed_native)} of the natively "
                  f"passing tests pass", flush=True)
    ratio = total_both / total_native if total_native else 0.0
    print(f"\n{'module':45} {'native':>7} {'both':>7} {'pass':>6} {'fail':>6} {'skip':>6}")
    for row in sorted(rows):
        print(f"{row[0]:45} {row[1]:7} {row[2]:7} {row[3]:6} {row[4]:6} {row[5]:6}")
    print(f"\n[pyeval] {total_both} of {total_native} natively passing tests pass in pyeval "
          f"({ratio:.1%})")
    print("[pyeval] the others, by reason:")
    reasons = sorted(tests, key=lambda reason: -len(tests[reason]))
    for reason in reasons[:25]:
        print(f"  {len(tests[reason]):5}  {reason}")
        for t in tests[reason][:SHOWN]:
            print(f"           {t}")
    if args.json:
        args.json.write_text(json.dumps({
            "modules": [dict(zip(["module", "native_passed", "both_passed", "pyeval_passed",
                                  "pyeval_failed", "pyeval_skipped"], r)) for r in sorted(rows)],
            "native_passed": total_native, "both_passed": total_both,
            "ratio": ratio,
            "reasons": [(reason, len(tests[reason])) for reason in reasons], "tests": tests,
        }, indent=1) + "\n")
    if total_native == 0 or ratio < args.min_ratio:
        sys.exit(f"[pyeval] below {args.min_ratio:.0%} of the natively passing tests")


if __name__ == "__main__":
    main()
