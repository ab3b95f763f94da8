"""Unit tests: CPython only (the engine is the fake transport, or pr_native where a test says so)."""

from __future__ import annotations

import fuzz_figures


def pytest_terminal_summary(terminalreporter) -> None:
    """The fuzz suite's figures (inputs tried, worst memory ratios), when it ran."""
    if fuzz_figures.COUNTS:
        terminalreporter.section("py_runner fuzz figures")
        for line in fuzz_figures.lines():
            terminalreporter.write_line(line)
