"""The relaxed-SIMD variants of the builds, chosen at run time: the bridge picks them where the browser
validates a relaxed-SIMD module (Chromium and Firefox do), and SIMD128 where it does not (WebKit; here a page
whose `WebAssembly.validate` refuses it), and `simd=` forces either. The relaxed kernels give the SIMD128
builds' greedy tokens on the default model (Q4_1: the kernel that changed most); test_parity.py compares every
variant's tokens and logits on the fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from py_runner.host.build.assets import default_model

pytestmark = pytest.mark.e2e

VARIANTS = """
from py_runner import GenerateTextParams, LlamaRunner
found = {}
for simd in ("auto", "relaxed", "simd128"):
    runner = LlamaRunner(build="st", simd=simd)
    await runner.load_model("/files/model.gguf", ctx_size=256)
    result = await runner.chat(
        [{"role": "user", "content": "What is the capital of France? Answer in one word."}],
        GenerateTextParams(n_predict=12, temp=0),
    )
    found[simd] = [runner.simd, result.tokens]
    runner.terminate()
found
"""


def test_the_relaxed_variant_is_chosen_where_the_browser_has_it_and_answers_the_same(
    require_builds, pyodide_page, tmp_path: Path
) -> None:
    shutil.copyfile(default_model(), tmp_path / "model.gguf")
    found = pyodide_page.run(VARIANTS)
    assert [found[s][0] for s in ("auto", "relaxed", "simd128")] == ["relaxed", "relaxed", "simd128"], found
    assert found["relaxed"][1] == found["simd128"][1] == found["auto"][1], found


def test_a_browser_without_relaxed_simd_runs_the_simd128_build(
    require_builds, pyodide_page, tmp_path: Path
) -> None:
    """As in WebKit: the feature test fails, so "auto" starts SIMD128, and asking for relaxed says why not."""
    shutil.copyfile(default_model(), tmp_path / "model.gguf")
    code = """
from pyodide.code import run_js
from py_runner import BridgeError, LlamaRunner
run_js("WebAssembly.validate = () => false")  # this page's WebAssembly knows no relaxed SIMD
runner = LlamaRunner(build="st")
await runner.load_model("/files/model.gguf", ctx_size=256)
chosen = runner.simd
runner.terminate()
try:
    await LlamaRunner(build="st", simd="relaxed").load_model("/files/model.gguf")
    refused = None
except BridgeError as err:
    refused = str(err)
[chosen, refused]
"""
    chosen, refused = pyodide_page.run(code)
    assert chosen == "simd128"
    assert refused == "the relaxed-SIMD build cannot run: this browser's WebAssembly has no relaxed SIMD"
