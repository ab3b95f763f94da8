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

import os
import shlex
from pathlib import Path

BROWSERS = ("chromium", "firefox", "webkit")
PLAYWRIGHT_BROWSERS = ("chromium", "firefox")  # the rest are driven by Selenium
DEFAULT_BROWSER = "chromium"
BROWSER_ENV = "PY_RUNNER_BROWSER"

# name -> (the environment variable that overrides the executable, Debian's executable, Debian's package)
EXECUTABLES = {
    "chromium": ("PY_RUNNER_CHROMIUM", "/usr/bin/chromium", "chromium"),
    "firefox": ("PY_RUNNER_FIREFOX", "/usr/bin/firefox-esr", "firefox-esr"),
    "webkit": ("PY_RUNNER_WEBKIT_DRIVER", "/usr/bin/WebKitWebDriver", "webkit2gtk-driver"),
}

# Keep Chromium from resolving anything but the local server (it otherwise tries outside lookups). Firefox
# needs no flag: Playwright's profile for it already points every background service at an unroutable host.
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def chromium_args(allow_hosts: tuple[str, ...] = ()) -> list[str]:
    """The resolver rule, then PY_RUNNER_CHROMIUM_FLAGS (extra switches for experiments, e.g. V8's
    `--js-flags=--no-liftoff`)."""
    excluded = "".join(f" , EXCLUDE {host}" for host in (*LOCAL_HOSTS, *allow_hosts))
    extra = shlex.split(os.environ.get("PY_RUNNER_CHROMIUM_FLAGS", ""))
    return [f"--host-resolver-rules=MAP * ~NOTFOUND{excluded}", *extra]


class BrowserError(RuntimeError):
    """The browser could not be found or launched."""


def selected_browser() -> str:
    """The browser chosen for this process (``PY_RUNNER_BROWSER``, default chromium)."""
    name = os.environ.get(BROWSER_ENV) or DEFAULT_BROWSER
    if name not in BROWSERS:
        raise BrowserError(f"{BROWSER_ENV}={name!r}: choose one of {', '.join(BROWSERS)}")
    return name


def engine_of(user_agent: str) -> str:
    """The browser a page's ``navigator.userAgent`` names, as this module calls it (tests check with it that a
    pass runs the browser it selected). Chromium says "AppleWebKit ... Chrome/" ("HeadlessChrome/" headless),
    WebKitGTK "AppleWebKit ... Version/ Safari/" without Chrome, Firefox "Gecko/ ... Firefox/"."""
    if "Firefox/" in user_agent:
        return "firefox"
    if "Chrome/" in user_agent:
        return "chromium"
    if "AppleWebKit/" in user_agent and "Safari/" in user_agent:
        return "webkit"
    raise BrowserError(f"a user agent of no browser py_runner drives: {user_agent!r}")


def select_browser(name: str) -> None:
    """Make ``name`` the browser of this process and of the processes it starts."""
    if name not in BROWSERS:
        raise BrowserError(f"unknown browser {name!r}: choose one of {', '.join(BROWSERS)}")
    os.environ[BROWSER_ENV] = name


def executable(name: str) -> str:
    variable, default, _ = EXECUTABLES[name]
    return os.environ.get(variable) or default


def missing(name: str) -> str | None:
    """Why ``name`` cannot be launched here, or None."""
    path = executable(name)
    if not Path(path).exists():
        variable, _, package = EXECUTABLES[name]
        return f"{name} not found at {path} (apt-get install {package}, or set {variable})"
    if name == "webkit":
        from .webkit import webkit_missing

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
    """A Playwright Browser: Debian's Chromium or Firefox ESR, headless by default. `firefox_prefs` go into
    Firefox's profile (tests use them for what Chromium does through its DevTools protocol, e.g. a quota);
    `allow_hosts` are hosts Chromium may reach besides the local ones."""
    name = name or selected_browser()
    if name not in PLAYWRIGHT_BROWSERS:
        raise BrowserError(f"{name} is not driven by Playwright here (see py_runner.host.webkit)")
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
    args = chromium_args(allow_hosts)
    return playwright.chromium.launch(executable_path=executable(name), headless=headless, args=args)
