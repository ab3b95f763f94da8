"""Greedy tokens streamed through Python in Pyodide equal the native llama.cpp reference, token for token.

One browser session runs every (build, threads, model) combination through LlamaRunner; the native
reference (`pr_native`, the same glue compiled natively) runs the same prompt with the same thread count.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest

from py_runner._fixtures import fixture_model
from py_runner._paths import native_binary

pytestmark = pytest.mark.e2e

PROMPT = "Once upon a time, in a land far away, there lived"
N_PREDICT = 32
MODELS = [("tiny", "f16"), ("s135", "q8_0"), ("s135", "q4_k_m")]
CONFIGS = [("st", 1), ("mt", 1), ("mt", 2)]  # (build, threads)

APP = textwrap.dedent(
    """\
    import json
    import sys

    import js
    from py_runner import GenerateTextParams, LlamaRunner

    config = json.loads(sys.argv[1])
    report = {"crossOriginIsolated": bool(js.crossOriginIsolated), "runs": []}

    auto = LlamaRunner()  # no build asked for: must pick mt on this cross-origin isolated page
    await auto.load_model(config["models"][0])
    report["auto_build"] = auto.build
    auto.terminate()

    for build, threads in config["configs"]:
        runner = LlamaRunner(build=build, n_threads=2)
        for url in config["models"]:
            await runner.load_model(url, ctx_size=256)
            params = GenerateTextParams(n_predict=config["n_predict"], temp=0, n_threads=threads, seed=0)
            streamed = []
            result = await runner.generate_text(
                config["prompt"], params, token_callback=lambda chunk: streamed.append(chunk.token)
            )
            report["runs"].append({
                "build": runner.build, "threads": threads, "model": url, "streamed": streamed,
                "tokens": result.tokens, "finish_reason": result.finish_reason,
            })
        runner.terminate()
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    return {f"{preset}-{qtype}": fixture_model(preset, qtype) for preset, qtype in MODELS}


def native_tokens(model: Path, threads: int) -> list[int]:
    proc = subprocess.run(
        [
            str(native_binary()),
            "generate",
            "--model",
            str(model),
            "--prompt",
            PROMPT,
            "--n-predict",
            str(N_PREDICT),
            "--threads",
            str(threads),
            "--temp",
            "0",
            "--ctx-size",
            "256",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    return json.loads(proc.stdout)["tokens"]


def test_browser_builds_stream_the_native_greedy_tokens(
    require_builds, models: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    (tmp_path / "parity.py").write_text(APP, encoding="utf-8")
    config = {
        "models": [f"/models/{path.name}" for path in models.values()],
        "configs": CONFIGS,
        "prompt": PROMPT,
        "n_predict": N_PREDICT,
    }
    proc = run_cli(["run", "--script", "parity.py", json.dumps(config)], cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.splitlines()[-1])

    assert report["crossOriginIsolated"] is True
    assert report["auto_build"] == "mt"
    assert len(report["runs"]) == len(CONFIGS) * len(MODELS)

    reference = {(name, t): native_tokens(path, t) for name, path in models.items() for t in (1, 2)}
    for run in report["runs"]:
        name = next(n for n, p in models.items() if run["model"].endswith(p.name))
        expected = reference[(name, run["threads"])]
        label = f"{name} {run['build']} {run['threads']} thread(s)"
        assert len(expected) == N_PREDICT, f"native stopped early on {name}: fixture is degenerate"
        assert len(set(expected)) > 4, f"native output of {name} repeats: fixture is degenerate"
        assert run["finish_reason"] == "length", label
        assert run["streamed"] == run["tokens"], f"{label}: streamed tokens differ from the result"
        assert run["tokens"] == expected, f"{label}: browser tokens differ from native llama.cpp"


def test_cli_json_run_matches_native(
    require_builds, models: dict[str, Path], tmp_path: Path, run_cli
) -> None:
    model = str(models["s135-q8_0"])
    args = ["run", "--model", model, "--prompt", PROMPT, "--n-predict", str(N_PREDICT), "--json"]
    docs = {}
    for build in ("st", "native"):
        proc = run_cli([*args, "--build", build], cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-4000:]
        docs[build] = json.loads(proc.stdout)  # exactly one JSON object on stdout
    st, native = docs["st"], docs["native"]
    assert st["build"] == "st" and native["build"] == "native"
    assert st["tokens"] == native["tokens"] and len(st["tokens"]) == N_PREDICT
    assert st["text"] == native["text"]
    assert st["model"]["architecture"] == "llama" and st["model"]["quantization"] == "Q8_0"
    assert st["model"]["layer_count"] == 30 and st["model"]["embedding_length"] == 576
    for doc in (st, native):
        timings = doc["timings"]
        assert timings["prompt_tokens"] > 0 and timings["gen_tokens"] == N_PREDICT
        assert timings["gen_tok_s"] > 0 and timings["prompt_tok_s"] > 0
