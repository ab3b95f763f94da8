"""The pytest plugin's options, each in a pytest of its own (pytester) with a real browser: the
`py_runner_app` ini option and `@pytest.mark.py_runner(app=...)` choose the folder served; `isolate=False`
and `--py-runner-no-isolation` serve the page without COOP/COEP, so it is not cross-origin isolated and the
runner starts the st build (the tiny fixture model is loaded to see which), and a marker's `isolate=True`
wins over the command line. The inner tests only observe (into observed/*.json); the verdicts are here."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from py_runner.host.build.paths import REPO_ROOT, build_dir, cache_root

# Not in README's Firefox pass: the plugin's options; the plugin in Firefox: test_pytest_plugin.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]
pytest_plugins = ["pytester"]

_CACHE_ROOT = cache_root()  # before pytester moves HOME

INNER_TESTS = '''
import json
from pathlib import Path

import pytest

OUT = Path(__file__).parent / "observed"

OBSERVE = """
import js
from py_runner import LlamaRunner

runner = LlamaRunner()
await runner.load_model(URL, cache=False, ctx_size=256)
build = runner.build
runner.terminate()
(bool(js.crossOriginIsolated), build, open("which.txt").read())
"""


def observe(name, page, url):
    isolated, build, which = page.run(f"URL = {url!r}\\n" + OBSERVE)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps({"isolated": isolated, "build": build, "app": which}))


def test_plain(py_runner_page, py_runner_tiny_model_url):
    observe("plain", py_runner_page, py_runner_tiny_model_url)


@pytest.mark.py_runner(app="marker_app", isolate=False)
def test_marker_off(py_runner_page, py_runner_tiny_model_url):
    observe("marker_off", py_runner_page, py_runner_tiny_model_url)


@pytest.mark.py_runner(isolate=True)
def test_marker_on(py_runner_page, py_runner_tiny_model_url):
    observe("marker_on", py_runner_page, py_runner_tiny_model_url)
'''


@pytest.fixture
def inner(require_builds, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """`inner(*args)`: run INNER_TESTS in a pytest of their own; {test: what its page saw}."""
    builds = build_dir()  # before pytester moves HOME
    pytester: pytest.Pytester = request.getfixturevalue("pytester")
    # The inner pytest loads this checkout's plugin and finds Pyodide, the builds and the fixture model where
    # this one does (pytester gives it a HOME of its own).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.getenv("PYTHONPATH")])))
    monkeypatch.setenv("PY_RUNNER_CACHE", str(_CACHE_ROOT))
    monkeypatch.setenv("PY_RUNNER_BUILD_DIR", str(builds))
    pytester.makeini("[pytest]\npy_runner_app = ini_app\n")
    pytester.makepyfile(test_app=textwrap.dedent(INNER_TESTS))
    for app in ("ini_app", "marker_app"):
        (pytester.path / app).mkdir()
        (pytester.path / app / "which.txt").write_text(app)

    def run(*args: str) -> dict[str, dict]:
        observed = pytester.path / "observed"
        for old in observed.glob("*.json"):
            old.unlink()
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=600)
        result.assert_outcomes(passed=3)
        return {path.stem: json.loads(path.read_text()) for path in sorted(observed.glob("*.json"))}

    return run


def test_the_app_folder_and_isolation_follow_the_ini_option_the_marker_and_the_command_line(inner) -> None:
    isolated = {"isolated": True, "build": "mt"}
    not_isolated = {"isolated": False, "build": "st"}
    assert inner() == {
        "plain": isolated | {"app": "ini_app"},  # the ini option's folder, isolation on by default
        "marker_off": not_isolated | {"app": "marker_app"},  # the marker's folder and isolate=False
        "marker_on": isolated | {"app": "ini_app"},
    }
    assert inner("--py-runner-no-isolation") == {
        "plain": not_isolated | {"app": "ini_app"},
        "marker_off": not_isolated | {"app": "marker_app"},
        "marker_on": isolated | {"app": "ini_app"},  # the marker's isolate=True wins over the command line
    }
