"""`py-runner run --browser webkit`, run for real: the CLI, as a user runs it, generates from the tiny fixture
model in WebKitGTK (Selenium, Xvfb). WebKitGTK is the one browser here without SharedArrayBuffer on an
isolated page, so its run starts the st build and says why; Chromium and Firefox start mt on the same page.
The tokens agree with native llama.cpp's up to a near tie (native_parity.py). `bench generate` and
`perplexity --browser webkit` run for real too, and their reports name the engine in the page's user agent."""

from __future__ import annotations

import json

import pytest
from native_parity import assert_free_running_agrees

from py_runner.host.fixtures import fixture_model

pytestmark = [pytest.mark.e2e, pytest.mark.webkit]

PROMPT = "Once upon a time"
N_PREDICT = 8


def test_run_generates_in_webkit(require_builds, require_webkit, run_cli, tmp_path) -> None:
    model = fixture_model("tiny", "f16")
    common = ["run", "--model", str(model), "--prompt", PROMPT, "--n-predict", str(N_PREDICT), "--json"]
    proc = run_cli([*common, "--browser", "webkit"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    # The browser was WebKitGTK: an isolated page without SharedArrayBuffer (Chromium's, Firefox's have it).
    assert doc["build"] == "st", doc
    assert "this browser has no SharedArrayBuffer, although the page is cross-origin isolated" in proc.stderr
    assert doc["model"]["model_name"] == "py_runner-tiny", doc
    assert doc["timings"]["gen_tokens"] == len(doc["tokens"]), doc
    native = run_cli([*common, "--build", "native"], cwd=tmp_path, timeout=300)
    assert native.returncode == 0, native.stderr[-3000:]
    expected = json.loads(native.stdout)["tokens"]
    assert len(expected) == N_PREDICT  # random weights: end-of-text does not come this early
    assert_free_running_agrees(model, PROMPT, doc["tokens"], expected, "run --browser webkit")


def test_bench_generate_runs_in_webkit(require_builds, require_webkit, run_cli, tmp_path) -> None:
    """`bench generate --browser webkit`: st measured in WebKitGTK; mt and the relaxed-SIMD variants named as
    not run, and why."""
    model = fixture_model("tiny", "f16")
    args = [
        "bench",
        "generate",
        "--model",
        str(model),
        "--runs",
        "1",
        "--n-predict",
        str(N_PREDICT),
        "--json",
    ]
    proc = run_cli([*args, "--browser", "webkit"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["browser"] == "webkit", report  # read from the page's user agent
    assert list(report["builds"]) == ["st"], report
    no_threads = "this browser has no SharedArrayBuffer, although the page is cross-origin isolated"
    assert report["not_run"] == {
        "mt": no_threads,
        "st-relaxed": "this browser's WebAssembly has no relaxed SIMD",
        "mt-relaxed": no_threads,
    }
    st = report["builds"]["st"]
    assert st["tokens"] == N_PREDICT and st["python"]["gen_tok_s"] > 0 and st["js"]["gen_tok_s"] > 0, st


def test_perplexity_runs_in_webkit(require_builds, require_webkit, run_cli, tmp_path) -> None:
    """`perplexity --browser webkit`: WebKitGTK scores the tokens, at a distance from native as small as the
    other browsers' on f16 (both sides compute in f32; only the order of sums differs)."""
    model = fixture_model("tiny", "f16")
    args = ["perplexity", "--model", str(model), "--max-tokens", "48", "--ctx", "40", "--json"]
    proc = run_cli([*args, "--browser", "webkit"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert (report["browser"], report["build"], report["tokens"], report["windows"]) == (
        "webkit",
        "st",
        48,
        2,
    )
    assert report["mean_kld"] < 1e-5 and report["top1_agreement"] >= 0.95, report
    assert abs(report["perplexity"] / report["native_perplexity"] - 1) < 1e-3, report
