"""Each browser pass runs the browser it names: the page's own user agent is the selected browser's engine
(`--browser` / PY_RUNNER_BROWSER), both for pages this process opens and for the `py-runner` subprocesses most
end-to-end tests start. Without this, a `--browser firefox` that got lost on its way would re-run Chromium
unnoticed. (The WebKit smoke suite checks its own pages in test_webkit.py.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from py_runner.host.browser import browsers

pytestmark = pytest.mark.e2e


@pytest.fixture
def asked_for(request: pytest.FixtureRequest) -> str:
    """The browser this pass was asked for on the command line, else by the environment (the default
    otherwise), read apart from the plugin's own propagation of it."""
    option = request.config.getoption("browser", None)
    if isinstance(option, str):
        return option
    return os.environ.get(browsers.BROWSER_ENV) or browsers.DEFAULT_BROWSER


def test_pages_of_this_process_run_the_selected_browser(asked_for: str, pyodide_page) -> None:
    assert browsers.selected_browser() == asked_for
    assert browsers.engine_of(pyodide_page.run("import js\njs.navigator.userAgent")) == asked_for


def test_py_runner_subprocesses_run_the_selected_browser(asked_for: str, tmp_path: Path, run_cli) -> None:
    (tmp_path / "agent.py").write_text("import js\nprint(js.navigator.userAgent)\n", encoding="utf-8")
    proc = run_cli(["run", "--script", "agent.py"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert browsers.engine_of(proc.stdout.strip().splitlines()[-1]) == asked_for, proc.stdout
