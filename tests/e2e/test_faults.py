"""Fault injection in the browser: aborts at 20 random points (a fixed seed) across load, generate and embed,
and the engine terminated in the middle of a generation. Each abort ends its operation with a typed error (or
an "aborted" generation), and the next call succeeds with exactly the result it has without the fault.
Downloads dropped, changed on the server, 404/500 and a full quota: test_model_cache.py,
test_download_integrity.py, test_engine_errors.py."""

from __future__ import annotations

import json
import random

import pytest

from py_runner.host.fixtures import embedding_fixture_model, fixture_model

pytestmark = pytest.mark.e2e
FAULTS = 20


def test_aborts_at_random_points_end_typed_and_the_next_call_is_exact(require_builds, pyodide_page) -> None:
    """Each abort is made from the operation's own events (a load's progress stage, the k-th token, the first
    embedding progress before the last text), so it lands while the operation runs however fast the machine
    is; a fixed delay could land before or after it."""
    rng = random.Random(20261127)
    plan = []
    for _ in range(FAULTS):
        kind = rng.choice(["load", "generate", "embed"])
        if kind == "load":
            cache = rng.random() < 0.5  # a cached load has a "cache" stage where an uncached one downloads
            stages = ["preparing", "cache" if cache else "downloading", "loading"]
            plan.append([kind, rng.choice(stages), cache])
        else:
            # generate: the token to abort at; embed: how many texts (the worker reports ~10/s, and its first)
            plan.append([kind, rng.randint(1, 46) if kind == "generate" else rng.randint(2, 400), None])
    assert {kind for kind, *_ in plan} == {"load", "generate", "embed"}
    model, embedder = fixture_model("tiny", "f16"), embedding_fixture_model("mean")
    code = f"""
import json
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
assert len(ref_tokens) >= 3, ref_tokens  # a token to abort at, and one after it
outcomes = []
for kind, point, cache in {plan!r}:
    runner = LlamaRunner(build="st") if kind == "load" else await fresh(kind)
    reached = []

    def at(here):  # cancel once, the moment the operation reaches its point
        if here and not reached:
            reached.append(True)
            (runner.cancel_loading if kind == "load" else runner.cancel)()

    prefix = None
    try:
        if kind == "load":
            await runner.load_model("/models/{model.name}", cache=cache,
                                    progress_callback=lambda info: at(info.stage.value == point))
            how = "completed"
        elif kind == "generate":
            point = min(point, len(ref_tokens) - 1)
            seen = []
            result = await runner.generate_text("Once upon a time", GEN,
                                                lambda chunk: (seen.append(chunk), at(len(seen) == point)))
            how, prefix = result.finish_reason, result.tokens == ref_tokens[:point]
        else:
            await runner.embed(TEXTS[:point], progress_callback=lambda done, total: at(done < total))
            how = "completed"
    except LocalWebAIError as err:
        how = type(err).__name__
    # The next call on the same runner is exact.
    if kind == "embed":
        exact = await runner.embed(TEXTS[:2]) == ref_vectors
    else:
        if kind == "load":
            await runner.load_model("/models/{model.name}")
        exact = (await runner.generate_text("Once upon a time", GEN)).tokens == ref_tokens
    outcomes.append([kind, point, bool(reached), how, prefix, exact])
    runner.terminate()
json.dumps(outcomes)
"""
    outcomes = json.loads(pyodide_page.run(code, timeout_s=900))
    assert len(outcomes) == FAULTS
    aborted = {"load": "LoadAbortedError", "generate": "aborted", "embed": "EmbeddingAbortedError"}
    for kind, point, reached, how, prefix, exact in outcomes:
        assert reached, f"{kind} never reached {point}: the abort was not made"
        assert how == aborted[kind], (kind, point, how)  # made mid-operation, so it aborts it, typed
        assert prefix in (None, True), (kind, point)  # an aborted generation holds exactly what was delivered
        assert exact, (kind, point)


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
