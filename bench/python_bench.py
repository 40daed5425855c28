"""Fresh evaluations from Python, measured as bench/src/main.rs measures them from Rust,
added to the results file under "python" with the ratio to the Rust p50 of the same run.

    python bench/python_bench.py bench/results.json
"""

import json
import sys
import threading
import time

import pyeval

FRESH_RUNS = 2000
THROUGHPUT_WINDOW = 3.0


def percentile(sorted_values, fraction):
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


def throughput(evaluator, threads):
    started = time.perf_counter()
    counts = [0] * threads

    def work(slot):
        while time.perf_counter() - started < THROUGHPUT_WINDOW:
            evaluator.eval("print(1)")
            counts[slot] += 1

    workers = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def main():
    path = sys.argv[1]
    results = json.load(open(path))
    evaluator = pyeval.Evaluator()
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
    results["python"] = {
        "fresh_print_1": {
            "runs": FRESH_RUNS,
            "p50_ms": p50_ms,
            "p95_ms": percentile(times, 0.95) * 1e3,
            "p99_ms": percentile(times, 0.99) * 1e3,
        },
        "throughput_per_s": {
            "threads_1": throughput(evaluator, 1),
            "threads_2": throughput(evaluator, 2),
        },
        "ratio_python_over_rust_p50": p50_ms / rust_p50_ms,
    }
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


if __name__ == "__main__":
    main()
