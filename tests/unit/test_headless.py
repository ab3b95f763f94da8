"""The headless harness's own failure reports, against a stand-in page (no browser needed)."""

from __future__ import annotations

import pytest

from py_runner.host.skips import import_or_skip

import_or_skip("playwright")
from playwright.sync_api import Error as PlaywrightError  # noqa: E402

from py_runner.host.browser.headless import HarnessPage  # noqa: E402
from py_runner.host.browser.in_page import PageError  # noqa: E402


class _Message:
    def __init__(self, kind: str, text: str) -> None:
        self.type, self.text = kind, text


class _PageThatCrashes:
    """Logs some console lines, then its renderer dies in the middle of `evaluate`, as Chromium's does."""

    def __init__(self, lines: int) -> None:
        self.handlers: dict[str, list] = {}
        self.lines = lines

    def on(self, event: str, handler) -> None:
        self.handlers.setdefault(event, []).append(handler)

    def set_default_timeout(self, _ms: float) -> None:
        pass

    def evaluate(self, _script: str, _arg=None):
        for i in range(self.lines):
            for handler in self.handlers["console"]:
                handler(_Message("log", f"line {i}"))
        raise PlaywrightError("Page.evaluate: Target crashed")


def test_a_crash_is_reported_with_the_pages_last_console_lines() -> None:
    page = HarnessPage(_PageThatCrashes(lines=HarnessPage.CONSOLE_LINES_KEPT + 5))
    with pytest.raises(PageError, match="crashed") as caught:
        page.run("1")
    report = str(caught.value)
    assert f"[log] line {HarnessPage.CONSOLE_LINES_KEPT + 4}" in report  # the newest line is there
    assert "[log] line 4\n" not in report  # the oldest ones are dropped: the report stays short
    assert report.count("[log] line") == HarnessPage.CONSOLE_LINES_KEPT


def test_a_page_whose_browser_failed_runs_nothing_more() -> None:
    """HarnessPage runs code through in_page.PageRunner, as the pytest plugin's page does: after a browser
    failure the page says why it can no longer run code instead of trying again."""
    harness = HarnessPage(_PageThatCrashes(lines=1))
    with pytest.raises(PageError, match="the browser failed: Page.evaluate: Target crashed"):
        harness.run("1")
    with pytest.raises(PageError, match="can no longer run code: the browser failed"):
        harness.run("2")
