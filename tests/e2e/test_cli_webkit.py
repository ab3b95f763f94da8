"""`py-runner run --browser webkit`, run for real: the CLI, as a user runs it, generates from the tiny fixture
model in WebKitGTK (Selenium, Xvfb). WebKitGTK is the one browser here without SharedArrayBuffer on an
isolated page, so its run starts the st build and says why; Chromium and Firefox start mt on the same page.
The tokens agree with native llama.cpp's up to a near tie (native_parity.py)."""

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
