"""The browsers py_runner's host tools drive, and how each is launched offline (CPython only).

One choice for a whole process: ``--browser`` on ``py-runner run|bench|perplexity`` and on pytest sets
``PY_RUNNER_BROWSER``, which every launcher here reads (and which subprocesses inherit):

    chromium  Debian's Chromium through Playwright (CDP)                     PY_RUNNER_CHROMIUM
    firefox   Debian's Firefox ESR through Playwright's WebDriver BiDi       PY_RUNNER_FIREFOX
              channel ("moz-firefox": Playwright's own patched Firefox is a download that cannot work here)
    webkit    WebKitGTK's MiniBrowser through Selenium and WebKitWebDriver   PY_RUNNER_WEBKIT_DRIVER
              on a virtual screen (Xvfb): Playwright's WebKit is a download too (see ``webkit.py``)

Why Playwright is pinned at 1.64.1: from 1.65 its BiDi backend sends ``emulation.setMediaFeaturesOverride``
when it opens any page, a command Firefox ESR 153 does not know ("unknown command"), so no page opens.
"""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Iterator
from pathlib import Path

from .choice import (
    BROWSER_ENV,
    BROWSERS,
    DEFAULT_BROWSER,
    EXECUTABLES,
    PLAYWRIGHT_BROWSERS,
    BrowserError,
    engine_of,
    executable,
    select_browser,
    selected_browser,
)
from .webkit import WebKitBrowser, virtual_display, webkit_missing

__all__ = [  # the choice's names too: callers read the whole browser story from this module
    "BROWSER_ENV",
    "BROWSERS",
    "DEFAULT_BROWSER",
    "EXECUTABLES",
    "LOCAL_HOSTS",
    "PLAYWRIGHT_BROWSERS",
    "BrowserError",
    "DiskBackedChromium",
    "chromium_args",
    "engine_of",
    "executable",
    "launch",
    "launch_webkit",
    "missing",
    "select_browser",
    "selected_browser",
]

# Keep Chromium from resolving anything but the local server (it otherwise tries outside lookups). Firefox
# needs no flag: Playwright's profile for it already points every background service at an unroutable host.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def chromium_args(allow_hosts: tuple[str, ...] = ()) -> list[str]:
    """The resolver rule, then PY_RUNNER_CHROMIUM_FLAGS (extra switches for experiments, e.g. V8's
    `--js-flags=--no-liftoff`)."""
    excluded = "".join(f" , EXCLUDE {host}" for host in (*LOCAL_HOSTS, *allow_hosts))
    extra = shlex.split(os.environ.get("PY_RUNNER_CHROMIUM_FLAGS", ""))
    return [f"--host-resolver-rules=MAP * ~NOTFOUND{excluded}", *extra]


def missing(name: str) -> str | None:
    """Why ``name`` cannot be launched here, or None."""
    path = executable(name)
    if not Path(path).exists():
        variable, _, package = EXECUTABLES[name]
        return f"{name} not found at {path} (apt-get install {package}, or set {variable})"
    if name == "webkit":
        return webkit_missing()
    return None


def launch(
    playwright,
    name: str | None = None,
    *,
    headless: bool = True,
    firefox_prefs: dict | None = None,
    allow_hosts: tuple[str, ...] = (),
):
    """A Playwright Browser (Firefox ESR) or its like for Debian's Chromium (DiskBackedChromium), headless by
    default. `firefox_prefs` go into
    Firefox's profile (tests use them for what Chromium does through its DevTools protocol, e.g. a quota);
    `allow_hosts` are hosts Chromium may reach besides the local ones."""
    name = name or selected_browser()
    if name not in PLAYWRIGHT_BROWSERS:
        raise BrowserError(f"{name} is not driven by Playwright here (see py_runner.host.browser.webkit)")
    reason = missing(name)
    if reason:
        raise BrowserError(reason)
    if name == "firefox":
        return playwright.firefox.launch(
            channel="moz-firefox",
            executable_path=executable(name),
            headless=headless,
            firefox_user_prefs=firefox_prefs or {},
        )
    return DiskBackedChromium(playwright, headless=headless, args=chromium_args(allow_hosts))


@contextlib.contextmanager
def launch_webkit(*, shared_memory: bool = False) -> Iterator[WebKitBrowser]:
    """A WebKitGTK launcher on a (virtual) display; every session it opened is closed at the end."""
    reason = missing("webkit")
    if reason:
        raise BrowserError(reason)
    with virtual_display() as display:
        browser = WebKitBrowser(display, shared_memory=shared_memory)
        try:
            yield browser
        finally:
            browser.close()


class DiskBackedChromium:
    """Chromium whose every context keeps its storage in a profile on disk, as a user's browser does, with the
    `new_context()` / `new_page()` / `close()` of a Playwright Browser.

    A plain `Browser.new_context()` is off the record: its storage lives in memory, and its origin private
    file system refused writes past ~1.4 GB (FILE_ERROR_NO_SPACE), so a 2 GB model could not be cached,
    although the reported quota was 10 GiB. Here each context is a persistent context (its own Chromium) in a
    fresh profile folder under the cache (`browser-profiles/`), whose quota follows the disk; the folder is
    removed when this browser closes, or by a launch a day later if the run died first."""

    STALE_AFTER_S = 24 * 3600

    def __init__(self, playwright, *, headless: bool, args: list[str]) -> None:
        from ..build.paths import cache_root

        self._playwright, self._headless, self._args = playwright, headless, args
        self._root = cache_root() / "browser-profiles"
        self._root.mkdir(parents=True, exist_ok=True)
        self._sweep()
        self._contexts: list[tuple[object, Path]] = []

    def _sweep(self) -> None:
        """Profiles left by runs that died (a live one is touched by its Chromium all the time)."""
        import shutil
        import time

        for folder in self._root.iterdir():
            try:
                if time.time() - folder.stat().st_mtime > self.STALE_AFTER_S:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                pass

    def new_context(self, **options):
        """A fresh profile: empty storage, like Browser.new_context(); `options` are a context's options."""
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="chromium-", dir=self._root))
        context = self._playwright.chromium.launch_persistent_context(
            folder,
            executable_path=executable("chromium"),
            headless=self._headless,
            args=self._args,
            **options,
        )
        self._contexts.append((context, folder))
        return context

    def new_page(self, **options):
        """A page in a context of its own, like Browser.new_page()."""
        context = self.new_context(**options)
        return context.pages[0] if context.pages else context.new_page()

    def close(self) -> None:
        import shutil

        contexts, self._contexts = self._contexts, []
        for context, folder in contexts:
            try:
                context.close()
            except Exception:  # noqa: BLE001 - already closed, or its browser died: the folder still goes
                pass
            shutil.rmtree(folder, ignore_errors=True)
