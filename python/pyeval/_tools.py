"""Python functions as tools evaluated code may call: `Evaluator.eval(code, tools=...)`.

A tool's schema (the JSON Schema of its keyword arguments) is made from the function's
signature and type hints unless given; the sandbox calls it with keyword arguments the
host has checked against that schema, and gets its JSON-serializable result back.
"""

import asyncio
import inspect
import json
import typing

__all__ = ["Tool"]


class Tool:
    """A Python function granted to evaluated code.

    `name` defaults to the function's name (`group.name` puts it in a group reached as
    `group.name(...)`), `description` to its docstring, `schema` to one made from its
    signature and type hints.
    """

    def __init__(self, function, *, name=None, description=None, schema=None, may_suspend=False):
        if not callable(function):
            raise TypeError(f"a tool must be callable, not {type(function).__name__}")
        self.function = function
        self.name = name or getattr(function, "__name__", "")
        self.description = description if description is not None else (inspect.getdoc(function) or "")
        self.schema = schema if schema is not None else schema_of(function)
        # Whether it may raise `pyeval.Suspend` in a session that has run before (such a
        # session notes its state before each evaluation, to resume from).
        self.may_suspend = may_suspend

    def __repr__(self):
        return f"Tool({self.name!r})"


def schema_of(function):
    """A JSON Schema of `function`'s keyword arguments, from its signature and hints."""
    signature = inspect.signature(function)
    try:
        hints = typing.get_type_hints(function)
    except Exception:
        hints = {}
    properties, required, open_ended = {}, [], False
    for param in signature.parameters.values():
        if param.kind is param.VAR_POSITIONAL:
            continue
        if param.kind is param.VAR_KEYWORD:
            open_ended = True
            continue
        if param.kind is param.POSITIONAL_ONLY:
            raise TypeError(f"{function!r} takes {param.name!r} by position only; "
                            "tools are called with keyword arguments")
        prop = _json_schema(hints.get(param.name, param.annotation))
        if param.default is param.empty:
            required.append(param.name)
        else:
            try:
                json.dumps(param.default)
                prop["default"] = param.default
            except (TypeError, ValueError):
                pass
        properties[param.name] = prop
    schema = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if open_ended:
        schema["additionalProperties"] = True
    return schema


_SIMPLE = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}


def _json_schema(hint):
    """The JSON Schema of a type hint (anything unknown admits any value)."""
    if hint is inspect.Parameter.empty or hint is typing.Any:
        return {}
    if hint is None:
        return {"type": "null"}
    if hint in _SIMPLE:
        return {"type": _SIMPLE[hint]}
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return {"enum": list(args)}
    if origin is typing.Union or type(hint).__name__ == "UnionType":
        return {"anyOf": [_json_schema(arg) for arg in args]}
    if hint in (list, tuple, set) or origin in (list, tuple, set):
        schema = {"type": "array"}
        if args and origin is not tuple:
            schema["items"] = _json_schema(args[0])
        return schema
    if hint is dict or origin is dict:
        return {"type": "object"}
    if isinstance(hint, type) and dict in hint.__mro__ and hasattr(hint, "__annotations__"):
        fields = typing.get_type_hints(hint)
        return {"type": "object",
                "properties": {key: _json_schema(value) for key, value in fields.items()},
                "required": sorted(getattr(hint, "__required_keys__", ()))}
    return {}


def describe(tools):
    """`(name, description, schema as JSON, function, is a coroutine function, may suspend)`
    of each tool of `tools`: a mapping of names to functions or `Tool`s, or a sequence of
    them."""
    if isinstance(tools, dict):
        items = [(name, tool) for name, tool in tools.items()]
    else:
        items = [(None, tool) for tool in tools]
    described = []
    for name, tool in items:
        if not isinstance(tool, Tool):
            tool = Tool(tool, name=name)
        elif name is not None and name != tool.name:
            tool = Tool(tool.function, name=name, description=tool.description, schema=tool.schema,
                        may_suspend=tool.may_suspend)
        described.append((tool.name, tool.description, json.dumps(tool.schema), tool.function,
                          _is_coroutine_function(tool.function), tool.may_suspend))
    return described


def call(function, arguments, loop):
    """Calls `function` with the JSON object `arguments` as keyword arguments and returns
    its result as JSON text. A coroutine function runs on `loop` (the caller's, under
    `eval_async`) when it runs, else on a loop of its own."""
    result = function(**json.loads(arguments))
    if inspect.isawaitable(result):
        if loop is not None and loop.is_running():
            result = asyncio.run_coroutine_threadsafe(_wait(result), loop).result()
        else:
            result = asyncio.run(_wait(result))
    try:
        return json.dumps(result, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the tool's result is not JSON: {exc}") from None


def _is_coroutine_function(function):
    """Whether calling `function` gives a coroutine (an `async def` function, or an object
    whose `__call__` is one)."""
    return inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(
        getattr(function, "__call__", None))


async def _wait(awaitable):
    return await awaitable
