"""Fresh evaluations and a session step from Python, measured as bench/src/main.rs
measures them from Rust, added to the results file under "python" with the ratios to the
Rust p50s of the same run; the same small snippets in eryx and Monty (bench/peers.py,
each in a process of its own); and the round trip of a no-op Python tool, next to eryx's
callback measured the same way in the same run (bench/peer_tools.py). The peers run in a
virtual environment of their own at $PYEVAL_PEERS_VENV, made with a CPython 3.12 or later
when one is found.

    python bench/python_bench.py bench/results.json
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

import pyeval

import peers

FRESH_RUNS = 2000
SESSION_RUNS = 5000


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def tool_round_trip(python, implementation):
    done = subprocess.run([python, os.path.join(HERE, "peer_tools.py"), implementation],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)["round_trip_us"]


def peer_snippets(python, name):
    """bench/peers.py's figures for the peer `name`, measured in a process of its own."""
    done = subprocess.run([python, os.path.join(HERE, "peers.py"), name],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def first_python(candidates, condition):
    """The first of `candidates` (paths, or None) whose python finds `condition` (an
    expression on `sys.version_info`) true, or None."""
    for python in filter(None, candidates):
        version = subprocess.run([python, "-c", f"import sys; print({condition})"],
                                 capture_output=True, text=True)
        if version.stdout.strip() == "True":
            return python
    return None


def peer_python():
    """A python3 of version 3.12 or later (pyeryx's wheel needs one), or None."""
    candidates = [os.environ.get("PYEVAL_PEER_PYTHON")]
    candidates += [shutil.which(f"python3.{minor}") for minor in range(12, 16)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    return first_python(candidates, "sys.version_info >= (3, 12)")


def peers_python():
    """The peers' virtual environment's python (made when missing, its requirements
    installed); None without a python 3.12 or later."""
    venv = os.environ.get("PYEVAL_PEERS_VENV", os.path.join(HERE, "..", "target", "peers-venv"))
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        base = peer_python()
        if base is None:
            return None
        subprocess.run([base, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    "--require-hashes", "-r", os.path.join(HERE, "requirements-peers.txt")],
                   check=True)
    return python


def main():
    path = sys.argv[1]
    results = json.load(open(path))
    evaluator = pyeval.Evaluator()

    def fresh(code):
        return evaluator.eval(code).stdout

    for _ in range(50):
        evaluator.eval("print(1)")
    times = []
    for _ in range(FRESH_RUNS):
        started = time.perf_counter()
        outcome = evaluator.eval("print(1)")
        times.append(time.perf_counter() - started)
        assert outcome.stdout == "1\n"
    times.sort()
    p50_ms = percentile(times, 0.50) * 1e3
    rust_p50_ms = results["fresh_print_1"]["p50_ms"]
    session = evaluator.session()
    session.eval("x = 0")
    session_p50_ms = peers.median_ms(lambda: session.eval("x += 1"), SESSION_RUNS)
    rust_session_p50_ms = results["session_x_plus_1"]["p50_ms"]
    results["python"] = {
        "fresh_print_1": {
            "runs": FRESH_RUNS,
            "p50_ms": p50_ms,
            "p95_ms": percentile(times, 0.95) * 1e3,
            "p99_ms": percentile(times, 0.99) * 1e3,
        },
        "throughput_per_s": {
            "threads_1": peers.throughput(fresh, 1),
            "threads_2": peers.throughput(fresh, 2),
        },
        "ratio_python_over_rust_p50": p50_ms / rust_p50_ms,
        "session_x_plus_1_p50_ms": session_p50_ms,
        "session_ratio_python_over_rust_p50": session_p50_ms / rust_session_p50_ms,
        "noop_tool_round_trip_us": tool_round_trip(sys.executable, "pyeval"),
    }
    peer = peers_python()
    if peer is not None:
        results["python"]["eryx_noop_callback_round_trip_us"] = tool_round_trip(peer, "eryx")
        results["peers"] = {name: peer_snippets(peer, name) for name in ("eryx", "eryx-pool", "monty")}
    with open(path, "w") as out:
        json.dump(results, out, indent=2, sort_keys=True)
        out.write("\n")
    py = results["python"]
    print("| from Python | |")
    print("|---|---|")
    print(f"| fresh print(1) p50 | {p50_ms:.3f} ms ({py['ratio_python_over_rust_p50']:.2f}x Rust's "
          f"{rust_p50_ms:.3f} ms) |")
    print(f"| fresh evaluations/s, 1 thread | {py['throughput_per_s']['threads_1']:.0f} |")
    print(f"| fresh evaluations/s, 2 threads | {py['throughput_per_s']['threads_2']:.0f} |")
    print(f"| session x += 1 p50 | {session_p50_ms:.3f} ms "
          f"({py['session_ratio_python_over_rust_p50']:.2f}x Rust's {rust_session_p50_ms:.3f} ms) |")
    for name, figures in results.get("peers", {}).items():
        print(f"| {name}: fresh print(1) p50, session x += 1 p50, evaluations/s on 1 and 2 "
              f"threads | {figures['fresh_print_1_p50_ms']:.3f} ms, "
              f"{figures['session_x_plus_1_p50_ms']:.3f} ms, "
              f"{figures['throughput_per_s']['threads_1']:.0f}, "
              f"{figures['throughput_per_s']['threads_2']:.0f} |")
    eryx = py.get("eryx_noop_callback_round_trip_us")
    print(f"| no-op Python tool, round trip (median) | {py['noop_tool_round_trip_us']:.0f} µs"
          + (f" (eryx's callback: {eryx:.0f} µs) |" if eryx else " (eryx not measured: no python 3.12+) |"))


if __name__ == "__main__":
    main()
