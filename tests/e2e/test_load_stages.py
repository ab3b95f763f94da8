"""Loading end to end: progress from a URL, split GGUF from its first shard, abort at every stage."""

from __future__ import annotations

import json

import pytest

from py_runner.host.fixtures import fixture_model, split_fixture_model

pytestmark = pytest.mark.e2e

GREEDY = "GenerateTextParams(n_predict=12, temp=0, seed=0)"
ORDER = ["preparing", "cache", "downloading", "verifying", "loading", "ready"]
THROTTLE_S = 0.095  # the reporter's 0.1 s, less the time between its clock reading and the callback's


def test_url_progress_is_monotonic_and_ends_ready(require_builds, pyodide_page) -> None:
    model = fixture_model("s135", "q8_0")
    code = f"""
import json, time
from py_runner import LlamaRunner
runner = LlamaRunner(build="st")
events = []
spec = await runner.load_model("/models/{model.name}", cache=False,
    progress_callback=lambda i: events.append([i.stage.value, i.loaded, i.total, i.fraction,
                                               time.monotonic()]))
runner.terminate()
json.dumps(events)
"""
    events = json.loads(pyodide_page.run(code))
    stages = [e[0] for e in events]
    assert stages[0] == "preparing" and stages[-1] == "ready"
    assert "downloading" in stages and "loading" in stages
    ranks = [ORDER.index(s) for s in stages]
    assert ranks == sorted(ranks), stages  # stages never go back (README)
    for stage in ("downloading", "loading"):
        loaded = [e[1] for e in events if e[0] == stage]
        assert loaded == sorted(loaded) and loaded[-1] == model.stat().st_size
    assert events[-1][3] == 1.0
    # Throttled to ~10/s, not one event per chunk: within a stage, an event comes at least 0.1 s after the one
    # before, unless it completes the stage, or is the stage's last (held back, delivered as the next begins).
    # A bound on the time between events, not on their count: a slower machine only spaces them further apart.
    for before, event, after in zip(events, events[1:], events[2:], strict=False):
        if event[0] != before[0] or event[0] != after[0] or event[1] == event[2]:
            continue
        assert event[4] - before[4] >= THROTTLE_S, (before, event)


def test_split_gguf_loads_from_its_first_shard(require_builds, pyodide_page) -> None:
    shards = split_fixture_model("tiny", "f16", 3)
    single = fixture_model("tiny", "f16")
    folder = shards[0].parent.name
    code = f"""
import json
from py_runner import GenerateTextParams, LlamaRunner
runner = LlamaRunner(build="st")
events = []
spec = await runner.load_model("/models/{folder}/{shards[0].name}", cache=False,
    progress_callback=lambda i: events.append([i.stage.value, i.loaded, i.total]))
split = await runner.generate_text("Once upon a time", {GREEDY})
await runner.load_model("/models/{single.name}", cache=False)
whole = await runner.generate_text("Once upon a time", {GREEDY})
runner.terminate()
json.dumps({{"split": split.tokens, "whole": whole.tokens, "events": events, "size": spec.file_size,
             "names": list(spec.file_names)}})
"""
    result = json.loads(pyodide_page.run(code))
    assert result["split"] == result["whole"] and len(result["split"]) == 12
    total = sum(p.stat().st_size for p in shards)
    assert result["size"] == total
    assert result["names"] == [p.name for p in shards]
    downloads = [e for e in result["events"] if e[0] == "downloading"]
    assert {e[2] for e in downloads} == {total}  # progress sums over the shards
    assert [e[1] for e in downloads] == sorted(e[1] for e in downloads) and downloads[-1][1] == total
    for shard in shards:
        assert pyodide_page.server.bytes_sent[f"/models/{folder}/{shard.name}"] >= shard.stat().st_size


@pytest.mark.parametrize("stage", ["preparing", "cache", "downloading", "verifying", "loading"])
def test_abort_at_each_stage_then_load(require_builds, pyodide_page, stage: str) -> None:
    model = fixture_model("s135", "q8_0")
    sha256 = _sha256(model)
    code = f"""
import json
from py_runner import LlamaRunner, LoadAbortedError, GenerateTextParams
runner = LlamaRunner(build="st")
await runner.cache.clear()
stages = []

def on_progress(info):
    stages.append(info.stage.value)
    if info.stage.value == {stage!r} and stages.count({stage!r}) == 1:
        runner.cancel_loading()

try:
    await runner.load_model("/models/{model.name}", progress_callback=on_progress, sha256={sha256!r})
    outcome = "loaded"
except LoadAbortedError:
    outcome = "aborted"
after = {{"loaded": runner.is_model_loaded, "loading": runner.is_loading_model}}
spec = await runner.load_model("/models/{model.name}", sha256={sha256!r})
result = await runner.generate_text("Once upon a time", {GREEDY})
runner.terminate()
json.dumps({{"outcome": outcome, "last": stages[-1], "seen": {stage!r} in stages, "after": after,
             "tokens": len(result.tokens), "arch": spec.architecture}})
"""
    result = json.loads(pyodide_page.run(code))
    assert result["seen"], f"stage {stage} never reported"
    assert result["outcome"] == "aborted" and result["last"] == "aborted"
    assert result["after"] == {"loaded": False, "loading": False}
    assert result["arch"] == "llama" and result["tokens"] == 12


def _sha256(path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
