"""Bad input comes back as typed errors from the real engine, and the runner stays usable; aborts work."""

from __future__ import annotations

import json
import struct
import textwrap
from pathlib import Path

import pytest

from py_runner.host.fixtures import fixture_model

pytestmark = pytest.mark.e2e

APP = textwrap.dedent(
    """\
    import asyncio
    import json
    import sys

    from py_runner import (
        GenerateTextParams, InvalidParameterError, LlamaRunner, LoadAbortedError, ModelLoadError,
        ModelNotLoadedError, RunnerBusyError,
    )

    good, corrupt, truncated, garbage = sys.argv[1:5]
    report = {}
    runner = LlamaRunner(build="st")

    try:
        await runner.generate_text("hi")
    except ModelNotLoadedError:
        report["before_load"] = "ModelNotLoadedError"

    bad = [
        ("missing", "/files/no-such-model.gguf"),
        ("corrupt", corrupt),
        ("truncated", truncated),
        ("garbage", garbage),
    ]
    for name, url in bad:
        stages = []
        try:
            await runner.load_model(url, progress_callback=lambda info: stages.append(info.stage.value))
            report[name] = "loaded?!"
        except ModelLoadError as err:
            report[name] = type(err).__name__
            report[name + "_last_stage"] = stages[-1]
        report[name + "_loaded_after"] = runner.is_model_loaded

    # After all those failures the same runner (and the same wasm module) loads and generates.
    spec = await runner.load_model(good)
    report["good_arch"] = spec.architecture

    # Out-of-range parameters are refused before the engine sees them.
    try:
        await runner.generate_text("hi", GenerateTextParams(top_p=1.5))
        report["invalid"] = "accepted"
    except InvalidParameterError:
        report["invalid"] = "InvalidParameterError"

    # A second generation while one runs is rejected (not queued); the first one finishes normally.
    params = GenerateTextParams(n_predict=8, temp=0)
    first = asyncio.ensure_future(runner.generate_text("Once upon a time", params))
    await asyncio.sleep(0)
    try:
        await runner.generate_text("Twice")
        report["busy"] = "ran"
    except RunnerBusyError:
        report["busy"] = "RunnerBusyError"
    report["first_reason"] = (await first).finish_reason

    # Abort between two tokens: partial output, finish_reason "aborted", and generation works again at once.
    seen = []

    def on_token(chunk):
        seen.append(chunk.token)
        if len(seen) == 5:
            runner.cancel()

    params = GenerateTextParams(n_predict=200, temp=0, seed=0)
    aborted = await runner.generate_text("Once upon a time", params, token_callback=on_token)
    report["aborted_reason"] = aborted.finish_reason
    report["aborted_tokens"] = len(aborted.tokens)
    again = await runner.generate_text("Once upon a time", GenerateTextParams(n_predict=8, temp=0, seed=0))
    report["again_prefix_equal"] = again.tokens[:5] == aborted.tokens
    report["again_reason"] = again.finish_reason

    # Cancel a load while it downloads.
    task = asyncio.ensure_future(runner.load_model(good))
    await asyncio.sleep(0)
    runner.cancel_loading()
    try:
        await task
        report["cancelled_load"] = "loaded"
    except LoadAbortedError:
        report["cancelled_load"] = "LoadAbortedError"
    spec = await runner.load_model(good)
    report["reload_after_cancel"] = spec.architecture
    print(json.dumps(report))
    """
)


def test_engine_errors_are_typed_and_the_runner_recovers(require_builds, tmp_path: Path, run_cli) -> None:
    good = fixture_model("tiny", "f16")
    data = good.read_bytes()
    # A well-formed GGUF header that passes the fail-fast check but that llama.cpp itself rejects (no
    # hyperparameters, no tensors): the engine's C++ exception must come back as a typed error.
    key, arch = b"general.architecture", b"llama"
    kv = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(arch)) + arch
    (tmp_path / "corrupt.gguf").write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + kv)
    (tmp_path / "garbage.gguf").write_bytes(data[:4096] + bytes(len(data) - 4096))  # header cut by zeros
    (tmp_path / "truncated.gguf").write_bytes(data[: len(data) // 2])
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    argv = [f"/models/{good.name}", "/files/corrupt.gguf", "/files/truncated.gguf", "/files/garbage.gguf"]
    proc = run_cli(["run", "--script", "app.py", *argv], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    assert report == {
        "before_load": "ModelNotLoadedError",
        "missing": "ModelNotFoundError",
        "missing_last_stage": "error",
        "missing_loaded_after": False,
        "corrupt": "ModelInitializationError",
        "corrupt_last_stage": "error",
        "corrupt_loaded_after": False,
        "truncated": "TruncatedModelError",
        "truncated_last_stage": "error",
        "truncated_loaded_after": False,
        "garbage": "ModelCompatibilityError",
        "garbage_last_stage": "error",
        "garbage_loaded_after": False,
        "good_arch": "llama",
        "invalid": "InvalidParameterError",
        "busy": "RunnerBusyError",
        "first_reason": "length",
        "aborted_reason": "aborted",
        "aborted_tokens": 5,
        "again_prefix_equal": True,
        "again_reason": "length",
        "cancelled_load": "LoadAbortedError",
        "reload_after_cancel": "llama",
    }
