"""Small snippets from Python, measured the same way for pyeval and its peers: a fresh
`print(1)` (median of FRESH_RUNS after warm-up), fresh evaluations per second on 1 and 2
threads, and a session's `x += 1`. Each runtime runs in a process of its own
(`bench/python_bench.py` starts one per runtime and collects the JSON each prints).

    python bench/peers.py pyeval|eryx|eryx-pool|monty     prints {"fresh_p50_ms": ..., ...}

pyeval through its Python package; eryx (pyeryx) as a new `Sandbox` per evaluation and as
its pool of warm sandboxes; Monty (pydantic-monty) as a checkout of its worker pool per
evaluation, two workers kept warm. Output is captured by each, never printed.
"""

import json
import statistics
import sys
import threading
import time

FRESH_RUNS = 1000
WARMUP = 50
SESSION_STEPS = 2000
THROUGHPUT_WINDOW = 3.0


def pyeval_runtime():
    import pyeval

    evaluator = pyeval.Evaluator()

    def fresh(code):
        return evaluator.eval(code).stdout

    def session():
        return evaluator.session().eval

    return fresh, session, lambda: None


def eryx_runtime():
    import eryx

    def fresh(code):
        return eryx.Sandbox().execute(code).stdout_text

    def session():
        return eryx.Session().execute

    return fresh, session, lambda: None


def eryx_pool_runtime():
    import eryx

    pool = eryx.SandboxFactory(cache=True).create_pool(max_size=2, min_idle=2)

    def fresh(code):
        with pool.acquire() as sandbox:
            return sandbox.execute(code).stdout_text

    def session():
        return eryx.Session().execute

    return fresh, session, pool.close


def monty_runtime():
    import pydantic_monty

    pool = pydantic_monty.Monty(min_processes=2, max_processes=2).__enter__()

    def fresh(code):
        out = []
        with pool.checkout() as checked_out:
            checked_out.feed_run(code, print_callback=lambda _stream, text: out.append(text))
        return "".join(out)

    def session():
        checked_out = pool.checkout().__enter__()
        return lambda code: checked_out.feed_run(code, print_callback=lambda *_: None)

    return fresh, session, lambda: pool.__exit__(None, None, None)


RUNTIMES = {"pyeval": pyeval_runtime, "eryx": eryx_runtime, "eryx-pool": eryx_pool_runtime,
            "monty": monty_runtime}


def median_ms(call, runs):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def throughput(fresh, threads):
    started = time.perf_counter()
    counts = [0] * threads

    def work(slot):
        while time.perf_counter() - started < THROUGHPUT_WINDOW:
            fresh("print(1)")
            counts[slot] += 1

    workers = [threading.Thread(target=work, args=(slot,)) for slot in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - started)


def measure(name):
    fresh, session, close = RUNTIMES[name]()
    try:
        for _ in range(WARMUP):
            assert fresh("print(1)").strip() == "1", fresh("print(1)")
        fresh_p50 = median_ms(lambda: fresh("print(1)"), FRESH_RUNS)
        step = session()
        step("x = 0")
        session_p50 = median_ms(lambda: step("x += 1"), SESSION_STEPS)
        return {
            "fresh_print_1_p50_ms": fresh_p50,
            "session_x_plus_1_p50_ms": session_p50,
            "throughput_per_s": {"threads_1": throughput(fresh, 1),
                                 "threads_2": throughput(fresh, 2)},
        }
    finally:
        close()


if __name__ == "__main__":
    print(json.dumps(measure(sys.argv[1])))
