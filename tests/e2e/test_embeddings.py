"""embed() in the real engine: pooled embeddings equal native llama.cpp's and an independent numpy BERT, for
an embedding model (BERT, WordPiece vocabulary) and for a generative model given a pooling type."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from bert_reference import bert_embedding
from native_parity import assert_free_running_agrees

from py_runner.host.build.paths import native_binary
from py_runner.host.fixtures import embedding_fixture_model, fixture_model

# Not in README's Firefox pass: pooling over the engine's output (its arithmetic in Firefox: test_parity).
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]

TEXTS = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.",
    "Ünïcödé façade, emoji 😀 and CJK 中文字符",
    "a",
]
POOLING_IDS = {"mean": 1, "cls": 2, "last": 3}


def native(*args: str) -> dict:
    proc = subprocess.run(
        [str(native_binary()), *args], capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(proc.stdout)


def native_embeddings(model, texts, *, pooling: str | None = None, normalize: bool = True) -> np.ndarray:
    args = ["embed", "--model", str(model), "--normalize", str(int(normalize))]
    if pooling is not None:
        args += ["--pooling", str(POOLING_IDS[pooling])]
    for text in texts:
        args += ["--text", text]
    return np.array(native(*args)["embeddings"])


@pytest.mark.parametrize(("pooling", "build"), [("mean", "st"), ("cls", "mt")])
def test_embedding_model_matches_native_and_a_numpy_bert(
    require_builds, pyodide_page, pooling: str, build: str
) -> None:
    model = embedding_fixture_model(pooling)
    long_text = " ".join(["word"] * 600)  # more tokens than the model's 512 positions
    code = f"""
import json
from py_runner import EmbeddingInputTooLongError, GenerationNotSupportedError, LlamaRunner
runner = LlamaRunner(build="{build}")
spec = await runner.load_model("/models/{model.name}", cache=False)
progress = []
vectors = await runner.embed({TEXTS!r}, progress_callback=lambda done, total: progress.append([done, total]))
raw = await runner.embed({TEXTS[1]!r}, normalize=False)
try:
    await runner.embed(["short", {long_text!r}])
    too_long = None
except EmbeddingInputTooLongError as e:
    too_long = str(e)
truncated = await runner.embed({long_text!r}, truncate=True)
try:
    await runner.generate_text("Hello")
    generated = True
except GenerationNotSupportedError:
    generated = False
out = {{"vectors": vectors, "raw": raw, "progress": progress, "too_long": too_long, "truncated": truncated,
        "generated": generated, "pooling": spec.pooling_type, "embedding_model": spec.embedding_model,
        "n_ctx": runner.load_details["n_ctx"], "build": runner.build}}
runner.terminate()
json.dumps(out)
"""
    out = json.loads(pyodide_page.run(code))
    assert out["build"] == build and out["pooling"] == pooling and out["embedding_model"]
    assert out["n_ctx"] == 512  # capped at the model's training context (ctx_size 2048 asked)
    browser = np.array(out["vectors"])
    assert browser.shape == (len(TEXTS), 128)
    assert out["progress"][-1] == [len(TEXTS), len(TEXTS)]

    # 1. the same numbers as native llama.cpp running the same glue
    reference = native_embeddings(model, TEXTS)
    assert np.abs(browser - reference).max() < 1e-4
    assert np.allclose(np.linalg.norm(browser, axis=1), 1.0, atol=1e-5)
    # 2. the embedding the model defines, computed independently (float64 numpy from the GGUF weights);
    #    measured natively: max difference ~1.3e-4 (ggml's f16 GELU table, f16 K/V in attention), against
    #    ~0.1 for the wrong pooling.
    for text, vector in zip(TEXTS, browser, strict=True):
        tokens = native("tokenize", "--model", str(model), "--text", text)["tokens"]
        expected = bert_embedding(model, tokens, pooling)
        assert tokens[0] == 101 and tokens[-1] == 102  # [CLS] ... [SEP]
        assert np.abs(vector - expected).max() < 1e-3, text
        assert float(vector @ expected) > 0.99999, text
    # 3. normalize=False is the raw pooled vector
    raw = np.array(out["raw"])
    assert np.abs(raw / np.linalg.norm(raw) - browser[1]).max() < 1e-5
    assert abs(np.linalg.norm(raw) - 1.0) > 1e-3
    # 4. too long: typed error, or the first 512 tokens with truncate=True
    assert "text 1" in out["too_long"] and "does not fit" in out["too_long"]
    assert len(out["truncated"]) == 128 and abs(np.linalg.norm(out["truncated"]) - 1.0) < 1e-5
    # 5. an embedding model does not generate
    assert out["generated"] is False


def test_generative_model_embeds_with_a_pooling_type_and_generates_as_before(
    require_builds, pyodide_page
) -> None:
    model = fixture_model("tiny", "f16")
    prompt = "Once upon a time"
    code = f"""
import json
from py_runner import EmbeddingNotSupportedError, GenerateTextParams, LlamaRunner
runner = LlamaRunner(build="st")
await runner.load_model("/models/{model.name}", cache=False)
try:
    await runner.embed("hello")
    refused = None
except EmbeddingNotSupportedError as e:
    refused = str(e)
spec = await runner.load_model("/models/{model.name}", cache=False, pooling="last")
before = await runner.generate_text({prompt!r}, GenerateTextParams(n_predict=16, temp=0))
vectors = await runner.embed({TEXTS!r})
after = await runner.generate_text({prompt!r}, GenerateTextParams(n_predict=16, temp=0))
out = {{"refused": refused, "pooling": spec.pooling_type, "embedding_model": spec.embedding_model,
        "vectors": vectors, "before": before.tokens, "after": after.tokens,
        "after_reused": after.prompt_tokens_reused}}
runner.terminate()
json.dumps(out)
"""
    out = json.loads(pyodide_page.run(code))
    assert "pooling" in out["refused"]
    assert out["pooling"] == "last" and out["embedding_model"] is False
    assert np.abs(np.array(out["vectors"]) - native_embeddings(model, TEXTS, pooling="last")).max() < 1e-4
    # Embedding cleared the KV cache and switched embeddings off again: generation is exactly as before, and
    # native llama.cpp's greedy path (near ties aside: native_parity.py).
    assert out["before"] == out["after"]
    greedy = native("generate", "--model", str(model), "--prompt", prompt, "--n-predict", "16")["tokens"]
    assert_free_running_agrees(model, prompt, out["before"], greedy, "tiny f16 after embed")
    assert out["after_reused"] == 0


def test_cancel_stops_a_long_embedding_between_texts(require_builds, pyodide_page) -> None:
    model = embedding_fixture_model("mean")
    code = f"""
import json
from py_runner import EmbeddingAbortedError, LlamaRunner
runner = LlamaRunner(build="st")
await runner.load_model("/models/{model.name}", cache=False)
texts = [f"sentence number {{i}} about nothing in particular" for i in range(3000)]
seen = []
def on_progress(done, total):
    seen.append(done)
    runner.cancel()  # at the first progress event, about 0.1 s in
try:
    await runner.embed(texts, progress_callback=on_progress)
    aborted = None
except EmbeddingAbortedError as e:
    aborted = str(e)
after = await runner.embed(texts[:2])
runner.terminate()
json.dumps({{"aborted": aborted, "seen": seen, "after": len(after)}})
"""
    out = json.loads(pyodide_page.run(code))
    assert out["aborted"] is not None and "aborted after" in out["aborted"]
    assert out["seen"] and out["seen"][-1] < 3000  # stopped early, not after the last text
    assert out["after"] == 2  # the runner embeds again at once
