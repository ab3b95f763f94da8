"""Big models, up to the 32-bit WebAssembly heap's ceiling, in the browser this pass runs (Chromium: st and
mt; Firefox: st). The 2.57 GB fixture is past 2 GiB: its weights cannot be one allocation (dlmalloc's limit),
and neither an off-the-record OPFS nor a Blob in memory held it. It loads from the cache (a first visit that
fills it, then a hit), without it (a scratch file, not a second copy in memory), from a File and in two
shards; the 3.30 GB one from the cache. Each load's first greedy tokens agree with native llama.cpp's.
A model past the ceiling fails from its header, before its download.
One load per case: these take tens of seconds each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from native_parity import assert_free_running_agrees, native_generate

from py_runner.host.browser import browsers
from py_runner.host.fixtures import claimed_model, fixture_model, split_fixture_model

pytestmark = pytest.mark.e2e

PROMPT = "Hello there"
N_PREDICT = 4
CTX = 512
TIMEOUT_S = 1800  # a 4x slower machine than this one still makes it


@pytest.fixture(scope="module")
def big() -> tuple[Path, list[int]]:
    """The 2.57 GB model and native llama.cpp's greedy tokens for it."""
    return _with_native("big-2.6g")


def _with_native(preset: str) -> tuple[Path, list[int]]:
    model = fixture_model(preset, "f16")
    native = native_generate(model, "--prompt", PROMPT, "--n-predict", str(N_PREDICT), "--ctx-size", str(CTX))
    assert len(native["tokens"]) == N_PREDICT
    return model, native["tokens"]


def _load_and_generate(model: Path, build: str, sources: list[str]) -> list[dict]:
    """In a fresh page (its own storage), load the model once per source ("cached", "uncached", "file"),
    generating after each; each result: {tokens, cache_hit, heap, file_size, backend, store, file_reads} or
    {error}."""
    code = f"""
import json, js
from pyodide.ffi import to_js
from py_runner import GenerateTextParams, LlamaRunner
url = "/big/{model.name}"
out = []
for source in {sources!r}:
    runner = LlamaRunner(build="{build}", n_threads=1)
    try:
        if source == "cached":
            spec = await runner.load_model(url, ctx_size={CTX})
        elif source == "uncached":
            spec = await runner.load_model(url, ctx_size={CTX}, cache=False)
        else:  # a File the page holds (a Blob the browser keeps on disk or in memory, not the heap)
            blob = await (await js.fetch(url)).blob()
            spec = await runner.load_model(js.File.new(to_js([blob]), "{model.name}"), ctx_size={CTX})
        reply = await runner.generate_text({PROMPT!r}, GenerateTextParams(n_predict={N_PREDICT}, temp=0))
        meta = runner._model.metadata
        out.append({{"tokens": reply.tokens, "cache_hit": spec.cache_hit, "file_size": spec.file_size,
                     "heap": meta["wasm_heap_bytes"], "backend": meta.get("cache_backend"),
                     "store": meta.get("download_store"),
                     # reads through a File (FileReaderSync), not the OPFS file's sync access handle
                     "file_reads": meta["load_timings"]["blob_reads"]}})
    except Exception as err:
        out.append({{"error": f"{{type(err).__name__}}: {{err}}"}})
    finally:
        runner.terminate()
if "uncached" in {sources!r}:  # the scratch file is gone once the engine has read it
    root = await js.navigator.storage.getDirectory()
    names = []
    try:
        scratch = await root.getDirectoryHandle("py_runner-scratch")
        names = [name async for name in scratch.keys()]
    except Exception:
        pass
    out.append({{"scratch_left": names}})
json.dumps(out)
"""
    return json.loads(_run_in_page(code, {f"/big/{model.name}": model}))


def _run_in_page(code: str, files: dict[str, Path]) -> str:
    """Run `code` in a fresh harness page (storage of its own) of a server that offers `files`."""
    from py_runner.host.browser.headless import harness_page
    from py_runner.host.server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, extra_files=files)
    try:
        with harness_page(base_url) as page:
            return page.run(code, timeout_s=TIMEOUT_S)
    finally:
        stop_server(server)


# Chromium runs st and mt; Firefox st (its mt is not among the targets), outside README's Firefox pass.
BUILDS = ["st", "mt"] if browsers.selected_browser() == "chromium" else ["st"]


@pytest.mark.one_browser  # in Firefox, the cache path's load: the 3.3 GB test
@pytest.mark.parametrize("build", BUILDS)
def test_the_2_6_gb_model_from_the_cache(require_builds, big, build: str) -> None:
    model, native = big
    first, hit = _load_and_generate(model, build, ["cached", "cached"])
    for label, result in (("first visit", first), ("cache hit", hit)):
        assert "error" not in result, (label, result)
        assert result["file_size"] == model.stat().st_size
        assert (result["backend"], result["store"]) == ("opfs", "cache"), result
        # the engine read the entry through a read-only sync access handle, straight into the heap: no
        # ArrayBuffer per read, which V8 collects late (+0.8x the model at peak when read as a File)
        assert result["file_reads"] == 0, result
        assert_free_running_agrees(model, PROMPT, result["tokens"], native, f"{build} {label}", ctx_size=CTX)
    assert (first["cache_hit"], hit["cache_hit"]) == (False, True)
    assert first["heap"] < 4 * 1024**3 and first["heap"] > model.stat().st_size


def test_the_2_6_gb_model_without_the_cache_and_from_a_file(require_builds, big) -> None:
    model, native = big
    uncached, from_file, left = _load_and_generate(model, "st", ["uncached", "file"])
    for label, result in (("cache=False", uncached), ("File", from_file)):
        assert "error" not in result, (label, result)
        assert result["cache_hit"] is False and result["file_size"] == model.stat().st_size
        assert_free_running_agrees(model, PROMPT, result["tokens"], native, label, ctx_size=CTX)
    # the download went to a scratch file on disk, not a second copy in memory, and the file is gone
    assert uncached["store"] == "scratch" and from_file["store"] is None
    assert uncached["file_reads"] == 0 and from_file["file_reads"] > 0
    assert left == {"scratch_left": []}


@pytest.mark.one_browser  # finding the shards is the page's and the glue's; Firefox's big loads: above
def test_the_2_6_gb_model_in_shards_without_the_cache(require_builds, big) -> None:
    """Split in two (each shard under 2 GiB, the model over it), loaded from the first shard's URL."""
    model, native = big
    shards = split_fixture_model("big-2.6g", "f16", 2)
    code = f"""
import json
from py_runner import GenerateTextParams, LlamaRunner
runner = LlamaRunner(build="st", n_threads=1)
spec = await runner.load_model("/big/{shards[0].name}", ctx_size={CTX}, cache=False)
reply = await runner.generate_text({PROMPT!r}, GenerateTextParams(n_predict={N_PREDICT}, temp=0))
runner.terminate()
json.dumps({{"tokens": reply.tokens, "names": list(spec.file_names), "size": spec.file_size}})
"""
    result = json.loads(_run_in_page(code, {f"/big/{p.name}": p for p in shards}))
    assert result["names"] == [p.name for p in shards]
    assert result["size"] == sum(p.stat().st_size for p in shards)
    assert_free_running_agrees(model, PROMPT, result["tokens"], native, "2 shards", ctx_size=CTX)


def test_the_3_3_gb_model_from_the_cache(require_builds) -> None:
    model, native = _with_native("big-3.3g")
    (result,) = _load_and_generate(model, "st", ["cached"])
    assert "error" not in result, result
    assert result["heap"] > 3 * 1024**3
    assert_free_running_agrees(model, PROMPT, result["tokens"], native, "3.3 GB", ctx_size=CTX)


def test_a_model_past_the_ceiling_fails_before_its_download(require_builds, pyodide_page, tmp_path) -> None:
    """A 6 GB model (a header and a hole: no disk used) is refused from its first bytes: ModelTooLargeError
    naming what it needs, and the page fetched no more than the header probe."""
    model = claimed_model(tmp_path / "six.gguf", "big-2.6g", 47)
    code = """
from py_runner import LlamaRunner, ModelTooLargeError
runner = LlamaRunner(build="st")
try:
    await runner.load_model("/files/six.gguf")
    outcome = "loaded"
except ModelTooLargeError as err:
    outcome = str(err)
runner.terminate()
outcome
"""
    outcome = pyodide_page.run(code)
    assert outcome.startswith("/files/six.gguf needs about 6.01 GiB"), outcome
    assert "No context fits" in outcome
    assert pyodide_page.server.bytes_sent["/files/six.gguf"] < 8 << 20 < model.stat().st_size
