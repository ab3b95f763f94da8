"""The browser choice of the host tools (py_runner/host/browsers.py): one name per process, read from
PY_RUNNER_BROWSER, set by --browser on the CLI and pytest, and a clear reason when a browser is missing."""

from __future__ import annotations

import pytest

from py_runner.host import browsers
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
