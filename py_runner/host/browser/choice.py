"""Which browser this process drives, and where its executable is: the leaf every launcher reads (CPython).

``PY_RUNNER_BROWSER`` names it (``--browser`` sets it; subprocesses inherit it); each browser's executable can
be moved by its own variable (``EXECUTABLES``). ``browsers.py`` re-exports these names beside the launchers;
``webkit.py`` imports them from here, so that launching and driving WebKit need no import circle.
"""

from __future__ import annotations

import os

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
