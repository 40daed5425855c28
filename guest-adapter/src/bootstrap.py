"""The guest half of pyeval, run once while the component is pre-initialized.

It installs the importer that serves the standard library from the component's own
memory, and defines what the Rust exports call: `evaluate` for `evaluator.eval` and
`main` for `wasi:cli/run`. The Rust side passes in `STDLIB_BLOB`, a memoryview of the
packed standard library, `PACKAGES_BLOB`, the packed packages the component was built
with (empty without), and `TZDATA_BLOB`, the packed time-zone data (see
guest-adapter/build.rs for their layouts), `compile_split` (src/compile_split.c),
`keep_mt19937` and `reseed_mt19937` (src/mt19937_seed.c), and `IGNORED_OPTIONS`, the text of src/ignored_options.txt, `PACKAGES_WARMUP`, code
the packages' lock file runs before the snapshot (empty without), and `_tool_start`,
`_tool_wait` and `_tool_cancel` (src/host_tools.rs), the host's side of granted tools,
`_http_request` (src/http.rs), its side of the network, and `SANDBOX_MODULES`, the
sources of src/modules by module name.
"""

import builtins
import gc
import io
import linecache
import importlib
import marshal
import os
import random
import struct
import sys
import time
import traceback
import types
from importlib.machinery import ModuleSpec

# `inspect.CO_COROUTINE`: the flag of code that compiled a top-level `await`.
_CO_COROUTINE = 0x80
# Where the interpreter was told its stdlib is (from its home, set while initializing).
STDLIB_DIR = sys._stdlib_dir
# Where the packages the component was built with are installed (their data files are in
# the scratch tree there, see `scratch::place_packaged`).
SITE_DIR = f"{STDLIB_DIR}/site-packages"
# The output limit until the host sets one (the WIT interface documents it).
DEFAULT_OUTPUT_LIMIT = 1 << 20


def read_packed(blob, magic, what):
    """The index of a blob packed by guest-adapter/build.rs (`pack`): name -> (flag, start,
    end) of its data."""
    if bytes(blob[:8]) != magic:
        raise ImportError(f"the packed {what} is damaged")
    (count,) = struct.unpack_from("<I", blob, 8)
    index, pos = {}, 12
    for _ in range(count):
        (name_len,) = struct.unpack_from("<H", blob, pos)
        name = bytes(blob[pos + 2 : pos + 2 + name_len]).decode()
        pos += 2 + name_len
        flag, offset, length = struct.unpack_from("<BII", blob, pos)
        pos += 9
        index[name] = (flag, offset, offset + length)
    return index


class PackedImporter:
    """A meta-path finder and loader for compiled modules packed into the component: the
    standard library, and the packages a component was built with."""

    def __init__(self, blob, magic, what, base):
        self._blob = blob
        self._index = read_packed(blob, magic, what)
        self._base = base
        self._resources = None

    def __bool__(self):
        return bool(self._index)

    def find_spec(self, fullname, path=None, target=None):
        entry = self._index.get(fullname)
        if entry is None or entry[0] > 1:
            return None
        is_package = bool(entry[0])
        relative = fullname.replace(".", "/")
        if is_package:
            origin = f"{self._base}/{relative}/__init__.py"
        else:
            origin = f"{self._base}/{relative}.py"
        spec = ModuleSpec(fullname, self, origin=origin, is_package=is_package)
        if is_package:
            spec.submodule_search_locations = [f"{self._base}/{relative}"]
        spec.has_location = True
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__spec__.name
        exec(self.get_code(name), module.__dict__)
        patch = _PATCHES.get(name)
        if patch is not None:
            patch(module)

    def get_code(self, fullname):
        _, start, end = self._index[fullname]
        return marshal.loads(self._blob[start:end])

    def is_package(self, fullname):
        return bool(self._index[fullname][0])

    def get_source(self, fullname):
        return None

    def get_data(self, path):
        """A package's data file, by its path (`pkgutil.get_data`)."""
        entry = self._index.get(os.path.relpath(path, self._base))
        if entry is None or entry[0] != 2:
            raise FileNotFoundError(path)
        return bytes(self._blob[entry[1] : entry[2]])

    def get_resource_reader(self, fullname):
        """A package's data files, for `importlib.resources` (packages with data only)."""
        if self._resources is None:
            files = {name: self._blob[start:end]
                     for name, (flag, start, end) in self._index.items() if flag == 2}
            dirs = {""} | {name.replace(".", "/")
                           for name, (flag, _, _) in self._index.items() if flag == 1}
            for path in files:
                parts = path.split("/")[:-1]
                dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
            self._resources = PackedFiles(files, dirs) if files else False
        if not self._resources:
            return None
        return _FilesReader(self._resources.joinpath(*fullname.split(".")))


def _network_patch(name):
    """The function of `_pyeval_network` that patches a module as it is imported."""
    return lambda module: getattr(importlib.import_module("_pyeval_network"), name)(module)


# What the sandbox changes in modules as they are imported: the connections of
# `http.client`, urllib3 (requests') and httpcore (httpx's) go through the host, and
# certifi's bundle is where the sandbox serves it.
_PATCHES = {
    "http.client": _network_patch("patch_http_client"),
    "urllib3.util.connection": _network_patch("patch_urllib3"),
    "certifi.core": _network_patch("patch_certifi"),
    "httpcore._backends.sync": _network_patch("patch_httpcore_sync"),
    "httpcore._backends.auto": _network_patch("patch_httpcore_auto"),
}


class SourceImporter:
    """A meta-path finder and loader for the sandbox's own modules (`SANDBOX_MODULES`),
    compiled before the snapshot."""

    def __init__(self, sources):
        self._code = {name: compile(source, f"<pyeval {name}>", "exec")
                      for name, source in sources.items()}

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in self._code:
            return None
        return ModuleSpec(fullname, self, origin=f"<pyeval {fullname}>")

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self._code[module.__spec__.name], module.__dict__)


class _CappedSink(io.RawIOBase):
    """A byte sink that keeps at most `limit` bytes and remembers whether it dropped any;
    when live, it writes what it keeps through to its file descriptor instead."""

    def __init__(self, fd, limit):
        super().__init__()
        self._fd = fd
        self.reset(limit, False)

    def reset(self, limit, live):
        """Empties the sink for a new evaluation."""
        self._chunks = []
        self._room = limit
        self._live = live
        self.truncated = False

    def writable(self):
        return True

    def write(self, data):
        data = bytes(data)
        kept = data[: self._room]
        if len(kept) < len(data):
            self.truncated = True
            if self._live:
                # Whole characters only: the host hands the text on as it comes.
                end = len(kept)
                while end and data[end] & 0xC0 == 0x80:
                    end -= 1
                kept = kept[:end]
                self._room = len(kept)
        if kept:
            self._room -= len(kept)
            if self._live:
                self._write_through(kept)
            else:
                self._chunks.append(kept)
        return len(data)

    def _write_through(self, data):
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            # The host's buffer is full (code wrote to the descriptor itself too).
            self.truncated = True

    def text(self):
        # A cut may split a UTF-8 sequence; drop the partial character.
        return b"".join(self._chunks).decode("utf-8", "ignore")


class _Capture:
    """A capped sink and the UTF-8 text stream that writes into it."""

    def __init__(self, fd):
        self.sink = _CappedSink(fd, 0)
        self.stream = io.TextIOWrapper(
            io.BufferedWriter(self.sink),
            encoding="utf-8",
            errors="backslashreplace",
            write_through=True,
        )

    def usable(self):
        """Whether evaluated code left the stream open (neither closed nor detached)."""
        try:
            return not self.stream.closed
        except BaseException:
            return False


def _exit_status(exc, stderr):
    """The exit status of a SystemExit, writing a non-integer payload to `stderr` like Python."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return max(-(2**31), min(code, 2**31 - 1))
    print(code, file=stderr)
    return 1


def _type_name(exc):
    cls = type(exc)
    if cls.__module__ in ("builtins", "__main__"):
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe(exc, compiled=True):
    """(type name, message, traceback) of an exception, hiding pyeval's own frames.

    An error raised before the code was compiled (a SyntaxError) has no frames of the
    user's, so it gets none, as when Python itself reports it."""
    tb = exc.__traceback__ if compiled else None
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    try:
        message = str(exc)
    except BaseException:
        message = "<exception str() failed>"
    try:
        text = "".join(traceback.format_exception(type(exc), exc, tb))
    except BaseException:
        text = f"{_type_name(exc)}: {message}\n"
    return _type_name(exc), message, text


class ExceptionRecord:
    """The WIT `exception` record: UTF-8 bytes for each field."""

    __slots__ = ("type_name", "message", "traceback")

    def __init__(self, type_name, message, traceback):
        self.type_name = type_name
        self.message = message
        self.traceback = traceback


class OutcomeRecord:
    """The WIT `outcome` record, read field by field by the Rust side: UTF-8 bytes for
    text, None where the record has none."""

    __slots__ = ("stdout", "stderr", "stdout_truncated", "stderr_truncated", "value",
                 "error", "exit_code", "charts")

    def __init__(self, stdout, stderr, stdout_truncated, stderr_truncated, value, error,
                 exit_code, charts):
        self.stdout = stdout
        self.stderr = stderr
        self.stdout_truncated = stdout_truncated
        self.stderr_truncated = stderr_truncated
        self.value = value
        self.error = error
        self.exit_code = exit_code
        self.charts = charts


def _seeded_on_first_use(cls):
    """A subclass of the generator class `cls` for an instance that has yet to draw its seed:
    its first call of a method that reads or sets the state makes it a `cls` again, seeded
    from 256 bits of the host's entropy unless the call sets the state."""
    def first_use(name):
        def method(self, *args, **kwargs):
            self.__class__ = cls
            if name not in ("seed", "setstate"):
                self.seed(int.from_bytes(os.urandom(32)))
            return getattr(self, name)(*args, **kwargs)
        method.__name__ = method.__qualname__ = name
        return method
    namespace = {name: first_use(name)
                 for name in ("random", "getrandbits", "getstate", "seed", "setstate")}
    namespace.update(__module__=cls.__module__, __qualname__=cls.__qualname__)
    return type(cls.__name__, (cls,), namespace)


class Session:
    """The interpreter state of one instance: its `__main__` and output limit."""

    # Whether output goes through to fds 1 and 2 as it is written (`set-live-output`).
    live_output = False

    def __init__(self):
        self.output_limit = DEFAULT_OUTPUT_LIMIT
        self.namespace = sys.modules["__main__"].__dict__
        self._counter = 0
        self._captures = None
        self._loop = None
        # The `random.Random` instances reseeded at wake, and those given a class that
        # seeds them when first used (with that class), found in the heap before the
        # snapshot (see `prepare`).
        self.generators = [random._inst]
        self.unseeded = []
        # dateutil's parser settings made before the snapshot (see `prepare`).
        self.parser_infos = []

    def wake(self, environ, argv):
        """First call on this instance: state frozen into the snapshot is made its own.

        `environ` and `argv` are the instance's WASI environment and arguments; `sys.argv`
        becomes the arguments after the program name, as `python -c` would set it."""
        # Every generator the snapshot holds (`random`'s own, and any a preloaded package
        # made, such as sympy's) gets 256 bits from the host's entropy (asking for the 2,496
        # bytes `random.seed()` reads costs more than the rest of waking up): now, or when
        # first used (seeding one costs about a tenth of a fresh `print(1)`).
        entropy = os.urandom(32 * len(self.generators))
        for i, generator in enumerate(self.generators):
            generator.seed(int.from_bytes(entropy[32 * i:32 * i + 32]))
        for generator, unseeded in self.unseeded:
            generator.__class__ = unseeded
        # numpy's global generator (np.random.rand and the like) too, if it is loaded
        # (src/mt19937_seed.c: as `np.random.seed` seeds it from eight 32-bit words).
        reseed_mt19937()
        # A dateutil parserinfo reads the year when it is made, and takes a two-digit year
        # within 50 years of it (pandas parses dates through the default one): those the
        # snapshot holds read its clock, 1970, so "12/20/21" would be 1921.
        if self.parser_infos:
            year = time.localtime().tm_year
            for info in self.parser_infos:
                info._year, info._century = year, year // 100 * 100
        # Item by item: `clear` and `update` go through the Mapping ABCs, whose isinstance
        # checks cost more than everything else here.
        for key in list(os.environ):
            del os.environ[key]
        for key, value in environ:
            os.environ[key] = value
        sys.argv = list(argv[1:]) or [""]
        # As python reads PYTHONPATH at start-up: its directories come right after the
        # working directory's "" (which the snapshot holds; a script or -m puts its own
        # first entry in its place, see `_main`).
        extra = os.environ.get("PYTHONPATH")
        if extra:
            sys.path[1:1] = [entry for entry in extra.split(os.pathsep) if entry]

    def grant_tools(self, granted):
        """Makes `granted`, `(name, description, parameters)` triples, the tools of later
        evaluations: globals of `__main__` and attributes of the module `tools`."""
        namespace = self.namespace
        for name, value in _GRANTED.items():
            if namespace.get(name) is value:
                del namespace[name]
        _GRANTED.clear()
        sys.modules.pop("tools", None)
        if not granted:
            return
        module = types.ModuleType("tools", "The tools the host grants to this code.")
        module.ToolError = ToolError
        for name, description, parameters in granted:
            group, _, short = name.rpartition(".")
            tool = _make_tool(name, short, description, parameters)
            if group:
                holder = _GRANTED.get(group)
                if not isinstance(holder, ToolGroup):
                    holder = _GRANTED[group] = ToolGroup(group)
                holder._tools[short] = tool
            else:
                _GRANTED[name] = tool
        for name, value in _GRANTED.items():
            setattr(module, name, value)
            namespace[name] = value
        sys.modules["tools"] = module

    def _source_name(self, code):
        # A distinct name per evaluation keeps tracebacks showing the right source lines.
        self._counter += 1
        name = "<string>" if self._counter == 1 else f"<string-{self._counter}>"
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        return name

    def _run(self, code):
        """Runs compiled code in `__main__` and returns its value. Code with a top-level
        `await` is a coroutine's: it runs on this session's event loop."""
        if code.co_flags & _CO_COROUTINE:
            return self._event_loop().run_until_complete(eval(code, self.namespace))
        return eval(code, self.namespace)

    def _event_loop(self):
        """This session's event loop, made the current one (so that tasks made by plain
        code before an `await` belong to it too)."""
        import asyncio

        loop = self._loop
        if loop is None or loop.is_closed():
            loop = self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        return loop

    def _capture(self):
        """The stdout and stderr captures, emptied for a new evaluation. They are made once
        per instance (making them costs more than a small evaluation), and again only when
        evaluated code broke them."""
        captures = self._captures
        if captures is None or not (captures[0].usable() and captures[1].usable()):
            captures = self._captures = (_Capture(1), _Capture(2))
        live = self.live_output
        for capture in captures:
            capture.sink.reset(self.output_limit, live)
            if capture.stream.line_buffering != live:
                # Live output goes out line by line, as on a terminal.
                capture.stream.reconfigure(line_buffering=live)
        return captures

    def evaluate(self, code):
        """Runs `code` in `__main__`; returns its `OutcomeRecord`."""
        captures = self._capture()
        (out_sink, out), (err_sink, err) = ((c.sink, c.stream) for c in captures)
        saved = sys.stdout, sys.stderr
        sys.stdout, sys.stderr = out, err
        value = error = exit_code = None
        compiled = False
        _CHARTS.clear()
        try:
            filename = self._source_name(code)
            body, last = compile_split(code, filename)
            compiled = True
            if last is not None and last.co_flags & _CO_COROUTINE:
                self._event_loop()
            if body is not None:
                self._run(body)
            if last is not None:
                result = self._run(last)
                if result is not None:
                    builtins._ = result
                    value = _cut(_utf8(repr(result)), self.output_limit)
        except SystemExit as exc:
            exit_code = _exit_status(exc, err)
        except BaseException as exc:
            type_name, message, text = (_utf8(p) for p in _describe(exc, compiled))
            limit = self.output_limit
            error = ExceptionRecord(_cut(type_name, limit), _cut(message, limit), _cut(text, limit))
        finally:
            _forget_calls()
            _draw_open_figures()
            sys.stdout, sys.stderr = saved
            for stream in (out, err):
                try:
                    stream.flush()
                except BaseException:
                    pass
        return OutcomeRecord(
            _utf8(out_sink.text()),
            _utf8(err_sink.text()),
            out_sink.truncated,
            err_sink.truncated,
            value,
            error,
            exit_code,
            len(_CHARTS),
        )

    def charts(self):
        """The PNG images (bytes) of the figures the last evaluation showed or left open."""
        return _CHARTS

    def main(self, argv):
        """`python ARGS...` on this instance; returns the exit status."""
        try:
            return self._main(argv[1:])
        except SystemExit as exc:
            return _exit_status(exc, sys.stderr)
        except BaseException as exc:
            sys.stderr.write(_describe(exc)[2])
            return 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except BaseException:
                    pass

    def _main(self, args):
        import runpy

        while args and args[0] in _IGNORED_FLAGS:
            args = args[1:]
        if args and args[0] in ("-V", "--version"):
            print(f"Python {sys.version.split()[0]}")
            return 0
        if args and args[0] in ("-c", "-m") and len(args) < 2:
            print(f"Argument expected for the {args[0]} option", file=sys.stderr)
            return 2
        if args and args[0] == "-c":
            sys.argv = ["-c", *args[2:]]
            code = args[1]
            exec(compile(code, self._source_name(code), "exec"), self.namespace)
        elif args and args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            sys.path[0] = os.getcwd() if _has_cwd() else ""
            runpy._run_module_as_main(args[1], alter_argv=True)
        elif args and args[0].startswith("-") and args[0] != "-":
            print(f"pyeval: unsupported option {args[0]} (supported: -c, -m, -V, -, a script)",
                  file=sys.stderr)
            return 2
        elif args and args[0] != "-":
            sys.argv = list(args)
            sys.path[0] = os.path.dirname(args[0]) or "."
            runpy.run_path(args[0], run_name="__main__")
        elif not args and sys.stdin.isatty():
            import code

            code.interact(banner=f"Python {sys.version} on wasi (pyeval)", exitmsg="")
        else:
            sys.argv = ["-", *args[1:]] if args else [""]
            source = sys.stdin.read()
            exec(compile(source, "<stdin>", "exec"), self.namespace)
        return 0


# Interpreter options accepted and ignored (src/ignored_options.txt says why).
_IGNORED_FLAGS = frozenset(
    line.strip() for line in IGNORED_OPTIONS.splitlines()
    if line.strip() and not line.lstrip().startswith("#")
)


def _has_cwd():
    try:
        os.getcwd()
        return True
    except OSError:
        return False


def _cut(data, limit):
    """`data` (UTF-8 bytes) cut to at most `limit` bytes on a character boundary, ending
    with "..." where text was dropped."""
    if len(data) <= limit:
        return data
    marker = b"..."[: limit]
    kept = data[: limit - len(marker)].decode("utf-8", "ignore").encode()
    return kept + marker


def _utf8(text):
    """`text` as UTF-8 bytes: lone surrogates become backslash escapes."""
    return text.encode("utf-8", "backslashreplace")


def _install_sandbox_event_loop():
    """Makes asyncio's platform event loop one for a platform without sockets: coroutines,
    tasks, timers and `asyncio.sleep` on the host's clock, and no self-pipe (there are no
    other threads to wake a loop). It is asyncio's default policy, `EventLoop` and
    `SelectorEventLoop`, so code that resets the policy or names a loop class gets it too."""
    import asyncio
    import selectors
    from asyncio import unix_events

    class TimerSelector(selectors.BaseSelector):
        """Nothing to watch: `select` sleeps until the next timer is due."""

        def __init__(self):
            self._map = {}

        def register(self, fileobj, events, data=None):
            raise OSError(58, "the sandbox's event loop cannot wait on files, pipes or sockets")

        def unregister(self, fileobj):
            raise KeyError(fileobj)

        def select(self, timeout=None):
            if _CALLS:
                # Tool calls run on the host: wait for one to finish, or for the next timer.
                _finish_calls(_tool_wait(timeout))
                return []
            # No timer and nothing ready: the loop waits forever, as it would in python,
            # until the host's wall-time limit ends it.
            time.sleep(timeout if timeout is not None else 3600.0)
            return []

        def close(self):
            pass

        def get_map(self):
            return self._map

    class SandboxEventLoop(asyncio.SelectorEventLoop):
        def __init__(self, selector=None):
            super().__init__(selector or TimerSelector())

        def _make_self_pipe(self):
            pass

        def _close_self_pipe(self):
            pass

        def _write_to_self(self):
            pass

    class SandboxEventLoopPolicy(asyncio.DefaultEventLoopPolicy):
        _loop_factory = SandboxEventLoop

    for module in (asyncio, unix_events):
        module.SelectorEventLoop = module.EventLoop = SandboxEventLoop
        module.DefaultEventLoopPolicy = SandboxEventLoopPolicy
    asyncio.set_event_loop_policy(SandboxEventLoopPolicy())


class ToolError(Exception):
    """A granted tool failed, or could not be called; the message says why."""


ToolError.__module__ = "tools"

# The tools granted to this instance's evaluations by name (a `ToolGroup` for tools named
# `group.tool`), and the calls in flight: host handle -> the future awaiting it.
_GRANTED = {}
_CALLS = {}

# The Python types of the JSON Schema types, for signatures.
_ANNOTATIONS = {
    "string": str, "integer": int, "number": float, "boolean": bool,
    "array": list, "object": dict, "null": type(None),
}


class ToolGroup:
    """The tools of one group (`github.search_issues`), as attributes and items."""

    def __init__(self, name):
        self._name = name
        self._tools = {}

    def __getattr__(self, name):
        try:
            return self.__dict__["_tools"][name]
        except KeyError:
            raise AttributeError(f"{self._name} has no tool {name!r}") from None

    def __getitem__(self, name):
        try:
            return self._tools[name]
        except KeyError:
            raise KeyError(f"{self._name} has no tool {name!r}") from None

    def __dir__(self):
        return sorted(self._tools)

    def __repr__(self):
        return f"<tools {self._name}: {', '.join(sorted(self._tools))}>"


def _make_tool(name, short, description, parameters):
    """An `async` function calling the host's tool `name`, with a signature made from its
    parameters' JSON Schema (the host checks the arguments against the schema itself)."""
    import inspect
    import json

    schema = json.loads(parameters)
    properties = schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = set(schema.get("required") or ())
    params = []
    for key, prop in properties.items():
        if not key.isidentifier():
            continue
        prop = prop if isinstance(prop, dict) else {}
        kinds = prop.get("type")
        kinds = [kinds] if isinstance(kinds, str) else kinds if isinstance(kinds, list) else []
        annotation = inspect.Parameter.empty
        for kind in kinds:
            python = _ANNOTATIONS.get(kind)
            if python is not None:
                annotation = python if annotation is inspect.Parameter.empty else annotation | python
        default = inspect.Parameter.empty if key in required else prop.get("default")
        params.append(inspect.Parameter(key, inspect.Parameter.KEYWORD_ONLY, default=default,
                                        annotation=annotation))
    if not properties or schema.get("additionalProperties", False) is not False:
        params.append(inspect.Parameter("arguments", inspect.Parameter.VAR_KEYWORD))

    async def tool(**arguments):
        return await _call(name, arguments)

    tool.__name__ = short
    tool.__qualname__ = name
    tool.__module__ = "tools"
    tool.__doc__ = description
    tool.__signature__ = inspect.Signature(params)
    return tool


async def _call(name, arguments):
    """Calls the host's tool `name` and awaits its result."""
    import asyncio
    import json

    try:
        payload = json.dumps(arguments, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name}() takes JSON values only: {exc}") from None
    kind, value = _tool_start(name, payload)
    if kind == 3:
        return json.loads(value)
    if kind == 1:
        raise TypeError(f"{name}(): {value}")
    if kind in (2, 4):
        raise ToolError(value)
    future = asyncio.get_running_loop().create_future()
    _CALLS[value] = future
    try:
        ok, text = await future
    except BaseException:
        if _CALLS.pop(value, None) is not None:
            _tool_cancel(value)
        raise
    if not ok:
        raise ToolError(text)
    return json.loads(text)


def _finish_calls(finished):
    """Hands the results of finished calls to the futures awaiting them."""
    for handle, ok, text in finished:
        future = _CALLS.pop(handle, None)
        if future is not None and not future.done():
            future.set_result((ok, text))


# Charts: matplotlib's figures come back with the outcome as PNG images, as a notebook
# shows them. `plt.show()` draws the open figures as they are then; the end of an
# evaluation draws those still open; both close what they draw.
_CHARTS = []


def _draw_open_figures():
    """Draws every open matplotlib figure into `_CHARTS` and closes it; a figure that
    fails to draw is reported on stderr instead. Without figures (every evaluation that
    draws none) it only looks."""
    helpers = sys.modules.get("matplotlib._pylab_helpers")
    if helpers is None or not helpers.Gcf.figs:
        return
    try:
        for manager in helpers.Gcf.get_all_fig_managers():
            png = io.BytesIO()
            try:
                # The whole figure, as `savefig` draws it (cropping it to what was drawn,
                # as notebooks do, would draw it twice); zlib's fastest level, a quarter
                # less work than its default for a slightly larger file.
                manager.canvas.figure.savefig(png, format="png",
                                              pil_kwargs={"compress_level": 1})
                _CHARTS.append(png.getvalue())
            except Exception as exc:
                print(f"pyeval: figure {manager.num} could not be drawn: "
                      f"{_type_name(exc)}: {exc}", file=sys.stderr)
        sys.modules["matplotlib.pyplot"].close("all")
    except Exception as exc:
        print(f"pyeval: the figures could not be drawn: {_type_name(exc)}: {exc}",
              file=sys.stderr)


def _use_chart_backend():
    """Makes matplotlib's backend, if it is loaded, Agg with a `show()` that returns the
    figures (`module://_pyeval_charts`)."""
    matplotlib = sys.modules.get("matplotlib")
    if matplotlib is None:
        return
    from matplotlib.backends import backend_agg

    backend = types.ModuleType("_pyeval_charts", "Agg, whose show() returns the figures "
                               "with the evaluation's outcome.")
    backend.FigureCanvas = backend_agg.FigureCanvasAgg
    backend.FigureManager = backend_agg.FigureManager
    backend.show = lambda *args, **kwargs: _draw_open_figures()
    sys.modules[backend.__name__] = backend
    matplotlib.use(f"module://{backend.__name__}")


def _forget_calls():
    """Gives up the calls still in flight when an evaluation ends."""
    for handle in list(_CALLS):
        del _CALLS[handle]
        _tool_cancel(handle)


class PackedFiles:
    """A file or directory of packed data, with the methods of
    `importlib.resources.abc.Traversable` (how `importlib.resources` sees a package's
    files). `files` maps paths ("a/b/c") to their data, `dirs` holds every directory."""

    def __init__(self, files, dirs, path=""):
        self._files, self._dirs, self._path = files, dirs, path

    @property
    def name(self):
        return self._path.rpartition("/")[2]

    def is_dir(self):
        return self._path in self._dirs

    def is_file(self):
        return self._path in self._files

    def iterdir(self):
        if not self.is_dir():
            raise NotADirectoryError(self._path)
        prefix = f"{self._path}/" if self._path else ""
        names = {p[len(prefix):].partition("/")[0]
                 for p in (*self._files, *self._dirs) if p.startswith(prefix) and p != prefix}
        return (self.joinpath(name) for name in sorted(names) if name)

    def joinpath(self, *descendants):
        parts = [self._path] if self._path else []
        for descendant in descendants:
            parts.extend(part for part in str(descendant).split("/") if part)
        return PackedFiles(self._files, self._dirs, "/".join(parts))

    __truediv__ = joinpath

    def open(self, mode="r", *args, **kwargs):
        data = self._files.get(self._path)
        if data is None:
            raise FileNotFoundError(self._path)
        stream = io.BytesIO(data)
        return stream if "b" in mode else io.TextIOWrapper(stream, *args, **kwargs)

    def read_bytes(self):
        with self.open("rb") as f:
            return f.read()

    def read_text(self, encoding=None):
        with self.open(encoding=encoding) as f:
            return f.read()


class TzdataImporter:
    """The `tzdata` package (the IANA time-zone data), served from its packed files: its
    packages import and their files are resources, so `zoneinfo` finds them as it finds the
    installed package."""

    def __init__(self, blob):
        index = read_packed(blob, b"PYEVTZD1", "time-zone data")
        files = {path: blob[start:end] for path, (_, start, end) in index.items()}
        dirs = {""}
        for path in files:
            parts = path.split("/")[:-1]
            dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))
        self._root = PackedFiles(files, dirs)

    def _files(self, fullname):
        return self._root.joinpath(*fullname.split(".")[1:])

    def find_spec(self, fullname, path=None, target=None):
        if fullname.partition(".")[0] != "tzdata" or not self._files(fullname).is_dir():
            return None
        return ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        module.__path__ = []

    def get_resource_reader(self, fullname):
        return _FilesReader(self._files(fullname))


class _FilesReader:
    def __init__(self, files):
        self._files = files

    def files(self):
        return self._files


def _no_threads(*args, **kwargs):
    raise RuntimeError(
        "can't start new thread: the sandbox has no threads (WebAssembly without threads)"
    )


def _as_python_is_used():
    """What `python` sets up and this build lacks: `exit`, `quit`, `help` and friends from
    `site`; an event loop that needs no sockets; time-zone data; a clear error for
    threads."""
    import site
    import threading
    import _thread

    site.setquit()
    site.setcopyright()
    site.sethelper()
    _install_sandbox_event_loop()
    sys.meta_path.append(TzdataImporter(TZDATA_BLOB))
    _thread.start_new_thread = _thread.start_joinable_thread = _no_threads
    threading._start_joinable_thread = _no_threads


def _warm_up(session):
    """What every instance does first: wake, and evaluate code that prints, returns a value
    and raises."""
    # Once with a variable set and once with none, so both paths run and the snapshot's
    # environment is empty.
    session.wake([("PYEVAL_WARM", "1")], ["python"])
    session.wake([], ["python"])
    for code in ("_warm = [i * 2 for i in range(3)]\n_warm", "print(_warm)", "1 / 0", "x = 1"):
        session.evaluate(code)


def _fresh_code(code, hot):
    """A copy of `code`, and of the hot code objects among its constants."""
    consts = tuple(
        _fresh_code(c, hot) if type(c) is types.CodeType and c in hot else c
        for c in code.co_consts
    )
    return code.replace(co_consts=consts)


def _gather_hot_code(session):
    """Gives the functions that evaluation runs new copies of their code, made one after
    another. CPython writes into the code it runs (specialization counters), and each page
    an instance writes is a page the host copies; scattered over the heap, these code
    objects cost a page each."""
    hot = set()

    def profile(frame, event, arg):
        if event == "call":
            hot.add(frame.f_code)

    sys.setprofile(profile)
    try:
        _warm_up(session)
    finally:
        sys.setprofile(None)
    for obj in gc.get_objects():
        if type(obj) is types.FunctionType and obj.__code__ in hot:
            obj.__code__ = _fresh_code(obj.__code__, hot)


def prepare(preload):
    """Installs the stdlib importer, imports `preload`, warms up evaluation, and returns the
    session every export uses. Runs once, before the snapshot."""
    sys.meta_path.insert(0, PackedImporter(STDLIB_BLOB, b"PYEVSTD1", "standard library",
                                           STDLIB_DIR))
    sys.meta_path.insert(0, SourceImporter(SANDBOX_MODULES))
    packages = PackedImporter(PACKAGES_BLOB, b"PYEVPKG1", "packages", SITE_DIR)
    if packages:
        sys.meta_path.insert(1, packages)
        # matplotlib's settings and font cache directory, as there is no home directory:
        # beside its package in the tree, out of the working directory.
        os.environ["MPLCONFIGDIR"] = f"{SITE_DIR}/matplotlib/.config"
    for name in preload:
        __import__(name)
    if PACKAGES_WARMUP:
        exec(compile(PACKAGES_WARMUP, "<pyeval packages warm-up>", "exec"), {})
    _use_chart_backend()
    _as_python_is_used()
    session = Session()
    _gather_hot_code(session)
    # Twice more, so the first real evaluation finds every code path warm and specialized.
    _warm_up(session)
    _warm_up(session)
    for name in ("_warm", "_", "x"):
        session.namespace.pop(name, None)
    builtins.__dict__.pop("_", None)
    for name in [name for name in linecache.cache if name.startswith("<string")]:
        del linecache.cache[name]
    session._counter = 0
    # Every generator the snapshot will hold, wherever it lives; those made after it seed
    # themselves from the host's entropy.
    heap = gc.get_objects()
    generators = [obj for obj in heap if isinstance(obj, random.Random)
                  and not isinstance(obj, random.SystemRandom)]
    # A generator whose C methods were bound (as `random`'s module functions are) is
    # seeded at wake; the others when first used.
    bound = {id(obj.__self__) for obj in heap if isinstance(obj, types.BuiltinMethodType)}
    session.generators = [g for g in generators if id(g) in bound or g is random._inst]
    classes = {}
    session.unseeded = [(g, classes.setdefault(type(g), _seeded_on_first_use(type(g))))
                        for g in generators if id(g) not in bound and g is not random._inst]
    # numpy's global generator is reseeded at wake (see there); seeded here, it holds no
    # normal deviate drawn by the warm-up (`np.random.seed` forgets it, as reseeding the
    # bit generator alone would not).
    mtrand = sys.modules.get("numpy.random.mtrand")
    if mtrand is not None:
        mtrand.seed(0)
        keep_mt19937(mtrand._rand._bit_generator.capsule)
    dateutil_parser = sys.modules.get("dateutil.parser._parser")
    if dateutil_parser is not None:
        session.parser_infos = [obj for obj in heap
                                if isinstance(obj, dateutil_parser.parserinfo)]
    del heap
    # Nothing is imported from the snapshot's directories any more (they are gone); the
    # working directory comes first, as with python -c. (Set here, not at wake: changing
    # sys.path there costs every evaluation.)
    sys.path[:] = [""]
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    return session
