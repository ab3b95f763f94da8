"""Run a Python program in Pyodide inside a headless browser (Playwright sync API), CPython side.

The page is ``web/site/run.html`` served by ``py_runner.host.server``. `run_in_browser` runs a whole script
there (``py-runner run``), its output and exit status reported through two functions exposed to the page;
`harness_page` / `HarnessPage` keep the page open and run code in it step by step (benches, perplexity,
tests) through `in_page.PageRunner`, as the pytest plugin's page does.
"""

from __future__ import annotations

import collections
import contextlib
import json
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from . import browsers
from .in_page import PageError, PageRunner

_POLL_MS = 50
# A request the page cancelled itself (a load the user aborted, a download cut short on purpose), as each
# engine words it: not a failure worth a line.
_ABORTED_REQUEST = {"net::ERR_ABORTED", "NS_BINDING_ABORTED"}


# How many times a page is opened when Pyodide itself fails to start in it, before any other code ran: a
# fault of the browser's WebAssembly engine (WebKitGTK's JavaScriptCore now and then traps inside Pyodide's
# start with "Out of bounds memory access"), which a fresh page does not repeat. A failure of py_runner's or
# the program's own code is never retried.
_PYODIDE_STARTS = 2
_PYODIDE_START_FAILED_JS = "() => document.body?.dataset.pyRunnerBootFailed === 'pyodide-start'"


def _pyodide_failed_to_start(page, on_stderr: Callable[[str], None]) -> bool:
    """Whether the page's run ended because Pyodide did not start (web/site/harness.js marks it); if so, says
    that the page is opened once more."""
    if not page.evaluate(_PYODIDE_START_FAILED_JS):
        return False
    on_stderr(
        "py_runner: Pyodide failed to start in the page, before any other code ran (a fault inside the "
        "browser's WebAssembly engine); opening the page once more\n"
    )
    return True


class HeadlessError(RuntimeError):
    """The browser run could not start or finish (no browser, crash, timeout)."""


class HeadlessTimeout(HeadlessError):
    pass


def launch_browser(playwright, *, headless: bool = True):
    """The browser chosen for this process (``browsers.selected_browser()``), headless by default."""
    try:
        return browsers.launch(playwright, headless=headless)
    except browsers.BrowserError as exc:
        raise HeadlessError(str(exc)) from exc


@contextlib.contextmanager
def open_browser(*, headless: bool = True) -> Iterator[Any]:
    """The chosen browser, closed at the end: a Playwright Browser (chromium, firefox) or a WebKitBrowser,
    which offers the same `new_page()` / `new_context()` for what the harness does."""
    if browsers.selected_browser() == "webkit":
        reason = browsers.missing("webkit")  # checked here: errors of the caller's own code pass unchanged
        if reason:
            raise HeadlessError(reason)
        with browsers.launch_webkit() as browser:
            yield browser
        return
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch_browser(pw, headless=headless)
        try:
            yield browser
        finally:
            browser.close()


def harness_url(server_base_url: str, script_url_path: str, argv: list[str]) -> str:
    query = f"script={quote(script_url_path, safe='/')}&argv={quote(json.dumps(list(argv)), safe='')}"
    return f"{server_base_url.rstrip('/')}/web/site/run.html?{query}"


def _write(stream) -> Callable[[str], None]:
    def write(text: str) -> None:
        stream.write(text)
        stream.flush()

    return write


def run_in_browser(
    script_url_path: str,
    argv: list[str] | tuple[str, ...] = (),
    *,
    server_base_url: str,
    timeout_s: float = 600.0,
    on_stdout: Callable[[str], None] | None = None,
    on_stderr: Callable[[str], None] | None = None,
) -> int:
    """Run the program at ``script_url_path`` (on the server) in Pyodide; return its exit status.

    ``on_stdout`` / ``on_stderr`` receive text chunks as the program writes them (default: this
    process's stdout/stderr). Page errors and console errors go to ``on_stderr``. Raises
    ``HeadlessError`` (``HeadlessTimeout`` after ``timeout_s``) when the run cannot complete.
    """
    on_stdout = on_stdout or _write(sys.stdout)
    on_stderr = on_stderr or _write(sys.stderr)
    if browsers.selected_browser() == "webkit":
        return _run_in_webkit(
            harness_url(server_base_url, script_url_path, list(argv)), timeout_s, on_stdout, on_stderr
        )
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise HeadlessError("playwright is not installed (py_runner depends on it)") from exc

    url = harness_url(server_base_url, script_url_path, list(argv))
    state: dict[str, object] = {"exit": None, "crashed": False}

    def on_output(stream: str, text: str) -> None:
        (on_stderr if stream == "stderr" else on_stdout)(text)

    def on_exit(code) -> None:
        try:
            state["exit"] = int(code)
        except (TypeError, ValueError):
            state["exit"] = 1

    def on_console(msg) -> None:
        if msg.type == "error":
            on_stderr(f"[browser console] {msg.text}\n")

    def on_page_error(err) -> None:
        on_stderr(f"[browser page error] {err}\n")

    def on_crash(_page) -> None:
        state["crashed"] = True

    def on_request_failed(request) -> None:
        # Real failures (refused, reset, blocked...) are reported; the page's own cancellations are not.
        if request.failure not in _ABORTED_REQUEST:
            on_stderr(f"[browser] request failed: {request.url} ({request.failure})\n")

    with sync_playwright() as pw:
        try:
            browser = launch_browser(pw)
        except PlaywrightError as exc:
            name = browsers.selected_browser()
            raise HeadlessError(
                f"cannot launch {name} ({browsers.executable(name)}): {exc.message.splitlines()[0]}"
            ) from exc
        try:
            page = browser.new_page()
            page.expose_function("__pyRunnerOutput", on_output)
            page.expose_function("__pyRunnerExit", on_exit)
            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            page.on("crash", on_crash)
            page.on("requestfailed", on_request_failed)
            deadline = time.monotonic() + timeout_s
            for start in range(_PYODIDE_STARTS):
                state["exit"] = None
                try:
                    page.goto(url, wait_until="load", timeout=max(1.0, timeout_s) * 1000)
                except PlaywrightError as exc:
                    raise HeadlessError(f"cannot open {url}: {exc.message.splitlines()[0]}") from exc
                while state["exit"] is None:
                    if state["crashed"]:
                        raise HeadlessError("the browser page crashed (out of memory?)")
                    if page.is_closed():
                        raise HeadlessError("the browser page closed before the program finished")
                    if time.monotonic() > deadline:
                        raise HeadlessTimeout(f"the program did not finish within {timeout_s:g} s")
                    try:
                        # Waiting inside Playwright dispatches the exposed-function calls.
                        page.wait_for_timeout(_POLL_MS)
                    except PlaywrightError as exc:
                        if state["exit"] is not None:
                            break
                        raise HeadlessError(f"browser failure: {exc.message.splitlines()[0]}") from exc
                if start + 1 == _PYODIDE_STARTS or not _pyodide_failed_to_start(page, on_stderr):
                    break
            return int(state["exit"])  # type: ignore[arg-type]
        finally:
            try:
                browser.close()
            except PlaywrightError:
                pass


# WebDriver cannot expose a function to the page: the output is read back from the page's own <pre>, whose
# spans (class "stdout" / "stderr") web/site/harness.js appends as the program writes, from the first one
# not read.
_READ_OUTPUT_JS = """(from) => {
    const spans = document.querySelectorAll('#py-runner-output > span');
    const out = [];
    for (let i = from; i < spans.length; i++) out.push([spans[i].className, spans[i].textContent]);
    return {out, exit: document.body.dataset.pyRunnerExit ?? null};
}"""


def _run_in_webkit(
    url: str, timeout_s: float, on_stdout: Callable[[str], None], on_stderr: Callable[[str], None]
) -> int:
    from .webkit import WebKitError

    deadline = time.monotonic() + timeout_s
    with open_browser() as browser:
        page = browser.new_page()
        for start in range(_PYODIDE_STARTS):
            page.goto(url)
            seen = 0
            while True:
                try:
                    state = page.evaluate(_READ_OUTPUT_JS, seen)
                except WebKitError as exc:
                    raise HeadlessError(f"browser failure: {exc.message.splitlines()[0]}") from exc
                for stream, text in state["out"]:
                    (on_stderr if stream == "stderr" else on_stdout)(text)
                seen += len(state["out"])
                if state["exit"] is not None:
                    break
                if time.monotonic() > deadline:
                    raise HeadlessTimeout(f"the program did not finish within {timeout_s:g} s")
                time.sleep(_POLL_MS / 1000)
            if start + 1 == _PYODIDE_STARTS or not _pyodide_failed_to_start(page, on_stderr):
                return int(state["exit"])
        raise AssertionError("unreachable")


@contextlib.contextmanager
def harness_page(server_base_url: str, *, timeout_s: float = 120.0) -> Iterator[HarnessPage]:
    """A headless page with Pyodide and py_runner ready (web/site/run.html without a script), for driving
    Python in the browser step by step from CPython (tests, benchmarks)."""
    with open_browser() as browser:
        harness = HarnessPage(browser.new_page())  # before the page opens: its boot lines are kept too
        harness.boot(server_base_url, timeout_s=timeout_s)
        yield harness


class HarnessPage:
    """A harness page (web/site/run.html): `boot()` opens it and waits for Pyodide and py_runner; `run(code)`
    runs Python there (top-level await allowed) and returns its last expression's value with its types,
    through `in_page.PageRunner`, the one implementation the pytest plugin's page uses too (its errors:
    `PageError` and its kinds).

    The page's last console lines (its workers' included) are kept, so that a run that fails because the
    page itself died (a renderer crash) says what the page was doing instead of only "Target crashed"."""

    CONSOLE_LINES_KEPT = 40

    def __init__(self, page) -> None:
        self.page = page
        self.console: collections.deque[str] = collections.deque(maxlen=self.CONSOLE_LINES_KEPT)
        page.on("console", lambda msg: self.console.append(f"[{msg.type}] {msg.text}"))
        page.on("pageerror", lambda err: self.console.append(f"[pageerror] {err}"))
        self._runner = PageRunner(page, recent_console=lambda: "\n".join(self.console))

    def boot(self, server_base_url: str, *, timeout_s: float = 120.0) -> None:
        """Open web/site/run.html and wait until Pyodide and py_runner are ready; a page whose boot failed
        says so (status "error", PageError with its output) instead of being waited for until `timeout_s`."""
        for start in range(_PYODIDE_STARTS):
            self.page.goto(f"{server_base_url.rstrip('/')}/web/site/run.html")
            self.page.wait_for_function(
                "window.__pyRunnerReady === true || document.body?.dataset.pyRunnerStatus === 'error'",
                timeout=timeout_s * 1000,
            )
            # functions, not expressions: a WebKitPage evaluates only functions
            if self.page.evaluate("() => window.__pyRunnerReady === true"):
                return
            output = self.page.evaluate("() => document.getElementById('py-runner-output').textContent")
            if start + 1 == _PYODIDE_STARTS or not _pyodide_failed_to_start(self.page, sys.stderr.write):
                raise PageError(f"the page could not boot Pyodide and py_runner:\n{output}")
            sys.stderr.write(output)

    @property
    def engine(self) -> str:
        """The engine the page runs in, read from its user agent ("chromium", "firefox", "webkit"): what a
        report names is the browser that ran, not the one asked for."""
        return browsers.engine_of(self.page.evaluate("() => navigator.userAgent"))

    @property
    def output(self) -> str:
        """What Python in the page has printed so far through `run` (stdout and stderr, in order)."""
        return self._runner.output_text()

    def run(self, code: str, timeout_s: float = 300.0) -> Any:
        """The value of the code's last expression (see `in_page.PageRunner.run`): InPageError with the page's
        traceback, PageTimeoutError after `timeout_s` (the page is closed then), PageFatalError when Pyodide
        dies, PageValueError for a value with no faithful form, PageError when the browser failed (its last
        console lines in the message)."""
        return self._runner.run(code, timeout_s=timeout_s)
