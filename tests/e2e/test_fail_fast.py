"""A wrong file or a missing URL fails after a few hundred KB at most, never after the whole download."""

from __future__ import annotations

import json

import pytest

from py_runner.host.fixtures import fixture_model

pytestmark = pytest.mark.e2e

LOAD = """
import json
from py_runner import LlamaRunner, LocalWebAIError

runner = LlamaRunner(build="st")
stages = []
try:
    await runner.load_model(URL, progress_callback=lambda info: stages.append(info.stage.value))
    outcome = "loaded"
    fields = {}
except LocalWebAIError as err:
    outcome = f"{type(err).__name__}: {err}"
    fields = {"url": getattr(err, "url", None), "status": getattr(err, "status", None)}
runner.terminate()
json.dumps({"outcome": outcome, "stages": stages, **fields})
"""


def load(pyodide_page, url: str) -> dict:
    return json.loads(pyodide_page.run(LOAD.replace("URL", repr(url))))


def test_bad_magic_and_404_fail_before_the_download(require_builds, pyodide_page, tmp_path) -> None:
    size = 32 * 1024 * 1024
    # e.g. a login page saved as .gguf
    (tmp_path / "page.gguf").write_bytes(b"<!doctype html>" + bytes(size - 15))
    result = load(pyodide_page, "/files/page.gguf")
    assert result["outcome"].startswith("ModelCompatibilityError: /files/page.gguf: not a GGUF file")
    assert result["stages"][-1] == "error" and "downloading" not in result["stages"]
    sent = pyodide_page.server.bytes_sent["/files/page.gguf"]
    assert 0 < sent <= 1024 * 1024 < size  # only the probe crossed the wire

    result = load(pyodide_page, "/files/missing.gguf")
    assert result["outcome"].startswith("ModelNotFoundError: fetching ")
    assert "HTTP 404" in result["outcome"] and result["stages"][-1] == "error"
    # URL and status cross from JS as error fields (web/shared/protocol.js), not parsed out of the message
    assert result["status"] == 404 and result["url"].endswith("/files/missing.gguf")


def test_truncated_download_is_detected_from_the_header(require_builds, pyodide_page, tmp_path) -> None:
    data = fixture_model("tiny", "f16").read_bytes()
    (tmp_path / "half.gguf").write_bytes(data[: len(data) // 2])
    result = load(pyodide_page, "/files/half.gguf")
    assert result["outcome"].startswith("TruncatedModelError: /files/half.gguf has ")
    assert pyodide_page.server.bytes_sent["/files/half.gguf"] < len(data) // 2


def test_engine_out_of_memory_is_typed_and_the_engine_restarts(require_builds, pyodide_page) -> None:
    model = fixture_model("tiny", "f16")
    big = fixture_model("s135", "q8_0")
    code = f"""
import json
import py_runner._loading
from py_runner import EngineOutOfMemoryError, GenerateTextParams, LlamaRunner, ModelTooLargeError

runner = LlamaRunner(build="st")
# A 1M-token context: its KV cache (23 GB) cannot exist in a 4 GB wasm32 address space. The GGUF header says
# so before any download ...
try:
    await runner.load_model("/models/{big.name}", ctx_size=1_000_000, cache=False)
    refused = "loaded"
except ModelTooLargeError as err:
    refused = str(err)
# ... and with that check out of the way, the engine's own allocation failure is typed too (what a model the
# estimate misjudges would meet), and the engine restarts.
py_runner._loading.check_fits = lambda *args, **kwargs: None
try:
    await runner.load_model("/models/{big.name}", ctx_size=1_000_000, cache=False)
    outcome = "loaded"
except EngineOutOfMemoryError as err:
    outcome = str(err)
spec = await runner.load_model("/models/{model.name}", cache=False)
result = await runner.generate_text("Hello", GenerateTextParams(n_predict=4, temp=0))
runner.terminate()
json.dumps({{"refused": refused, "outcome": outcome, "tokens": len(result.tokens)}})
"""
    result = json.loads(pyodide_page.run(code))
    assert "GiB of KV cache at ctx_size=1000000" in result["refused"], result["refused"]
    assert "allocate" in result["outcome"] or "not enough space" in result["outcome"], result["outcome"]
    assert result["tokens"] == 4


@pytest.fixture
def no_cors_host(tmp_path):
    """Another origin that answers with the model but sends no CORS headers: its URL. Its
    Cross-Origin-Resource-Policy lets any page embed its responses, so a page can see that it answered."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Handler(SimpleHTTPRequestHandler):
        def end_headers(self) -> None:
            self.send_header("Cross-Origin-Resource-Policy", "cross-origin")
            super().end_headers()

        def log_message(self, *args) -> None:
            pass

    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "model.gguf").write_bytes(fixture_model("tiny", "f16").read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/model.gguf"
    server.shutdown()
    server.server_close()


def test_cross_origin_url_without_cors_is_a_typed_error(require_builds, pyodide_page, no_cors_host) -> None:
    result, url = load(pyodide_page, no_cors_host), no_cors_host
    assert result["outcome"].startswith(f"CorsBlockedError: fetching {url} failed"), result["outcome"]
    assert "the server answered" in result["outcome"] and result["url"] == url
    assert result["stages"][-1] == "error"


def test_a_dead_port_is_a_network_error_not_a_cors_block(require_builds, pyodide_page, tmp_path) -> None:
    """Nothing listens: a NetworkError (the parent type), not CorsBlockedError (the server answered).
    A server up but hiding its answers from this page (the dev server's own CORP: same-origin, seen from
    another origin) is one a page cannot tell from a dead port: a NetworkError that says so."""
    import socket

    with socket.socket() as sock:
        # Bound, never listening: connections are refused, and no other process can take the port meanwhile.
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/model.gguf"
        result = load(pyodide_page, url)
    assert result["outcome"].startswith(f"NetworkError: fetching {url} failed"), result["outcome"]
    assert "no answer from the server" in result["outcome"] and result["url"] == url
    assert result["stages"][-1] == "error"

    (tmp_path / "model.gguf").write_bytes(fixture_model("tiny", "f16").read_bytes())
    port = pyodide_page.base_url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/files/model.gguf"  # the page is on 127.0.0.1: another origin
    result = load(pyodide_page, url)
    assert result["outcome"].startswith(f"NetworkError: fetching {url} failed"), result["outcome"]
    assert "Cross-Origin-Resource-Policy" in result["outcome"]
