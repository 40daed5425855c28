"""pyeval: evaluate untrusted Python in CPython compiled to WebAssembly, under hard limits.

    >>> import pyeval
    >>> ev = pyeval.Evaluator()
    >>> ev.eval("print('hi')\\n6 * 7").value
    '42'

Each `Evaluator.eval` runs in a fresh interpreter (a fraction of a millisecond to start);
a `Session` keeps one interpreter across evaluations. Limits (fuel, memory, time, output)
are enforced by the host; a run that hits one raises a subclass of `EvalError`.
"""

from ._pyeval import (
    Crashed,
    EvalError,
    Evaluator,
    ExceptionInfo,
    FuelExhausted,
    InvalidCode,
    InvalidDump,
    InvalidFiles,
    MemoryLimit,
    Network,
    NoSuchFile,
    Outcome,
    OutputFile,
    Session,
    SessionEnded,
    SetupError,
    Suspend,
    Suspended,
    Timeout,
    TooManyInstances,
    tool_stubs,
)
from ._tools import Tool

__all__ = [
    "Crashed",
    "EvalError",
    "Evaluator",
    "ExceptionInfo",
    "FuelExhausted",
    "InvalidCode",
    "InvalidDump",
    "InvalidFiles",
    "MemoryLimit",
    "Network",
    "NoSuchFile",
    "Outcome",
    "OutputFile",
    "Session",
    "SessionEnded",
    "SetupError",
    "Suspend",
    "Suspended",
    "Timeout",
    "Tool",
    "TooManyInstances",
    "tool_stubs",
]
