"""Python run in a harness page (web/site/run.html) from CPython, on the host's clock: `PageRunner.run(code)`
is what `py_runner_page.run()` does.

- The deadline is kept by the host. The code is started from a timer in the page and the host then waits
  for its end with a bounded wait (Playwright's `wait_for_function`, WebDriver's script timeout), so that
  neither an `await` that never ends nor Python that never yields the page's thread (`while True: pass`)
  outlives it. A page that timed out is closed (its Python may still be running) and refuses further runs.
- Values arrive as they left (page_code.py beside this module encodes them, `decode` here rebuilds them):
  sets, frozensets, tuples, bytes, dicts with any hashable keys; a value with no faithful form raises
  `PageValueError` naming its type.
- What the page's Python prints (stdout and stderr, in order) is kept in `output` (the harness's
  `#py-runner-output`), for pytest's "Captured page output" and for the errors' reports.
- A Pyodide fatal error (web/site/harness.js sets `window.__pyRunnerFatal`) ends the wait at once: the code's
  own promise never settles after one.
"""

from __future__ import annotations

import base64
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_POLL_MS = 50
_READ_S = 5.0  # for reading a page that is idle; a busy one is given up on after this
_TAIL_LINES = 20  # lines of the page's output an error message quotes (all of it goes to pytest's report)
_PAGE_CODE = Path(__file__).with_name("page_code.py")


class PageError(AssertionError):
    """Code run in the page did not give a value (a failed assertion for pytest: the test fails)."""


class InPageError(PageError):
    """Python code run in the page raised; the message is the page's traceback."""


class PageTimeoutError(PageError, TimeoutError):
    """The code did not finish in time; the message says what the page was doing and what it printed."""


class PageFatalError(PageError):
    """Pyodide itself died in the page (a fatal error: a stack overflow in the interpreter, an abort)."""


class PageValueError(PageError, TypeError):
    """The code's value has no faithful form on the host; the message names its type."""


# Starts the run from a timer and returns at once: a run started inside this call would block it (and so the
# host's clock) for as long as its Python does not yield the page's thread.
_START_JS = """([id, code, filename, helperSource]) => {
    const runs = (window.__pyRunnerRuns ??= {});
    const run = (runs[id] = {done: false, result: null});
    setTimeout(async () => {
        let runCode = null;
        try {
            const pyodide = window.__pyRunnerPyodide;
            if (!window.__pyRunnerHostNs) {
                const ns = pyodide.globals.get("dict")();
                pyodide.runPython(helperSource, {globals: ns, filename: "<py_runner page_code>"});
                window.__pyRunnerHostNs = ns;
            }
            runCode = window.__pyRunnerHostNs.get("run_code");
            run.result = await runCode(code, filename);
        } catch (e) {
            run.result = JSON.stringify({error: String((e && (e.stack || e.message)) || e)});
        } finally {
            if (runCode) runCode.destroy();
            run.done = true;
        }
    }, 0);
    return true;
}"""

_ENDED_JS = "(id) => Boolean(window.__pyRunnerFatal) || Boolean(window.__pyRunnerRuns?.[id]?.done)"

_OUTPUT_JS = """(from) => Array.from(document.querySelectorAll('#py-runner-output > span'))
    .slice(from).map((span) => [span.className, span.textContent])"""

_FINISH_JS = f"""([id, from]) => {{
    const runs = window.__pyRunnerRuns ?? {{}};
    const run = runs[id];
    const state = {{result: run && run.done ? run.result : null, fatal: window.__pyRunnerFatal ?? null,
                   out: ({_OUTPUT_JS})(from)}};
    if (run && run.done) delete runs[id];
    return state;
}}"""

_STATE_JS = f"""(from) => ({{status: document.getElementById('py-runner-status')?.textContent ?? '',
                             out: ({_OUTPUT_JS})(from)}})"""


def decode(data: Any) -> Any:
    """The value page_code.encode encoded, with its types."""
    if not isinstance(data, dict):
        return data  # None, bool, int, float, str
    ((tag, body),) = data.items()
    if tag == "list":
        return [decode(v) for v in body]
    if tag == "tuple":
        return tuple(decode(v) for v in body)
    if tag == "set":
        return {decode(v) for v in body}
    if tag == "frozenset":
        return frozenset(decode(v) for v in body)
    if tag == "dict":
        return {decode(k): decode(v) for k, v in body}
    if tag == "bytes":
        return base64.b64decode(body)
    raise ValueError(f"unknown value tag from the page: {tag!r}")


def _poll(page: Any, function_js: str, arg: Any, timeout_s: float) -> Any:
    """`function_js(arg)`'s value once it is truthy, or None when `timeout_s` passes first, also when the
    page's thread is too busy to evaluate anything: the browser driver bounds the wait, not the page."""
    from .webkit import WebKitError, WebKitPage

    if isinstance(page, WebKitPage):
        deadline = time.monotonic() + timeout_s
        while True:
            # WebDriver's script timeout bounds each evaluation.
            page.set_default_timeout(max(1.0, deadline - time.monotonic()) * 1000)
            try:
                value = page.evaluate(function_js, arg)
            except WebKitError as exc:
                if not exc.message.startswith("Timeout"):
                    raise
                return None
            if value:
                return value
            if time.monotonic() >= deadline:
                return None
            time.sleep(_POLL_MS / 1000)
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    try:
        handle = page.wait_for_function(
            function_js, arg=arg, timeout=max(1.0, timeout_s * 1000), polling=_POLL_MS
        )
    except PlaywrightTimeoutError:
        return None
    return handle.json_value()


class PageRunner:
    """Runs code in one harness page (Pyodide booted, `window.__pyRunnerReady`) and keeps its output."""

    def __init__(self, page: Any, recent_console: Callable[[], str] = lambda: "") -> None:
        self.page = page
        self.output: list[tuple[str, str]] = []  # (stream, text) as the page's Python wrote them
        self.unusable: str | None = None  # why the page can no longer run code
        self._recent_console = recent_console
        self._ids = itertools.count()

    def output_text(self) -> str:
        return "".join(text for _, text in self.output)

    def run(self, code: str, *, timeout_s: float, filename: str = "<py_runner_page.run>") -> Any:
        """The value of the code's last expression (top-level await allowed), in `__main__`'s namespace."""
        from playwright.sync_api import Error as PlaywrightError

        from .webkit import WebKitError

        if self.unusable:
            raise PageError(f"the page can no longer run code: {self.unusable}")
        run_id = next(self._ids)
        started = time.monotonic()
        try:
            self.page.set_default_timeout(_READ_S * 1000)
            self.page.evaluate(_START_JS, [run_id, code, filename, _PAGE_CODE.read_text(encoding="utf-8")])
            remaining = timeout_s - (time.monotonic() - started)
            if _poll(self.page, _ENDED_JS, run_id, remaining) is None:
                raise self._timed_out(timeout_s)
            state = _poll(self.page, _FINISH_JS, [run_id, len(self.output)], _READ_S)
        except (PlaywrightError, WebKitError) as exc:
            # The page itself failed (its renderer crashed, it was closed): its output and console say why.
            self.unusable = f"the browser failed: {exc.message.splitlines()[0]}"
            raise PageError(f"{self.unusable}{self._tail()}{self._console()}") from None
        if state is None:
            raise PageError(f"the page ended the run but did not answer within {_READ_S:g} s{self._tail()}")
        self.output.extend((stream, text) for stream, text in state["out"])
        if state["fatal"]:
            self.unusable = "Pyodide suffered a fatal error in it"
            raise PageFatalError(
                f"Pyodide suffered a fatal error in the page and can no longer run Python: {state['fatal']}"
                f"{self._tail()}"
            )
        result = json.loads(state["result"])
        if "error" in result:
            raise InPageError(result["error"])
        if "unsupported" in result:
            raise PageValueError(result["unsupported"])
        return decode(result["value"])

    def _timed_out(self, timeout_s: float) -> PageTimeoutError:
        """The page's state; then the page is closed: its Python may still run, and must not meet the next."""
        state = _poll(self.page, _STATE_JS, len(self.output), 2.0)
        if state is None:
            where = "the page does not answer: Python there holds its thread (a loop that never awaits?)"
        else:
            self.output.extend((stream, text) for stream, text in state["out"])
            where = f"the page is still running it (its status line: {state['status']!r})"
        self.unusable = f"an earlier run did not finish within {timeout_s:g} s"
        try:
            self.page.close()
        except Exception:  # a page that is already gone is as good as closed
            pass
        return PageTimeoutError(f"the code did not finish within {timeout_s:g} s; {where}{self._tail()}")

    def _tail(self) -> str:
        lines = self.output_text().splitlines()
        if not lines:
            return "\nIt printed nothing."
        shown = "\n".join(lines[-_TAIL_LINES:])
        more = f" (the last {_TAIL_LINES} of {len(lines)} lines)" if len(lines) > _TAIL_LINES else ""
        return f"\nIts output{more}:\n{shown}"

    def _console(self) -> str:
        recent = self._recent_console()
        return f"\nIts last console lines:\n{recent}" if recent else ""
