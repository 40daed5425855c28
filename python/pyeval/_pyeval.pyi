"""Type stubs of the compiled part of pyeval."""

from collections.abc import Awaitable, Mapping, Sequence
from os import PathLike
from types import TracebackType
from typing import Any, Callable, Optional, Union

from ._tools import Tool

_OnOutput = Callable[[str, str], object]
"""Called with ``"stdout"`` or ``"stderr"`` and the text as code writes it."""

_Tools = Union[Mapping[str, Union[Callable[..., Any], Tool]], Sequence[Union[Callable[..., Any], Tool]]]

class ExceptionInfo:
    """An exception that escaped the evaluated code."""

    type_name: str
    """The exception's qualified type name, e.g. ``"ZeroDivisionError"``."""
    message: str
    """``str()`` of the exception."""
    traceback: str
    """The formatted traceback, as python prints it."""

class OutputFile:
    """A file an evaluation created or changed in its working directory."""

    path: str
    """Its path under the working directory, e.g. ``"out/chart.png"``."""
    size: int
    media_type: str
    """Guessed from its name, e.g. ``"image/png"``."""
    data: Optional[bytes]
    """Its bytes, or None when they did not fit in ``max_file_bytes``."""

class Outcome:
    """The result of an evaluation that ran to its end."""

    stdout: str
    stderr: str
    stdout_truncated: bool
    stderr_truncated: bool
    value: Optional[str]
    """``repr()`` of the last expression's value, if the code ended with one (not None)."""
    error: Optional[ExceptionInfo]
    exit_code: Optional[int]
    """The status given to ``exit()`` / ``sys.exit()``, if the code called it."""
    files: list[OutputFile]
    """Files the code created or changed in its working directory, in path order."""
    files_dropped: int
    """Changed files left out of ``files``, past ``max_files``."""
    charts: list[OutputFile]
    """matplotlib figures the code showed or left open, as PNG files named ``chart-N.png``
    (sharing ``max_files`` and ``max_file_bytes`` with ``files``)."""
    charts_dropped: int
    """Charts left out of ``charts``, past ``max_files``."""
    fuel_used: int
    wall_time: float
    """Seconds."""

class Session:
    """One interpreter whose state persists across evaluations."""

    def eval(self, code: str, *, on_output: Optional[_OnOutput] = None) -> Outcome: ...
    def eval_async(self, code: str, *, on_output: Optional[_OnOutput] = None) -> Awaitable[Outcome]: ...
    def add_files(self, files: Mapping[str, Union[str, bytes]]) -> None:
        """Puts files in the working directory before the next evaluation."""
    def read_file(self, path: str) -> bytes:
        """The bytes of a file in the working directory; raises ``NoSuchFile``."""
    def dump(self) -> bytes:
        """The session's state as bytes, for ``Evaluator.restore``."""
    def fork(self) -> Session:
        """A new session in this one's state; the two go on separately."""
    def close(self) -> None: ...
    def __enter__(self) -> Session: ...
    def __exit__(
        self,
        type: Optional[type[BaseException]],
        value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> bool: ...

class Network:
    """The hosts evaluated code may send HTTP(S) requests to (see `Evaluator.eval`)."""

    def __init__(
        self,
        hosts: Sequence[str],
        *,
        addresses: Optional[Sequence[str]] = None,
        secrets: Optional[Mapping[str, tuple[str, Sequence[str]]]] = None,
        ca_cert: Optional[Union[str, bytes]] = None,
        max_requests: Optional[int] = None,
        max_response_bytes: Optional[int] = None,
    ) -> None: ...
    @property
    def hosts(self) -> list[str]: ...

class Evaluator:
    """Makes a fresh interpreter for every evaluation; safe to share between threads."""

    def __init__(
        self,
        *,
        max_instances: Optional[int] = None,
        metered: bool = True,
        memory_budget: Optional[int] = None,
        component: Optional[Union[str, PathLike[str]]] = None,
    ) -> None: ...
    def eval(
        self,
        code: str,
        *,
        fuel: Optional[int] = None,
        memory: Optional[int] = None,
        timeout: Optional[float] = None,
        max_output: Optional[int] = None,
        max_files: Optional[int] = None,
        max_file_bytes: Optional[int] = None,
        mounts: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        argv: Optional[Sequence[str]] = None,
        stdin: Optional[Union[str, bytes]] = None,
        files: Optional[Mapping[str, Union[str, bytes]]] = None,
        tools: Optional[_Tools] = None,
        network: Optional[Union[Network, Sequence[str]]] = None,
        on_output: Optional[_OnOutput] = None,
    ) -> Outcome: ...
    def eval_async(
        self,
        code: str,
        *,
        fuel: Optional[int] = None,
        memory: Optional[int] = None,
        timeout: Optional[float] = None,
        max_output: Optional[int] = None,
        max_files: Optional[int] = None,
        max_file_bytes: Optional[int] = None,
        mounts: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        argv: Optional[Sequence[str]] = None,
        stdin: Optional[Union[str, bytes]] = None,
        files: Optional[Mapping[str, Union[str, bytes]]] = None,
        tools: Optional[_Tools] = None,
        network: Optional[Union[Network, Sequence[str]]] = None,
        on_output: Optional[_OnOutput] = None,
    ) -> Awaitable[Outcome]: ...
    def session(
        self,
        *,
        fuel: Optional[int] = None,
        memory: Optional[int] = None,
        timeout: Optional[float] = None,
        max_output: Optional[int] = None,
        max_files: Optional[int] = None,
        max_file_bytes: Optional[int] = None,
        mounts: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        argv: Optional[Sequence[str]] = None,
        stdin: Optional[Union[str, bytes]] = None,
        files: Optional[Mapping[str, Union[str, bytes]]] = None,
        tools: Optional[_Tools] = None,
        network: Optional[Union[Network, Sequence[str]]] = None,
        on_output: Optional[_OnOutput] = None,
    ) -> Session: ...
    def restore(
        self,
        data: bytes,
        *,
        fuel: Optional[int] = None,
        memory: Optional[int] = None,
        timeout: Optional[float] = None,
        max_output: Optional[int] = None,
        max_files: Optional[int] = None,
        max_file_bytes: Optional[int] = None,
        mounts: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        argv: Optional[Sequence[str]] = None,
        stdin: Optional[Union[str, bytes]] = None,
        files: Optional[Mapping[str, Union[str, bytes]]] = None,
        tools: Optional[_Tools] = None,
        network: Optional[Union[Network, Sequence[str]]] = None,
        on_output: Optional[_OnOutput] = None,
    ) -> Session:
        """A session in the state a dump holds; raises ``InvalidDump``."""
    def resume(
        self,
        data: bytes,
        result: Any = None,
        *,
        error: Optional[str] = None,
        fuel: Optional[int] = None,
        memory: Optional[int] = None,
        timeout: Optional[float] = None,
        max_output: Optional[int] = None,
        max_files: Optional[int] = None,
        max_file_bytes: Optional[int] = None,
        mounts: Optional[Sequence[str]] = None,
        env: Optional[Mapping[str, str]] = None,
        argv: Optional[Sequence[str]] = None,
        stdin: Optional[Union[str, bytes]] = None,
        files: Optional[Mapping[str, Union[str, bytes]]] = None,
        tools: Optional[_Tools] = None,
        network: Optional[Union[Network, Sequence[str]]] = None,
        on_output: Optional[_OnOutput] = None,
    ) -> tuple[Session, Outcome]:
        """Goes on with a suspended evaluation, the suspended call answered with ``result``
        (or raising ``ToolError(error)``)."""
    @property
    def metered(self) -> bool: ...
    @property
    def max_instances(self) -> int: ...

class EvalError(Exception):
    """An evaluation produced no outcome."""

class FuelExhausted(EvalError): ...
class Timeout(EvalError): ...
class MemoryLimit(EvalError): ...
class Crashed(EvalError): ...
class InvalidCode(EvalError): ...
class InvalidFiles(EvalError): ...
class InvalidDump(EvalError): ...
class Suspended(EvalError):
    """A tool call suspended the evaluation."""
    suspension: bytes
    tool: str
    arguments: dict[str, Any]
    reason: str

class Suspend(Exception):
    """Raised by a tool's function to suspend the evaluation at its call."""
class NoSuchFile(EvalError): ...
class TooManyInstances(EvalError): ...
class SessionEnded(EvalError): ...
class SetupError(EvalError): ...

def main(argv: Sequence[str]) -> int: ...

def tool_stubs(tools: _Tools) -> str:
    """The tools as Python stubs for a model's prompt."""
