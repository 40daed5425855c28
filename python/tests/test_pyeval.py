"""The pyeval package, installed: its API, its exceptions, and `python -m pyeval`."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

import pyeval

EV = pyeval.Evaluator()


def test_an_outcome_carries_output_value_and_accounting():
    outcome = EV.eval("print('hi')\nimport sys\nprint('err', file=sys.stderr)\n6 * 7")
    assert (outcome.stdout, outcome.stderr, outcome.value) == ("hi\n", "err\n", "42")
    assert outcome.error is None and outcome.exit_code is None
    assert not outcome.stdout_truncated and not outcome.stderr_truncated
    assert outcome.fuel_used > 0 and outcome.wall_time > 0
    assert repr(outcome).startswith("Outcome(value='42', error=None, exit_code=None")


def test_an_exception_in_the_code_is_part_of_the_outcome():
    error = EV.eval("def f():\n    1 / 0\nf()").error
    assert (error.type_name, error.message) == ("ZeroDivisionError", "division by zero")
    assert error.traceback.startswith("Traceback (most recent call last):")
    assert "line 2, in f" in error.traceback


def test_exit_gives_an_exit_code():
    assert EV.eval("exit(3)").exit_code == 3


@pytest.mark.parametrize(
    "code, options, exception",
    [
        ("while True: pass", {"fuel": 10_000_000}, pyeval.FuelExhausted),
        ("while True: pass", {"fuel": -1, "timeout": 0.3}, pyeval.Timeout),
        ("1", {"memory": 1 << 20}, pyeval.MemoryLimit),
        ("import os\nos.abort()", {}, pyeval.Crashed),
        ("'\0'", {}, pyeval.InvalidCode),
    ],
)
def test_stopped_runs_raise_typed_exceptions(code, options, exception):
    with pytest.raises(exception) as raised:
        EV.eval(code, **options)
    assert isinstance(raised.value, pyeval.EvalError)
    # The interpreter process goes on, and so does the evaluator.
    assert EV.eval("1 + 1").value == "2"


def test_a_full_pool_raises_too_many_instances():
    small = pyeval.Evaluator(max_instances=1)
    assert small.max_instances == 1
    with small.session() as session:
        session.eval("a = 1")  # a session takes its slot when it first runs
        with pytest.raises(pyeval.TooManyInstances):
            small.eval("1")
    assert small.eval("1").value == "1"


def test_a_component_that_does_not_exist_is_a_setup_error(tmp_path):
    with pytest.raises(pyeval.SetupError, match="nowhere.wasm"):
        pyeval.Evaluator(component=tmp_path / "nowhere.wasm")


def test_the_sci_component_runs_numpy():
    # Built by `just build-sci`, which `just test` runs first.
    sci = os.path.join(os.path.dirname(__file__), "../../target/pyeval-sci.wasm")
    evaluator = pyeval.Evaluator(component=sci, max_instances=2)
    outcome = evaluator.eval("import numpy as np\nnp.linalg.det(np.eye(3))")
    assert outcome.value == "np.float64(1.0)"
    # A figure left open comes back as a PNG chart.
    outcome = evaluator.eval("import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 2])")
    assert [c.path for c in outcome.charts] == ["chart-1.png"]
    assert outcome.charts[0].media_type == "image/png"
    assert outcome.charts[0].data.startswith(b"\x89PNG\r\n\x1a\n")
    assert outcome.charts_dropped == 0


def test_a_component_pyeval_did_not_build_is_refused(tmp_path):
    other = tmp_path / "other.wasm"
    other.write_bytes(b"\0asm\x0d\0\x01\0")  # an empty component
    with pytest.raises(pyeval.SetupError, match="not a pyeval evaluator component"):
        pyeval.Evaluator(component=other)


@pytest.mark.parametrize(
    "options",
    [{"fuel": -2}, {"timeout": 0}, {"timeout": -1.0}, {"mounts": ["a:b:c:d"]}],
)
def test_bad_options_are_value_errors(options):
    with pytest.raises(ValueError):
        EV.eval("1", **options)


def test_unmetered_evaluators_refuse_a_fuel_limit():
    free = pyeval.Evaluator(metered=False)
    assert not free.metered
    assert free.eval("2 ** 10", fuel=-1).value == "1024"
    with pytest.raises(pyeval.EvalError):
        free.eval("1", fuel=1000)


def test_output_past_the_limit_is_cut_and_flagged():
    outcome = EV.eval("print('x' * 100_000)", max_output=1000)
    assert outcome.stdout_truncated and len(outcome.stdout) <= 1000


def test_a_session_keeps_state_and_ends_after_a_stop():
    with EV.session(fuel=50_000_000) as session:
        session.eval("x = 41")
        assert session.eval("x + 1").value == "42"
        with pytest.raises(pyeval.FuelExhausted):
            session.eval("while True: pass")
        with pytest.raises(pyeval.SessionEnded):
            session.eval("x")
    closed = EV.session()
    closed.close()
    with pytest.raises(pyeval.SessionEnded):
        closed.eval("1")


def test_mounts_are_read_only_unless_asked(tmp_path):
    (tmp_path / "data.txt").write_text("inside")
    ro = EV.eval(
        "print(open('/data/data.txt').read())\nopen('/data/new.txt', 'w')",
        mounts=[f"{tmp_path}:/data"],
    )
    assert ro.stdout == "inside\n" and ro.error.type_name == "PermissionError"
    rw = EV.eval("open('/data/new.txt', 'w').write('made')", mounts=[f"{tmp_path}:/data:rw"])
    assert rw.error is None
    assert (tmp_path / "new.txt").read_text() == "made"


def test_env_argv_and_stdin_are_what_is_granted():
    outcome = EV.eval(
        "import os, sys\n(os.environ.get('GREETING'), sys.argv, input(), sys.stdin.read())",
        env={"GREETING": "hello"},
        argv=["prog", "one"],
        stdin="first line\nrest",
    )
    assert outcome.value == "('hello', ['prog', 'one'], 'first line', 'rest')"
    assert EV.eval("import sys\nsys.stdin.buffer.read()", stdin=b"\x00\xff").value == (
        "b'\\x00\\xff'"
    )


def test_hostile_code_ends_typed_and_contained():
    bomb = EV.eval("a = []\nwhile True: a.append(' ' * 10**6)", memory=64 << 20)
    assert bomb.error.type_name == "MemoryError"
    flood = EV.eval("for _ in range(10_000): print('x' * 10_000)", max_output=4096)
    assert flood.stdout_truncated
    with pytest.raises(pyeval.FuelExhausted):
        EV.eval("while True: pass", fuel=20_000_000)
    assert EV.eval("'alive'").value == "'alive'"


def test_threads_evaluate_in_parallel():
    """The GIL is released while the guest runs: two evaluations on two threads overlap."""
    spans = []

    def work():
        start = time.monotonic()
        EV.eval("import time\ntime.sleep(0.5)")
        spans.append((start, time.monotonic()))

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (a_start, a_end), (b_start, b_end) = spans
    assert max(a_start, b_start) < min(a_end, b_end), "the evaluations did not overlap"


def test_asyncio_callers_await_evaluations():
    async def main():
        fresh = EV.eval_async("2 + 2")
        limited = EV.eval_async("while True: pass", fuel=10_000_000)
        with EV.session() as session:
            await session.eval_async("y = 5")
            kept = await session.eval_async("y * 2")
        results = await asyncio.gather(fresh, limited, return_exceptions=True)
        return results, kept

    (fresh, limited), kept = asyncio.run(main())
    assert fresh.value == "4" and kept.value == "10"
    assert isinstance(limited, pyeval.FuelExhausted)


def test_ctrl_c_interrupts_a_long_evaluation():
    script = (
        "import pyeval, sys\n"
        "ev = pyeval.Evaluator()\n"
        "print('ready', flush=True)\n"
        "ev.eval('while True: pass', fuel=-1, timeout=120)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "ready\n"
    time.sleep(0.3)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode != 0
    assert "KeyboardInterrupt" in stderr


CLI_CASES = [
    (["-c", "print(6 * 7)"], {}),
    (["-c", "1 / 0"], {}),
    (["-c", "import sys; print(sys.argv)", "a", "b"], {}),
    (["-c", "exit(4)"], {}),
    (["--stats", "-c", "sum(range(10**6))"], {"INITIAL_FUEL": "1000000"}),
    (["--json", "-c", "print('j')"], {}),
    (["--fuel", "nope", "-c", "1"], {}),
    (["-V"], {}),
]


@pytest.mark.parametrize("args, env", CLI_CASES)
def test_python_m_pyeval_is_the_command_line(args, env):
    binary = os.environ["PYEVAL_BIN"]  # the pyeval binary to compare with (`just test`)
    environ = {**os.environ, **env}

    def run(command):
        done = subprocess.run(command + args, capture_output=True, text=True, env=environ)
        return done.returncode, done.stdout, done.stderr

    module = run([sys.executable, "-m", "pyeval"])
    cli = run([binary])
    if "--json" in args:
        # Timing and fuel differ from run to run; the rest is the same.
        import json

        strip = lambda out: {k: v for k, v in json.loads(out).items()  # noqa: E731
                             if k not in ("wall_time_us", "fuel_used")}
        assert (module[0], strip(module[1])) == (cli[0], strip(cli[1]))
    else:
        assert module == cli


def test_the_chat_bot_example_replies_per_conversation():
    example = os.path.join(os.path.dirname(__file__), "../../examples/python/chatbot.py")
    messages = (
        "alice: ```python\\nx = 6 * 7\\nx\\n```\n"
        "bob: ```python\\nx\\n```\n"
        "alice: ```python\\nprint(x + 1)\\n```\n"
        "bob: ```python\\nwhile True: pass\\n```\n"
        "bob: no code here\n"
    )
    done = subprocess.run(
        [sys.executable, example], input=messages, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "alice> 42",
        "bob> NameError: name 'x' is not defined",
        "alice> 43",
        "bob> stopped: out of fuel: the code used its whole budget of 200,000,000 fuel units",
        "bob> (no code block)",
    ]


def test_a_signal_handler_may_evaluate_while_an_evaluation_waits():
    seen = []

    def handler(signum, frame):
        seen.append(EV.eval("6 * 7").value)

    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        outcome = EV.eval("import time\ntime.sleep(1)\n'outer'")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert seen == ["42"]
    assert outcome.value == "'outer'"


def test_daemon_threads_still_evaluating_do_not_hold_the_interpreter_at_exit():
    script = (
        "import threading, time, pyeval\n"
        "ev = pyeval.Evaluator()\n"
        "def fresh():\n"
        "    ev.eval('while True: pass', fuel=-1, timeout=60)\n"
        "def session():\n"
        "    s = ev.session(fuel=-1, timeout=60)\n"
        "    s.eval('x = 1')\n"
        "    s.eval('while True: x += 1')\n"
        "def sleeper():\n"
        "    ev.eval('import time\\ntime.sleep(60)', timeout=60)\n"
        "for target in (fresh, fresh, session, sleeper):\n"
        "    threading.Thread(target=target, daemon=True).start()\n"
        "time.sleep(0.5)\n"
        "print(sum(t.daemon and t.is_alive() for t in threading.enumerate()), flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "4\n", "")


def search(query: str, limit: int = 10) -> dict:
    """Searches the web."""
    return {"query": query, "limit": limit}


async def nap(seconds: float) -> str:
    """Sleeps, then says so."""
    import asyncio

    await asyncio.sleep(seconds)
    return f"slept {seconds}"


def test_python_functions_are_tools_the_code_calls():
    outcome = EV.eval("await search(query='wasm', limit=3)", tools=[search])
    assert outcome.value == "{'query': 'wasm', 'limit': 3}"
    # The signature and the docstring come from the function.
    outcome = EV.eval(
        "import inspect\n(str(inspect.signature(find)), find.__doc__)", tools={"find": search}
    )
    assert outcome.value == "('(*, query: str, limit: int = 10)', 'Searches the web.')"
    # Arguments that do not fit the schema never reach the function.
    assert EV.eval("await search(limit='x', query='q')", tools=[search]).error.type_name == "TypeError"


def test_a_handlers_exception_is_a_tool_error_in_the_sandbox():
    def broken(x: int) -> int:
        raise ValueError(f"bad {x}")

    outcome = EV.eval(
        "from tools import ToolError\ntry:\n    await broken(x=2)\nexcept ToolError as e:\n"
        "    said = str(e)\nsaid",
        tools=[broken, pyeval.Tool(lambda: {1, 2}, name="not_json")],
    )
    assert outcome.value == "'ValueError: bad 2'"
    assert EV.eval("await not_json()", tools=[pyeval.Tool(lambda: {1}, name="not_json")]).error.type_name == "tools.ToolError"


def test_coroutine_tools_run_concurrently_and_on_the_callers_loop():
    import asyncio

    code = "import asyncio\nawait asyncio.gather(nap(seconds=0.5), nap(seconds=0.5), nap(seconds=0.5))"
    started = time.monotonic()
    outcome = EV.eval(code, tools=[nap])
    assert outcome.value == "['slept 0.5', 'slept 0.5', 'slept 0.5']"

    async def main():
        loop = asyncio.get_running_loop()
        seen = []

        async def where() -> bool:
            seen.append(asyncio.get_running_loop() is loop)
            return True

        outcome = await EV.eval_async("await where()", tools=[where])
        return outcome.value, seen

    assert asyncio.run(main()) == ("True", [True])
    assert time.monotonic() - started < 30


def test_a_session_keeps_its_tools_and_stubs_describe_them():
    with EV.session(tools={"find": search}) as session:
        assert session.eval("(await find(query='a'))['query']").value == "'a'"
        assert session.eval("(await find(query='b'))['query']").value == "'b'"
    stubs = pyeval.tool_stubs([search])
    assert "async def search(*, query: str, limit: int = 10) -> Any:" in stubs


def test_the_agent_example_calls_two_tools_at_once():
    example = os.path.join(os.path.dirname(__file__), "../../examples/python/agent_tools.py")
    done = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "async def weather(*, city: str) -> Any:" in done.stdout
    assert "Lisbon: 21 °C, sunny\nOslo: 4 °C, snow\n100 EUR = 1150 NOK\n" in done.stdout
    assert "(no luck: LookupError: no forecast for Atlantis)" in done.stdout


def test_plain_functions_are_called_on_the_thread_evaluating():
    import threading

    def where() -> int:
        return threading.get_ident()

    assert EV.eval("await where()", tools=[where]).value == str(threading.get_ident())


def test_output_reaches_on_output_as_it_is_written():
    heard = []

    def so_far() -> str:
        return "".join(text for _, text in heard)

    def on_output(stream, text):
        heard.append((stream, text))

    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nseen = await so_far()\nprint('three')\nseen"
    outcome = EV.eval(code, tools=[so_far], on_output=on_output)
    assert outcome.value == repr("one\ntwo\n")
    assert outcome.stdout == "one\nthree\n"
    assert heard == [("stdout", "one\n"), ("stderr", "two\n"), ("stdout", "three\n")]
    # A failing callback is reported as unraisable, and output goes on.
    def broken(stream, text):
        raise RuntimeError("listener broke")

    reported = []
    saved, sys.unraisablehook = sys.unraisablehook, lambda u: reported.append(str(u.exc_value))
    try:
        assert EV.eval("print('x')", on_output=broken).stdout == "x\n"
    finally:
        sys.unraisablehook = saved
    assert reported == ["listener broke"]
    with pytest.raises(TypeError):
        EV.eval("1", on_output=3)


def test_a_session_sends_output_to_its_listener_or_the_evaluations():
    mine, theirs = [], []
    with EV.session(on_output=lambda s, t: mine.append(t)) as session:
        session.eval("print(1)")
        session.eval("print(2)", on_output=lambda s, t: theirs.append(t))
        session.eval("print(3)")
    assert (mine, theirs) == (["1\n", "3\n"], ["2\n"])


def test_a_tool_may_evaluate_code_itself():
    def nested(code: str) -> str:
        """Runs code in another sandbox."""
        return EV.eval(code).value

    outcome = EV.eval("await nested(code='6 * 7')", tools=[nested])
    assert outcome.value == "'42'"


def test_the_http_example_answers_its_own_tools_over_the_event_stream():
    server = subprocess.Popen([sys.executable, "-m", "pyeval", "serve", "--listen", "127.0.0.1:0"],
                              stderr=subprocess.PIPE, text=True)
    try:
        address = None
        for line in server.stderr:
            if line.startswith("pyeval: serving on "):
                address = line.split()[-1]
                break
        assert address, "the server did not start"
        example = os.path.join(os.path.dirname(__file__), "../../examples/python/http_client_tools.py")
        done = subprocess.run([sys.executable, example, address], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            "[stdout] asking both...",
            "[call] forecast({'city': 'Lisbon'})",
            "[call] exchange({'pair': 'EUR/NOK'})",
            "[stdout] Lisbon: 21 °C; 100 EUR = 1150 NOK",
            "[done] value=None error=None",
        ]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_files_go_in_and_the_files_code_writes_come_back():
    outcome = EV.eval(
        "import csv\nrows = list(csv.DictReader(open('in/d.csv')))\n"
        "open('total.txt', 'w').write(str(sum(int(r['v']) for r in rows)))\n"
        "open('raw.bin', 'wb').write(open('blob', 'rb').read()[::-1])",
        files={"in/d.csv": "v\n1\n2\n", "blob": b"\x00\x01\x02"},
    )
    assert outcome.error is None
    assert [f.path for f in outcome.files] == ["raw.bin", "total.txt"]
    raw, total = outcome.files
    assert (raw.data, raw.size, raw.media_type) == (b"\x02\x01\x00", 3, "application/octet-stream")
    assert (total.data, total.media_type) == (b"3", "text/plain")
    assert outcome.files_dropped == 0
    assert repr(total) == "OutputFile('total.txt', 1 bytes, text/plain)"

    capped = EV.eval("for n in 'abc': open(n, 'w').write(n * 10)", max_files=2, max_file_bytes=15)
    assert [(f.path, f.data) for f in capped.files] == [("a", b"a" * 10), ("b", None)]
    assert capped.files_dropped == 1


@pytest.mark.parametrize(
    "files, words",
    [({"../x": ""}, "`..`"), ({"/etc/x": ""}, "absolute"), ({"a": b"x" * 20}, "20 bytes")],
)
def test_bad_files_raise_invalid_files(files, words):
    with pytest.raises(pyeval.InvalidFiles, match=words):
        EV.eval("1", files=files, max_file_bytes=10)


def test_a_session_takes_files_later_and_reads_its_files_back():
    with EV.session(files={"a.txt": "a"}) as session:
        session.add_files({"b.txt": b"b"})
        assert session.eval("open('a.txt').read() + open('b.txt').read()").value == "'ab'"
        session.eval("open('c.txt', 'w').write('see')")
        assert session.read_file("c.txt") == b"see"
        with pytest.raises(pyeval.NoSuchFile, match="no such file"):
            session.read_file("missing.txt")
        with pytest.raises(pyeval.InvalidFiles):
            session.add_files({"..": ""})


def test_the_data_files_example_returns_its_summary_and_chart(tmp_path):
    example = os.path.join(os.path.dirname(__file__), "../../examples/python/data_files.py")
    done = subprocess.run(
        [sys.executable, example, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("3 regions, best: north\n")
    assert "out/chart.svg: " in done.stdout and "image/svg+xml" in done.stdout
    summary = (tmp_path / "out" / "summary.csv").read_bytes()
    assert summary == b"region,total\r\neast,130\r\nnorth,270\r\nsouth,175\r\n"
    assert (tmp_path / "out" / "chart.svg").read_text().startswith("<svg ")


@pytest.fixture
def http_server():
    """A server on 127.0.0.1 answering every GET with `hello` and the Authorization it
    received; yields its port."""
    import http.server

    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = f"hello {self.headers.get('Authorization')}".encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()


def test_network_reaches_the_granted_hosts_only(http_server):
    ev = pyeval.Evaluator()
    fetch = f"import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:{http_server}/').read())"
    # Loopback is a special address: a host rule alone does not reach it.
    refused = ev.eval(fetch, network=[f"127.0.0.1:{http_server}"])
    assert refused.error.type_name == "urllib.error.URLError"
    assert "127.0.0.1 is a loopback address" in refused.error.message
    network = pyeval.Network(
        [f"127.0.0.1:{http_server}"],
        addresses=["127.0.0.1"],
        secrets={"TOKEN": ("s3cret", [f"127.0.0.1:{http_server}"])},
    )
    assert network.hosts == [f"127.0.0.1:{http_server}"]
    code = (
        "import os, urllib.request\n"
        f"req = urllib.request.Request('http://127.0.0.1:{http_server}/',"
        " headers={'Authorization': os.environ['TOKEN']})\n"
        "print(urllib.request.urlopen(req).read())"
    )
    assert ev.eval(code, network=network).stdout == "b'hello pyeval-secret:TOKEN'\n"
    with ev.session(network=network) as session:
        assert session.eval(fetch).stdout == "b'hello None'\n"
    once = pyeval.Network([f"127.0.0.1:{http_server}"], addresses=["127.0.0.1"], max_requests=1)
    twice = ev.eval(f"{fetch}\n{fetch}", network=once)
    assert twice.stdout == "b'hello None'\n"
    assert "1 requests are used up" in twice.error.message
    assert ev.eval(fetch).error.message.endswith("no network is granted>")
    with pytest.raises(ValueError, match="a rule is"):
        ev.eval("1", network=["bad host"])
    with pytest.raises(ValueError, match="not an address"):
        pyeval.Network(["example.com"], addresses=["nowhere"])


def test_a_session_dumps_restores_in_another_process_and_forks(tmp_path):
    with EV.session() as session:
        session.eval("import itertools\ncount = itertools.count(10)\nnext(count)\nnames = ['a']")
        data = session.dump()
        fork = session.fork()
        session.eval("names.append('left')")
        fork.eval("names.append('right')")
        assert session.eval("names").value == "['a', 'left']"
        assert fork.eval("names").value == "['a', 'right']"
    restored = EV.restore(data, fuel=5_000_000)
    assert restored.eval("next(count), names").value == "(11, ['a'])"
    with pytest.raises(pyeval.FuelExhausted):
        restored.eval("while True: pass")
    # In another process, from a file.
    path = tmp_path / "session.dump"
    path.write_bytes(data)
    script = (
        "import pathlib, sys, pyeval\n"
        "s = pyeval.Evaluator().restore(pathlib.Path(sys.argv[1]).read_bytes())\n"
        "print(s.eval('next(count)').value)\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", script, str(path)], capture_output=True, text=True, timeout=120
    )
    assert (child.returncode, child.stdout) == (0, "11\n"), child.stderr


def test_a_damaged_or_foreign_dump_raises_invalid_dump():
    data = EV.session().dump()
    for bad in (data[: len(data) // 2], b"not a dump", data[:16] + b"0" * 64 + data[80:]):
        with pytest.raises(pyeval.InvalidDump):
            EV.restore(bad)
    with pytest.raises(TypeError):
        EV.restore(data, _dump=b"")
    with pytest.raises(pyeval.InvalidDump, match="directories"):
        EV.restore(data, mounts=["/tmp:/data"])


def test_a_tool_suspends_an_evaluation_that_resumes_with_its_answer():
    looked_up = []

    def lookup(key: str) -> dict:
        looked_up.append(key)
        return {"found": key}

    def approve(amount: int) -> bool:
        raise pyeval.Suspend(f"a person must approve {amount}")

    tools = [lookup, pyeval.Tool(approve, may_suspend=True)]
    code = "found = await lookup(key='k')\nok = await approve(amount=7)\nprint(found['found'], ok)\nok"
    with pytest.raises(pyeval.Suspended) as raised:
        EV.eval(code, tools=tools)
    suspended = raised.value
    assert (suspended.tool, suspended.arguments, suspended.reason) == (
        "approve", {"amount": 7}, "a person must approve 7")
    assert looked_up == ["k"]
    session, outcome = EV.resume(suspended.suspension, True, tools=tools)
    assert (outcome.stdout, outcome.value, looked_up) == ("k True\n", "True", ["k"])
    assert session.eval("found").value == "{'found': 'k'}"
    _, declined = EV.resume(suspended.suspension, error="declined", tools=tools)
    assert declined.error.message == "declined"
    with pytest.raises(pyeval.InvalidDump):
        EV.resume(b"not a suspension", True, tools=tools)

    # In a session that has run, from its state before the evaluation.
    with EV.session(tools=tools) as running:
        running.eval("total = 1")
        with pytest.raises(pyeval.Suspended) as raised:
            running.eval("total += 1\nif await approve(amount=total): total *= 10\ntotal")
    _, outcome = EV.resume(raised.value.suspension, True, tools=tools)
    assert outcome.value == "20"
