"""Every kind of model source a user can pass, in a real browser: a URL, bytes, a Blob, a File, a list of
Files (split GGUF, in any order, or a FileList), a list of shard URLs; each must load the same model, so
greedy tokens equal the URL load's. And `load_model(signal=...)` with a JS AbortSignal and with a Python
object: the load stops, the runner loads again."""

from __future__ import annotations

import json

import pytest

from py_runner.host.fixtures import fixture_model, split_fixture_model

pytestmark = pytest.mark.e2e

GREEDY = "GenerateTextParams(n_predict=12, temp=0, seed=0)"


def test_every_source_kind_loads_the_same_model(require_builds, pyodide_page) -> None:
    shards = split_fixture_model("tiny", "f16", 3)
    single = fixture_model("tiny", "f16")
    folder = shards[0].parent.name
    shard_urls = [f"/models/{folder}/{p.name}" for p in shards]
    code = f"""
import json
import js
from pyodide.ffi import to_js
from py_runner import GenerateTextParams, LlamaRunner

runner = LlamaRunner(build="st")
url = "/models/{single.name}"
shard_urls = {shard_urls!r}

async def blob_of(u):
    return await (await js.fetch(u)).blob()

async def tokens_of(source):
    spec = await runner.load_model(source, cache=False)
    reply = await runner.generate_text("Once upon a time", {GREEDY})
    return {{"tokens": reply.tokens, "size": spec.file_size, "names": list(spec.file_names)}}

out = {{"url": await tokens_of(url)}}
blob = await blob_of(url)
out["blob"] = await tokens_of(blob)
out["file"] = await tokens_of(js.File.new(to_js([blob]), "{single.name}"))
data = (await (await js.fetch(url)).arrayBuffer()).to_py()  # a memoryview over the model's bytes
out["bytes"] = await tokens_of(bytes(data))
out["bytearray"] = await tokens_of(bytearray(data))
out["memoryview"] = await tokens_of(data)
files = [js.File.new(to_js([await blob_of(u)]), u.rsplit("/", 1)[1]) for u in shard_urls]
out["files"] = await tokens_of(files)
out["files_reversed"] = await tokens_of(list(reversed(files)))  # named by their shard numbers, not order
picked = js.DataTransfer.new()  # what an <input type=file multiple> hands over: a FileList
for f in reversed(files):
    picked.items.add(f)
out["file_list"] = await tokens_of(picked.files)
out["shard_urls"] = await tokens_of(shard_urls)
runner.terminate()
json.dumps(out)
"""
    result = json.loads(pyodide_page.run(code))
    want = result.pop("url")
    assert len(want["tokens"]) == 12 and want["size"] == single.stat().st_size
    split_size = sum(p.stat().st_size for p in shards)
    for kind, got in result.items():
        assert got["tokens"] == want["tokens"], kind
        if kind in ("files", "files_reversed", "file_list", "shard_urls"):
            assert got["size"] == split_size, kind
            assert got["names"] == [p.name for p in shards], kind
        else:
            assert got["size"] == want["size"], kind
    for url, shard in zip(shard_urls, shards, strict=True):  # fetched by the engine too, not only by the test
        assert pyodide_page.server.bytes_sent[url] >= 2 * shard.stat().st_size


@pytest.mark.parametrize("kind", ["AbortController", "python"])
def test_a_signal_stops_the_load_and_the_runner_loads_again(require_builds, pyodide_page, kind: str) -> None:
    model = fixture_model("s135", "q8_0")
    code = f"""
import json
import js
from py_runner import GenerateTextParams, LoadAbortedError, LlamaRunner

class Flag:  # a Python object with a boolean .aborted, as load_model's docstring allows
    aborted = False

    def abort(self):
        self.aborted = True

controller = js.AbortController.new() if {kind!r} == "AbortController" else None
signal = controller.signal if controller is not None else Flag()
abort = controller.abort if controller is not None else signal.abort

runner = LlamaRunner(build="st")
stages = []

def on_progress(info):
    stages.append(info.stage.value)
    if info.stage.value == "downloading" and info.loaded > 0 and not signal.aborted:
        abort()

try:
    await runner.load_model("/models/{model.name}", on_progress, signal, cache=False)
    outcome = "loaded"
except LoadAbortedError as err:
    outcome = "aborted: " + str(err)
after = {{"loaded": runner.is_model_loaded, "loading": runner.is_loading_model}}
# An aborted signal stops a load before it starts, without touching the network.
try:
    await runner.load_model("/models/{model.name}", signal=signal, cache=False)
    again = "loaded"
except LoadAbortedError:
    again = "aborted"
await runner.load_model("/models/{model.name}", cache=False)
reply = await runner.generate_text("Once upon a time", {GREEDY})
runner.terminate()
json.dumps({{"outcome": outcome, "stages": stages, "after": after, "again": again, "tokens": reply.tokens}})
"""
    result = json.loads(pyodide_page.run(code))
    assert result["outcome"].startswith("aborted"), result
    assert "downloading" in result["stages"] and result["stages"][-1] == "aborted", result["stages"]
    assert "loading" not in result["stages"] and "ready" not in result["stages"], result["stages"]
    assert result["after"] == {"loaded": False, "loading": False}
    assert result["again"] == "aborted"
    assert len(result["tokens"]) == 12
