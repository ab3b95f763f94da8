"""The headless harness end to end: `py-runner run --script` in real Chromium + Pyodide."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

import py_runner as py_runner_package
from py_runner import __version__
from py_runner.host.build.wheel import library_files

# Not in README's Firefox pass: `py-runner run` and its page; each browser's page: test_browser_engine.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]


def test_run_script_output_argv_await_exit_status(tmp_path: Path, run_cli) -> None:
    (tmp_path / "app.py").write_text(
        textwrap.dedent(
            """\
            import asyncio
            import sys

            import js
            import py_runner

            print("argv:", sys.argv[1:])
            await asyncio.sleep(0.01)
            print("after await")
            print("version:", py_runner.__version__)
            print("isolated:", bool(js.crossOriginIsolated))
            print("unicode: é ✓")
            print("to stderr", file=sys.stderr)
            sys.exit(3)
            """
        ),
        encoding="utf-8",
    )
    proc = run_cli(["run", "--script", "app.py", "one", "two words", "--flag"], cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines == [
        "argv: ['one', 'two words', '--flag']",
        "after await",
        f"version: {__version__}",
        "isolated: True",
        "unicode: é ✓",
    ], proc.stdout + proc.stderr
    assert "to stderr" in proc.stderr


def test_run_script_uncaught_exception_exits_1_with_traceback(tmp_path: Path, run_cli) -> None:
    sub = tmp_path / "pkg"
    sub.mkdir()
    (sub / "boom.py").write_text(
        "print('before')\n\ndef f():\n    raise ValueError('boom here')\n\nf()\n", encoding="utf-8"
    )
    proc = run_cli(["run", "--script", "pkg/boom.py"], cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["before"]
    assert "Traceback (most recent call last):" in proc.stderr
    assert "ValueError: boom here" in proc.stderr
    assert "raise ValueError('boom here')" in proc.stderr  # source lines are shown
    assert "_py_runner_run" not in proc.stderr  # the harness's own frame is hidden


def test_run_script_timeout_is_a_clear_error(tmp_path: Path, run_cli) -> None:
    (tmp_path / "slow.py").write_text("import asyncio\nprint('started')\nawait asyncio.sleep(600)\n")
    proc = run_cli(["run", "--timeout", "20", "--script", "slow.py"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 124, proc.stdout + proc.stderr
    assert proc.stdout.splitlines() == ["started"]
    assert proc.stderr.splitlines()[-1] == "py-runner: error: the program did not finish within 20 s"


def _refusing_modules() -> list[str]:
    """The library's stand-ins for llama-cpp-python modules that cannot exist in a browser: importing one
    raises an ImportError that says why (py_runner/_llama_cpp/_unavailable.py)."""
    folder = Path(py_runner_package.__file__).parent
    return sorted(
        ".".join(("py_runner", *rel.with_suffix("").parts))
        for rel in library_files()
        if "raise missing_module(" in (folder / rel).read_text(encoding="utf-8")
    )


def test_every_module_the_page_installs_imports_there_and_none_is_a_host_tool(pyodide_page) -> None:
    code = """
import importlib, json, pkgutil
import py_runner
names = sorted(m.name for m in pkgutil.walk_packages(py_runner.__path__, "py_runner."))
imported, refused = [], {}
for name in names:
    try:
        imported.append(importlib.import_module(name).__name__)
    except ImportError as exc:
        refused[name] = str(exc)
json.dumps({"names": names, "imported": imported, "refused": refused})
"""
    report = json.loads(pyodide_page.run(code))
    dotted = (".".join(("py_runner", *rel.with_suffix("").parts)) for rel in library_files())
    library = sorted(name.removesuffix(".__init__") for name in dotted)
    assert report["names"] == [n for n in library if n != "py_runner"]  # the library, all of it, and only it
    assert "py_runner._transport.pyodide" in report["names"]
    assert not any(".host" in n for n in report["names"])
    refusing = _refusing_modules()
    assert refusing and sorted(report["refused"]) == refusing  # only the stand-ins refuse, and they all do
    assert all("is not available in the browser" in why for why in report["refused"].values())
    assert report["imported"] == [n for n in report["names"] if n not in refusing]


@pytest.fixture
def cors_host(tmp_path: Path):
    """Another origin that serves a script with CORS headers (what an attacker's host sends): its URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        def end_headers(self) -> None:
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
            super().end_headers()

        def log_message(self, *args) -> None:
            pass

    folder = tmp_path / "evil"
    folder.mkdir()
    (folder / "evil.py").write_text("print('pwned')\n", encoding="utf-8")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/evil.py"
    server.shutdown()
    server.server_close()


def test_run_html_runs_only_paths_on_its_own_origin(tmp_path: Path, cors_host: str) -> None:
    """A page elsewhere that opens run.html?script=... must not run its code in the dev server's origin (it
    could read /models/ and /config.json): data:, blob:, other origins (with CORS headers too), //host and
    backslash tricks are refused before anything loads; a path the server serves still runs."""
    from py_runner.host.browser.headless import run_in_browser
    from py_runner.host.server import start_server, stop_server

    (tmp_path / "ok.py").write_text("print('ok')\n", encoding="utf-8")
    server, base_url = start_server("127.0.0.1", 0, files_dir=tmp_path)
    port = server.server_address[1]
    try:
        hostile = [
            "data:text/plain,print('pwned')",
            cors_host,
            "//" + cors_host.split("//", 1)[1],
            "/\\" + cors_host.split("//", 1)[1],
            f"http://localhost:{port}/files/ok.py",  # the same server under another name: another origin
            f"blob:{base_url}/0b2ff5e1-0000-4000-8000-000000000000",
        ]
        for script in hostile:
            out: list[str] = []
            err: list[str] = []
            status = run_in_browser(
                script, server_base_url=base_url, on_stdout=out.append, on_stderr=err.append
            )
            assert status == 1 and "pwned" not in "".join(out) and "ok" not in "".join(out), script
            assert "refused" in "".join(err), (script, err)
        out = []
        assert run_in_browser("/files/ok.py", server_base_url=base_url, on_stdout=out.append) == 0
        assert "".join(out) == "ok\n"
    finally:
        stop_server(server)


def test_run_script_ends_at_once_on_a_pyodide_fatal_error(tmp_path: Path, run_cli) -> None:
    # Python's JSON encoder recursing through 100,000 nested lists overflows the JS stack under Pyodide's
    # interpreter: "Pyodide has suffered a fatal error", after which the program's promise never settles.
    (tmp_path / "fatal.py").write_text(
        "import json\nprint('before')\nx = []\nfor _ in range(100_000):\n    x = [x]\njson.dumps(x)\n"
    )
    proc = run_cli(["run", "--timeout", "60", "--script", "fatal.py"], cwd=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr  # not 124: the run did not wait out its timeout
    assert proc.stdout.splitlines()[0] == "before"  # then Pyodide's dump of the Python stack
    assert "Pyodide suffered a fatal error and can no longer run Python" in proc.stderr


def _failing_first(page, pattern: str, fail) -> list[str]:
    """Route `pattern` in `page`: its first request fails as `fail(route)` does, later ones go through; the
    requests seen, in order."""
    seen: list[str] = []

    def handle(route) -> None:
        seen.append(route.request.url)
        fail(route) if len(seen) == 1 else route.continue_()

    page.route(pattern, handle)
    return seen


def test_a_page_where_pyodide_failed_to_start_is_opened_once_more(browser_and_server, capsys) -> None:
    """Pyodide's own start failing (WebKitGTK's engine traps in it now and then; here its standard library's
    first download is refused) is not the program's fault: the harness opens the page once more and says
    so."""
    from py_runner.host.browser.headless import HarnessPage

    browser, _, base_url = browser_and_server
    page = browser.new_page()
    seen = _failing_first(page, "**/python_stdlib.zip", lambda route: route.fulfill(status=404, body="gone"))
    harness = HarnessPage(page)
    harness.boot(base_url)
    assert harness.run("1 + 1") == 2 and len(seen) == 2
    err = capsys.readouterr().err
    assert "Pyodide failed to start in the page, before any other code ran" in err
    assert "opening the page once more" in err


def test_a_page_whose_own_start_failed_is_not_opened_again(browser_and_server) -> None:
    """A failure after Pyodide started (here py_runner's wheel is refused) is reported at once, not
    retried."""
    from py_runner.host.browser.headless import HarnessPage
    from py_runner.host.browser.in_page import PageError

    browser, _, base_url = browser_and_server
    page = browser.new_page()
    seen = _failing_first(page, "**/py_runner-*.whl", lambda route: route.fulfill(status=404, body="gone"))
    with pytest.raises(PageError, match="could not boot Pyodide and py_runner"):
        HarnessPage(page).boot(base_url)
    assert len(seen) == 1
