"""The library runs in Pyodide: it imports only the standard library (and, in its transport, Pyodide's `js`
and `pyodide`), never the host tools; the host tools are never shipped in the wheel the page installs; and no
module of py_runner, library or host tool, takes part in an import cycle."""

from __future__ import annotations

import ast
import sys
import zipfile
from pathlib import Path

from py_runner.host.build.wheel import build_wheel, engine_files, library_files

PACKAGE = Path(__file__).resolve().parents[2] / "py_runner"
IN_THE_PAGE = {"js", "pyodide"}  # what Pyodide provides beside the standard library
LIBRARY = [PACKAGE / rel for rel in library_files()]
EVERY_MODULE = sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = path.with_suffix("").parts
    top = len(parts) - 1 - parts[::-1].index("py_runner")  # the package folder, wherever the tree lies
    return ".".join(parts[top:]).removesuffix(".__init__")


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules a library file imports, relative imports resolved."""
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module or "")
        elif isinstance(node, ast.ImportFrom):  # from .x import y / from ..x import y / from . import y
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - (node.level - 1)])
            if node.module:  # `from . import x` imports x, not the package's own __init__ again
                base += f".{node.module}"
                names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def test_the_library_is_every_module_outside_host() -> None:
    names = {module_name(p) for p in LIBRARY}
    assert names >= {"py_runner", "py_runner._runner", "py_runner._transport.pyodide"}
    assert not any(name.startswith("py_runner.host") for name in names)


def test_the_library_imports_only_the_standard_library_and_itself() -> None:
    for path in LIBRARY:
        for name in imported_modules(path):
            top = name.split(".")[0]
            assert not name.startswith("py_runner.host"), f"{path.name} imports the host tool {name}"
            assert top == "py_runner" or top in sys.stdlib_module_names or top in IN_THE_PAGE, (
                f"{path.name} imports {name}: the library must run in Pyodide with the standard library only"
            )


def test_the_page_wheel_holds_the_library_and_the_engine_only(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, use_cache=False)
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    modules = {n for n in names if n.endswith(".py")}
    library = {f"py_runner/{rel.as_posix()}" for rel in library_files()}
    # and py_runner/_llama_cpp again as the top-level llama_cpp: `import llama_cpp` in the page
    aliases = {n.replace("py_runner/_llama_cpp/", "llama_cpp/") for n in library if "/_llama_cpp/" in n}
    assert modules == library | aliases and "llama_cpp/__init__.py" in aliases
    data = {n for n in names if n.startswith("py_runner/") and not n.endswith(".py")}
    engine = {f"py_runner/_engine/{rel}" for _, rel in engine_files()}  # empty where nothing is built
    # with the engine, the notices of what it redistributes (llama.cpp's builds)
    assert data == engine | ({"py_runner/_engine/THIRD_PARTY_NOTICES.txt"} if engine else set())
    assert not any(n.startswith("py_runner/host/") for n in names)
    assert all(n.startswith(("py_runner/", "py_runner-", "llama_cpp/")) for n in names)


def import_cycle(paths: list[Path]) -> list[str] | None:
    """One import cycle among the modules at `paths` (every import counts, also those under TYPE_CHECKING or
    inside functions: a cycle is a cycle), or None."""
    graph = {module_name(p): {n for n in imported_modules(p) if n.startswith("py_runner")} for p in paths}
    graph = {mod: {dep for dep in deps if dep in graph and dep != mod} for mod, deps in graph.items()}
    done: set[str] = set()

    def visit(mod: str, path: list[str]) -> list[str] | None:
        for dep in sorted(graph[mod]):
            if dep in path:
                return [*path[path.index(dep) :], dep]
            if dep not in done:
                found = visit(dep, [*path, dep])
                if found:
                    return found
        done.add(mod)
        return None

    for mod in sorted(graph):
        found = visit(mod, [mod])
        if found:
            return found
    return None


def test_the_library_has_no_import_cycle() -> None:
    cycle = import_cycle(LIBRARY)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_module_of_py_runner_is_in_an_import_cycle() -> None:
    """The host tools too (py_runner/host/ and its folders), function-level imports included."""
    assert {module_name(p) for p in EVERY_MODULE} >= {
        "py_runner.host.cli",
        "py_runner.host.browser.browsers",
        "py_runner.host.build.backend",
    }
    cycle = import_cycle(EVERY_MODULE)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_function_level_cycle(tmp_path: Path) -> None:
    """What the test above relies on: an import inside a function closes a cycle as well as one at the top."""
    package = tmp_path / "py_runner"
    package.mkdir()
    (package / "a.py").write_text("from . import b\n", encoding="utf-8")
    (package / "b.py").write_text("def f():\n    from .a import x\n", encoding="utf-8")
    assert import_cycle([package / "a.py", package / "b.py"]) == ["py_runner.a", "py_runner.b", "py_runner.a"]
