"""The WebKit smoke suite: WebKitGTK (MiniBrowser through Selenium and WebKitWebDriver, on Xvfb), whatever
--browser says. The default real model from a URL: generate, chat, cancel, a second load from the cache the
browser offers (Cache Storage: WebKitGTK has no `navigator.storage`), on the st build that a browser without
SharedArrayBuffer gets, with a notice; the sync facade without JSPI raises SyncCallError naming its async
twin; mt only with the test-only `JSC_useSharedArrayBuffer=1`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from native_parity import assert_free_running_agrees, native_generate
from page_snippets import KEEP_NOTICES

from py_runner.host.browser.browsers import engine_of
from py_runner.host.browser.headless import HarnessPage
from py_runner.host.browser.in_page import InPageError
from py_runner.host.build.assets import default_model

pytestmark = [pytest.mark.e2e, pytest.mark.webkit]

FRANCE = "What is the capital of France? Answer in one sentence."
COMPLETION = "Once upon a time"
N_PREDICT = 24


@pytest.fixture(scope="module")
def model() -> Path:
    return default_model()


@pytest.fixture(scope="module")
def server(model: Path) -> Iterator[str]:
    from py_runner.host.server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, extra_files={f"/local-model/{model.name}": model})
    try:
        yield base_url
    finally:
        stop_server(server)


@pytest.fixture
def webkit(require_builds, require_webkit):
    """`with webkit(base_url, shared_memory=False) as page`: a HarnessPage in a fresh WebKitGTK session."""
    from contextlib import contextmanager

    from py_runner.host.browser.browsers import launch_webkit

    @contextmanager
    def open_page(base_url: str, *, shared_memory: bool = False) -> Iterator[HarnessPage]:
        with launch_webkit(shared_memory=shared_memory) as browser:
            page = browser.new_page()
            harness = HarnessPage(page)
            harness.boot(base_url, timeout_s=180)  # once more if Pyodide itself failed to start (headless.py)
            yield harness

    return open_page


def test_webkit_pages_run_webkit(webkit, server: str) -> None:
    # The pass runs the engine it names (test_browser_engine.py checks --browser's; this suite is WebKit's).
    with webkit(server) as page:
        agent = page.run("import js\njs.navigator.userAgent")
    assert engine_of(agent) == "webkit", agent


SMOKE = (
    KEEP_NOTICES.replace("{", "{{").replace("}", "}}")
    + """
import json
from py_runner import GenerateTextParams, LlamaRunner

greedy = GenerateTextParams(n_predict={n_predict}, temp=0, n_threads=1)
report = {{}}
runner = LlamaRunner()
spec = await runner.load_model({url!r})
report["build"], report["simd"], report["first_cache_hit"] = runner.build, runner.simd, spec.cache_hit
report["backend"] = runner.load_details.get("cache_backend")
report["completion"] = (await runner.generate_text({completion!r}, greedy)).tokens
reply = await runner.chat([{{"role": "user", "content": {france!r}}}], greedy)
report["chat"] = reply.text
saved = await runner.save_session("webkit")  # in Cache Storage: WebKit has no OPFS here

# cancel: a long generation stopped after its third token keeps exactly those three
chunks = []
def on_token(chunk):
    chunks.append(chunk)
    if len(chunks) == 3:
        runner.cancel()
long = GenerateTextParams(n_predict=200, temp=0)
result = await runner.generate_text("Tell me a long story.", long, on_token)
report["cancel"] = [result.finish_reason, len(result.tokens)]

report["notices"] = list(notices)  # the first runner's

# a second load: from the browser's cache, no download
again = LlamaRunner()
spec2 = await again.load_model({url!r})
report["second_cache_hit"] = spec2.cache_hit
report["second_completion"] = (await again.generate_text({completion!r}, greedy)).tokens
report["cache_list"] = [e.url for e in await again.cache.list()]
restored = await again.load_session("webkit")
again_reply = await again.chat([{{"role": "user", "content": {france!r}}}], greedy)
report["session"] = [restored.n_tokens == saved.n_tokens, again_reply.text, again_reply.prompt_tokens,
                     again_reply.prompt_tokens_reused]
json.dumps(report)
"""
)


def test_webkit_loads_generates_chats_cancels_and_reloads_from_its_cache(
    webkit, server: str, model: Path
) -> None:
    url = f"/local-model/{model.name}"
    with webkit(server) as page:
        code = SMOKE.format(n_predict=N_PREDICT, url=url, completion=COMPLETION, france=FRANCE)
        report = json.loads(page.run(code, timeout_s=600))
    native = native_generate(model, "--prompt", COMPLETION, "--n-predict", str(N_PREDICT), "--threads", "1")
    assert report["build"] == "st"  # no SharedArrayBuffer: the st build, and one notice that says why
    assert report["simd"] == "simd128"  # WebKit validates no relaxed-SIMD module: the SIMD128 variant
    no_shared_memory = "this browser has no SharedArrayBuffer, although the page is cross-origin isolated"
    assert report["notices"] == [f"single-thread build: {no_shared_memory}"], report["notices"]
    # Native llama.cpp runs other SIMD kernels: equal up to a near tie, as native_parity.py allows.
    assert_free_running_agrees(model, COMPLETION, report["completion"], native["tokens"], "webkit st")
    assert report["chat"] == "The capital of France is Paris."
    assert report["cancel"] == ["aborted", 3]
    assert report["backend"] == "cache-storage" and report["first_cache_hit"] is False
    # The same engine and build on the same bytes from the cache: the same tokens, exactly.
    assert report["second_cache_hit"] is True and report["second_completion"] == report["completion"]
    assert report["cache_list"] == [f"{server}{url}"]
    # a session saved by the first runner, restored in the second: the chat's prompt comes from it
    restored, text, prompt_tokens, reused = report["session"]
    assert restored and text == report["chat"] and reused == prompt_tokens - 1


SYNC_WITHOUT_JSPI = """
import json
from py_runner import Llama, SyncCallError

outcome = {{"jspi": hasattr(__import__("js").WebAssembly, "Suspending")}}
try:
    Llama(model_path={url!r}, verbose=False)
    outcome["constructor"] = "loaded"
except SyncCallError as exc:
    outcome["constructor"] = str(exc)
llm = await Llama.load({url!r}, verbose=False)  # the async twin works
chat = [{{"role": "user", "content": {france!r}}}]
try:
    llm.create_chat_completion(messages=chat, temperature=0)
    outcome["chat"] = "answered"
except SyncCallError as exc:
    outcome["chat"] = str(exc)
reply = await llm.acreate_chat_completion(messages=chat, temperature=0, max_tokens=24)
outcome["async_reply"] = reply["choices"][0]["message"]["content"]
json.dumps(outcome)
"""


def test_webkit_without_jspi_sync_calls_name_their_async_twin(webkit, server: str, model: Path) -> None:
    url = f"/local-model/{model.name}"
    with webkit(server) as page:
        outcome = json.loads(page.run(SYNC_WITHOUT_JSPI.format(url=url, france=FRANCE), timeout_s=600))
    assert outcome["jspi"] is False
    no_jspi = (
        "cannot wait here (this browser has no JSPI (WebAssembly.Suspending)): use `await {}(...)` instead"
    )
    assert outcome["constructor"] == no_jspi.format("Llama.load")
    assert outcome["chat"] == no_jspi.format("llm.acreate_chat_completion")
    assert outcome["async_reply"] == "The capital of France is Paris."


MT_WITH_SHARED_MEMORY = """
import json
from py_runner import GenerateTextParams, LlamaRunner

greedy = GenerateTextParams(n_predict={n_predict}, temp=0)
st = LlamaRunner(build="st")
await st.load_model({url!r})
st_tokens = (await st.generate_text({completion!r}, greedy)).tokens
st.terminate()
runner = LlamaRunner(build="mt", n_threads=2)
await runner.load_model({url!r})
result = await runner.generate_text({completion!r}, greedy)
threads = runner.load_details["threads"]
json.dumps({{"build": runner.build, "threads": threads, "tokens": result.tokens, "st_tokens": st_tokens}})
"""


def test_webkit_runs_mt_only_with_its_test_only_shared_memory_switch(
    webkit, server: str, model: Path
) -> None:
    url = f"/local-model/{model.name}"
    code = MT_WITH_SHARED_MEMORY.format(url=url, completion=COMPLETION, n_predict=N_PREDICT)
    with webkit(server) as page:  # as shipped: mt is refused, and the message says what is missing
        refused = page.run(
            "from py_runner import LlamaRunner, BridgeError\n"
            f"try:\n    await LlamaRunner(build='mt').load_model({url!r})\n    r = 'loaded'\n"
            "except BridgeError as exc:\n    r = str(exc)\nr"
        )
    assert "this browser has no SharedArrayBuffer, although the page is cross-origin isolated" in refused
    # JSC_useSharedArrayBuffer=1 is a switch no user has, and JavaScriptCore's wasm threads under it
    # trapped once in CI ("Out of bounds memory access" in the prompt's eval; the same builds are exact in
    # Chromium and Firefox, and JSC once trapped the same way in Pyodide's own start, with no py_runner code
    # running): that trap gets one more try in a fresh page, with a warning. Any other failure, or the trap
    # twice, fails.
    for attempt in (1, 2):
        with webkit(server, shared_memory=True) as page:
            try:
                # A bound, not a speed test: this test took 88 s on 2 cores under a load of 8, and two threads
                # on two busy cores slow down most; 1,200 s holds on a machine 4x slower.
                run = json.loads(page.run(code, timeout_s=1200))
                break
            except InPageError as exc:
                if attempt == 2 or "Out of bounds memory access" not in str(exc):
                    raise
                trapped = f"WebKit's test-only shared memory trapped; trying once more: {exc}"
                warnings.warn(trapped, stacklevel=1)
    native = native_generate(model, "--prompt", COMPLETION, "--n-predict", str(N_PREDICT), "--threads", "1")
    assert run["build"] == "mt" and run["threads"] == 2
    # One engine, one set of kernels: mt on two threads gives st's tokens exactly; native up to a near tie.
    assert run["tokens"] == run["st_tokens"]
    assert_free_running_agrees(model, COMPLETION, run["tokens"], native["tokens"], "webkit mt 2 threads")
