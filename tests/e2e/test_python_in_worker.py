"""Python hosted in a worker (PyScript's worker mode, JupyterLite kernels): py_runner booted by
web/page/boot.js in a module worker (web/page/python_worker.js) started from an http URL and from a `blob:`
URL, against the same chat on the page's main thread, with the real default model. One base URL decides what a
relative path means: the transport, the bridge and the cache resolve against it, so the same relative model
path, given the page's URL, loads the same file from everywhere and finds the same cache entry.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

QUESTION = "What is the capital of France? Answer in one sentence."

# Creates Python workers from the page, each a module that imports web/page/python_worker.js: `kind` "url"
# from an http URL (an app's worker script, /files/app/python.js), "blob" from a blob: URL (how PyScript-style
# runtimes start theirs).
# __pyWorkers[name](msg) sends one request and resolves with its value, or rejects with the worker's error,
# or after CALL_MS without an answer. Firefox under WebDriver BiDi can leave a new Worker() that never runs
# (docs/DESIGN.md; the bridge replaces such an engine worker): a worker that has not answered its first
# request in START_MS is replaced, three times at most, as the bridge does, and nothing waits forever.
START_WORKER = """async ([name, kind, baseUrl]) => {
    const START_MS = 90_000, CALL_MS = 300_000;
    const script = new URL("/web/page/python_worker.js", location.href).href;
    const start = () => {
        const url = kind === "url"
            ? new URL("/files/app/python.js", location.href).href
            : URL.createObjectURL(new Blob([`import ${JSON.stringify(script)};`], {type: "text/javascript"}));
        const worker = new Worker(url, {type: "module"});
        const pending = new Map();
        let nextId = 1;
        worker.onmessage = ({data}) => {
            if (data.stream) return console.log(`[${name}] ${data.text}`);
            const {resolve, reject} = pending.get(data.id);
            pending.delete(data.id);
            "error" in data ? reject(new Error(data.error)) : resolve(data.value);
        };
        worker.onerror = (ev) => { for (const p of pending.values()) p.reject(new Error(ev.message)); };
        const call = (msg, ms = CALL_MS) => new Promise((resolve, reject) => {
            const id = nextId++;
            const timer = setTimeout(() => reject(new Error(`${name}: no answer in ${ms} ms`)), ms);
            const done = (f) => (v) => { clearTimeout(timer); f(v); };
            pending.set(id, {resolve: done(resolve), reject: done(reject)});
            worker.postMessage({id, ...msg});
        });
        return {worker, call};
    };
    const first = baseUrl ? {boot: {baseUrl}} : {code: "None"};
    for (let attempt = 1; ; attempt++) {
        const {worker, call} = start();
        try {
            const value = await call(first, START_MS);
            (window.__pyWorkers ||= {})[name] = call;
            return value;
        } catch (err) {
            worker.terminate();
            if (attempt === 3 || !/no answer/.test(err.message)) throw err;
            console.warn(`[${name}] the worker did not start (${err.message}): replaced`);
        }
    }
}"""

RUN_IN_WORKER = "async ([name, code]) => await window.__pyWorkers[name]({code})"

# The same program everywhere: the base URL py_runner resolves against, a greedy chat with each build, and
# what the cache says of the relative model path. `model` is relative to the page (/web/site/run.html).
CHAT = """
import json
from py_runner import GenerateTextParams, LlamaRunner
from py_runner._transport.pyodide import default_base_url

report = {{"default_base_url": default_base_url(), "builds": {{}}}}
for build in ("st", "mt"):
    runner = LlamaRunner(build=build, n_threads=1, base_url={base_url!r})
    await runner.load_model({model!r})
    reply = await runner.chat(
        [{{"role": "user", "content": {question!r}}}], GenerateTextParams(n_predict=24, temp=0, n_threads=1)
    )
    entry = await runner.cache.inspect({model!r})
    report["builds"][build] = {{
        "build": runner.build, "tokens": reply.tokens, "text": reply.text,
        "cached": entry is not None and entry.complete, "cached_url": entry and entry.url,
        "listed": [e.url for e in await runner.cache.list()],
    }}
    runner.terminate()
json.dumps(report)
"""

# The synchronous facade from a worker: pyodide.ffi.run_sync (JSPI) waits for the engine, no event loop.
SYNC_CHAT = """
import json
from py_runner import Llama

llm = Llama(model_path={model!r}, n_ctx=512, n_threads=1, base_url={base_url!r}, verbose=False)
out = llm.create_chat_completion(
    messages=[{{"role": "user", "content": {question!r}}}], temperature=0, max_tokens=24
)
llm.runner.terminate()
json.dumps({{"content": out["choices"][0]["message"]["content"], "usage": out["usage"]}})
"""


@pytest.fixture
def browser_with_model(open_browser_and_server, tmp_path: Path):
    """(browser, base_url, model path relative to /web/site/run.html, its absolute URL). The model is served
    beside the page (/web/site/local/) and /files/ serves tmp_path, so that a worker started from /files/ or
    from a blob: URL finds the model only if the relative path is resolved against the page's URL."""
    from py_runner.host.build.assets import default_model

    model = default_model()
    served = f"/web/site/local/{model.name}"
    with open_browser_and_server(files_dir=tmp_path, extra_files={served: model}) as (browser, _, base_url):
        yield browser, base_url, f"local/{model.name}", base_url + served


def test_the_same_chat_from_the_page_a_url_worker_and_a_blob_worker(
    require_builds, browser_with_model, tmp_path: Path
) -> None:
    browser, base_url, relative_model, model_url = browser_with_model
    page_url = f"{base_url}/web/site/run.html"
    # A worker script of the app's own, in its own folder: its URL is not the page's.
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "python.js").write_text('import "/web/page/python_worker.js";\n')
    page = browser.new_page()
    page.goto(page_url)
    page.wait_for_function("window.__pyRunnerReady === true", timeout=120_000)
    page.set_default_timeout(600_000)

    def on_page(code: str):
        return page.evaluate("async (code) => await window.__pyRunnerPyodide.runPythonAsync(code)", code)

    # LlamaRunner() is given no base URL: the page's own, and in each worker the one its boot was given (the
    # page's), so the relative model path means the same everywhere. The sync facade below names it instead.
    chat = CHAT.format(base_url=None, model=relative_model, question=QUESTION)
    reports = {"page": json.loads(on_page(chat))}
    for kind in ("url", "blob"):
        assert page.evaluate(START_WORKER, [kind, kind, page_url]) == page_url
        reports[kind] = json.loads(page.evaluate(RUN_IN_WORKER, [kind, chat]))

    reference = reports["page"]["builds"]["st"]
    assert reference["text"] == "The capital of France is Paris."
    for where, report in reports.items():
        assert report["default_base_url"] == page_url  # boot.js was given it (the page: its own URL)
        for build, run in report["builds"].items():
            assert run["build"] == build, where
            assert run["tokens"] == reference["tokens"], (where, build)  # the same tokens everywhere
            assert run["cached"] and run["cached_url"] == model_url, (where, build)
            assert model_url in run["listed"], (where, build)

    # Booted without a base URL, each worker falls back to its own location: a URL worker's URL, a blob:
    # worker's origin (a blob: URL has no folder). Python's rule and boot.js's agree.
    for kind, expected in (("url", f"{base_url}/files/app/python.js"), ("blob", f"{base_url}/")):
        name = f"{kind}-default"
        assert page.evaluate(START_WORKER, [name, kind, None]) is None
        code = (
            "import js\nfrom py_runner._transport.pyodide import default_base_url\n"
            "booted = default_base_url()\njs.eval('delete globalThis.__pyRunnerBaseUrl')\n"
            "[booted, default_base_url()]"
        )
        assert page.evaluate(RUN_IN_WORKER, [name, code]) == [expected, expected]

    # The synchronous facade, through run_sync, from the blob: worker.
    sync = json.loads(
        page.evaluate(RUN_IN_WORKER, ["blob", SYNC_CHAT.format(model=relative_model, base_url=page_url,
                                                                question=QUESTION)])
    )  # fmt: skip
    assert sync["content"] == reference["text"]
