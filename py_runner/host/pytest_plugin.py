"""py_runner's pytest plugin (entry point `pytest11`, active wherever py_runner is installed): test your own
in-browser Python app in a real headless browser (Chromium, Firefox or WebKit), with Pyodide and py_runner
booted.

Fixtures:
    py_runner_page            a page served by py_runner's server, Pyodide and py_runner ready; your app's
                              folder is served at /files/ and is the working folder of `run()`.
                              `py_runner_page.run(code, timeout_s=300)` runs Python there (top-level await
                              allowed) and returns the value of its last expression with its types (None,
                              bool, int, float, str, bytes; lists, tuples, dicts, sets, frozensets of them;
                              another type raises PageValueError naming it). An exception in the page raises
                              InPageError with the page's traceback; past timeout_s, PageTimeoutError with
                              what the page printed (the page is closed); Pyodide's fatal error,
                              PageFatalError at once. The app's files arrive byte for byte or the fixture
                              fails naming them (AppFilesError). What the page prints is `.output`, and a
                              failed test's report shows it ("Captured page output"). `.page` is the
                              Playwright page.
    py_runner_model_url       the default real model (SmolLM2-135M-Instruct Q4_1) as served to that page
    py_runner_tiny_model_url  a tiny random-weight fixture model (fast; for plumbing, not for text)
    py_runner_server          the server (`.base_url`); isolation headers on unless told otherwise

Marker: `@pytest.mark.py_runner(app="path/to/app", isolate=False)`: the folder served (default: the test
file's folder, or the `py_runner_app` ini option) and whether the page gets COOP/COEP (off: no
SharedArrayBuffer, the single-thread build). `--py-runner-no-isolation` turns isolation off for the run.
A missing browser skips the test, or fails it with PY_RUNNER_REQUIRE_E2E=1 (for your CI).

Decorator: `@run_in_page` runs a test's body in the page, in the shape of pytest-pyodide's `run_in_pyodide`
(which cannot drive this stack offline: it wants wheels of pytest and tblib that Pyodide's npm package does
not ship, and a bare page of its own): the first parameter receives the page fixture, the others are pytest
fixtures or parameters whose values cross as JSON; the body runs as Python in the page, where `await` works
and the module's globals do not exist (import inside it); an exception there fails the test with the page's
traceback.

The browser: pytest-playwright's `browser` fixture when that plugin is active (its --browser / --headed
options apply), else the one `--browser chromium|firefox|webkit` names (default chromium; Debian's builds,
launched as `py_runner.host.browser.browsers` says), headless unless --headed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import inspect
import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from .browser.headless import HarnessPage
from .browser.in_page import (
    InPageError,
    PageError,
    PageFatalError,
    PageTimeoutError,
    PageValueError,
)

__all__ = [
    "AppFilesError",
    "InPageError",
    "PageError",
    "PageFatalError",
    "PageTimeoutError",
    "PageValueError",
    "PyRunnerPage",
    "run_in_page",
]


class AppFilesError(PageError):
    """The app's files did not arrive in the page byte for byte; the message names each one and why."""


class PyRunnerPage(HarnessPage):
    """A page with Pyodide and py_runner booted (web/site/run.html), its server, and `run(code)`."""

    def __init__(self, page: Any, base_url: str, app_dir: Path) -> None:
        super().__init__(page)  # its console lines, for the reports, and its PageRunner
        self.base_url = base_url
        self.app_dir = app_dir

    def run(self, code: str, timeout_s: float = 300.0) -> Any:
        """Run Python in the page (top-level await allowed); the value of the last expression, with its types
        (None, bool, int, float, str, bytes, and lists, tuples, dicts, sets, frozensets of them). Raises
        InPageError with the page's traceback, PageTimeoutError after `timeout_s` (the page is closed then),
        PageFatalError when Pyodide dies, PageValueError for a value of another type."""
        return super().run(textwrap.dedent(code), timeout_s=timeout_s)


# Makes the served app folder the page's working folder: files your tests read or import are where they are.
# Each file is fetched by its quoted URL and checked against its size and sha256 on disk: a name with "#", "?"
# or "%" must not fetch another file, nor a server's error page arrive as its content.
_ENTER_APP = """
import hashlib, os, sys
from pyodide.http import pyfetch

async def _py_runner_fetch_app(files):
    problems = []
    for rel, url, size, sha256 in files:
        response = await pyfetch(url)
        if not response.ok:
            problems.append(f"{rel}: HTTP {response.status}")
            continue
        data = await response.bytes()
        if len(data) != size or hashlib.sha256(data).hexdigest() != sha256:
            problems.append(f"{rel}: {len(data)} bytes arrived that differ from its {size} bytes on disk")
            continue
        os.makedirs(os.path.dirname("/home/pyodide/app/" + rel) or ".", exist_ok=True)
        with open("/home/pyodide/app/" + rel, "wb") as f:
            f.write(data)
    os.chdir("/home/pyodide/app")
    if "/home/pyodide/app" not in sys.path:
        sys.path.insert(0, "/home/pyodide/app")
    return problems
"""


def _app_files(app_dir: Path) -> list[tuple[str, str, int, str]]:
    """(path relative to the app, its URL on the server, size, sha256) of each file the page gets."""
    files = []
    for path in sorted(app_dir.rglob("*")):
        rel_parts = path.relative_to(app_dir).parts
        if not path.is_file() or "__pycache__" in rel_parts or any(s.startswith(".") for s in rel_parts):
            continue
        data = path.read_bytes()
        rel = "/".join(rel_parts)
        files.append((rel, "/files/" + quote(rel, safe="/"), len(data), hashlib.sha256(data).hexdigest()))
    return files


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("py_runner", "py_runner: in-browser Python apps")
    group.addoption(
        "--py-runner-no-isolation",
        action="store_true",
        help="serve pages without COOP/COEP (no SharedArrayBuffer: py_runner uses its single-thread build)",
    )
    parser.addini("py_runner_app", "folder served to py_runner pages (default: the test file's folder)")
    # pytest-playwright defines --headed and --browser when it is active; ours are for py_runner's own
    # launcher and spelled as it spells them.
    try:
        group.addoption("--headed", action="store_true", help="show the browser")
    except ValueError:
        pass
    try:
        from .browser.browsers import BROWSERS, DEFAULT_BROWSER

        group.addoption(
            "--browser",
            choices=BROWSERS,
            default=None,
            help=f"the browser py_runner launches (default {DEFAULT_BROWSER}; also PY_RUNNER_BROWSER)",
        )
    except ValueError:
        pass


def pytest_configure(config: pytest.Config) -> None:
    from .browser.browsers import select_browser

    chosen = config.getoption("browser", None)
    if isinstance(chosen, str):  # ours (pytest-playwright's is a list, and its fixtures launch the browser)
        select_browser(chosen)  # for every launcher in this process and the processes it starts
    config.addinivalue_line(
        "markers", "py_runner(app=None, isolate=True): the app folder served to py_runner_page, and isolation"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """What the page printed joins the test's report as pytest's captured output does ("Captured page output
    call"): shown when the test fails, or with -rP."""
    try:
        return (yield)
    finally:
        page = getattr(item, "funcargs", {}).get("py_runner_page")
        if isinstance(page, PyRunnerPage) and page.output:
            item.add_report_section("call", "page output", page.output)


def _marker_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker("py_runner")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
def py_runner_app_dir(request: pytest.FixtureRequest) -> Path:
    """The folder served at /files/: the marker's `app`, else the ini option, else the test file's folder."""
    option = _marker_options(request).get("app") or request.config.getini("py_runner_app")
    if option:
        path = Path(option)
        return path if path.is_absolute() else (request.config.rootpath / path)
    return Path(request.path).parent


@pytest.fixture
def py_runner_server(request: pytest.FixtureRequest, py_runner_app_dir: Path) -> Iterator[Any]:
    from .server import base_url_of, start_server, stop_server

    isolate = _marker_options(request).get("isolate", not request.config.getoption("py_runner_no_isolation"))
    server, base_url = start_server("127.0.0.1", 0, files_dir=py_runner_app_dir, isolate=bool(isolate))
    server.base_url = base_url_of(server)
    try:
        yield server
    finally:
        stop_server(server)


# One browser per test module, not per session: Playwright's sync API keeps an event loop running in this
# thread while its browser is open, and a later module's own asyncio.run() would find it there.
@pytest.fixture(scope="module")
def _py_runner_browser(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.config.pluginmanager.has_plugin("playwright"):  # pytest-playwright: its browser, its options
        yield request.getfixturevalue("browser")
        return
    from .browser.browsers import missing, selected_browser
    from .browser.headless import open_browser
    from .skips import skip_or_fail

    skip_or_fail(missing(selected_browser()))  # a failure under PY_RUNNER_REQUIRE_E2E=1
    with open_browser(headless=not request.config.getoption("headed", False)) as browser:
        yield browser


@pytest.fixture
def py_runner_page(
    _py_runner_browser: Any, py_runner_server: Any, py_runner_app_dir: Path
) -> Iterator[PyRunnerPage]:
    context = _py_runner_browser.new_context()  # its own storage: the model cache starts empty in each test
    try:
        runner_page = PyRunnerPage(context.new_page(), py_runner_server.base_url, py_runner_app_dir)
        runner_page.boot(py_runner_server.base_url, timeout_s=180)  # PageError when the boot failed
        files = _app_files(py_runner_app_dir)
        problems = runner_page.run(_ENTER_APP + f"\nawait _py_runner_fetch_app({json.dumps(files)})\n")
        if problems:
            listed = "\n".join(problems)
            raise AppFilesError(f"{len(problems)} of the app's files did not arrive intact:\n{listed}")
        yield runner_page
    finally:
        context.close()


@pytest.fixture
def py_runner_model_url() -> str:
    """The default model (fetched with pip and verified on first use), as the page's server serves it."""
    from .build.assets import default_model

    return f"/models/{default_model().name}"


@pytest.fixture
def py_runner_tiny_model_url() -> str:
    """A tiny random-weight llama model (F16, a real vocabulary), made on first use and cached."""
    from .build.assets import llama_cpp_source
    from .fixtures import fixture_model, llama_cpp_source_dir

    if not (llama_cpp_source_dir() / "models").is_dir():
        llama_cpp_source()  # its real vocabularies: the pinned llama.cpp source (pip download), once
    return f"/models/{fixture_model('tiny', 'f16').name}"


# ---- run_in_page ------------------------------------------------------------------------------------------


def run_in_page(function: Callable[..., Any] | None = None, /, *, timeout_s: float = 300.0) -> Any:
    """Run a test's body in the page (see the module's docstring). Use bare (`@run_in_page`) or with
    arguments (`@run_in_page(timeout_s=600)`); the test may be `def` or `async def`."""
    if function is None:
        return functools.partial(run_in_page, timeout_s=timeout_s)
    signature = inspect.signature(function)
    params = list(signature.parameters)
    if not params:
        raise TypeError(f"{function.__name__}: its first parameter receives the page (py_runner_page)")
    source = _function_source(function)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        page = bound.arguments[params[0]]
        values = {name: bound.arguments[name] for name in params[1:]}
        call = f"{function.__name__}(None, **_py_runner_args)"
        awaited = "await " if inspect.iscoroutinefunction(function) else ""
        code = "\n".join(
            [
                "from __future__ import annotations",  # the test's annotations name host-side types
                "import json as _json",
                source,
                f"_py_runner_args = _json.loads({json.dumps(json.dumps(values))})",
                f"_py_runner_result = {awaited}{call}",
                "_py_runner_result",
            ]
        )
        return page.run(code, timeout_s=timeout_s)

    wrapper.__signature__ = signature  # type: ignore[attr-defined]  (pytest injects the same fixtures)
    return wrapper


def _function_source(function: Callable[..., Any]) -> str:
    """The function's own source without its decorators, so that it is defined in the page as written."""
    source = textwrap.dedent(inspect.getsource(function))
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    return "\n".join(source.splitlines()[node.lineno - 1 :])  # lineno is the `def` line, after decorators
