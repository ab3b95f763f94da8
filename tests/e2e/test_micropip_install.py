"""`micropip.install` and go: README's "In any Pyodide" page, as written, beside an exported site: it loads
only Pyodide, micropip and the py_runner wheel (no boot script, no site.json, no Artifacts, no base_url) and
answers with the default model, the engine coming out of the wheel (py_runner/_transport/installed.py). On a
plain static host with no isolation headers it runs the st build; on a host that sends COOP/COEP, mt."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import REPO_ROOT, _missing_builds, _run_cli
from py_runner.host.browser.headless import launch_browser
from py_runner.host.build.assets import default_model
from py_runner.host.export import preview_server
from py_runner.host.skips import skip_or_fail

pytestmark = pytest.mark.e2e

# What the page tells us besides its reply: the build, and which engine files came out of the wheel.
REPORT = """
from py_runner._transport import installed
import json
wasm = sorted(k for k in installed._made if k.endswith(".wasm"))
json.dumps({"build": llm.runner.build, "from_the_wheel": wasm})
"""


def readme_page() -> str:
    """The HTML of README's "In any Pyodide" section, as a user copies it."""
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## In any Pyodide", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```html\n(.*?)```", section, re.S).group(1)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported site (its model one file, as the README says), with the README's page as bare.html."""
    skip_or_fail(_missing_builds())
    model = default_model()
    app = tmp_path_factory.mktemp("app")
    (app / "main.py").write_text("print('the exported app; the bare page does not run it')\n")
    out = tmp_path_factory.mktemp("exports") / "site"
    proc = _run_cli(["export", str(app), str(out), "--model", str(model), "--max-file-size", "200M"], app)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    page = readme_page()
    for name in re.findall(r"wheels/([\w.-]+\.whl)", page) + re.findall(r"models/([\w.-]+\.gguf)", page):
        assert any(out.glob(f"*/{name}")), f"README names {name}, which the export did not write"
    # what micropip downloads: the library and both engine builds (each ~1.5 MB compressed)
    assert (out / "wheels" / "py_runner-0.1.0-py3-none-any.whl").stat().st_size <= 4_000_000
    (out / "bare.html").write_text(page, encoding="utf-8")
    return out


def ask(url: str) -> tuple[str, dict]:
    """Open the page; (the reply it appended to its body, the report)."""
    import json

    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_context().new_page()
            page.goto(url)
            page.wait_for_function(
                "document.body && document.body.textContent.trim() !== ''", timeout=300_000
            )
            reply = page.evaluate("document.body.textContent")
            report = json.loads(page.evaluate("(code) => window.pyodide.runPythonAsync(code)", REPORT))
            return reply, report
        finally:
            browser.close()


def test_a_bare_page_on_a_plain_static_host_answers_with_the_st_build(site: Path) -> None:
    server, url = preview_server(site, base="/")  # no COOP/COEP: not cross-origin isolated
    try:
        reply, report = ask(url + "bare.html")
    finally:
        server.shutdown()
        server.server_close()
    assert report == {"build": "st", "from_the_wheel": ["st/pr_glue.wasm"]}
    assert "Paris" in reply, reply


def test_a_bare_page_on_an_isolating_host_answers_with_the_mt_build(site: Path) -> None:
    from py_runner.host.server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, files_dir=site)  # the dev server sends COOP/COEP
    try:
        reply, report = ask(f"{base_url}/files/bare.html")
    finally:
        stop_server(server)
    assert report == {"build": "mt", "from_the_wheel": ["mt/pr_glue.wasm"]}
    assert "Paris" in reply, reply
