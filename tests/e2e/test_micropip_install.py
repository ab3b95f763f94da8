"""`micropip.install` and go, as README writes it, beside an exported site (`--pyscript`, the model one file):
"In any Pyodide" (a bare page: Pyodide, micropip and the py_runner wheel, no boot script, no site.json, no
Artifacts, no base_url) and "In PyScript" (`packages` = the wheel; on the main thread and in a worker). Each
answers the France question with the default model, the engine coming out of the wheel
(py_runner/_transport/installed.py): the st build on a plain static host with no isolation headers, mt on a
host that sends COOP/COEP."""

from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from conftest import _missing_builds, _run_cli, readme_block
from py_runner.host.browser.headless import launch_browser
from py_runner.host.build.assets import default_model
from py_runner.host.export import preview_server
from py_runner.host.skips import skip_or_fail

pytestmark = pytest.mark.e2e

# Asked of the bare page's Pyodide after its reply: the build, and which engine files came out of the wheel.
REPORT = """
from py_runner._transport import installed
import json
wasm = sorted(k for k in installed._made if k.endswith(".wasm"))
json.dumps({"build": llm.runner.build, "simd": llm.runner.simd, "from_the_wheel": wasm})
"""
PYSCRIPT_MAIN = '<script type="py" async config='
PYSCRIPT_WORKER = '<script type="py" worker async config='


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported site as README makes it, with its pages: bare.html, pyscript.html, pyscript_worker.html."""
    skip_or_fail(_missing_builds())
    model = default_model()
    app = tmp_path_factory.mktemp("app")
    (app / "main.py").write_text("print('the exported app; these pages do not run it')\n")
    out = tmp_path_factory.mktemp("exports") / "site"
    args = ["export", str(app), str(out), "--model", str(model), "--max-file-size", "200M", "--pyscript"]
    proc = _run_cli(args, app)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    bare, pyscript = readme_block("In any Pyodide", "html"), readme_block("In PyScript", "html")
    assert PYSCRIPT_MAIN in pyscript
    pages = {"bare.html": bare, "pyscript.html": pyscript}
    pages["pyscript_worker.html"] = pyscript.replace(PYSCRIPT_MAIN, PYSCRIPT_WORKER)
    for name in {n for page in pages.values() for n in re.findall(r"(?:wheels|models)/([\w.-]+)", page)}:
        assert any(out.glob(f"*/{name}")), f"README names {name}, which the export did not write"
    # what micropip downloads: the library and the four engine builds (each ~1.5 MB compressed)
    assert (out / "wheels" / "py_runner-0.1.0-py3-none-any.whl").stat().st_size <= 7_000_000
    for name, page in pages.items():
        (out / name).write_text(page, encoding="utf-8")
    return out


def open_page(url: str, report: bool) -> tuple[str, dict | None, bool]:
    """(the text the page appended to its body, the bare page's report, whether it was cross-origin
    isolated)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_context().new_page()
            # nothing from another origin (no CDN): Pyodide, micropip, PyScript, the wheel: all the site's
            origin = "{0.scheme}://{0.netloc}/".format(urllib.parse.urlsplit(url))
            outside: list[str] = []
            page.on(
                "request",
                lambda r: outside.append(r.url) if not r.url.startswith((origin, "blob:", "data:")) else None,
            )
            page.goto(url)
            page.wait_for_function("/Paris|Error/i.test(document.body?.textContent ?? '')", timeout=300_000)
            assert not outside, outside
            text = page.evaluate("document.body.textContent")
            facts = (
                json.loads(page.evaluate("(c) => window.pyodide.runPythonAsync(c)", REPORT))
                if report
                else None
            )
            return text, facts, page.evaluate("crossOriginIsolated")
        finally:
            browser.close()


def on_a_plain_host(site: Path, page: str, report: bool = False) -> tuple[str, dict | None, bool]:
    server, url = preview_server(site, base="/")  # no COOP/COEP: not cross-origin isolated
    try:
        return open_page(url + page, report)
    finally:
        server.shutdown()
        server.server_close()


def on_an_isolating_host(site: Path, page: str, report: bool = False) -> tuple[str, dict | None, bool]:
    from py_runner.host.server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, files_dir=site)  # the dev server sends COOP/COEP
    try:
        return open_page(f"{base_url}/files/{page}", report)
    finally:
        stop_server(server)


def test_a_bare_page_on_a_plain_static_host_answers_with_the_st_build(site: Path) -> None:
    text, facts, isolated = on_a_plain_host(site, "bare.html", report=True)
    # only the build the page runs is made into a Blob: st, in its relaxed-SIMD variant (Chromium, Firefox)
    assert not isolated and facts == {
        "build": "st",
        "simd": "relaxed",
        "from_the_wheel": ["st-relaxed/pr_glue.wasm"],
    }
    assert "Paris" in text, text


def test_a_bare_page_on_an_isolating_host_answers_with_the_mt_build(site: Path) -> None:
    text, facts, isolated = on_an_isolating_host(site, "bare.html", report=True)
    assert isolated and facts == {
        "build": "mt",
        "simd": "relaxed",
        "from_the_wheel": ["mt-relaxed/pr_glue.wasm"],
    }
    assert "Paris" in text, text


def test_pyscript_on_the_main_thread_of_a_plain_static_host(site: Path) -> None:
    text, _, isolated = on_a_plain_host(site, "pyscript.html")
    assert not isolated and "Paris" in text and text.endswith("(st build)"), text


def test_pyscript_in_a_worker_on_an_isolating_host(site: Path) -> None:
    text, _, isolated = on_an_isolating_host(site, "pyscript_worker.html")
    assert isolated and "Paris" in text and text.endswith("(mt build)"), text
