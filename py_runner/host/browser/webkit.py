"""WebKit for the host tools: WebKitGTK's MiniBrowser through Selenium and WebKitWebDriver, on Xvfb (CPython).

Playwright's WebKit is a browser build it downloads, which cannot work here; Debian's WebKitGTK can be
driven by its own WebDriver (`webkit2gtk-driver`), which needs a display (MiniBrowser is a GTK program): a
private Xvfb is started for the session unless DISPLAY names a running one. Each
`WebKitBrowser.new_context()` is one new WebDriver session, which starts with empty storage, as a Playwright
context does.

`WebKitPage` offers the few Playwright `Page` methods py_runner's harness uses (`goto`, `evaluate`,
`wait_for_function`, `set_default_timeout`, `on`, `close`), so the harness, the benches and the pytest
plugin run on it unchanged. WebDriver gives no console messages; `on()` accepts handlers and never calls
them.

What WebKitGTK 2.50 lacks, and py_runner's answer (by feature detection in the page, see web/): no
`SharedArrayBuffer` on an isolated page (st build; `JSC_useSharedArrayBuffer=1`, a test-only switch, brings
it back, see `shared_memory=`), no JSPI (sync calls raise SyncCallError), no `navigator.storage` (the model
cache uses Cache Storage).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .choice import BrowserError, executable

MINIBROWSER_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/aarch64-linux-gnu/webkit2gtk-4.1/MiniBrowser",
    "/usr/lib/x86_64-linux-gnu/webkitgtk-6.0/MiniBrowser",
    "/usr/lib/aarch64-linux-gnu/webkitgtk-6.0/MiniBrowser",
)
_POLL_S = 0.05


class WebKitError(BrowserError):
    """A script in the WebKit page failed or timed out; `.message` is the page's message (as Playwright's)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def minibrowser() -> str | None:
    override = os.environ.get("PY_RUNNER_MINIBROWSER")
    if override:
        return override if Path(override).exists() else None
    return next((c for c in MINIBROWSER_CANDIDATES if Path(c).exists()), None)


def webkit_missing() -> str | None:
    """Why WebKit cannot be driven here, or None (the driver itself is checked by browsers.missing)."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install 'py_runner[webkit]')"
    if minibrowser() is None:
        return "WebKitGTK's MiniBrowser not found (apt-get install webkit2gtk-driver)"
    if not _display_running() and shutil.which("Xvfb") is None:
        return "no display and no Xvfb to make one (apt-get install xvfb)"
    return None


def _display_running() -> bool:
    display = os.environ.get("DISPLAY", "")
    return display.startswith(":") and Path(f"/tmp/.X11-unix/X{display[1:].split('.')[0]}").exists()


@contextlib.contextmanager
def virtual_display() -> Iterator[str]:
    """DISPLAY for MiniBrowser: the running one, else a private Xvfb (its number chosen by Xvfb itself)."""
    if _display_running():
        yield os.environ["DISPLAY"]
        return
    read_fd, write_fd = os.pipe()
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as numbers:
            number = numbers.readline().strip()
        if not number:
            raise BrowserError("Xvfb did not start (no display number)")
        yield f":{number}"
    finally:
        xvfb.terminate()
        try:
            xvfb.wait(5)
        except subprocess.TimeoutExpired:
            xvfb.kill()


class WebKitPage:
    """A page of a WebDriver session, with the Playwright `Page` methods the harness uses."""

    def __init__(self, driver: Any, *, owns_session: bool = True) -> None:
        self.driver = driver
        self.owns_session = owns_session  # else the context's session outlives this page
        self._timeout_s = 30.0
        self._closed = False

    def set_default_timeout(self, timeout_ms: float) -> None:
        self._timeout_s = timeout_ms / 1000

    def on(self, _event: str, _handler: Callable[..., Any]) -> None:
        """WebDriver reports no console messages, page errors or crashes: handlers are kept, never called."""

    def goto(self, url: str, **_options: Any) -> None:
        self.driver.get(url)

    def evaluate(self, function_source: str, arg: Any = None) -> Any:
        """Playwright's `page.evaluate(fn, arg)`: the function's (awaited) value."""
        from selenium.common.exceptions import JavascriptException, TimeoutException

        self.driver.set_script_timeout(max(1.0, self._timeout_s))
        try:
            return self.driver.execute_script(f"return await ({function_source})(arguments[0]);", arg)
        except TimeoutException as exc:
            raise WebKitError(f"Timeout {self._timeout_s * 1000:g}ms exceeded while evaluating") from exc
        except JavascriptException as exc:
            raise WebKitError(exc.msg or str(exc)) from None

    def wait_for_function(self, expression: str, timeout: float | None = None, **_options: Any) -> None:
        deadline = time.monotonic() + (timeout / 1000 if timeout is not None else self._timeout_s)
        while not self.driver.execute_script(f"return Boolean({expression});"):
            if time.monotonic() > deadline:
                raise WebKitError(f"Timeout exceeded waiting for {expression}")
            time.sleep(_POLL_S)

    def wait_for_timeout(self, timeout_ms: float) -> None:
        time.sleep(timeout_ms / 1000)

    def set_input_files(self, selector: str, path: str) -> None:
        """A file picked in an `<input type=file>`, as a user picks it (WebDriver types its path)."""
        from selenium.webdriver.common.by import By

        self.driver.find_element(By.CSS_SELECTOR, selector).send_keys(str(path))

    def is_closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.owns_session:
            self.driver.quit()  # without quit() MiniBrowser outlives the driver
        else:
            self.driver.get("about:blank")  # the page goes; the session (its storage) stays


class WebKitContext:
    """One WebDriver session, so one storage, as a Playwright context: its pages are the session's page
    navigated anew (WebKitGTK's WebDriver has one window here), the session ends with the context."""

    def __init__(self, browser: WebKitBrowser) -> None:
        self.browser = browser
        self.driver: Any = None

    def new_page(self) -> WebKitPage:
        if self.driver is None:
            self.driver = self.browser.start_session()
        return WebKitPage(self.driver, owns_session=False)

    def close(self) -> None:
        if self.driver is not None:
            with contextlib.suppress(Exception):
                self.driver.quit()
            self.driver = None


class WebKitBrowser:
    """Starts WebKitGTK sessions: `new_page()` (a session of its own) or `new_context().new_page()`."""

    def __init__(self, display: str, *, shared_memory: bool = False) -> None:
        self.display = display
        self.shared_memory = shared_memory
        self.sessions: list[Any] = []

    def start_session(self) -> Any:
        os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never try a download
        from selenium import webdriver
        from selenium.webdriver.webkitgtk.options import Options
        from selenium.webdriver.webkitgtk.service import Service

        options = Options()
        options.binary_location = minibrowser()
        options.add_argument("--automation")  # MiniBrowser accepts WebDriver's commands only so
        env = dict(os.environ, DISPLAY=self.display)
        if self.shared_memory:
            env["JSC_useSharedArrayBuffer"] = "1"  # test-only: WebKitGTK hides SharedArrayBuffer otherwise
        service = Service(executable_path=executable("webkit"), env=env)
        with warnings.catch_warnings():  # Selenium 4.51 warns about its own use of a deprecated argument
            warnings.simplefilter("ignore", DeprecationWarning)
            driver = webdriver.WebKitGTK(options=options, service=service)
        self.sessions.append(driver)
        return driver

    def new_page(self) -> WebKitPage:
        return WebKitPage(self.start_session())

    def new_context(self, **_options: Any) -> WebKitContext:
        return WebKitContext(self)

    def close(self) -> None:
        for driver in self.sessions:  # quit() twice is harmless; never leave a MiniBrowser behind
            with contextlib.suppress(Exception):
                driver.quit()
        self.sessions.clear()
