"""End-to-end tests: a real browser, real Pyodide, the real WASM builds. Nothing here mocks the engine.

The browser is `--browser chromium|firefox` (py_runner's pytest plugin; default chromium); the WebKit smoke
suite (test_webkit.py) drives WebKitGTK whatever the option says. Skipped when the browser, Playwright, the
Pyodide assets or the builds are missing, unless PY_RUNNER_REQUIRE_E2E=1 (CI), which turns those skips into
failures (py_runner/host/skips.py, the one helper every environment skip goes through).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from py_runner.host.browser import browsers
from py_runner.host.build.paths import MICROPIP_VERSION, REPO_ROOT, build_dir, pyodide_dir, wheels_dir
from py_runner.host.skips import skip_or_fail


def _missing() -> str | None:
    reason = browsers.missing(browsers.selected_browser())
    if reason:
        return reason
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (py_runner depends on it: pip install py_runner)"
    if not (pyodide_dir() / "pyodide.mjs").is_file():
        return f"Pyodide assets missing in {pyodide_dir()} (run scripts/fetch_assets.sh)"
    if not list(wheels_dir().glob(f"micropip-{MICROPIP_VERSION}-*.whl")):
        return f"micropip wheel missing in {wheels_dir()} (run scripts/fetch_assets.sh)"
    return None


def _missing_builds() -> str | None:
    for part in (
        "st/pr_glue.wasm",
        "mt/pr_glue.wasm",
        "st-relaxed/pr_glue.wasm",
        "mt-relaxed/pr_glue.wasm",
        "native/pr_native",
    ):
        if not (build_dir() / part).is_file():
            return f"{build_dir() / part} is missing (run build_wasm.sh)"
    return None


@pytest.fixture(autouse=True)
def _require_browser() -> None:
    skip_or_fail(_missing())


@pytest.fixture
def require_builds() -> None:
    skip_or_fail(_missing_builds())


@pytest.fixture
def require_webkit() -> None:
    """WebKitGTK, its WebDriver, Selenium and a way to a display (the WebKit smoke suite runs whatever
    --browser says)."""
    skip_or_fail(browsers.missing("webkit"))


def readme_block(section: str, language: str) -> str:
    """The first `language` code block of README's section titled `section`, as a user copies it."""
    import re

    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    text = readme.split(f"## {section}", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"```{language}\n(.*?)```", text, re.S).group(1)


def _run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """`py-runner ARGS` in a subprocess, as a user runs it."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "py_runner.host.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture
def run_cli():
    return _run_cli


@pytest.fixture
def pyodide_page(tmp_path: Path):
    """A page with Pyodide + py_runner (`.run(code)`), served by an in-process server whose per-path byte
    counts (`.server.bytes_sent`) the test can read; `tmp_path` is served at /files/."""
    from py_runner.host.browser.headless import harness_page
    from py_runner.host.server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, files_dir=tmp_path)
    try:
        with harness_page(base_url) as page:
            page.server, page.base_url = server, base_url
            yield page
    finally:
        stop_server(server)


@contextlib.contextmanager
def _browser_and_server(**server_options) -> Iterator[tuple[Any, Any, str]]:
    """(browser, server, base_url): the browser and a dev server, both closed at the end."""
    from playwright.sync_api import sync_playwright

    from py_runner.host.browser.headless import launch_browser
    from py_runner.host.server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, **server_options)
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            try:
                yield browser, server, base_url
            finally:
                browser.close()
    finally:
        stop_server(server)


@pytest.fixture
def browser_and_server():
    """(browser, server, base_url): the browser and a dev server (the test opens its own pages, contexts)."""
    with _browser_and_server() as handles:
        yield handles


@pytest.fixture
def open_browser_and_server():
    """`with open_browser_and_server(**server_options) as (browser, server, base_url)`: for tests that need
    server options of their own (extra files, a files folder)."""
    return _browser_and_server


@pytest.fixture
def default_model_browser():
    """(browser, base_url, model): the browser and a dev server that offers the default real model first."""
    from py_runner.host.build.assets import default_model

    model = default_model()
    with _browser_and_server(default_model=model) as (browser, _, base_url):
        yield browser, base_url, model


def set_number(page, selector: str, value: int | float | str) -> None:
    """A number field as a user leaves it. Not `page.fill`: Playwright 1.64's Firefox (BiDi) cannot select a
    number input's text, so fill appends ("64" + "16" = "6416")."""
    page.locator(selector).evaluate(
        "(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value)
    )
    assert page.locator(selector).input_value() == str(value)
