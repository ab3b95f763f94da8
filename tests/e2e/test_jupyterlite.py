"""README's "In JupyterLite", as a user follows it: `py-runner export --jupyterlite` builds the site with
JupyterLite's own build, then JupyterLite's REPL runs the section's cell as written (`%pip install py_runner`
from the site's piplite index, then the France question to the default model through the async API), and
the synchronous variant (JSPI in the kernel's worker). Nothing comes from outside the site (no CDN): the st
build on a plain static host under a subpath, mt on a host that sends COOP/COEP."""

from __future__ import annotations

import shlex
import urllib.parse
from pathlib import Path

import pytest

from conftest import _missing_builds, _run_cli, readme_block
from py_runner.host.browser.headless import launch_browser
from py_runner.host.build.assets import default_model
from py_runner.host.export import preview_server
from py_runner.host.skips import skip_or_fail

pytestmark = pytest.mark.e2e

SECTION = "In JupyterLite"
ASYNC_TO_SYNC = {  # the synchronous variant README names, made from the cell as written
    "await Llama.load(": "Llama(model_path=",
    "await llm.acreate_chat_completion(": "llm.create_chat_completion(",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site README's command builds (its OUT and --model made this run's: a temporary folder, the default
    model in this run's cache)."""
    skip_or_fail(_missing_builds())
    command = shlex.split(readme_block(SECTION, "bash").splitlines()[0].split("#", 1)[0])
    assert command[:3] == ["py-runner", "export", "--jupyterlite"] and command[4] == "--model", command
    out = tmp_path_factory.mktemp("jupyterlite") / "lite"
    args = [*command[1:3], str(out), "--model", str(default_model()), *command[6:]]
    proc = _run_cli(args, out.parent)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "a notebook loads 'models/SmolLM2-135M-Instruct.Q4_1.gguf'" in proc.stdout
    return out


def test_the_site_carries_the_notices_of_what_it_redistributes(site: Path) -> None:
    """py_runner's bundled components, the wheels JupyterLite's kernel installs from the site, and
    the model."""
    text = (site / "THIRD_PARTY_NOTICES.txt").read_text(encoding="utf-8")
    for name in ("llama.cpp and ggml", "Pyodide", "micropip", "CPython", "ipython", "jedi", "Pygments"):
        assert f"\n{name} " in text, name
    assert "Model: SmolLM2-135M-Instruct.Q4_1.gguf" in text and "Apache License" in text


def run_in_the_repl(url: str, code: str) -> tuple[str, bool, list[str]]:
    """(the cell's output, whether the page was cross-origin isolated, every URL fetched from another
    origin)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            page = browser.new_context().new_page()
            # Outside = another origin (a CDN). JupyterLite's own service-worker heartbeat, sent 20 s after
            # the worker registers, goes to the origin's root ("/api/service-worker-heartbeat"), not under
            # the site's path, and is answered by that service worker: it is the site's, so the origin is
            # what is compared.
            origin = "{0.scheme}://{0.netloc}/".format(urllib.parse.urlsplit(url))
            outside: list[str] = []
            page.on(
                "request",
                lambda r: outside.append(r.url) if not r.url.startswith((origin, "blob:", "data:")) else None,
            )
            page.goto(f"{url}repl/index.html?kernel=python&code={urllib.parse.quote(code)}")
            outputs = page.locator(".jp-OutputArea-output")
            page.wait_for_function(
                "/\\(\\w+ build\\)|Error/.test([...document.querySelectorAll('.jp-OutputArea-output')]"
                ".map((e) => e.textContent).join(''))",
                timeout=300_000,
                polling=500,
            )
            text = "\n".join(outputs.all_inner_texts()).strip()
            return text, page.evaluate("crossOriginIsolated"), outside
        finally:
            browser.close()


def test_the_cell_as_written_answers_on_a_plain_static_host_with_the_st_build(site: Path) -> None:
    server, url = preview_server(site)  # under /lite/, no COOP/COEP, no Range
    try:
        text, isolated, outside = run_in_the_repl(url, readme_block(SECTION, "python"))
    finally:
        server.shutdown()
        server.server_close()
    assert "Paris" in text and text.endswith("(st build)") and not isolated, text
    assert not outside, outside


def test_the_synchronous_api_answers_on_an_isolating_host_with_the_mt_build(site: Path) -> None:
    from py_runner.host.server import start_server, stop_server

    code = readme_block(SECTION, "python")
    for written, sync in ASYNC_TO_SYNC.items():
        assert written in code, f"README's cell no longer has {written!r}"
        code = code.replace(written, sync)
    server, base_url = start_server("127.0.0.1", 0, files_dir=site)  # the dev server sends COOP/COEP
    try:
        text, isolated, outside = run_in_the_repl(f"{base_url}/files/", code)
    finally:
        stop_server(server)
    assert "Paris" in text and text.endswith("(mt build)") and isolated, text
    assert not outside, outside
