"""The headless harness end to end: `py-runner run --script` in real Chromium + Pyodide.

Skipped when Chromium, Playwright or the Pyodide assets are missing, unless PY_RUNNER_REQUIRE_E2E=1
(CI), which turns those skips into failures.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from py_runner import __version__
from py_runner._headless import chromium_executable
from py_runner._paths import MICROPIP_VERSION, REPO_ROOT, pyodide_dir, wheels_dir

pytestmark = pytest.mark.e2e


def _missing() -> str | None:
    exe = chromium_executable()
    if not Path(exe).exists():
        return f"Chromium not found at {exe} (set PY_RUNNER_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install 'py_runner[host]')"
    if not (pyodide_dir() / "pyodide.mjs").is_file():
        return f"Pyodide assets missing in {pyodide_dir()} (run scripts/fetch_assets.sh)"
    if not list(wheels_dir().glob(f"micropip-{MICROPIP_VERSION}-*.whl")):
        return f"micropip wheel missing in {wheels_dir()} (run scripts/fetch_assets.sh)"
    return None


@pytest.fixture(autouse=True)
def _require_browser() -> None:
    reason = _missing()
    if reason is None:
        return
    if os.environ.get("PY_RUNNER_REQUIRE_E2E") == "1":
        pytest.fail(f"PY_RUNNER_REQUIRE_E2E=1 but: {reason}")
    pytest.skip(reason)


def run_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "py_runner._cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_run_script_output_argv_await_exit_status(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """\
            import asyncio
            import sys

            import js
            import py_runner

            print("argv:", sys.argv[1:])
            await asyncio.sleep(0.01)
            print("after await")
            print("version:", py_runner.__version__)
            print("isolated:", bool(js.crossOriginIsolated))
            print("unicode: é ✓")
            print("to stderr", file=sys.stderr)
            sys.exit(3)
            """
        ),
        encoding="utf-8",
    )
    proc = run_cli(["run", "--script", "app.py", "one", "two words", "--flag"], cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "argv: ['one', 'two words', '--flag']",
        "after await",
        f"version: {__version__}",
        "isolated: True",
        "unicode: é ✓",
    ], proc.stdout + proc.stderr
    assert "to stderr" in proc.stderr


def test_run_script_uncaught_exception_exits_1_with_traceback(tmp_path: Path) -> None:
    sub = tmp_path / "pkg"
    sub.mkdir()
    (sub / "boom.py").write_text(
        "print('before')\n\ndef f():\n    raise ValueError('boom here')\n\nf()\n", encoding="utf-8"
    )
    proc = run_cli(["run", "--script", "pkg/boom.py"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["before"]
    assert "Traceback (most recent call last):" in proc.stderr
    assert "ValueError: boom here" in proc.stderr
    assert "raise ValueError('boom here')" in proc.stderr  # source lines are shown
    assert "_py_runner_run" not in proc.stderr  # the harness's own frame is hidden


def test_run_script_timeout_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text("import asyncio\nprint('started')\nawait asyncio.sleep(600)\n")
    proc = run_cli(["run", "--timeout", "20", "--script", "slow.py"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 124, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["started"]
    assert proc.stderr.splitlines()[-1] == "py-runner: error: the program did not finish within 20 s"
