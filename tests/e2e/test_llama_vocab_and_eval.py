"""llama-cpp-python's token-level API in the page, on the real engine: a vocab_only load of llama.cpp's own
vocabulary file tokenizes as llama-cpp-python's test_llama_cpp_tokenization says and as native llama.cpp
does, and refuses generation; eval with logits_all keeps the same logits as teacher forcing; batched
embeddings equal one-by-one ones. (llama-cpp-python's own tests of eval / generate / the caches run in the
page in test_llama_cpp_python_tests.py.)"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from py_runner.host.build.assets import default_model
from py_runner.host.build.paths import native_binary
from py_runner.host.fixtures import embedding_fixture_model, llama_cpp_source_dir

# Not in README's Firefox pass: the Python layer and the tokenizer's integer paths.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]


def native_tokens(model: Path, text: str, parse_special: bool) -> list[int]:
    args = ["tokenize", "--model", str(model), "--text", text, "--vocab-only", "1"]
    args += ["--parse-special", "1" if parse_special else "0"]
    out = subprocess.run(
        [str(native_binary()), *args], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout)["tokens"]


def test_vocab_only_loads_the_tokenizer_alone(require_builds, pyodide_page, tmp_path: Path) -> None:
    vocab = llama_cpp_source_dir() / "models" / "ggml-vocab-llama-spm.gguf"
    shutil.copy(vocab, tmp_path / vocab.name)
    code = f"""
import json
from llama_cpp import Llama
from py_runner import EmbeddingNotSupportedError, GenerationNotSupportedError
llama = Llama(model_path="/files/{vocab.name}", vocab_only=True, verbose=False)
spec = [llama.runner.spec.vocab_only, llama.n_ctx(), llama.n_vocab()]
out = {{"spec": spec, "bos": llama.token_bos(), "eos": llama.token_eos()}}
# test_llama.py's test_llama_cpp_tokenization, all but its look at llama-cpp-python's ctypes context
out["hello"] = llama.tokenize(b"Hello World")
out["hello_text"] = llama.detokenize(out["hello"]).decode()
out["no_bos"] = llama.tokenize(b"Hello World", add_bos=False)
out["no_bos_text"] = llama.detokenize(out["no_bos"]).decode()
out["eos_text"] = llama.tokenize(b"Hello World</s>")
out["eos_special"] = llama.tokenize(b"Hello World</s>", special=True)
out["empty"] = llama.tokenize(b"", add_bos=True, special=True)
out["empty_text"] = llama.detokenize(out["empty"]).decode()
for name, call in (("generate", lambda: llama.create_completion("Hello", max_tokens=2)),
                   ("eval", lambda: llama.eval([1, 15043])),
                   ("embed", lambda: llama.embed("Hello"))):
    try:
        call()
        out[name] = None
    except (GenerationNotSupportedError, EmbeddingNotSupportedError) as e:
        out[name] = [type(e).__name__, str(e)]
out["heap"] = llama.runner.load_details["wasm_heap_bytes"]
json.dumps(out)
"""
    out = json.loads(pyodide_page.run(code))
    assert out["spec"] == [True, 0, 32000]
    assert out["hello"] == [1, 15043, 2787] and out["hello"][0] == out["bos"]
    assert out["hello_text"] == "Hello World"
    assert out["no_bos"] == [15043, 2787] and out["no_bos_text"] != "Hello World"  # llama-spm's leading space
    assert out["eos_text"] == [1, 15043, 2787, 829, 29879, 29958]
    assert out["eos_special"] == [1, 15043, 2787, 2] and out["eos_special"][-1] == out["eos"]
    assert out["empty"] == [out["bos"]] and out["empty_text"] == ""
    assert native_tokens(vocab, "Hello World</s>", True)[1:] == out["eos_special"][1:]  # as llama.cpp does
    assert native_tokens(vocab, "Hello World</s>", False) == out["eos_text"]
    for name in ("generate", "eval"):
        assert out[name][0] == "GenerationNotSupportedError" and "vocab_only" in out[name][1], out[name]
    assert out["embed"][0] == "EmbeddingNotSupportedError", out["embed"]
    assert out["heap"] <= 64 * 2**20  # no weights, no context: the heap never grew past its initial 64 MiB


def test_eval_with_logits_all_keeps_the_teacher_forced_logits(require_builds, pyodide_page) -> None:
    """Llama.eval's scores (logits_all=True) are the rows LlamaRunner.logits computes for the same tokens
    (the same one-token decodes), and generate continues from what eval evaluated as from a fresh prompt."""
    model = default_model()
    code = f"""
import contextlib, json
from py_runner import GenerateTextParams, Llama
llm = await Llama.load("/models/{model.name}", n_ctx=256, logits_all=True)
prompt = "The capital of France is"
tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
continuation = llm.tokenize(b" Paris, and the capital", add_bos=False)
await llm.aeval(tokens)
await llm.aeval(continuation)
rows = llm.scores[len(tokens) - 1 : -1]
forced = await llm.runner.logits(prompt, continuation)
same = [list(a) == list(b) for a, b in zip(rows, forced)]
n_tokens = llm.n_tokens
greedy = []
async with contextlib.aclosing(llm.agenerate(tokens, temp=0.0)) as stream:  # closed: the engine stops
    async for t in stream:
        greedy.append(t)
        if len(greedy) == 4:
            break
reference = await llm.runner.generate_text(prompt, GenerateTextParams(n_predict=4, temp=0))
llm.close()
expected = len(tokens) + len(continuation)
json.dumps({{"same": same, "rows": len(rows), "n_tokens": n_tokens, "expected": expected,
            "greedy": greedy, "reference": reference.tokens}})
"""
    out = json.loads(pyodide_page.run(code))
    assert out["rows"] == len(out["same"]) > 3 and all(out["same"])
    assert out["n_tokens"] == out["expected"]
    assert out["greedy"] == out["reference"]


def test_batched_embeddings_equal_one_by_one(require_builds, pyodide_page) -> None:
    """llama-cpp-python's test_real_llama_embeddings without numpy: embed([...]) equals each embed(text)
    within 1e-4, in either order."""
    model = embedding_fixture_model("mean")
    code = f"""
import json
from llama_cpp import Llama
llm = Llama(model_path="/models/{model.name}", n_ctx=32, n_batch=32, embedding=True, verbose=False)
prompts = ["Hello World", "A different prompt"]
one = [llm.embed(p) for p in prompts]
batched = llm.embed(prompts)
reversed_ = llm.embed(list(reversed(prompts)))
llm.close()
json.dumps({{"one": one, "batched": batched, "reversed": reversed_}})
"""
    out = json.loads(pyodide_page.run(code))
    assert len(out["batched"]) == 2 and len(out["one"][0]) > 0
    for single, together, backwards in zip(
        out["one"], out["batched"], reversed(out["reversed"]), strict=True
    ):
        assert len(single) == len(together) == len(backwards)
        for a, b, c in zip(single, together, backwards, strict=True):
            assert abs(a - b) <= 1e-4 + 1e-4 * abs(a) and abs(a - c) <= 1e-4 + 1e-4 * abs(a)
