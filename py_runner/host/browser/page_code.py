"""The page's half of `py_runner_page.run()`: runs in Pyodide, never in CPython's host process. The host sends
this file's text to the page once (in_page.py beside it); it is a module here so that its encoder is
linted and unit-tested in CPython.

`run_code(code, filename)` runs the code in `__main__`'s namespace (top-level await allowed) and returns one
JSON string: `{"value": <encoded>}`, `{"error": <traceback>}` or `{"unsupported": <why>}`. Values are
encoded so that they arrive as they left: every container is tagged with its type (`{"list": [...]}`,
`{"tuple": ...}`, `{"set": ...}`, `{"frozenset": ...}`, `{"dict": [[key, value], ...]}`, `{"bytes": base64}`),
because JSON alone has no sets, tuples or non-string keys, and a browser's own serialization turns a set
into `{}`.
"""

from __future__ import annotations

import base64
import json
import sys
import traceback
from typing import Any

MAX_DEPTH = 100  # nesting levels a returned value may have; deeper is refused, not a stack overflow


def encode(value: Any, depth: int = 0) -> Any:
    """`value` as JSON-able data that `in_page.decode` turns back into an equal value of the same types.
    Raises TypeError naming the type of a value that has no faithful form on the host."""
    if depth > MAX_DEPTH:
        raise TypeError(f"the value is nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, bool | int | float | str):
        return value  # Python's json keeps big ints, NaN and the infinities exact; the host decodes with it
    inner = depth + 1
    if isinstance(value, list):
        return {"list": [encode(v, inner) for v in value]}
    if isinstance(value, tuple):
        return {"tuple": [encode(v, inner) for v in value]}
    if isinstance(value, frozenset):
        return {"frozenset": [encode(v, inner) for v in value]}
    if isinstance(value, set):
        return {"set": [encode(v, inner) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[encode(k, inner), encode(v, inner)] for k, v in value.items()]}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"bytes": base64.b64encode(bytes(value)).decode("ascii")}
    ffi = sys.modules.get("pyodide.ffi")  # only in the page
    if ffi is not None and value is getattr(ffi, "jsnull", None):  # JS null, which Pyodide keeps apart
        return None
    if ffi is not None and isinstance(value, ffi.JsProxy):  # a JS array, object or Map: its Python conversion
        converted = value.to_py()
        if not isinstance(converted, ffi.JsProxy):
            return encode(converted, depth)
    kind = type(value)
    raise TypeError(
        f"a value of type {kind.__module__}.{kind.__qualname__} cannot be returned to the host: return None, "
        "bool, int, float, str, bytes, or a list, tuple, dict, set or frozenset of those"
    )


def _traceback(exc: BaseException, filename: str) -> str:
    """The exception's traceback from the run code's own first frame on (Pyodide's runner frames hidden); a
    SyntaxError has no such frame and keeps its own report."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb or exc.__traceback__))


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()  # print() without a newline reaches the page's output before the run reports back
        except Exception:
            pass


async def run_code(code: str, filename: str) -> str:
    from pyodide.code import eval_code_async

    import __main__

    try:
        try:
            value = await eval_code_async(code, __main__.__dict__, filename=filename)
        finally:
            _flush()
    except BaseException as exc:  # SystemExit and KeyboardInterrupt too: the host reports every ending
        return json.dumps({"error": _traceback(exc, filename)})
    try:
        return json.dumps({"value": encode(value)})
    except (TypeError, RecursionError) as exc:
        return json.dumps({"unsupported": str(exc)})
