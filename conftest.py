"""The suite's skip policy (tests/ and examples/): under PY_RUNNER_REQUIRE_E2E=1 (CI) a run fails when a test
skipped that tests/allowed_skips.txt does not list, so that nothing goes untested without a written reason.

An environment skip (browser, build, model, package missing) already fails there (py_runner/host/skips.py);
this catches the rest: a new `pytest.skip`, a skip mark, a skip inside a library. Deselection (`-m`, `-k`)
is not a skip and is not counted.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from py_runner.host.skips import REQUIRE_ENV, required

ALLOWLIST = Path(__file__).parent / "tests" / "allowed_skips.txt"


class AllowlistError(Exception):
    """tests/allowed_skips.txt has a line that is not `test id pattern | reason`."""


def read_allowlist(path: Path = ALLOWLIST) -> list[tuple[str, str]]:
    """(test id pattern, why it may skip) for each entry; '#' starts a comment line."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pattern, _, why = (part.strip() for part in line.partition("|"))
        if not pattern or not why:
            raise AllowlistError(f"{path}:{number}: want 'test id pattern | why it may skip', got {line!r}")
        entries.append((pattern, why))
    return entries


_skipped: list[tuple[str, str]] = []  # (test id, reason) of every skip this session


def _reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr  # (path, line, "Skipped: reason") for a skip
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):  # an xfail is reported as skipped too
        _skipped.append((report.nodeid, _reason(report)))


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.skipped:  # a whole module skipped at import (pytest.skip(allow_module_level=True))
        _skipped.append((report.nodeid, _reason(report)))


def _unlisted() -> list[tuple[str, str]]:
    patterns = [pattern for pattern, _ in read_allowlist()]
    return [(n, r) for n, r in _skipped if not any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if required() and _unlisted() and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter) -> None:
    if not required():
        return
    unlisted = _unlisted()
    if unlisted:
        terminalreporter.section(f"skips not in {ALLOWLIST.name} ({REQUIRE_ENV}=1: the run fails)", red=True)
        for nodeid, reason in unlisted:
            terminalreporter.write_line(f"{nodeid}: {reason}")
