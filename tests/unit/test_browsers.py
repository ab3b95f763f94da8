"""The browser choice of the host tools (py_runner/host/browser/browsers.py): one name per process, read from
PY_RUNNER_BROWSER, set by --browser on the CLI and pytest, and a clear reason when a browser is missing."""

from __future__ import annotations

import pytest

from py_runner.host.browser import browsers
from py_runner.host.cli import build_parser


def test_the_choice_is_one_environment_variable_that_children_inherit(monkeypatch) -> None:
    monkeypatch.setenv(browsers.BROWSER_ENV, "chromium")  # recorded: restored after the test
    monkeypatch.delenv(browsers.BROWSER_ENV)
    assert browsers.selected_browser() == "chromium"
    browsers.select_browser("firefox")
    assert browsers.selected_browser() == "firefox"
    import os

    assert os.environ[browsers.BROWSER_ENV] == "firefox"  # what a subprocess (py-runner run) reads
    monkeypatch.setenv(browsers.BROWSER_ENV, "netscape")
    with pytest.raises(browsers.BrowserError, match="choose one of chromium, firefox, webkit"):
        browsers.selected_browser()
    with pytest.raises(browsers.BrowserError, match="unknown browser 'lynx'"):
        browsers.select_browser("lynx")


@pytest.mark.parametrize(
    "name, package", [("chromium", "chromium"), ("firefox", "firefox-esr"), ("webkit", "webkit2gtk-driver")]
)
def test_a_missing_browser_names_what_to_install(monkeypatch, tmp_path, name: str, package: str) -> None:
    variable = browsers.EXECUTABLES[name][0]
    monkeypatch.setenv(variable, str(tmp_path / "absent"))
    reason = browsers.missing(name)
    assert (
        reason == f"{name} not found at {tmp_path / 'absent'} (apt-get install {package}, or set {variable})"
    )


def test_webkit_is_not_launched_through_playwright() -> None:
    with pytest.raises(browsers.BrowserError, match="not driven by Playwright"):
        browsers.launch(object(), "webkit")


@pytest.mark.parametrize("command", [["run", "--prompt", "hi"], ["bench", "generate"], ["perplexity"]])
def test_every_command_that_launches_a_browser_takes_browser(command: list[str]) -> None:
    parser = build_parser()
    assert parser.parse_args([*command, "--browser", "webkit"]).browser == "webkit"
    assert parser.parse_args(command).browser is None  # then PY_RUNNER_BROWSER, else chromium
    with pytest.raises(SystemExit):
        parser.parse_args([*command, "--browser", "opera"])


def test_a_user_agent_names_its_engine() -> None:
    agents = {
        "chromium": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/156.0.0.0 Safari/537.36",
        "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0",
        "webkit": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.0 Safari/605.1.15",
    }
    assert {name: browsers.engine_of(agent) for name, agent in agents.items()} == {
        name: name for name in agents
    }
    with pytest.raises(browsers.BrowserError, match="no browser py_runner drives"):
        browsers.engine_of("Lynx/2.9.0")


class _FakeContext:
    def __init__(self, folder, options) -> None:
        self.folder, self.options, self.closed, self.pages = folder, options, False, ["the first page"]

    def close(self) -> None:
        self.closed = True


class _FakeChromium:
    def __init__(self) -> None:
        self.launched: list[_FakeContext] = []

    def launch_persistent_context(self, folder, **options):
        context = _FakeContext(folder, options)
        self.launched.append(context)
        return context


class _FakePlaywright:
    def __init__(self) -> None:
        self.chromium = _FakeChromium()


def test_chromium_keeps_each_context_in_a_profile_on_disk(monkeypatch, tmp_path) -> None:
    """Not an off-the-record context (its storage in memory refused a 2 GB model): each context is a
    persistent one in a fresh folder under the cache, removed on close; one left by a dead run goes after a
    day."""
    import os
    import time

    monkeypatch.setenv("PY_RUNNER_CACHE", str(tmp_path))
    monkeypatch.setenv("PY_RUNNER_CHROMIUM", "/bin/sh")  # any file: nothing is run
    stale = tmp_path / "browser-profiles" / "chromium-dead"
    stale.mkdir(parents=True)
    old = time.time() - 2 * browsers.DiskBackedChromium.STALE_AFTER_S
    os.utime(stale, (old, old))
    fresh = tmp_path / "browser-profiles" / "chromium-other-run"
    fresh.mkdir()

    pw = _FakePlaywright()
    browser = browsers.launch(pw, "chromium")
    assert isinstance(browser, browsers.DiskBackedChromium)
    assert not stale.exists() and fresh.exists()  # another run's live profile is left alone
    context = browser.new_context(service_workers="block")
    page = browser.new_page()
    assert page == "the first page"  # a page in a context of its own, like Browser.new_page()
    folders = [c.folder for c in pw.chromium.launched]
    assert len(set(folders)) == 2 and all(f.parent == tmp_path / "browser-profiles" for f in folders)
    assert all(f.is_dir() for f in folders)
    assert context.options["service_workers"] == "block" and context.options["executable_path"] == "/bin/sh"
    assert any(a.startswith("--host-resolver-rules=") for a in context.options["args"])
    browser.close()
    assert all(c.closed for c in pw.chromium.launched) and not any(f.exists() for f in folders)
