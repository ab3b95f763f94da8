"""Every vocabulary llama.cpp ships loads in the browser and tokenizes exactly as llama.cpp says it must.

Each `models/ggml-vocab-<name>.gguf` of the vendored llama.cpp goes into a llama-architecture fixture (random
weights) and is loaded in one page, one after the other, by the multi-thread build: the one users get, and the
one where Command-R's vocabulary failed with "unknown exception" (llama.cpp catches an std::out_of_range while
it loads it, and in that build no typed catch matched: see build_wasm.sh, lpad_context_fix). Where llama.cpp
ships its reference tokenizations (`.gguf.inp` / `.gguf.out`, what its own test-tokenizer-0 checks: no special
tokens added, none parsed), the browser's tokens must equal them; for the others, they must equal native
llama.cpp's (`pr_native tokenize`).
"""

from __future__ import annotations

import json

import pytest
from test_generation import native_tokens

from py_runner.host.fixtures import fixture_model, llama_cpp_source_dir

VOCAB_DIR = llama_cpp_source_dir() / "models"
SEPARATOR = "\n__ggml_vocab_test__\n"
# Not in README's Firefox pass: the tokenizer's integer paths, the same wasm in every browser.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]
FALLBACK_TEXTS = ["Hello world", " this is 🦙.cpp", "3333333 Ünïcödé 中文 \n\n\t  end"]


def _reference(vocab: str) -> tuple[list[str], list[list[int]] | None]:
    inp = VOCAB_DIR / f"ggml-vocab-{vocab}.gguf.inp"
    out = VOCAB_DIR / f"ggml-vocab-{vocab}.gguf.out"
    if not (inp.is_file() and out.is_file()):
        return FALLBACK_TEXTS, None
    texts = inp.read_text(encoding="utf-8").split(SEPARATOR)
    texts[-1] = texts[-1].removesuffix("\n__ggml_vocab_test__\n").removesuffix("\n")  # the file's last marker
    expected = [
        [int(t) for t in line.split()] for line in out.read_text(encoding="utf-8").split("\n")[: len(texts)]
    ]
    return texts, expected


def test_every_vocabulary_loads_and_tokenizes_as_llama_cpp(require_builds, pyodide_page) -> None:
    vocabs = sorted(
        p.name.removeprefix("ggml-vocab-").removesuffix(".gguf") for p in VOCAB_DIR.glob("ggml-vocab-*.gguf")
    )
    assert "command-r" in vocabs and len(vocabs) >= 15, vocabs
    cases = {}
    for vocab in vocabs:
        model = fixture_model("tiny", "f16", vocab=vocab)
        texts, expected = _reference(vocab)
        cases[vocab] = (model, texts, expected)
    request = {vocab: [model.name, texts] for vocab, (model, texts, _) in cases.items()}
    code = f"""
import json
from py_runner import LlamaRunner
runner = LlamaRunner(build="mt")
out = {{}}  # each load_model frees the model before it
for vocab, (name, texts) in {request!r}.items():
    try:
        await runner.load_model("/models/" + name, cache=False, ctx_size=256)
        out[vocab] = [await runner.tokenize(t, add_special=False, parse_special=False) for t in texts]
    except Exception as err:
        out[vocab] = f"{{type(err).__name__}}: {{err}}"
runner.terminate()
json.dumps(out)
"""
    browser = json.loads(pyodide_page.run(code, timeout_s=600))
    failures = {v: r for v, r in browser.items() if isinstance(r, str)}
    assert not failures, failures  # every vocabulary loads (no "unknown exception")
    for vocab, (model, texts, expected) in cases.items():
        if expected is None:
            expected = [native_tokens(model, t, False, False)["tokens"] for t in texts]
        for text, got, want in zip(texts, browser[vocab], expected, strict=True):
            assert got == want, (vocab, text)


@pytest.mark.parametrize("build", ["st", "mt"])
def test_the_engine_refuses_token_ids_outside_the_vocabulary(
    require_builds, pyodide_page, build: str
) -> None:
    """The glue checks ids itself (Python does too, before): straight to the transport, an id past the
    vocabulary is a typed error naming it, not an exception from inside llama.cpp; the runner goes on."""
    model = fixture_model("tiny", "f16")
    code = f"""
import json
from py_runner import LlamaRunner
runner = LlamaRunner(build="{build}")
await runner.load_model("/models/{model.name}", cache=False, ctx_size=256)
out = []
for ids in [[1, 32000], [-1], [15043]]:
    try:
        out.append((await runner._transport.detokenize(ids, False, False)).decode())
    except Exception as err:
        out.append(f"{{type(err).__name__}}: {{err}}")
runner.terminate()
json.dumps(out)
"""
    too_big, negative, fine = json.loads(pyodide_page.run(code))
    assert (
        too_big.startswith("GenerationError") and "token id 32000 (at 1) is not in the vocabulary" in too_big
    )
    assert "token id -1 (at 0) is not in the vocabulary (0..31999)" in negative, negative
    assert fine == "Hello", fine  # SentencePiece drops the leading space of the first piece
