"""Fault injection in the browser: aborts at 20 random points (a fixed seed) across load, generate and embed,
and the engine terminated in the middle of a generation. Each ends in a typed error or a correct result, and
the next call succeeds with exactly the result it has without the fault. Downloads dropped, changed on the
server, 404/500 and a full quota: test_model_cache.py, test_download_integrity.py, test_engine_errors.py."""

from __future__ import annotations

import json
import random

import pytest

from py_runner.host.fixtures import embedding_fixture_model, fixture_model

pytestmark = pytest.mark.e2e
FAULTS = 20


def test_aborts_at_random_points_end_typed_and_the_next_call_is_exact(require_builds, pyodide_page) -> None:
    rng = random.Random(20261127)
    plan = [(rng.choice(["load", "generate", "embed"]), rng.randint(0, 400)) for _ in range(FAULTS)]
    model, embedder = fixture_model("tiny", "f16"), embedding_fixture_model("mean")
    code = f"""
import asyncio, json
from py_runner import GenerateTextParams, LlamaRunner, LocalWebAIError

GEN = GenerateTextParams(n_predict=48, temp=0, seed=0)
TEXTS = [f"sentence {{i}} about the weather" for i in range(400)]

async def fresh(kind):
    runner = LlamaRunner(build="st")
    await runner.load_model("/models/" + ("{embedder.name}" if kind == "embed" else "{model.name}"))
    return runner

async def reference():
    generator, embedder = await fresh("generate"), await fresh("embed")
    out = ((await generator.generate_text("Once upon a time", GEN)).tokens, await embedder.embed(TEXTS[:2]))
    generator.terminate(); embedder.terminate()
    return out

ref_tokens, ref_vectors = await reference()
outcomes = []
for kind, delay_ms in {plan!r}:
    runner = LlamaRunner(build="st") if kind == "load" else await fresh(kind)
    if kind == "load":
        task = asyncio.ensure_future(runner.load_model("/models/{model.name}", cache=(delay_ms % 2 == 0)))
    elif kind == "generate":
        task = asyncio.ensure_future(runner.generate_text("Once upon a time", GEN))
    else:
        task = asyncio.ensure_future(runner.embed(TEXTS))
    await asyncio.sleep(delay_ms / 1000)
    (runner.cancel_loading if kind == "load" else runner.cancel)()
    try:
        result = await task
        how = "aborted" if kind == "generate" and result.finish_reason == "aborted" else "completed"
        if kind == "generate" and how == "completed":
            assert result.tokens == ref_tokens, "a generation that was not aborted must be exact"
    except LocalWebAIError as err:
        how = type(err).__name__
    # The next call on the same runner is exact.
    if kind == "embed":
        exact = await runner.embed(TEXTS[:2]) == ref_vectors
    else:
        if kind == "load":
            await runner.load_model("/models/{model.name}")
        exact = (await runner.generate_text("Once upon a time", GEN)).tokens == ref_tokens
    outcomes.append([kind, delay_ms, how, exact])
    runner.terminate()
json.dumps(outcomes)
"""
    outcomes = json.loads(pyodide_page.run(code, timeout_s=900))
    assert len(outcomes) == FAULTS
    typed = {"aborted", "completed", "LoadAbortedError", "EmbeddingAbortedError"}
    assert all(how in typed for _, _, how, _ in outcomes), outcomes
    assert all(exact for *_, exact in outcomes), outcomes
    # The plan reached each operation while it ran, not only before or after it.
    assert {kind for kind, _, how, _ in outcomes if how != "completed"} == {"load", "generate", "embed"}, (
        outcomes
    )


def test_terminating_the_engine_mid_generation_is_typed_and_a_fresh_start_works(
    require_builds, pyodide_page
) -> None:
    model = fixture_model("tiny", "f16")
    code = f"""
import asyncio, json
from py_runner import GenerateTextParams, LlamaRunner, LocalWebAIError
GEN = GenerateTextParams(n_predict=400, temp=0, seed=0, ignore_eos=True)
runner = LlamaRunner(build="st")
await runner.load_model("/models/{model.name}")
reference = (await runner.generate_text("Once upon a time", GEN)).tokens
seen = []
task = asyncio.ensure_future(runner.generate_text("Once upon a time", GEN, lambda chunk: seen.append(chunk)))
while len(seen) < 20:
    await asyncio.sleep(0.005)
runner.terminate()
try:
    result = await task
    outcome = ["result", result.finish_reason, len(result.tokens)]
except LocalWebAIError as err:
    outcome = ["error", type(err).__name__, str(err)]
loaded_after = runner.is_model_loaded
await runner.load_model("/models/{model.name}")
again = (await runner.generate_text("Once upon a time", GEN)).tokens == reference
runner.terminate()
json.dumps({{"outcome": outcome, "loaded_after": loaded_after, "again": again}})
"""
    out = json.loads(pyodide_page.run(code, timeout_s=600))
    assert out["outcome"][0] == "error" or out["outcome"][1] == "aborted", out
    assert out["loaded_after"] is False and out["again"] is True, out
