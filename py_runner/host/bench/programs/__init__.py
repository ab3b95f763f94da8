"""The programs the benches (and `py-runner perplexity`) run in the page, as files that ruff and the tests
see: Python for Pyodide (`*.py`, never imported on the host: they import `js` and the library as the page has
them) and JavaScript function expressions for `page.evaluate` (`*.js`).

A Python program defines `async def main(params)` (or other async functions the host names); the host sends
the file's text followed by one call whose parameters are a single JSON object (`python_call`): no value is
ever spliced into code. A JS program is one function expression, its parameters passed by `evaluate` itself.

May import: the standard library only (this loader); the programs themselves import the library and Pyodide's
`js` in the page.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent


def source(name: str) -> str:
    """The text of the program file `name` (with its suffix: "load.py", "generate_setup.js")."""
    return (HERE / name).read_text(encoding="utf-8")


def python_call(name: str, function: str = "main", **params: object) -> str:
    """Code for the page: the program `name`.py, then `await function(params)` as its last expression, whose
    value the run returns. `params` cross as one JSON string, decoded in the page."""
    call = f"await {function}(__import__('json').loads({json.dumps(json.dumps(params))}))"
    return f"{source(name + '.py')}\n\n{call}\n"


def js_function(name: str) -> str:
    """The function expression in `name`.js, for `page.evaluate(function, arg)` (its leading comment lines
    left out: the browser driver wraps what it is given)."""
    lines = source(name + ".js").strip().splitlines()
    while lines and lines[0].startswith("//"):
        lines.pop(0)
    return "\n".join(lines)
