"""Saved states, sessions that survive a reload, and reranking, in the real engine (issue 27).

A session is saved in one page, the page is reloaded (a new document, new workers: nothing in memory
survives), and the conversation's next turn in the new page evaluates only its new tokens and continues
exactly as it did in the first page. Reranking scores equal native llama.cpp's, which runs the same glue
(pr_native rerank)."""

from __future__ import annotations

import json
import subprocess

import pytest

from py_runner.host.build.assets import default_model
from py_runner.host.build.paths import native_binary
from py_runner.host.fixtures import embedding_fixture_model

pytestmark = pytest.mark.e2e

QUERY = "What is the capital of France?"
DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "The quick brown fox jumps over the lazy dog.",
    "Berlin is the capital of Germany.",
    "France is a country in Western Europe; its capital is Paris.",
    "Ünïcödé façade, emoji 😀 and CJK 中文字符",
]


def native_rerank(model, query: str, documents: list[str]) -> dict:
    args = [str(native_binary()), "rerank", "--model", str(model), "--query", query]
    for document in documents:
        args += ["--document", document]
    proc = subprocess.run(args, capture_output=True, text=True, check=True, timeout=300)
    return json.loads(proc.stdout)


@pytest.mark.parametrize("build", ["st", "mt"])
def test_rerank_scores_equal_native_llama_cpp_sorted_as_llama_server_returns_them(
    require_builds, pyodide_page, build: str
) -> None:
    reranker = embedding_fixture_model("rank")
    embedder = embedding_fixture_model("mean")
    code = f"""
import json
from py_runner import EmbeddingNotSupportedError, Llama, LlamaRunner, RerankNotSupportedError
runner = LlamaRunner(build="{build}")
await runner.load_model("/models/{reranker.name}", cache=False)
progress = []
full = await runner.rerank({QUERY!r}, {DOCUMENTS!r}, progress_callback=lambda d, t: progress.append([d, t]))
top = await runner.rerank({QUERY!r}, {DOCUMENTS!r}, top_n=2)
try:
    await runner.embed("hello")
    embedded = None
except EmbeddingNotSupportedError as e:
    embedded = str(e)
llm = await Llama.load("/models/{reranker.name}", runner=runner)
compat = await llm.arerank({QUERY!r}, {DOCUMENTS[:2]!r})
await runner.load_model("/models/{embedder.name}", cache=False)
try:
    await runner.rerank({QUERY!r}, ["x"])
    refused = None
except RerankNotSupportedError as e:
    refused = str(e)
runner.terminate()
json.dumps({{"full": full, "top": top, "progress": progress, "embedded": embedded, "compat": compat,
             "refused": refused}})
"""
    out = json.loads(pyodide_page.run(code))
    native = native_rerank(reranker, QUERY, DOCUMENTS)
    scores = {r["index"]: r["relevance_score"] for r in out["full"]["results"]}
    assert sorted(scores) == list(range(len(DOCUMENTS)))
    # Bound: native llama.cpp's own floor on this model. pr_native built for AVX2
    # (scripts/native_isa_variant.sh) scores these five pairs up to 1.5e-4 away from the AVX-512 reference
    # (2026-12-06): ggml's GELU reads a table at the F16 rounding of its input, and a last-bit difference
    # before it moves that rounding. The browser measured up to 1.7e-4 from the reference, so 3e-4; and the
    # ranking must be the reference's.
    for index, expected in enumerate(native["scores"]):
        assert abs(scores[index] - expected) < 3e-4, (index, scores[index], expected)
    by_native = sorted(range(len(DOCUMENTS)), key=lambda i: -native["scores"][i])
    assert [r["index"] for r in out["full"]["results"]] == by_native
    assert max(native["scores"]) - min(native["scores"]) > 1e-3  # random weights, yet not one score for all
    ranked = [r["relevance_score"] for r in out["full"]["results"]]
    assert ranked == sorted(ranked, reverse=True)
    assert out["full"]["usage"]["prompt_tokens"] == sum(native["n_tokens"])
    assert out["top"]["results"] == out["full"]["results"][:2]
    assert out["progress"][-1] == [len(DOCUMENTS), len(DOCUMENTS)]
    assert "reranking model" in out["embedded"]
    assert out["compat"]["model"].endswith(reranker.name) and len(out["compat"]["results"]) == 2
    assert "not a reranker" in out["refused"]


def test_a_session_survives_a_reload_and_the_next_turn_reads_only_its_new_tokens(
    require_builds, pyodide_page
) -> None:
    model = default_model()
    turns = ["Name three colours.", "Which of them is the colour of the sky?", "And of grass?"]
    setup = f"""
import json
from py_runner import GenerateTextParams, LlamaRunner
greedy = GenerateTextParams(temp=0.0, n_predict=24)
runner = LlamaRunner(build="st")
await runner.load_model("/models/{model.name}", cache=False, ctx_size=1024)

async def turn(messages, text):
    messages.append({{"role": "user", "content": text}})
    result = await runner.chat(messages, greedy)
    messages.append({{"role": "assistant", "content": result.text}})
    return result
"""
    first = (
        setup
        + f"""
messages = []
for text in {turns[:2]!r}:
    await turn(messages, text)
saved = await runner.save_session("colours")
third = await turn(messages, {turns[2]!r})
json.dumps({{"messages": messages[:4], "saved": saved.__dict__, "third": third.tokens,
             "third_reused": third.prompt_tokens_reused, "third_prompt": third.prompt_tokens}})
"""
    )
    before = json.loads(pyodide_page.run(first))
    assert before["saved"]["n_tokens"] > 40 and before["saved"]["size"] > 0
    # in the first page, the third turn reuses the cache up to where the re-rendered history meets it
    assert before["third_reused"] > 40 and before["third_prompt"] - before["third_reused"] < 40

    pyodide_page.boot(pyodide_page.base_url)  # a reload: a new document, new workers, the same storage
    second = (
        setup
        + f"""
from py_runner import SessionNotFoundError, StateMismatchError
messages = {before["messages"]!r}
listed = [s.name for s in await runner.list_sessions()]
loaded = await runner.load_session("colours")
third = await turn(messages, {turns[2]!r})
# the same in memory: save, evaluate something else (the cache is overwritten), restore, answer again
await runner.load_session("colours")
state = await runner.save_state()
await runner.generate_text("Something else entirely.", greedy)
await runner.load_state(state)
again = await turn(messages[:4], {turns[2]!r})
other = LlamaRunner(build="st")
await other.load_model("/models/{model.name}", cache=False, ctx_size=512)
try:
    await other.load_session("colours")
    mismatch = None
except StateMismatchError as e:
    mismatch = str(e)
other.terminate()
deleted = await runner.delete_session("colours")
try:
    await runner.load_session("colours")
    missing = None
except SessionNotFoundError as e:
    missing = str(e)
runner.terminate()
json.dumps({{"listed": listed, "loaded": loaded.__dict__, "third": third.tokens,
             "reused": third.prompt_tokens_reused, "prompt": third.prompt_tokens, "again": again.tokens,
             "again_reused": again.prompt_tokens_reused, "state_tokens": state.n_tokens,
             "mismatch": mismatch, "deleted": deleted, "missing": missing}})
"""
    )
    after = json.loads(pyodide_page.run(second))
    assert "colours" in after["listed"]
    assert after["loaded"]["sha256"] == before["saved"]["sha256"]
    # the restored conversation continues exactly as it did in the first page ...
    assert after["third"] == before["third"]
    assert after["prompt"] == before["third_prompt"]
    # ... reading only the new turn: the session's tokens came from storage, not from evaluating them again
    assert after["reused"] == before["third_reused"]
    assert after["again"] == before["third"] and after["again_reused"] == before["third_reused"]
    assert "n_ctx" in after["mismatch"]
    assert after["deleted"] is True and "colours" in after["missing"]


def test_a_damaged_session_is_refused_and_deleted(require_builds, pyodide_page) -> None:
    model = default_model()
    save = f"""
from py_runner import GenerateTextParams, LlamaRunner
runner = LlamaRunner(build="st")
await runner.load_model("/models/{model.name}", cache=False, ctx_size=512)
await runner.generate_text("The history of the bicycle", GenerateTextParams(temp=0.0, n_predict=8))
info = await runner.save_session("damaged")
runner.terminate()
info.size
"""
    assert pyodide_page.run(save) > 0
    # flip one byte of the stored state, as a disk or a half-written copy could
    flipped = pyodide_page.page.evaluate(
        """async () => {
          const root = await navigator.storage.getDirectory();
          const dir = await root.getDirectoryHandle("py_runner-sessions");
          for await (const [name, handle] of dir.entries()) {
            if (!name.endsWith(".session")) continue;
            const file = await handle.getFile();
            const byte = new Uint8Array(await file.slice(file.size - 100, file.size - 99).arrayBuffer());
            const writable = await handle.createWritable({ keepExistingData: true });
            const data = new Uint8Array([byte[0] ^ 0xff]);
            await writable.write({ type: "write", position: file.size - 100, data });
            await writable.close();
            return name;
          }
          return null;
        }"""
    )
    assert flipped
    load = f"""
from py_runner import LlamaRunner, StateIntegrityError
runner = LlamaRunner(build="st")
await runner.load_model("/models/{model.name}", cache=False, ctx_size=512)
try:
    await runner.load_session("damaged")
    said = None
except StateIntegrityError as e:
    said = str(e)
left = [s.name for s in await runner.list_sessions()]
runner.terminate()
[said, left]
"""
    said, left = pyodide_page.run(load)
    assert said and "sha256" in said and "damaged" not in left
