"""`py-runner bench vs-wllama`: tok/s against wllama in the same page."""

from __future__ import annotations

import os
from pathlib import Path

from .programs import js_function


def requantized(model: Path, qtype: str) -> Path:
    """`model` requantized to `qtype` (q8_0, q4_k_m) by pr_native (llama.cpp's quantizer, requantizing
    allowed), kept in the models cache beside the fixtures."""
    import subprocess

    from ..build.paths import models_dir, native_binary

    target = models_dir() / f"{model.stem}.requantized-{qtype}.gguf"
    if not target.is_file():
        partial = target.with_suffix(".partial")
        proc = subprocess.run(
            [str(native_binary()), "quantize", str(model), str(partial), qtype],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"pr_native quantize {qtype} failed: {proc.stderr.strip()[-500:]}")
        os.replace(partial, target)
    return target


def bench_vs_wllama(
    models: list[Path], *, threads: int = 1, n_predict: int = 64, runs: int = 3, ctx: int = 512
) -> dict:
    """Prompt and generation tok/s of py_runner (st) and wllama over each model in one Chromium page, runs
    alternating; best of `runs` after a warm-up, and their ratios."""
    from ..browser.headless import harness_page
    from ..build.assets import wllama
    from ..server import start_server, stop_server

    wllama_dir = wllama()
    files = {
        "/wllama/esm/index.js": wllama_dir / "esm" / "index.js",
        "/wllama/esm/wasm/wllama.wasm": wllama_dir / "esm" / "wasm" / "wllama.wasm",
    }
    files |= {f"/local-model/{m.name}": m for m in models}
    text = "Once upon a time, in a land far away, there lived a young princess who loved to read. " * 3
    server, base_url = start_server("127.0.0.1", 0, extra_files=files)
    report: dict = {"threads": threads, "n_predict": n_predict, "runs": runs, "models": {}}
    try:
        with harness_page(base_url) as page:
            page.page.evaluate(js_function("vs_wllama_run"))
            for model in models:
                report["simd"] = page.page.evaluate(
                    js_function("vs_wllama_setup"),
                    {"url": f"/local-model/{model.name}", "nCtx": ctx, "threads": threads,
                     "prompt": text, "nPredict": n_predict},
                )  # fmt: skip
                results: dict[str, list[dict]] = {"py_runner": [], "wllama": []}
                for i in range(runs):
                    for engine in ("py_runner", "wllama") if i % 2 == 0 else ("wllama", "py_runner"):
                        prompt = f"Story {i + 1} ({engine}). {text}"
                        results[engine].append(
                            page.page.evaluate("([e, p]) => window.__vsRun(e, p)", [engine, prompt])
                        )
                page.page.evaluate(
                    "async () => { window.__vs.bridge.terminate(); await window.__vs.wllama.exit(); }"
                )
                best = {
                    engine: {key: max(r[key] for r in rs) for key in ("prompt_tok_s", "gen_tok_s")}
                    | {"prompt_tokens": rs[0]["prompt_tokens"], "tokens": rs[0]["tokens"]}
                    for engine, rs in results.items()
                }
                for key in ("prompt_tok_s", "gen_tok_s"):
                    best[f"{key.split('_')[0]}_ratio"] = best["py_runner"][key] / best["wllama"][key]
                report["models"][str(model)] = best
    finally:
        stop_server(server)
    return report


def format_vs_wllama_report(report: dict) -> str:
    lines = [
        f"py_runner (st, {report.get('simd')}) against wllama {_wllama_version()}, {report['threads']} "
        f"thread(s), {report['n_predict']} tokens, best of {report['runs']} alternating runs"
    ]
    for model, r in report["models"].items():
        p, w = r["py_runner"], r["wllama"]
        lines.append(
            f"  {Path(model).name}: generation {p['gen_tok_s']:.1f} vs {w['gen_tok_s']:.1f} tok/s = "
            f"{r['gen_ratio']:.2f}x; prompt ({p['prompt_tokens']} tokens) {p['prompt_tok_s']:.1f} vs "
            f"{w['prompt_tok_s']:.1f} tok/s = {r['prompt_ratio']:.2f}x"
        )
    return "\n".join(lines)


def _wllama_version() -> str:
    from ..build.pins import WLLAMA

    return WLLAMA.version


# `bench first-token`: a fresh page with the model already in the browser's cache, as a returning visitor.
