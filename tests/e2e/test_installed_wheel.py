"""A user holding only the wheel: `python -m build` makes it (engine, Pyodide and web assets inside);
installed into a fresh venv, with no emcc (nor anything of the checkout) on PATH and run from another folder,
`py-runner run --chat`, `serve` and `export` work, and the user's own pytest tests of an app run with the
plugin the wheel registers."""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import urllib.request
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import _missing_builds
from py_runner import __version__
from py_runner.host.build.assets import default_model
from py_runner.host.skips import skip_or_fail

# Not in README's Firefox pass: the installed CLI's paths; the export's isolation in Firefox: test_export.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    skip_or_fail(_missing_builds())
    default_model()  # in the shared model cache, as a user's first `run` would fetch it
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    wheel = next(dist.glob("py_runner-*.whl"))
    env_dir = tmp_path_factory.mktemp("venv") / "env"
    # The venv sees this interpreter's packages (playwright, gguf, pytest: the wheel's dependencies, already
    # installed here, so the test needs no network); py_runner itself comes from the wheel.
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PY_RUNNER_BUILD_DIR")}
    env["PATH"] = str(env_dir / "bin")  # no emcc, no npm, no checkout tools
    work = tmp_path_factory.mktemp("elsewhere")
    return {"wheel": wheel, "python": python, "bin": env_dir / "bin", "env": env, "cwd": work}


def run(installed: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(installed["bin"] / args[0]), *args[1:]],
        cwd=installed["cwd"],
        env=installed["env"],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start(installed: dict, *args: str) -> tuple[subprocess.Popen, str]:
    """`py-runner ARGS --port 0` in the background: the server binds a port the system picks and prints its
    URL (no free port probed, closed and handed on for another process to take first). Returns the process
    and that URL; its output is drained in a thread."""
    process = subprocess.Popen(
        [str(installed["bin"] / "py-runner"), *args, "--port", "0"],
        cwd=installed["cwd"],
        env=installed["env"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def drain() -> None:
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # the end of its output

    threading.Thread(target=drain, daemon=True).start()
    seen = []
    while True:
        try:
            # A bound, not a speed test: a server that starts in about a second here still makes it 4x slower.
            line = lines.get(timeout=300)
        except queue.Empty:
            process.kill()
            raise AssertionError(f"{args}: no URL printed within 300 s: {seen}") from None
        found = re.search(r"serving .*?(http://127\.0\.0\.1:\d+/\S*)", line)
        if found:
            return process, found.group(1)
        if not line:  # the process ended before it served
            process.wait()
            raise AssertionError(f"{args}: exited with {process.returncode} before serving: {seen}")
        seen.append(line)


def test_the_wheel_carries_the_engine_and_pyodide(installed: dict) -> None:
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
    bundle = "py_runner/host/bundle/"
    for part in (
        "engine/st/pr_glue.wasm",
        "engine/mt/pr_glue.wasm",
        "engine/mt/pr_glue.worker.js",
        "engine/st-relaxed/pr_glue.wasm",
        "engine/mt-relaxed/pr_glue.worker.js",
    ):
        assert bundle + part in names
    assert bundle + "pyodide/pyodide.asm.wasm" in names and "py_runner/host/web/engine/worker.js" in names
    assert any(n.startswith(bundle + "wheels/py_runner-") for n in names)  # the page's wheel, prebuilt
    probe = "import py_runner, shutil; print(py_runner.__file__, shutil.which('emcc'))"
    where = run(installed, "python", "-c", probe)
    module, emcc = where.stdout.split()
    assert str(installed["bin"].parent) in module and emcc == "None"


def test_run_chat_from_any_folder(installed: dict) -> None:
    question = "What is the capital of France? Answer in one sentence."
    proc = run(installed, "py-runner", "run", "--chat", "--prompt", question)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Paris" in proc.stdout


def test_serve_from_any_folder(installed: dict) -> None:
    server, url = start(installed, "serve")
    try:
        base = url.rstrip("/")  # printed once the socket listens: requests queue until it accepts them
        for path in ("/", "/web/engine/worker.js", "/build/mt/pr_glue.wasm", "/pyodide/pyodide.mjs"):
            with urllib.request.urlopen(base + path, timeout=10) as response:
                assert response.status == 200
                assert response.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_write_test_export_and_open_an_app_multithreaded_from_a_plain_host(installed: dict) -> None:
    app = installed["cwd"] / "app"
    app.mkdir()
    (app / "main.py").write_text(APP, encoding="utf-8")
    (app / "test_app.py").write_text(APP_TEST.format(version=__version__), encoding="utf-8")

    tests = run(installed, "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "app")  # the plugin
    assert tests.returncode == 0, tests.stdout + tests.stderr
    assert "2 passed" in tests.stdout

    model = str(default_model())  # 98 MB; a 60M cap (a host's, say) ships it as 2 shards
    proc = run(installed, "py-runner", "export", "app", "site", "--model", model, "--max-file-size", "60M")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    site = installed["cwd"] / "site"
    assert len(list((site / "models").glob("*-of-00002.gguf"))) == 2

    preview, url = start(installed, "export", "--preview", "site")
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/site/", url), url
        from playwright.sync_api import sync_playwright

        from py_runner.host.browser.headless import launch_browser

        with sync_playwright() as p:
            browser = launch_browser(p)
            try:
                page = browser.new_page()
                page.goto(url)
                page.wait_for_function(
                    "['done', 'error'].includes(document.body?.dataset.pyRunnerStatus)", timeout=300_000
                )
                output = page.locator("#py-runner-output").text_content()
                assert page.evaluate("document.body.dataset.pyRunnerStatus") == "done", output
                assert "Paris" in output and "build=mt isolated=True" in output
            finally:
                browser.close()
    finally:
        preview.terminate()
        preview.wait(timeout=10)


APP = """\
import js
from py_runner import GenerateTextParams, LlamaRunner

runner = LlamaRunner()
await runner.load_model("models/SmolLM2-135M-Instruct.Q4_1.gguf")
chat = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
print((await runner.chat(chat, GenerateTextParams(n_predict=24, temp=0))).text)
print(f"build={runner.build} isolated={bool(js.crossOriginIsolated)}")
"""

APP_TEST = """\
from py_runner.host.pytest_plugin import run_in_page


def test_the_page_has_this_py_runner(py_runner_page):
    assert py_runner_page.run("import py_runner; py_runner.__version__") == {version!r}


@run_in_page
async def test_in_the_page(py_runner_page, py_runner_tiny_model_url):
    from py_runner import LlamaRunner

    runner = LlamaRunner()
    spec = await runner.load_model(py_runner_tiny_model_url)
    assert spec.architecture == "llama" and runner.build == "mt"
"""
