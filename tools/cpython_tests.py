#!/usr/bin/env python3
"""Run CPython's own regression tests in pyeval: the recipe of `just cpython-tests`.

Each module of CPython's Lib/test (from the pinned source tarball of `just build-cpython`)
runs under its test runner (`-m test`) twice: in the evaluator component, and on the stock
`python.wasm` through pyeval's command path. The table gives passed, failed and skipped
tests of each. The run fails when a module does not pass in the evaluator and KNOWN below
does not say why, or when a test fails that KNOWN does not name.

    cpython_tests.py --pyeval BIN [--quick] [--markdown FILE] [MODULE...]

The tests are unpacked once into <cache>/cpython-tests-<hash>/ (<cache> as for
tools/cpython.py). One change is made to them: test_asyncio's package skips itself
wholesale where sockets do not work; the copy drops that check, and only submodules that
use no sockets, subprocesses or threads are run.
"""

import argparse
import concurrent.futures
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from xml.etree import ElementTree

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpython  # noqa: E402  (the pinned sources and the cache)

# The modules run, as the runner names them.
MODULES = [
    "test_asyncio.test_futures", "test_asyncio.test_futures2", "test_asyncio.test_locks",
    "test_asyncio.test_pep492", "test_asyncio.test_queues", "test_asyncio.test_runners",
    "test_asyncio.test_taskgroups", "test_asyncio.test_tasks", "test_asyncio.test_timeouts",
    "test_asyncio.test_waitfor", "test_asyncio.test_context",
    "test_asyncio.test_eager_task_factory",
    "test_json", "test_re", "test_math", "test_statistics", "test_datetime", "test_zoneinfo",
    "test_collections", "test_itertools", "test_functools", "test_string", "test_textwrap",
    "test_enum", "test_dataclasses", "test_fractions", "test_decimal", "test_csv",
    "test_tempfile", "test_os", "test_pathlib", "test_sqlite3", "test_zlib", "test_bz2",
    "test_lzma", "test_pickle", "test_ast", "test_grammar", "test_types", "test_dict",
    "test_set", "test_str", "test_fstring",
]

# A subset for CI: quick, and touching files, time zones, asyncio and the import machinery.
QUICK = ["test_json", "test_tempfile", "test_zoneinfo", "test_asyncio.test_tasks",
         "test_csv", "test_fstring"]

# Modules that do not pass in the evaluator: why (the README shows it), and the tests that
# fail for that reason (a part of each name). Any other failure is a regression.
KNOWN = {
    "test_asyncio.test_futures": (
        "the 12 tests of `asyncio.wrap_future` run a `concurrent.futures` thread pool; "
        "there are no threads (python.wasm fails them too)", ("test_wrap_future",)),
    "test_asyncio.test_tasks": (
        "the 5 tests of `run_coroutine_threadsafe` need a second thread",
        ("test_run_coroutine_threadsafe",)),
    "test_sqlite3": (
        "`test_locking` and `test_raise_timeout` expect a locked database to be refused to a "
        "second connection; pyeval's SQLite takes no file locks (`unix-none`), so that "
        "several connections to one file work in a guest with one thread",
        ("test_locking", "test_raise_timeout")),
    "test_types": (
        "skipped whole: it needs `_testsinglephase`, one of CPython's C test modules, which "
        "neither build includes (`--disable-test-modules`)", ()),
}

PATCHED = "test_asyncio/__init__.py"
SOCKET_CHECK = "support.requires_working_socket(module=True)\n"

# Generous limits: some modules run for minutes and build large structures.
LIMITS = ["--fuel", "-1", "--timeout", "1800", "--memory", "2048",
          "--max-output", "64000000"]
GUEST_LIB = "/cpython/Lib"


def stage():
    """The unpacked Lib/ holding `test`, made once per tarball and patch."""
    _, name, digest = cpython.SOURCES["python"]
    key = hashlib.sha256(f"{name}={digest}\n{SOCKET_CHECK}".encode()).hexdigest()[:16]
    root = cpython.cache_root() / f"cpython-tests-{cpython.PYTHON_VERSION}-{key}"
    lib = root / "Lib"
    if (root / "complete").is_file():
        return lib
    tarball = cpython.cache_root() / "downloads" / name
    if not tarball.is_file() or cpython.sha256(tarball) != digest:
        sys.exit(f"[pyeval] {tarball} is missing or altered: run `just build-cpython` first")
    shutil.rmtree(root, ignore_errors=True)
    prefix = f"Python-{cpython.PYTHON_VERSION}/Lib/"
    print(f"[pyeval] unpacking CPython's tests into {root}", flush=True)
    with tarfile.open(tarball) as archive:
        members = []
        for member in archive.getmembers():
            if member.name.startswith(prefix + "test/") and (member.isfile() or member.isdir()):
                member.name = member.name[len(prefix):]
                members.append(member)
        archive.extractall(lib, members=members, filter="data")
    init = lib / "test" / PATCHED
    text = init.read_text()
    if SOCKET_CHECK not in text:
        sys.exit(f"[pyeval] {init} no longer holds the socket check this tool removes")
    init.write_text(text.replace(SOCKET_CHECK, ""))
    (root / "complete").touch()
    return lib


class Result:
    """What the runner reported for one module on one path: its JUnit XML, else its output."""

    def __init__(self, output, status, junit):
        self.output = output
        self.passed, self.failed, self.skipped = 0, [], 0
        if junit.is_file():
            for case in ElementTree.parse(junit).getroot().iter("testcase"):
                kinds = {child.tag for child in case}
                if kinds & {"failure", "error"}:
                    self.failed.append(case.get("name", "?"))
                elif "skipped" in kinds:
                    self.skipped += 1
                else:
                    self.passed += 1
        verdict = re.search(r"^Result: (.*)$", output, re.M)
        if re.search(r"^\S+ skipped -- ", output, re.M):
            self.state = "skipped"
        elif verdict and verdict.group(1).strip() == "SUCCESS" and status == 0:
            self.state = "pass"
        elif verdict:
            self.state = "fail"
        else:
            self.state = f"crashed (status {status})"

    def summary(self):
        if self.state == "skipped":
            reason = re.search(r"skipped -- (.*)", self.output)
            return f"skipped: {reason.group(1).strip() if reason else '?'}"
        counts = f"{self.passed} passed, {len(self.failed)} failed, {self.skipped} skipped"
        return counts if self.state in ("pass", "fail") else f"{self.state}; {counts}"


def run_module(pyeval, lib, module, stock):
    """Runs one module on one path; returns its Result."""
    with tempfile.TemporaryDirectory(prefix="pyeval-cpython-tests-") as host:
        results, scratch = Path(host, "results"), Path(host, "tmp")
        results.mkdir()
        scratch.mkdir()
        command = [str(pyeval), *LIMITS, "--mount", f"{lib}:{GUEST_LIB}",
                   "--mount", f"{results}:/results:rw", "--env", f"PYTHONPATH={GUEST_LIB}"]
        if stock:
            # The stock interpreter has no scratch files of its own: a host directory is
            # its /tmp.
            command += ["--python", str(stock), "--mount", f"{scratch}:/tmp:rw"]
        command += ["-m", "test", "--tempdir", "/tmp/regrtest",
                    "--junit-xml", "/results/junit.xml", module]
        done = subprocess.run(command, capture_output=True, text=True, errors="replace")
        return Result(done.stdout + done.stderr, done.returncode, results / "junit.xml")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyeval", required=True, type=Path, help="the pyeval binary")
    parser.add_argument("--quick", action="store_true", help="only the CI subset")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--verbose", action="store_true",
                        help="print the runner's output of every module that fails")
    parser.add_argument("modules", nargs="*", help="modules to run (default: all listed)")
    args = parser.parse_args()

    modules = args.modules or (QUICK if args.quick else MODULES)
    lib = stage()
    stock = cpython.REPO / "target" / "cpython" / "python.wasm"
    jobs = [(module, path) for module in modules for path in (None, stock)]
    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        futures = {pool.submit(run_module, args.pyeval, lib, module, path): (module, path)
                   for module, path in jobs}
        for future in concurrent.futures.as_completed(futures):
            results[futures[future]] = future.result()

    rows = []
    unexplained = []
    for module in modules:
        ours, theirs = results[(module, None)], results[(module, stock)]
        note, expected = KNOWN.get(module, ("", ()))
        surprises = [name for name in ours.failed if not any(e in name for e in expected)]
        # A failure the JUnit file does not name is no known one either.
        unnamed = ours.state == "fail" and not ours.failed
        if (ours.state != "pass" and not note) or surprises or unnamed \
                or ours.state.startswith("crash"):
            unexplained.append(module)
            note = f"NOT EXPLAINED: {', '.join(surprises) or ours.state}"
        elif ours.state == "pass" and note:
            note = "passes now: drop it from KNOWN"
        rows.append((module, ours.summary(), theirs.summary(), note))
        print(f"{module:40} evaluator: {ours.summary():40} python.wasm: {theirs.summary()}"
              + (f"  [{note}]" if note else ""), flush=True)
        if args.verbose and ours.state not in ("pass", "skipped"):
            print(f"    failing in the evaluator: {', '.join(ours.failed)}")
            print(ours.output[-4000:])
    if args.markdown:
        lines = ["| module | evaluator | stock python.wasm | note |", "|---|---|---|---|"]
        lines += [f"| {' | '.join(row)} |" for row in rows]
        args.markdown.write_text("\n".join(lines) + "\n")
    if unexplained:
        print(f"[pyeval] failing in the evaluator without a reason in KNOWN: "
              f"{', '.join(unexplained)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
