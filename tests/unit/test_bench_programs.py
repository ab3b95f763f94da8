"""The programs the benches and `py-runner perplexity` run in the page (py_runner/host/bench/programs/): real
files, each one the host names exists, and parameters reach them as data (one JSON object), never as code."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from py_runner.host.bench import programs

HOST = Path(programs.__file__).resolve().parents[2]
PYTHON_PROGRAMS = sorted(p for p in programs.HERE.glob("*.py") if p.name != "__init__.py")
JS_PROGRAMS = sorted(programs.HERE.glob("*.js"))


def _named_by_the_host() -> set[tuple[str, str]]:
    """(program, function) for each `python_call(...)` and (program, "js") for each `js_function(...)` in the
    host's modules."""
    named = set()
    for path in HOST.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name, function in re.findall(r'python_call\(\s*"(\w+)"(?:,\s*"(\w+)")?', text):
            named.add((name, function or "main"))
        named.update((name, "js") for name in re.findall(r'js_function\("(\w+)"\)', text))
    return named


def test_every_program_the_host_names_exists_with_its_function() -> None:
    named = _named_by_the_host()
    assert {name for name, _ in named} >= {"load", "first_token", "soak", "generate", "perplexity"}
    for name, function in named:
        if function == "js":
            assert (programs.HERE / f"{name}.js").is_file(), name
            continue
        tree = ast.parse(programs.source(f"{name}.py"))
        defined = {n.name for n in tree.body if isinstance(n, ast.AsyncFunctionDef)}
        assert function in defined, f"{name}.py defines no `async def {function}`"


@pytest.mark.parametrize("path", PYTHON_PROGRAMS, ids=lambda p: p.name)
def test_a_python_program_compiles_and_awaits_nothing_at_its_top(path: Path) -> None:
    compile(path.read_text(encoding="utf-8"), str(path), "exec")  # top-level await would not compile here


@pytest.mark.parametrize("path", JS_PROGRAMS, ids=lambda p: p.name)
def test_a_js_program_is_one_function_expression(path: Path) -> None:
    text = programs.js_function(path.stem)
    assert re.match(r"(async\s*)?\(", text), text[:80]
    assert "=>" in text.splitlines()[0]


def test_parameters_cross_as_one_json_object() -> None:
    params = {"url": '/m/"""\n\\x";import os', "prompt": "naïve 😀 '\\'", "n": 3, "on": True, "none": None}
    code = programs.python_call("load", **params)
    assert code.startswith(programs.source("load.py"))
    last = ast.parse(code).body[-1]
    assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Await)
    call = last.value.value
    assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "main"
    (argument,) = call.args  # json.loads(<one string constant>)
    assert isinstance(argument, ast.Call) and len(argument.args) == 1
    assert isinstance(argument.args[0], ast.Constant)
    assert json.loads(argument.args[0].value) == params
