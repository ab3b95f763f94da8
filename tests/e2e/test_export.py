"""`py-runner export` proved like a real deploy: the exported site, served by a plain static server (Python's
http.server: no COOP/COEP, no Range) under a subpath, runs the app multi-threaded after one service-worker
reload, falls back to st without service workers, answers as the dev server does, loads the model from the
browser cache on the second visit, and loads a model split into llama.cpp shards."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from conftest import _missing_builds, _run_cli
from py_runner.host.browser.headless import launch_browser
from py_runner.host.build.assets import default_model
from py_runner.host.export import preview_server
from py_runner.host.fixtures import fixture_model
from py_runner.host.skips import skip_or_fail

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is the capital of France? Answer in one sentence."
MAX_FILE_SIZE = "60M"  # SmolLM2's 98 MB file becomes 2 shards, as a 100 MiB cap makes of a larger model

APP_MAIN = """\
import json
import time

import js
from py_runner import GenerateTextParams, LlamaRunner

from question import QUESTION  # another file of the app: the folder is reachable

started = time.perf_counter()
runner = LlamaRunner()
spec = await runner.load_model("models/{model}")  # the name it was exported under, resolved against the page
ready_s = time.perf_counter() - started
params = GenerateTextParams(n_predict=32, temp=0)
result = await runner.chat([{{"role": "user", "content": QUESTION}}], params)
print(json.dumps({{
    "text": result.text, "tokens": result.tokens, "build": runner.build, "ready_s": ready_s,
    "isolated": bool(js.crossOriginIsolated), "cache_hit": spec.cache_hit, "files": list(spec.source_urls),
}}))
"""

REFERENCE = """
import json
from py_runner import GenerateTextParams, LlamaRunner
runner = LlamaRunner(build="mt")
await runner.load_model("/models/{model}")
params = GenerateTextParams(n_predict=32, temp=0)
result = await runner.chat([{{"role": "user", "content": {question!r}}}], params)
runner.terminate()
json.dumps({{"text": result.text, "tokens": result.tokens}})
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skip_or_fail(_missing_builds())
    model = default_model()
    app = tmp_path_factory.mktemp("app")
    (app / "main.py").write_text(APP_MAIN.format(model=model.name), encoding="utf-8")
    (app / "question.py").write_text(f"QUESTION = {QUESTION!r}\n", encoding="utf-8")
    out = tmp_path_factory.mktemp("exports") / "site"
    args = ["export", str(app), str(out), "--model", str(model), "--max-file-size", MAX_FILE_SIZE]
    proc = _run_cli(args, app)  # the command, as a user runs it
    assert proc.returncode == 0, proc.stdout + proc.stderr
    shards = sorted(p.name for p in (out / "models").iterdir())
    assert shards == [f"{model.stem}-0000{i}-of-00002.gguf" for i in (1, 2)]
    assert all((out / "models" / s).stat().st_size <= 60 * 1024 * 1024 for s in shards)
    print("\nexported site:\n" + proc.stdout)
    return out


@pytest.fixture(scope="module")
def host(site: Path):
    server, url = preview_server(site, base="/user/project/")  # a project site under a subpath
    yield server, url
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser(site: Path):
    """One browser for the module (Playwright's sync API allows one at a time)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def reference(browser, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The same chat on the dev server, with the single-file model."""
    from py_runner.host.browser.headless import HarnessPage
    from py_runner.host.server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, files_dir=tmp_path_factory.mktemp("files"))
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{base_url}/web/site/run.html")
        page.wait_for_function("window.__pyRunnerReady === true", timeout=120_000)
        code = REFERENCE.format(model=default_model().name, question=QUESTION)
        return json.loads(HarnessPage(page).run(code))
    finally:
        context.close()
        stop_server(server)


def visit(context, url: str) -> tuple[dict, dict]:
    """Open the site, wait for the app to finish; (its JSON line, facts about the visit)."""
    page = context.new_page()
    loads: list[float] = []
    page.on("load", lambda: loads.append(time.monotonic()))
    started = time.monotonic()
    page.goto(url)
    page.wait_for_function(
        "['done', 'error'].includes(document.body?.dataset.pyRunnerStatus)", timeout=300_000, polling=100
    )
    output = page.locator("#py-runner-output").text_content() or ""
    facts = {
        "status": page.evaluate("document.body.dataset.pyRunnerStatus"),
        "exit": page.evaluate("document.body.dataset.pyRunnerExit"),
        "coi": page.evaluate("window.__pyRunnerCoi"),
        "loads": len(loads),
        "seconds": time.monotonic() - started,
    }
    page.close()
    assert facts["status"] == "done" and facts["exit"] == "0", output
    return json.loads(output.strip().splitlines()[-1]), facts


def test_first_visit_isolates_then_the_second_comes_from_the_cache(host, browser, reference) -> None:
    server, url = host
    context = browser.new_context()  # a fresh profile: no service worker yet, an empty model cache
    try:
        server.requests.clear()
        first, facts = visit(context, url)
        assert facts["loads"] == 2 and facts["coi"]["state"] == "isolated"  # one reload, then isolated
        assert first["isolated"] and first["build"] == "mt"
        assert len(first["files"]) == 2 and not first["cache_hit"]  # both shards, from the network
        assert (first["text"], first["tokens"]) == (reference["text"], reference["tokens"])
        assert "Paris" in first["text"]
        assert all(r.startswith("/user/project/") for r in server.requests)  # everything under the base path
        assert len([r for r in server.requests if "/models/" in r]) >= 2

        server.requests.clear()
        second, facts2 = visit(context, url)
        assert facts2["loads"] == 1  # the service worker controls the page from the start: no reload
        assert second["cache_hit"] and second["build"] == "mt"
        assert [r for r in server.requests if "/models/" in r] == []  # no model request at all
        assert second["tokens"] == first["tokens"]
        print(
            f"\nvisit 1: {facts['seconds']:.1f} s to the answer (model ready {first['ready_s']:.1f} s after "
            f"the app started); visit 2: {facts2['seconds']:.1f} s (model ready after "
            f"{second['ready_s']:.1f} s)"
        )
    finally:
        context.close()


def test_without_service_workers_it_falls_back_to_the_single_thread_build(host, browser, reference) -> None:
    _, url = host
    context = browser.new_context(service_workers="block")
    try:
        result, facts = visit(context, url)
        assert facts["loads"] == 1 and facts["coi"]["state"] in ("unavailable", "failed")
        assert not result["isolated"] and result["build"] == "st"
        assert result["tokens"] == reference["tokens"]  # st and mt are the same engine
    finally:
        context.close()


def _readme_page_text(section_title: str, host, browser, site: Path, done: str) -> str:
    """The html block of README's `section_title`, copied as it stands beside the export and opened in a fresh
    context: the page's text once `done` (a JS condition) holds; the page must end isolated, error-free."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split(f"## {section_title}", 1)[1].split("\n## ", 1)[0]
    html = section.split("```html\n", 1)[1].split("```", 1)[0]
    name = section_title.lower().replace(" ", "-") + ".html"
    (site / name).write_text(html, encoding="utf-8")
    _, url = host
    context = browser.new_context()
    errors: list[str] = []
    console: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"[:500]))
        # An error ends the wait at once, with what the page said (not a 240 s timeout that says nothing)
        page.add_init_script(
            "addEventListener('unhandledrejection', () => { window.__pageFailed = true; });"
            "addEventListener('error', () => { window.__pageFailed = true; });"
        )
        page.goto(url + name)
        try:
            page.wait_for_function(f"({done}) || window.__pageFailed", timeout=240_000, polling=200)
        except Exception as exc:  # Playwright's TimeoutError: say where the page got to
            raise AssertionError(f"{exc}\nthe page's console:\n" + "\n".join(console[-30:])) from None
        failed = errors or page.evaluate("Boolean(window.__pageFailed)")
        assert not failed, f"{errors}\nthe page's console:\n" + "\n".join(console[-30:])
        assert page.evaluate("window.__pyRunnerCoi.state") == "isolated"
        return page.evaluate("document.body.innerText.trim()")
    finally:
        context.close()


def test_the_readme_own_page_works_as_written(host, browser, site: Path) -> None:
    """README's "Use py_runner in your own page": its page, copied as it stands beside an export."""
    done = "document.body?.innerText.includes('Paris')"
    assert "Paris" in _readme_page_text("Use py_runner in your own page", host, browser, site, done)


def test_the_readme_python_worker_page_works_as_written(host, browser, site: Path) -> None:
    """README's "Python in a worker": its page beside an export; Python, in a module worker, answers through
    the synchronous facade (JSPI in the worker) with the model named relative to the page."""
    done = "(document.body?.innerText ?? '').trim() !== ''"
    text = _readme_page_text("Python in a worker", host, browser, site, done)
    assert text == "The capital of France is Paris."


def test_the_site_uses_relative_urls_only(site: Path) -> None:
    index = (site / "index.html").read_text(encoding="utf-8")
    config = json.loads((site / "site.json").read_text(encoding="utf-8"))
    for text in (index, json.dumps(config)):
        assert '"/' not in text and "'/" not in text and "http" not in text
    assert (site / ".nojekyll").is_file()
    assert "Cross-Origin-Embedder-Policy: require-corp" in (site / "_headers").read_text()


def test_the_site_carries_the_notices_of_what_it_redistributes(site: Path, tmp_path: Path) -> None:
    """THIRD_PARTY_NOTICES.txt beside index.html (its footer links to it): every bundled component with its
    license text, and the default model with its Apache-2.0 text; a model whose GGUF names no license gets
    a line saying so there, and the command a one-line reminder."""
    text = (site / "THIRD_PARTY_NOTICES.txt").read_text(encoding="utf-8")
    for name in ("llama.cpp and ggml", "nlohmann/json", "Pyodide", "micropip", "CPython"):
        assert f"\n{name} " in text, name
    assert "The ggml authors" in text and "Mozilla Public License Version 2.0" in text
    assert "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2" in text
    model = default_model()
    assert f"Model: {model.name}" in text and "License: apache-2.0" in text and "Apache License" in text
    assert '<a href="THIRD_PARTY_NOTICES.txt">' in (site / "index.html").read_text(encoding="utf-8")
    marker = json.loads((site / ".py_runner-export.json").read_text(encoding="utf-8"))
    assert "THIRD_PARTY_NOTICES.txt" in marker["files"]  # ours: a re-export replaces it

    app = tmp_path / "app.py"
    app.write_text("print('hi')\n", encoding="utf-8")
    tiny = fixture_model("tiny", "f16")  # made by make-model: no general.license
    proc = _run_cli(["export", str(app), str(tmp_path / "out"), "--model", str(tiny)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    reminder = f"models/{tiny.name} names no license in its GGUF: check its terms before you publish the site"
    assert reminder in proc.stdout
    notices = (tmp_path / "out" / "THIRD_PARTY_NOTICES.txt").read_text(encoding="utf-8")
    assert f"Model: {tiny.name}" in notices and "names no license" in notices


def test_an_exported_page_runs_only_its_own_app(browser, tmp_path: Path) -> None:
    """`?script=` on an exported page (data:, or a script from another origin) is ignored: the page runs its
    own app. The app's file name, hostile HTML, is written into index.html as text."""
    skip_or_fail(_missing_builds())
    name = "x--><img src=x onerror=window.__pwned=1>.py"
    (tmp_path / name).write_text("print('the app ran')\n", encoding="utf-8")
    out = tmp_path / "site"
    proc = _run_cli(["export", str(tmp_path / name), str(out)], tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    server, url = preview_server(out)
    context = browser.new_context()
    try:
        for query in ("?script=data:text/plain,print('pwned')", "?script=//example.invalid/x.py", ""):
            page = context.new_page()
            page.goto(url + query)
            page.wait_for_function(
                "['done', 'error'].includes(document.body?.dataset.pyRunnerStatus)",
                timeout=120_000,
                polling=100,
            )
            output = page.locator("#py-runner-output").text_content() or ""
            assert output == "the app ran\n" and page.evaluate("document.body.dataset.pyRunnerExit") == "0"
            assert page.evaluate("window.__pwned") is None and page.title() == name.removesuffix(".py")
            page.close()
    finally:
        context.close()
        server.shutdown()
        server.server_close()
