"""A download that a server cuts short, fails or changes under it never ends up cached as a model it is not:
real Chromium, the real engine, and a dev server with misbehaving paths added by the test (the library's own
server does not misbehave this way).

- A response without Content-Length ends cleanly halfway: the size the GGUF header implies says the file is
  not complete, so the download resumes instead of caching half a model.
- The file is replaced between a dropped download and its resume, and the server ignores If-Range: the 206
  carries another ETag, so the download starts over instead of splicing two versions.
- The same with a server that honours If-Range: the resume names the ETag the download began with, the server
  answers 200 with the whole new file, and that one response replaces what was kept (OPFS and memory).
- Connections dropped at random offsets (a fixed seed), a 500 on the first request, a 503 on a resume, an
  abort during a slow body: each ends whole or with a typed error, and the next load completes the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import textwrap
from collections.abc import Iterator
from http import HTTPStatus
from pathlib import Path

import pytest
from faulty_server import FIRST_WINDOW, Faulty, etag_of, faults_handler

from py_runner._transport.protocol import DOWNLOAD_WINDOW_BYTES
from py_runner.host.browser.headless import harness_page
from py_runner.host.fixtures import fixture_model
from py_runner.host.server import start_server, stop_server

pytestmark = pytest.mark.e2e


class Misbehaving:
    """What the faulty paths serve: `versions` (ETag -> bytes) in turn, and a log of what was asked."""

    def __init__(self, versions: list[tuple[str, bytes]]) -> None:
        self.versions = versions
        self.current = 0
        self.requests: list[tuple[str, str]] = []  # (path, Range header)


def _faulty_handler(base: type, state: Misbehaving) -> type:
    class Handler(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if not self.path.startswith("/faulty/"):
                return super().do_GET()
            asked = self.headers.get("Range", "")
            state.requests.append((self.path, asked))
            if asked == FIRST_WINDOW:
                asked = ""  # a download's first request is answered whole (200), as with no Range support
            etag, data = state.versions[state.current]
            if asked.startswith("bytes="):
                first, _, last = asked[len("bytes=") :].partition("-")
                start, end = int(first), min(int(last) if last else len(data) - 1, len(data) - 1)
                self.send_response(HTTPStatus.PARTIAL_CONTENT)  # If-Range is ignored, as some servers do
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
                self.send_header("Content-Length", str(end - start + 1))
                self.send_header("ETag", etag)
                self.end_headers()
                self.wfile.write(data[start : end + 1])
                return None
            self.send_response(HTTPStatus.OK)
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            if self.path.endswith("/nolength.gguf"):
                # No Content-Length: the body ends when the connection closes, which it does cleanly, halfway.
                self.close_connection = True
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                return None
            # The full length is announced, the connection drops halfway, and the file changes on the server.
            self.send_header("Content-Length", str(len(data)))
            self.close_connection = True
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            state.current = min(state.current + 1, len(state.versions) - 1)
            return None

    return Handler


@contextlib.contextmanager
def _page_with(state: Misbehaving) -> Iterator:
    server, base_url = start_server("127.0.0.1", 0)
    server.RequestHandlerClass = _faulty_handler(server.RequestHandlerClass, state)
    try:
        with harness_page(base_url, timeout_s=180) as harness:
            yield harness
    finally:
        stop_server(server)


LOAD = """
import json
from py_runner import LlamaRunner
runner = LlamaRunner(build="st")
results = []
for kwargs in {loads!r}:
    try:
        spec = await runner.load_model("{url}", **kwargs)
        results.append({{"cache_hit": spec.cache_hit, "sha256": spec.sha256, "size": spec.file_size}})
    except Exception as err:
        results.append({{"error": type(err).__name__, "message": str(err)}})
entries = [(e.size, e.complete) for e in await runner.cache.list()]
runner.terminate()
json.dumps({{"results": results, "entries": entries}})
"""


def _run(harness, url: str, loads: list[dict]) -> dict:
    return json.loads(harness.run(textwrap.dedent(LOAD.format(url=url, loads=loads)), timeout_s=300))


def test_a_body_without_length_that_ends_early_is_resumed_not_cached_as_complete(require_builds) -> None:
    data = Path(fixture_model("tiny", "f16")).read_bytes()
    state = Misbehaving([('"v1"', data)])
    digest = hashlib.sha256(data).hexdigest()
    with _page_with(state) as harness:
        out = _run(harness, "/faulty/nolength.gguf", [{}, {"sha256": digest}])
    first, second = out["results"]
    assert first.get("size") == len(data), first  # the whole file, after a Range request for the rest
    assert any(r.startswith(f"bytes={len(data) // 2}-") for _, r in state.requests), state.requests
    assert second == {"cache_hit": True, "sha256": digest, "size": len(data)}, (
        second
    )  # the cached bytes are whole
    assert out["entries"] == [[len(data), True]]


def test_a_file_replaced_before_its_resume_is_downloaded_again_not_spliced(require_builds) -> None:
    old = Path(fixture_model("tiny", "f16")).read_bytes()
    new = Path(fixture_model("tiny", "f16", seed=7)).read_bytes()
    assert len(old) == len(new) and old != new
    state = Misbehaving([('"old"', old), ('"new"', new)])
    digest = hashlib.sha256(new).hexdigest()
    with _page_with(state) as harness:
        out = _run(harness, "/faulty/changing.gguf", [{}, {"sha256": digest}])
    first, second = out["results"]
    assert first.get("size") == len(new), first
    # The resume's 206 came from the new file: it was refused, and the new file was fetched whole.
    full_gets = [r for _, r in state.requests if r in ("", FIRST_WINDOW)]
    assert len(full_gets) == 2, state.requests
    # The cached entry hashes as the new file: a splice of the old file's first half would not.
    assert second == {"cache_hit": True, "sha256": digest, "size": len(new)}, second
    assert out["entries"] == [[len(new), True]]


FAULTS_PROGRAM = """
import asyncio, json
from py_runner import LlamaRunner
runner = LlamaRunner(build="st")

async def attempt(url, abort_after_s=None, **kwargs):
    task = asyncio.ensure_future(runner.load_model(url, **kwargs))
    if abort_after_s is not None:
        await asyncio.sleep(abort_after_s)
        runner.cancel_loading()
    try:
        spec = await task
        return {{"sha256": spec.sha256, "cache_hit": spec.cache_hit}}
    except Exception as err:
        return {{"error": type(err).__name__}}

out = {{}}
for url, first in {plan!r}:
    out[url] = [await attempt(url, **first), await attempt(url, sha256={digest!r})]
out["entries"] = sorted([e.url.rsplit("/", 1)[-1], e.size, e.complete] for e in await runner.cache.list())
runner.terminate()
json.dumps(out)
"""


def test_dropped_failed_and_slow_downloads_end_typed_and_the_next_load_is_whole(require_builds) -> None:
    import random

    data = Path(fixture_model("tiny", "f16")).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    rng = random.Random(1127)
    faults = {
        "/faulty/three-drops.gguf": Faulty(data, cuts=rng.sample(range(1, len(data)), 3)),  # 3 retries: whole
        "/faulty/four-drops.gguf": Faulty(data, cuts=rng.sample(range(1, len(data)), 4)),  # one too many
        "/faulty/error-500.gguf": Faulty(data, statuses={"full": [500]}),
        "/faulty/resume-503.gguf": Faulty(data, cuts=[len(data) // 3], statuses={"resume": [503]}),
        "/faulty/slow.gguf": Faulty(data, chunk_delay_s=0.02),
    }
    plan = [
        ("/faulty/three-drops.gguf", {}),
        ("/faulty/four-drops.gguf", {}),
        ("/faulty/error-500.gguf", {}),
        ("/faulty/resume-503.gguf", {}),
        ("/faulty/slow.gguf", {"abort_after_s": 1.0}),
    ]
    server, base_url = start_server("127.0.0.1", 0)
    server.RequestHandlerClass = faults_handler(server.RequestHandlerClass, faults)
    try:
        with harness_page(base_url, timeout_s=180) as harness:
            program = textwrap.dedent(FAULTS_PROGRAM.format(plan=plan, digest=digest))
            out = json.loads(harness.run(program, timeout_s=600))
    finally:
        stop_server(server)
    whole = {"sha256": digest, "cache_hit": False}
    assert out["/faulty/three-drops.gguf"] == [
        {"sha256": None, "cache_hit": False},
        {**whole, "cache_hit": True},
    ]
    # A fault past the retries, or an HTTP error, is a typed error; the next load makes the file whole
    # (resuming what was kept) and its bytes hash right.
    assert out["/faulty/four-drops.gguf"] == [{"error": "NetworkError"}, whole], out
    assert out["/faulty/error-500.gguf"] == [{"error": "ServerError"}, whole], out
    assert out["/faulty/resume-503.gguf"] == [{"error": "ServerError"}, whole], out
    assert out["/faulty/slow.gguf"] == [{"error": "LoadAbortedError"}, whole], out
    assert ("resume", 206) in faults["/faulty/four-drops.gguf"].log  # the second load resumed, not restarted
    resumed_after_503 = [kind for kind, _ in faults["/faulty/resume-503.gguf"].log].count("full") == 1
    assert resumed_after_503, faults["/faulty/resume-503.gguf"].log
    assert all(complete for _, _, complete in out["entries"]) and len(out["entries"]) == 5, out["entries"]


CHANGED_PROGRAM = """
import json
from py_runner import LlamaRunner
runner = LlamaRunner(build="st")
out = {{}}
for url, cache in {plan!r}:
    try:
        spec = await runner.load_model(url, cache=cache, sha256={digest!r})
        out[url] = {{"sha256": spec.sha256, "size": spec.file_size}}
    except Exception as err:
        out[url] = {{"error": type(err).__name__, "message": str(err)}}
out["entries"] = sorted([e.url.rsplit("/", 1)[-1], e.size, e.complete] for e in await runner.cache.list())
runner.terminate()
json.dumps(out)
"""


def test_a_resume_sends_if_range_and_a_200_to_it_replaces_what_was_kept(require_builds) -> None:
    old = Path(fixture_model("tiny", "f16")).read_bytes()
    new = Path(fixture_model("tiny", "f16", seed=7)).read_bytes()
    assert len(old) == len(new) and old != new and etag_of(old) != etag_of(new)
    cut = len(old) // 2
    # The connection drops at `cut` and the file changes on the server meanwhile; the server honours If-Range.
    faults = {
        "/faulty/changed-cached.gguf": Faulty(old, cuts=[cut], then=new),  # into OPFS
        "/faulty/changed-memory.gguf": Faulty(old, cuts=[cut], then=new),  # cache=False: Blob parts
    }
    plan = [("/faulty/changed-cached.gguf", True), ("/faulty/changed-memory.gguf", False)]
    digest = hashlib.sha256(new).hexdigest()
    server, base_url = start_server("127.0.0.1", 0)
    server.RequestHandlerClass = faults_handler(server.RequestHandlerClass, faults)
    try:
        with harness_page(base_url, timeout_s=180) as harness:
            program = textwrap.dedent(CHANGED_PROGRAM.format(plan=plan, digest=digest))
            out = json.loads(harness.run(program, timeout_s=600))
    finally:
        stop_server(server)
    for url, fault in faults.items():
        # Past the header probes (other ranges from byte 0), the download: its first window (the file is
        # smaller than one), then a resume that asked for the rest only if the file is still the one it began
        # with (the ETag of its first response).
        download = [
            asked for asked in fault.asked if asked[0] == FIRST_WINDOW or not asked[0].startswith("bytes=0-")
        ]
        assert len(download) == 2 and download[0] == (FIRST_WINDOW, None), (url, fault.asked)
        # It resumes from what it kept: at most the cut (bytes the browser had in flight when the connection
        # dropped may be lost with it: seen at a 4 MiB boundary on a loaded machine), never from the start.
        resume_range, if_range = download[1]
        start = int(resume_range.removeprefix("bytes=").partition("-")[0])
        assert 0 < start <= cut and resume_range == f"bytes={start}-{start + DOWNLOAD_WINDOW_BYTES - 1}", (
            url,
            fault.asked,
        )
        assert if_range == etag_of(old), (url, fault.asked)
        # It is not: the server sent the new file whole, with 200, and the download took that response as the
        # file, from its first byte: no further request (a 416, a fresh start), no splice.
        assert [entry for entry in fault.log if entry[0] != "probe"] == [("full", 206), ("resume", 200)], (
            url,
            fault.log,
        )
        assert out[url] == {"sha256": digest, "size": len(new)}, (url, out[url])
    assert out["entries"] == [["changed-cached.gguf", len(new), True]], out["entries"]


def test_a_same_origin_download_comes_in_windows_and_a_cut_window_resumes_where_it_stopped(
    require_builds,
) -> None:
    """The default model (98 MB: three windows, the last one short): every download request is one bounded
    window (the next asked while one is read, so Firefox's parent never buffers the whole model); the
    connection drops in the middle of the second window, and the download resumes from what it kept, still in
    windows, with If-Range, to the right bytes."""
    from py_runner.host.build.assets import default_model

    data = default_model().read_bytes()
    assert len(data) > 2 * DOWNLOAD_WINDOW_BYTES
    cut = DOWNLOAD_WINDOW_BYTES + DOWNLOAD_WINDOW_BYTES // 2
    faults = {"/faulty/windows.gguf": Faulty(data, cuts=[cut])}
    digest = hashlib.sha256(data).hexdigest()
    server, base_url = start_server("127.0.0.1", 0)
    server.RequestHandlerClass = faults_handler(server.RequestHandlerClass, faults)
    try:
        with harness_page(base_url, timeout_s=180) as harness:
            out = _run(harness, "/faulty/windows.gguf", [{"sha256": digest}])
    finally:
        stop_server(server)
    assert out["results"] == [{"cache_hit": False, "sha256": digest, "size": len(data)}], out
    fault = faults["/faulty/windows.gguf"]
    download = [a for a in fault.asked if a[0] == FIRST_WINDOW or not a[0].startswith("bytes=0-")]
    assert download[0] == (FIRST_WINDOW, None), fault.asked
    starts = []
    for asked, if_range in download:
        first, _, last = asked.removeprefix("bytes=").partition("-")
        assert int(last) == int(first) + DOWNLOAD_WINDOW_BYTES - 1, fault.asked  # never an open-ended request
        assert if_range == (None if first == "0" else etag_of(data)), fault.asked
        starts.append(int(first))
    # Windows 0, 1 and 2 (asked for ahead while 1 was read), then the cut window's resume (past its start, at
    # most the cut: what was in flight may be lost) and the window after it, which reaches the end.
    window = DOWNLOAD_WINDOW_BYTES
    resume = next(start for start in starts if start % window)
    assert window < resume <= cut, fault.asked
    assert sorted(starts) == [0, window, resume, 2 * window, resume + window], fault.asked
    assert ("full", 206) in fault.log and ("resume", 206) in fault.log, fault.log
