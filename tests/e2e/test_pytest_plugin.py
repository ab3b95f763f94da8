"""The pytest plugin's fault suite in a real browser (its CPython half: tests/unit/test_plugin_faults.py):
`run()` keeps its timeout, whether the page awaits forever or Python holds its thread; Pyodide's fatal error
ends a run at once; values keep their types; files with awkward names arrive byte for byte, and a file that
cannot is named; what the page prints is shown in a failed test's report."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from py_runner.host.build.paths import REPO_ROOT, build_dir, cache_root
from py_runner.host.pytest_plugin import PageError, PageFatalError, PageTimeoutError, PageValueError

pytestmark = pytest.mark.e2e
pytest_plugins = ["pytester"]

AWKWARD_FILES = {
    "notes#1.txt": b"hash",
    "what?.txt": b"question",
    "a%41.txt": b"percent",
    "aA.txt": b"plain",
    "with space.txt": b"space",
    "\u00fcn\u00efcode \u2713.txt": "unicode \u2713".encode(),
    "sub dir/x&y=1.bin": bytes(range(256)),
}

_CACHE_ROOT = cache_root()  # before pytester moves HOME

# Python's JSON encoder recursing through 100,000 nested lists overflows the JS stack under Pyodide's
# interpreter: "Pyodide has suffered a fatal error" (as a tools schema nested 3,000 deep did).
FATAL_CODE = "import json\nx = []\nfor _ in range(100_000):\n    x = [x]\njson.dumps(x)\n"


@pytest.fixture
def py_runner_app_dir(tmp_path: Path) -> Path:
    """The plugin's own fixture, overridden: the app is a folder of awkwardly named files."""
    for name, data in AWKWARD_FILES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.one_browser  # what crosses into the page: the same Python in every browser
def test_files_with_awkward_names_arrive_byte_for_byte(py_runner_page) -> None:
    names = sorted(AWKWARD_FILES)
    assert py_runner_page.run(f"{{n: open(n, 'rb').read() for n in {names!r}}}") == AWKWARD_FILES


@pytest.mark.one_browser  # what crosses into the page: the same Python in every browser
def test_values_arrive_with_their_types(py_runner_page) -> None:
    value = py_runner_page.run("({1, 2}, frozenset({'a'}), (1, [2, (3,)]), {(1, 2): b'\\x00\\xff'}, 2**80)")
    assert value == ({1, 2}, frozenset({"a"}), (1, [2, (3,)]), {(1, 2): b"\x00\xff"}, 2**80)
    assert [type(v) for v in value] == [set, frozenset, tuple, dict, int]
    assert py_runner_page.run("import js\njs.eval('({a: [1, 2.5], b: null})')") == {"a": [1, 2.5], "b": None}
    with pytest.raises(PageValueError, match=r"builtins\.object cannot be returned"):
        py_runner_page.run("object()")
    assert py_runner_page.run("1 + 1") == 2  # a refused value leaves the page usable


def test_a_run_ends_at_its_timeout_with_the_pages_state(py_runner_page) -> None:
    started = time.monotonic()
    with pytest.raises(PageTimeoutError) as caught:
        py_runner_page.run("import asyncio\nprint('waiting')\nawait asyncio.sleep(40)", timeout_s=3)
    assert time.monotonic() - started < 20
    report = str(caught.value)
    assert "did not finish within 3 s; the page is still running it" in report
    assert report.endswith("Its output:\nwaiting")
    with pytest.raises(PageError, match="an earlier run did not finish within 3 s"):
        py_runner_page.run("1")  # the page, closed, refuses further runs


def test_a_run_ends_at_its_timeout_when_python_holds_the_pages_thread(py_runner_page) -> None:
    started = time.monotonic()
    with pytest.raises(PageTimeoutError, match="the page does not answer"):
        py_runner_page.run("while True:\n    pass", timeout_s=3)
    assert time.monotonic() - started < 20


def test_a_pyodide_fatal_error_ends_a_run_at_once(py_runner_page) -> None:
    started = time.monotonic()
    overflow = "(Maximum call stack size|too much recursion)"  # Chromium's words, Firefox's
    with pytest.raises(PageFatalError, match=f"Pyodide suffered a fatal error .*{overflow}"):
        py_runner_page.run(FATAL_CODE, timeout_s=60)
    assert time.monotonic() - started < 30
    with pytest.raises(PageError, match="fatal error"):
        py_runner_page.run("1")


@pytest.mark.one_browser  # what crosses into the page: the same Python in every browser
def test_a_failed_tests_report_shows_the_page_output_and_a_file_that_cannot_arrive_is_named(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The inner pytest loads the plugin of this checkout, and finds Pyodide and the builds where this one does
    # (pytester gives it a HOME of its own).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO_ROOT), os.getenv("PYTHONPATH")])))
    monkeypatch.setenv("PY_RUNNER_CACHE", str(_CACHE_ROOT))
    monkeypatch.setenv("PY_RUNNER_BUILD_DIR", str(build_dir()))
    pytester.makepyfile(
        test_app=textwrap.dedent(
            """
            import pytest

            def test_prints_then_fails(py_runner_page):
                py_runner_page.run("import sys\\nprint('from page')\\nprint('to stderr', file=sys.stderr)")
                assert False

            def test_prints_and_passes(py_runner_page):
                py_runner_page.run("print('a quiet page')")

            @pytest.mark.py_runner(app="broken")
            def test_an_app_with_a_file_the_server_refuses(py_runner_page):
                pass
            """
        )
    )
    (pytester.path / "broken").mkdir()
    (pytester.path / "broken" / "ok.txt").write_text("fine")
    (pytester.path / "broken" / "escape.txt").symlink_to(pytester.path / "test_app.py")  # out of the app
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=600)
    result.assert_outcomes(passed=1, failed=1, errors=1)
    report = result.stdout.str()
    section = report[report.index("Captured page output call") :]
    assert section.splitlines()[1:3] == ["from page", "to stderr"]
    assert "a quiet page" not in report  # as captured output: shown for failures only
    assert "AppFilesError: 1 of the app's files did not arrive intact:" in report
    assert "escape.txt: HTTP 404" in report
