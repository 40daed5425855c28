#!/usr/bin/env python3
"""Time a build from a clean clone with empty caches: the recipe of `just cold-check`.

    cold_check.py [ci|run] [--ref REF] [--dir DIR] [--no-warm] [--keep]

Clones REF (default main) of this repository into a temporary directory, points every
cache a build fills at empty directories of its own (cargo's registry and target, pyeval's
cache, pip's and npm's), and times, as a fresh machine would run them:

    ci    `.ci/run` (the CI job: installs, builds, lints, every test); then, unless
          --no-warm, `.ci/run` again after a one-line change to the library
    run   the README's first command, `just run -c "print('hello')"`

Prints the time of each step (each recipe line `just` runs, and each step the recipes
announce) and the totals, and writes the whole log beside the clone. What it cannot
empty: the Debian packages and the Rust toolchain already installed on this machine.
"""

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# A step: a recipe line `just --timestamp` echoes, or a step a recipe announces (`step` in
# the justfile); both start with the time of day in brackets.
STEP = re.compile(r"^\[\d\d:\d\d:\d\d\] (.*)")


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def timed(command, cwd, env, log):
    """Runs `command`, copying its output to `log` with the seconds since it started;
    returns (exit status, seconds, [(step, seconds)])."""
    started = time.monotonic()
    steps = []
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace") as proc:
        for line in proc.stdout:
            now = time.monotonic() - started
            log.write(f"{now:8.1f} {line}")
            log.flush()
            match = STEP.match(line)
            if match:
                steps.append((match.group(1).strip(), now))
    total = time.monotonic() - started
    durations = [(name, (steps[i + 1][1] if i + 1 < len(steps) else total) - at)
                 for i, (name, at) in enumerate(steps)]
    return proc.returncode, total, durations


def report(title, status, total, steps):
    print(f"\n{title}: {'ok' if status == 0 else f'FAILED (exit {status})'} "
          f"in {total / 60:.1f} min")
    for name, seconds in steps:
        if seconds >= 5:
            print(f"  {seconds:7.0f} s  {name[:100]}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", nargs="?", choices=["ci", "run"], default="ci")
    parser.add_argument("--ref", default="main", help="what to clone (default: main)")
    parser.add_argument("--dir", type=Path, help="where (default: a new temporary directory)")
    parser.add_argument("--no-warm", action="store_true",
                        help="skip the second .ci/run after a one-line change")
    parser.add_argument("--keep", action="store_true", help="keep the clone and its caches")
    args = parser.parse_args()

    root = args.dir or Path(tempfile.mkdtemp(prefix="pyeval-cold-"))
    root.mkdir(parents=True, exist_ok=True)
    clone = root / "pyeval"
    subprocess.run(["git", "clone", "--quiet", "--branch", args.ref, f"file://{REPO}",
                    clone], check=True)
    # CI has the shared design notes beside the clone.
    shared = REPO.parent / "shared"
    if shared.is_dir() and not (root / "shared").exists():
        (root / "shared").symlink_to(shared)
    caches = root / "caches"
    env = {k: v for k, v in os.environ.items()
           if k not in {"CARGO_TARGET_DIR", "PYEVAL_CACHE_DIR", "PYEVAL_WASMTIME"}}
    env.update({
        "XDG_CACHE_HOME": str(caches / "xdg"),  # pyeval's cache, cargo's target (.ci/run), pip
        "CARGO_HOME": str(caches / "cargo"),  # the crates: downloaded again
        "npm_config_cache": str(caches / "npm"),
        "JUST_TIMESTAMP": "true",
    })
    print(f"cold check of {args.ref} ({subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=clone, capture_output=True, text=True).stdout.strip()}) "
          f"in {root}\nmachine: {cpu_model()}, {os.cpu_count()} cores")

    runs = []
    with open(root / "cold-check.log", "w") as log:
        if args.what == "run":
            runs.append(("cold `just run -c \"print('hello')\"`",
                         timed(["just", "run", "-c", "print('hello')"], clone, env, log)))
        else:
            runs.append(("cold .ci/run", timed([".ci/run"], clone, env, log)))
            if not args.no_warm and runs[0][1][0] == 0:
                lib = clone / "host/src/lib.rs"
                lib.write_text(lib.read_text() + "// a one-line change\n")
                runs.append(("warm .ci/run after a one-line change to host/src/lib.rs",
                             timed([".ci/run"], clone, env, log)))
    for title, (status, total, steps) in runs:
        report(title, status, total, steps)
    print(f"\nlog: {root / 'cold-check.log'}")
    if not args.keep:
        shutil.rmtree(clone, ignore_errors=True)
        shutil.rmtree(caches, ignore_errors=True)
    return max(status for _, (status, _, _) in runs)


if __name__ == "__main__":
    sys.exit(main())
