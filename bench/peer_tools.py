"""The round trip of a no-op Python callback called from sandboxed code, measured the same
way for pyeval (`tools=`) and, in its own interpreter, for eryx (`CallbackRegistry`):
the time of an evaluation making N + 1 calls less one making 1, over N, median of 9.

    python bench/peer_tools.py pyeval|eryx        prints {"round_trip_us": ...}
"""

import json
import statistics
import sys
import time

CALLS = 400
REPEATS = 9
CODE = "for _ in range({n}):\n    await noop()\n"


def noop():
    return None


def pyeval_runner():
    import pyeval

    evaluator = pyeval.Evaluator()

    def run(n):
        outcome = evaluator.eval(CODE.format(n=n), tools=[noop])
        assert outcome.error is None, outcome.error

    return run


def eryx_runner():
    import eryx

    registry = eryx.CallbackRegistry()
    registry.callback(description="Does nothing.")(noop)
    sandbox = eryx.Sandbox(callbacks=registry)

    def run(n):
        result = sandbox.execute(CODE.format(n=n))
        assert not getattr(result, "stderr", b""), result.stderr

    return run


def main():
    run = {"pyeval": pyeval_runner, "eryx": eryx_runner}[sys.argv[1]]()
    run(1)
    samples = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        run(1)
        one = time.perf_counter() - started
        started = time.perf_counter()
        run(CALLS + 1)
        many = time.perf_counter() - started
        samples.append((many - one) / CALLS * 1e6)
    print(json.dumps({"round_trip_us": statistics.median(samples), "calls": CALLS,
                      "repeats": REPEATS}))


if __name__ == "__main__":
    main()
