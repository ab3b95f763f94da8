"""The OPFS model cache (web/shared/model_cache.js) in real Chromium with the real engine: a cached URL loads
with no network request, a dropped download resumes with a Range request, entries are listed and deleted from
Python, sha256 is verified, and a full quota is a typed error that leaves no entry."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from faulty_server import FIRST_WINDOW, Faulty, faults_handler
from page_snippets import KEEP_NOTICES

from py_runner.host.browser import browsers
from py_runner.host.browser.headless import harness_page
from py_runner.host.fixtures import fixture_model
from py_runner.host.server import start_server, stop_server
from py_runner.host.skips import skip_or_fail

pytestmark = pytest.mark.e2e


@dataclass
class Page:
    page: Any
    server: Any
    base_url: str
    model_requests: list[dict[str, str]] = field(default_factory=list)  # {url, range} of *.gguf requests

    def py(self, code: str) -> Any:
        """Run Python in the page (top-level await allowed); the code's last expression must be a JSON str."""
        out = self.page.evaluate(
            "async (code) => await window.__pyRunnerPyodide.runPythonAsync(code)", textwrap.dedent(code)
        )
        return json.loads(out)


@contextlib.contextmanager
def _open(
    drop_after: dict[str, int] | None = None, faults: dict[str, Faulty] | None = None
) -> Iterator[Page]:
    server, base_url = start_server("127.0.0.1", 0, drop_after=drop_after)
    if faults:  # before the page opens: a kept-alive connection keeps the handler it started with
        server.RequestHandlerClass = faults_handler(server.RequestHandlerClass, faults)
    try:
        with harness_page(base_url, timeout_s=180) as harness:
            harness.page.set_default_timeout(300_000)
            handle = Page(harness.page, server, base_url)

            def on_request(request: Any) -> None:
                if ".gguf" in request.url:
                    entry = {"url": request.url, "range": request.headers.get("range", "")}
                    handle.model_requests.append(entry)

            harness.page.on("request", on_request)
            yield handle
    finally:
        stop_server(server)


@pytest.fixture
def model():
    return fixture_model("tiny", "f16")


@pytest.fixture
def cache_page(require_builds) -> Iterator[Page]:
    with _open() as page:
        yield page


LOAD = """
import dataclasses
import json
import js
from py_runner import GenerateTextParams, LlamaRunner

async def load_and_generate(url, **kwargs):
    stages = []
    runner = LlamaRunner(build="st")
    try:
        spec = await runner.load_model(url, lambda i: stages.append(i.stage.value), **kwargs)
        out = await runner.generate_text("Once upon a time", GenerateTextParams(n_predict=12, temp=0, seed=0))
        store = runner.load_details.get("download_store")
    finally:
        runner.terminate()
    stages = [s for i, s in enumerate(stages) if i == 0 or stages[i - 1] != s]
    return {"cache_hit": spec.cache_hit, "stages": stages, "tokens": out.tokens, "file_size": spec.file_size,
            "sha256": spec.sha256, "store": store}
"""


def test_second_load_is_served_from_the_cache_with_no_network_request(cache_page: Page, model) -> None:
    url = f"/models/{model.name}"
    cache_page.py(LOAD + "json.dumps(None)")
    first = cache_page.py(f"json.dumps(await load_and_generate({url!r}))")
    assert first["cache_hit"] is False and first["file_size"] == model.stat().st_size
    assert "cache" in first["stages"] and "downloading" in first["stages"]
    assert cache_page.model_requests, "the request log sees the worker's model download"
    sent = cache_page.server.bytes_sent[url]
    assert sent >= model.stat().st_size

    cache_page.model_requests.clear()
    second = cache_page.py(f"json.dumps(await load_and_generate({url!r}))")  # a fresh runner and worker
    assert cache_page.model_requests == []
    assert cache_page.server.bytes_sent[url] == sent
    assert second["cache_hit"] is True
    assert second["tokens"] == first["tokens"] and len(first["tokens"]) == 12
    assert "downloading" not in second["stages"]
    assert second["stages"][-3:] == ["cache", "loading", "ready"]

    # cache=False downloads again (into a scratch file, gone after the load) and leaves the entry alone.
    third = cache_page.py(f"json.dumps(await load_and_generate({url!r}, cache=False))")
    assert third["cache_hit"] is False and third["tokens"] == first["tokens"]
    assert third["store"] == "scratch" and first["store"] == second["store"] == "cache"
    assert any(r["range"] == FIRST_WINDOW for r in cache_page.model_requests)


def test_a_dropped_download_resumes_with_a_range_request(require_builds, model) -> None:
    url = f"/models/{model.name}"
    size = model.stat().st_size
    with _open(drop_after={url: size // 2}) as page:
        page.py(LOAD + "json.dumps(None)")
        result = page.py(f"json.dumps(await load_and_generate({url!r}))")
        assert result["cache_hit"] is False and len(result["tokens"]) == 12
        assert page.server.drop_after == {}, "the server did drop the connection"
        # Bytes of the download itself: less the GGUF header probes (closed ranges "bytes=0-N" other than the
        # download's first window) made before it. Starting over would be >= 1.5x; what the connection lost in
        # flight is re-sent.
        probes = sum(
            min(int(m.group(1)) + 1, size)
            for r in page.model_requests
            if (m := re.fullmatch(r"bytes=0-(\d+)", r["range"])) and r["range"] != FIRST_WINDOW
        )
        assert page.server.bytes_sent[url] - probes < 1.2 * size, (page.server.bytes_sent[url], probes)
        resumed = [r["range"] for r in page.model_requests if r["range"].startswith("bytes=")]
        assert any(int(r[len("bytes=") :].split("-")[0]) > 0 for r in resumed), page.model_requests
        entries = page.py("json.dumps([dataclasses.asdict(e) for e in await LlamaRunner().cache.list()])")
        assert [(e["size"], e["complete"]) for e in entries] == [(size, True)]


def test_cache_list_and_delete_from_python(cache_page: Page, model) -> None:
    url = f"/models/{model.name}"
    size = model.stat().st_size
    report = cache_page.py(
        LOAD
        + f"""
url = {url!r}
runner = LlamaRunner(build="st")
report = {{"empty": [dataclasses.asdict(e) for e in await runner.cache.list()]}}
report["usage_empty"] = dataclasses.asdict(await runner.cache.usage())
await load_and_generate(url)
report["listed"] = [dataclasses.asdict(e) for e in await runner.cache.list()]
report["usage"] = dataclasses.asdict(await runner.cache.usage())
report["deleted"] = await runner.cache.delete(url)
report["after_delete"] = [dataclasses.asdict(e) for e in await runner.cache.list()]
report["deleted_again"] = await runner.cache.delete(url)
report["reload_hit"] = (await load_and_generate(url))["cache_hit"]
report["cleared"] = await runner.cache.clear()
report["after_clear"] = [dataclasses.asdict(e) for e in await runner.cache.list()]
try:
    await load_and_generate("/models/no-such-model.gguf")
except Exception as err:
    report["missing"] = [type(err).__name__, [dataclasses.asdict(e) for e in await runner.cache.list()]]
runner.terminate()
json.dumps(report)
"""
    )
    listed = report["listed"]
    assert report["empty"] == []
    assert len(listed) == 1
    assert listed[0]["url"] == cache_page.base_url + url
    assert listed[0]["size"] == size and listed[0]["complete"] is True and listed[0]["cached_at"]
    # usage(): the models' bytes, within what the origin stores, within its quota
    assert report["usage_empty"]["models"] == 0, report["usage_empty"]
    usage = report["usage"]
    assert usage["models"] == size and size <= usage["usage"] < usage["quota"], usage
    assert report["deleted"] is True and report["after_delete"] == [] and report["deleted_again"] is False
    assert report["reload_hit"] is False  # deleted: downloaded again
    assert report["cleared"] == 1 and report["after_clear"] == []
    assert report["missing"][0] in ("ModelNotFoundError", "NetworkError")
    assert report["missing"][1] == []  # a failed download leaves no entry


def test_sha256_is_verified(cache_page: Page, model) -> None:
    url = f"/models/{model.name}"
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    report = cache_page.py(
        LOAD
        + f"""
from py_runner import ModelIntegrityError
report = {{}}
try:
    await load_and_generate({url!r}, sha256="00" * 32)
except ModelIntegrityError as err:
    report["wrong"] = type(err).__name__
report["after_wrong"] = [dataclasses.asdict(e) for e in await LlamaRunner().cache.list()]
good = await load_and_generate({url!r}, sha256={digest!r})
report["good"] = [good["sha256"], good["cache_hit"], "verifying" in good["stages"]]
again = await load_and_generate({url!r}, sha256={digest!r})
report["again"] = [again["sha256"], again["cache_hit"], "verifying" in again["stages"]]
try:
    await load_and_generate({url!r}, sha256="11" * 32, cache=False)
except ModelIntegrityError as err:
    report["uncached_wrong"] = type(err).__name__
uncached = await load_and_generate({url!r}, sha256={digest!r}, cache=False)
report["uncached"] = [uncached["sha256"], uncached["cache_hit"], "verifying" in uncached["stages"]]
json.dumps(report)
"""
    )
    assert report["wrong"] == "ModelIntegrityError"
    assert report["after_wrong"] == []  # no entry left behind
    assert report["good"] == [digest, False, True]
    assert report["again"] == [digest, True, False]  # the digest is stored with the entry
    assert report["uncached_wrong"] == "ModelIntegrityError"
    assert report["uncached"] == [digest, False, True]  # cache=False: hashed in memory


@contextlib.contextmanager
def _own_browser_page(server_options: dict | None = None, **launch_options: Any) -> Iterator[Page]:
    """A harness page in a browser launched for this test alone (`browsers.launch` options: Firefox prefs,
    hosts Chromium may reach) and a server of its own."""
    from playwright.sync_api import sync_playwright

    from py_runner.host.browser.headless import HarnessPage

    server, base_url = start_server(**(server_options or {"host": "127.0.0.1", "port": 0}))
    try:
        with sync_playwright() as p:
            browser = browsers.launch(p, **launch_options)
            try:
                harness = HarnessPage(browser.new_page())
                harness.page.goto(f"{base_url}/web/site/run.html")
                harness.page.wait_for_function("window.__pyRunnerReady === true", timeout=180_000)
                harness.page.set_default_timeout(300_000)
                yield Page(harness.page, server, base_url)
            finally:
                browser.close()
    finally:
        stop_server(server)


@contextlib.contextmanager
def _page_with_quota(quota_bytes: int) -> Iterator[Page]:
    """A page whose origin may store only `quota_bytes`: Chromium through its DevTools protocol, Firefox
    through its profile (a global limit this small is also the origin's group limit)."""
    if browsers.selected_browser() == "chromium":
        with _open() as page:
            cdp = page.page.context.new_cdp_session(page.page)
            cdp.send("Storage.overrideQuotaForOrigin", {"origin": page.base_url, "quotaSize": quota_bytes})
            yield page
        return
    prefs = {"dom.quotaManager.temporaryStorage.fixedLimit": quota_bytes // 1024}  # KiB
    with _own_browser_page(firefox_prefs=prefs) as page:
        yield page


@pytest.fixture
def quota_page(require_builds) -> Iterator[Page]:
    if browsers.selected_browser() not in ("chromium", "firefox"):
        pytest.skip("no way to shrink this browser's quota from here")
    with _page_with_quota(1 << 20) as page:
        yield page


def test_a_session_over_the_quota_is_the_caches_typed_error_and_leaves_no_entry(quota_page: Page) -> None:
    """Sessions (py_runner/_state.py) are stored beside the models, under the same quota: one that does not
    fit is CacheQuotaError, as a model is, and no partial session is left."""
    from py_runner.host.build.assets import default_model

    report = quota_page.py(
        f"""
import json
from py_runner import CacheQuotaError, GenerateTextParams, LlamaRunner
runner = LlamaRunner(build="st")
await runner.load_model("/models/{default_model().name}", cache=False, ctx_size=512)
await runner.generate_text("word " * 150, GenerateTextParams(temp=0.0, n_predict=1))  # ~3.5 MB of KV cache
try:
    await runner.save_session("too-big")
    error = None
except CacheQuotaError as err:
    error = str(err)
sessions = [s.name for s in await runner.list_sessions()]
runner.terminate()
json.dumps({{"error": error, "sessions": sessions}})
"""
    )
    assert report["error"] and "no room to store session" in report["error"], report
    assert report["sessions"] == []


def test_quota_exceeded_is_a_typed_error_and_leaves_no_entry(quota_page: Page, model) -> None:
    url = f"/models/{model.name}"
    assert model.stat().st_size > 1 << 20  # more than the page may store
    report = quota_page.py(
        LOAD
        + f"""
from py_runner import CacheQuotaError
report = {{}}
try:
    await load_and_generate({url!r})
    report["error"] = None
except CacheQuotaError as err:
    report["error"] = type(err).__name__
    report["message"] = str(err)
    report["quota"] = (await js.navigator.storage.estimate()).quota
report["entries"] = [dataclasses.asdict(e) for e in await LlamaRunner().cache.list()]
uncached = await load_and_generate({url!r}, cache=False)
report["uncached"] = [uncached["cache_hit"], uncached["store"]]
json.dumps(report)
"""
    )
    message, quota = report.pop("message", ""), report.pop("quota", 0)
    # With the cache off, no room for a scratch file either: the download is kept in memory instead.
    assert report == {"error": "CacheQuotaError", "entries": [], "uncached": [False, "memory"]}
    # what the model needs, what the browser grants, what to do
    size_mb = f"{model.stat().st_size / 1e6:.0f} MB"
    # (Chromium's estimate() does not report a quota overridden through DevTools: what it says is named)
    assert f"The model needs {size_mb}; the browser grants this site {quota / 1e6:.0f} MB" in message, message
    assert "Free disk space (or delete cached models: runner.cache), or load with cache=False" in message


def test_an_aborted_download_keeps_its_partial_entry_and_the_next_load_completes_it(
    require_builds, model
) -> None:
    # A slow body (~2 s): the cancel, sent at the first download progress, lands mid-download whatever the
    # machine's speed (from a fast local server the whole file could arrive before it).
    url = f"/slow/{model.name}"
    with _open(faults={url: Faulty(model.read_bytes(), chunk_delay_s=0.015)}) as cache_page:
        report = _aborted_then_reloaded(cache_page, url)
    assert report == {
        "aborted": True,
        "partial": [False],
        "reloaded": [False, model.stat().st_size],
        "after": [True],
    }


def _aborted_then_reloaded(cache_page: Page, url: str) -> dict:
    report = cache_page.py(
        LOAD
        + f"""
from py_runner import LoadAbortedError
runner = LlamaRunner(build="st")

def on_progress(info):
    if info.stage.value == "downloading":
        runner.cancel_loading()

report = {{}}
try:
    await runner.load_model({url!r}, on_progress)
except LoadAbortedError:
    report["aborted"] = True
report["partial"] = [dataclasses.asdict(e)["complete"] for e in await runner.cache.list()]
spec = await runner.load_model({url!r})
report["reloaded"] = [spec.cache_hit, spec.file_size]
report["after"] = [dataclasses.asdict(e)["complete"] for e in await runner.cache.list()]
runner.terminate()
json.dumps(report)
"""
    )
    return report


def test_two_tabs_loading_one_url_share_one_download(require_builds, browser_and_server, model) -> None:
    """Two pages of one origin load the same URL at once: the second waits for the first's download (a Web
    Lock per entry) and loads the finished entry, instead of failing to open a file that is being written."""
    browser, server, base_url = browser_and_server
    url = f"/models/{model.name}"
    size = model.stat().st_size
    code = textwrap.dedent(LOAD) + f"json.dumps(await load_and_generate({url!r}))"
    context = browser.new_context()
    tabs = [context.new_page() for _ in range(2)]
    for tab in tabs:
        tab.goto(f"{base_url}/web/site/run.html")
        tab.wait_for_function("window.__pyRunnerReady === true", timeout=120_000)
    for tab in tabs:  # both start before either waits
        tab.evaluate("(code) => { window.__job = window.__pyRunnerPyodide.runPythonAsync(code); }", code)
    results = [json.loads(tab.evaluate("async () => await window.__job")) for tab in tabs]
    assert [r["tokens"] for r in results][0] == results[1]["tokens"] and len(results[0]["tokens"]) == 12
    assert sorted(r["cache_hit"] for r in results) == [False, True]  # one downloaded, the other found it
    # The model's bytes crossed the network once, plus at most the GGUF header probes of both loads (the
    # second's probe reads the cache when the first download is complete by then, the network when it is not;
    # a probe the page cancels may end before its last byte: timing decides both).
    probes = _header_probe_bytes(model)
    sent = server.bytes_sent[url]
    assert size <= sent <= size + 2 * probes, (sent, size, probes)


def _header_probe_bytes(model) -> int:
    """What load_model's header check (py_runner/_loading.py check_header) reads of this model: growing
    prefixes until the GGUF header parses."""
    from py_runner._gguf import NeedMoreData, parse_header
    from py_runner._loading import HEADER_PROBE_BYTES

    data, length, read = model.read_bytes(), HEADER_PROBE_BYTES, 0
    while True:
        read += min(length, len(data))
        try:
            parse_header(data[:length])
            return read
        except NeedMoreData as more:
            length = max(length * 4, more.needed_at_least)


def test_a_url_whose_name_holds_a_stray_percent_loads_and_caches(
    require_builds, pyodide_page, model, tmp_path
) -> None:
    """`100%.gguf` is not valid percent-encoding: its file name is kept as written (it threw URIError after
    the whole download, and on every cache hit)."""
    shutil.copyfile(model, tmp_path / "100%.gguf")  # pyodide_page serves tmp_path at /files/
    code = textwrap.dedent(LOAD) + textwrap.dedent(
        """
        runs = [await load_and_generate("/files/100%.gguf") for _ in range(2)]
        runs.append(await load_and_generate("/files/100%.gguf", cache=False))
        json.dumps(runs)
        """
    )
    first, second, uncached = json.loads(pyodide_page.run(code))
    assert [first["cache_hit"], second["cache_hit"], uncached["cache_hit"]] == [False, True, False]
    assert first["tokens"] == second["tokens"] == uncached["tokens"] and len(first["tokens"]) == 12


CACHE_STORAGE = """async ({url, digest, wrong, quota}) => {
    await import(new URL("../page/bridge.js", location.href).href);  // which loads model_cache.js in the page
    const C = globalThis.PyRunnerModelCache.backends.cacheStorage;
    const abs = new URL(url, location.href).href;
    const state = {aborted: false, controller: null};
    const progress = () => {};
    const out = {};
    const attempt = async (options) => {
        try {
            await C.download(abs, state, progress, options);
            return "stored";
        } catch (err) {
            return err.name;
        }
    };
    if (quota) {
        out.quota = await attempt({});
        out.afterQuota = await C.list();
        return out;
    }
    out.wrong = await attempt({sha256: wrong});
    out.afterWrong = await C.list();
    const got = await C.download(abs, state, progress, {sha256: digest});
    out.stored = [got.data.size, got.meta.sha256, got.meta.complete];
    const hit = await C.lookup(abs, state, progress, {sha256: digest});
    const magic = hit && new TextDecoder().decode(await hit.data.slice(0, 4).arrayBuffer());
    out.hit = hit && [hit.data.size, hit.meta.sha256, magic];
    out.otherDigest = await C.lookup(abs, state, progress, {sha256: wrong});  // not this entry: dropped
    await C.download(abs, state, progress, {});
    out.listed = (await C.list()).map((e) => [e.url, e.complete, e.size]);
    out.peek = (await globalThis.PyRunnerModelCache.peek(abs))?.size ?? null;
    out.removed = await C.remove(abs);
    out.afterRemove = await C.list();
    return out;
}"""


def test_the_cache_storage_backend_keeps_the_guarantees(cache_page: Page, model) -> None:
    """The backend a browser without an OPFS sync handle gets (WebKit; test_webkit.py loads through it), on
    its own: a wrong sha256 stores nothing, a right one is stored with it, a hit is the same bytes, an entry
    asked for another digest is dropped, and list / peek / remove see it."""
    url = f"/models/{model.name}"
    data = model.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    args = {"url": url, "digest": digest, "wrong": "11" * 32, "quota": False}
    out = cache_page.page.evaluate(CACHE_STORAGE, args)
    assert out["wrong"] == "ModelIntegrityError" and out["afterWrong"] == []
    assert out["stored"] == [len(data), digest, True]
    assert out["hit"] == [len(data), digest, "GGUF"]
    assert out["otherDigest"] is None
    assert out["listed"] == [[f"{cache_page.base_url}{url}", True, len(data)]]
    assert out["peek"] == len(data) and out["removed"] is True and out["afterRemove"] == []


def test_the_cache_storage_backend_reports_a_full_quota(quota_page: Page, model) -> None:
    args = {"url": f"/models/{model.name}", "digest": None, "wrong": None, "quota": True}
    assert quota_page.page.evaluate(CACHE_STORAGE, args) == {"quota": "CacheQuotaError", "afterQuota": []}


def _non_loopback_address() -> str | None:
    """This machine's own address on its network (a UDP connect sends nothing), or None."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


NO_STORAGE = (
    KEEP_NOTICES
    + """
import json
from py_runner import GenerateTextParams, LlamaRunner

import js
report = {"secure": bool(js.isSecureContext), "caches": hasattr(js, "caches")}
runner = LlamaRunner()
for _ in range(2):
    spec = await runner.load_model(URL)  # the cache asked for (the default), and none to be had
    report.setdefault("hits", []).append(spec.cache_hit)
report["backend"] = runner.load_details.get("cache_backend")
out = await runner.generate_text("Once upon a time", GenerateTextParams(n_predict=12, temp=0, seed=0))
report["tokens"], report["build"], report["notices"] = len(out.tokens), runner.build, notices
json.dumps(report)
"""
)


def test_without_any_cache_storage_a_load_goes_on_uncached_with_one_notice(require_builds, model) -> None:
    """A page that is not a secure context (plain http on a network address) has neither OPFS nor Cache
    Storage: the load is not refused, it goes on without a cache and says so once."""
    address = _non_loopback_address()
    if address is None:
        skip_or_fail("no network address here to serve an insecure (non-localhost) page from")
    if browsers.selected_browser() not in browsers.PLAYWRIGHT_BROWSERS:
        pytest.skip("drives a Playwright browser")
    code = textwrap.dedent(f"URL = {f'/models/{model.name}'!r}\n" + NO_STORAGE)
    with _own_browser_page({"host": address, "port": 0}, allow_hosts=(address,)) as page:
        report = page.py(code)
    assert report["secure"] is False and report["caches"] is False
    assert report["hits"] == [False, False] and report["backend"] is None
    assert report["tokens"] == 12 and report["build"] == "st"
    assert report["notices"] == [
        "model cache off: this browser offers neither an Origin Private File System with sync access nor "
        "Cache Storage here; the model was downloaded for this page only"
    ]
