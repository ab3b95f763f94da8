"""`py-runner bench generate`: tok/s through Python, from JS alone, and natively, in the same page and run."""

from __future__ import annotations

import json
from pathlib import Path

from ..._transport.protocol import DEFAULTS
from .programs import js_function, python_call

STORY = "Once upon a time, in a land far away, there lived a young princess who loved to read. "
TEXT = Path(__file__).parents[1] / "texts" / "declaration-and-gettysburg-address.txt"


def _prompt_text(depth: int) -> str:
    """The prompt every run continues: a short story line, or with `depth`, about that many tokens of
    public-domain prose (about 4 characters a token), so that generation runs over a long context."""
    if not depth:
        return STORY * 3
    prose = " ".join(TEXT.read_text(encoding="utf-8").split())
    return (prose * (1 + depth * 4 // len(prose)))[: depth * 4]


def _native_generate(
    model: Path, prompt: str, n_predict: int, threads: int, ctx_size: int, cache_type: str | None
) -> dict:
    """pr_native (llama.cpp built natively, the same glue) on the same request: its prompt and generation
    tok/s by the same timers."""
    import subprocess

    from ..build.paths import native_binary

    kv = ["--cache-type-k", cache_type, "--cache-type-v", cache_type] if cache_type else []
    proc = subprocess.run(
        [str(native_binary()), "generate", "--model", str(model), "--prompt", prompt, "--n-predict",
         str(n_predict), "--threads", str(threads), "--temp", "0", "--ctx-size", str(ctx_size),
         "--batch-size", str(DEFAULTS["n_batch"]), *kv],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"pr_native generate failed: {proc.stderr.strip()[-500:]}")
    t = json.loads(proc.stdout)["timings"]
    return {
        "prompt_tok_s": t["prompt_tokens"] * 1000 / t["prompt_ms"],
        "gen_tok_s": t["gen_tokens"] * 1000 / t["gen_ms"],
    }


def bench_generate(
    model: Path,
    *,
    builds=("st", "st-relaxed", "mt", "mt-relaxed"),
    threads: int = 1,
    n_predict: int = 64,
    runs: int = 3,
    cache_types: tuple[str | None, ...] = (None,),
    depth: int = 0,
) -> dict:
    """Prompt and generation tok/s for each build, streamed through Python (LlamaRunner) and driven from
    JavaScript alone (the bridge, its own engine) in the same page, and native llama.cpp (pr_native, one
    thread) on the same requests, runs alternating; best of `runs` after a warm-up. Each run's prompt starts
    differently, so the KV cache cannot shorten it; the paths get the same prompt. The st build always runs
    one thread, mt `threads`. "st-relaxed", "mt-relaxed": the builds' relaxed-SIMD variants (not run where the
    browser has no relaxed SIMD). `cache_types`: the KV cache types to run each build with (K and V alike;
    None is the default, F16), each reported as "<build> kv=<type>"; `depth`: a prompt of about that many
    tokens, so that generation attends over a long context."""
    from ..browser.headless import harness_page
    from ..build.paths import native_binary
    from ..server import start_server, stop_server

    url = f"/local-model/{model.name}"
    text = _prompt_text(depth)
    ctx_size = 512 if not depth else depth * 2 + n_predict + 64  # room for the prompt however it tokenizes
    with_native = native_binary().is_file()
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    report: dict = {
        "model": str(model), "browser": None, "threads": threads, "n_predict": n_predict,
        "depth": depth, "ctx_size": ctx_size, "builds": {}, "not_run": {},
    }  # fmt: skip
    native_runs: dict[str | None, list[dict]] = {}
    native_mt_runs: list[dict] = []
    try:
        with harness_page(base_url) as page:
            report["browser"] = page.engine
            for build, cache_type in [(b, c) for b in builds for c in cache_types]:
                name = build if cache_type is None else f"{build} kv={cache_type}"
                base, relaxed = build.removesuffix("-relaxed"), build.endswith("-relaxed")
                why_not = page.page.evaluate(WHY_NOT_JS)
                missing = why_not["threads"] if base == "mt" else None
                missing = missing or (why_not["relaxed"] if relaxed else None)
                if missing:  # e.g. WebKit: an isolated page without SharedArrayBuffer, no relaxed SIMD
                    report["not_run"][name] = missing
                    continue
                simd = "relaxed" if relaxed else "simd128"
                common = {"build": base, "simd": simd, "threads": threads, "url": url, "prompt": text}
                common |= {"ctx_size": ctx_size, "cache_type": cache_type}
                page.run(python_call("generate", "setup", n_predict=n_predict, **common))
                page.page.evaluate(js_function("generate_setup"), {**common, "nPredict": n_predict})
                python_runs, js_runs = [], []
                for i in range(runs):
                    prompt = f"Story {i + 1}. {text}"
                    # Which goes first alternates: neither is favoured by the machine's drift.
                    for path in ("python", "js") if i % 2 == 0 else ("js", "python"):
                        if path == "python":
                            python_runs.append(
                                json.loads(page.run(python_call("generate", "run", prompt=prompt)))
                            )
                        else:
                            js_runs.append(page.page.evaluate(js_function("generate_run"), prompt))
                    if with_native:
                        native_runs.setdefault(cache_type, []).append(
                            _native_generate(model, prompt, n_predict, 1, ctx_size, cache_type)
                        )
                        # what native llama.cpp gains from the threads here (with the default KV cache)
                        if base == "mt" and threads > 1 and cache_type is None:
                            native_mt_runs.append(
                                _native_generate(model, prompt, n_predict, threads, ctx_size, cache_type)
                            )
                page.run("bench_runner.terminate()")
                page.page.evaluate("() => window.__benchBridge.terminate()")
                best = {
                    name: {key: max(r[key] for r in rs) for key in ("prompt_tok_s", "gen_tok_s")}
                    for name, rs in (("python", python_runs), ("js", js_runs))
                }
                best["python_over_js"] = best["python"]["gen_tok_s"] / best["js"]["gen_tok_s"]
                best["tokens"] = python_runs[0]["tokens"]
                best["prompt_tokens"] = python_runs[0]["prompt_tokens"]
                best["threads"] = python_runs[0]["threads"]
                best["cache_type"] = cache_type
                report["builds"][name] = best
    finally:
        stop_server(server)
    for cache_type, runs_of_type in native_runs.items():
        native = {key: max(r[key] for r in runs_of_type) for key in ("prompt_tok_s", "gen_tok_s")}
        native_name = "native" if cache_type is None else f"native kv={cache_type}"
        report[native_name] = native | {"threads": 1}
        for r in report["builds"].values():
            if r["cache_type"] == cache_type:
                r["over_native"] = {k: r["python"][k] / native[k] for k in ("prompt_tok_s", "gen_tok_s")}
    if "st" in report["builds"] and "mt" in report["builds"]:
        st, mt = report["builds"]["st"], report["builds"]["mt"]
        report["mt_over_st"] = mt["python"]["gen_tok_s"] / st["python"]["gen_tok_s"]
    for base in ("st", "mt"):  # what relaxed SIMD gains over SIMD128, measured in this one run
        if base in report["builds"] and f"{base}-relaxed" in report["builds"]:
            plain, relaxed = report["builds"][base]["python"], report["builds"][f"{base}-relaxed"]["python"]
            report.setdefault("relaxed_over_simd128", {})[base] = {
                key: relaxed[key] / plain[key] for key in ("prompt_tok_s", "gen_tok_s")
            }
    if native_mt_runs and "native" in report:
        best = max(r["gen_tok_s"] for r in native_mt_runs)
        report["native_threads"] = {"threads": threads, "gen_tok_s": best}
        report["native_threads_over_one"] = best / report["native"]["gen_tok_s"]
    for build in builds:  # what each KV cache type gains over the default, measured in this one run
        default = report["builds"].get(build)
        for cache_type in cache_types:
            other = report["builds"].get(f"{build} kv={cache_type}")
            if default and other and cache_type is not None:
                report.setdefault("kv_over_f16", {})[f"{build} kv={cache_type}"] = {
                    key: other["python"][key] / default["python"][key]
                    for key in ("prompt_tok_s", "gen_tok_s")
                }
    return report


# The bridge's own answers (web/page/bridge.js whyNoThreads, whyNoRelaxedSimd), asked before each run.
WHY_NOT_JS = """async () => {
  const bridge = await import(new URL("../page/bridge.js", location.href).href);  // beside web/site/run.html
  return { threads: bridge.whyNoThreads(), relaxed: bridge.whyNoRelaxedSimd() };
}"""


def format_generate_report(report: dict) -> str:
    depth = f", after a prompt of ~{report['depth']} tokens" if report.get("depth") else ""
    lines = [
        f"{report.get('browser', 'chromium')}: model {report['model']}, {report['threads']} thread(s) "
        f"for mt, {report['n_predict']} tokens{depth}, best of runs"
    ]
    for build, why in report.get("not_run", {}).items():
        lines.append(f"  {build}: not run ({why})")
    for build, r in report["builds"].items():
        lines.append(
            f"  {build} ({r['threads']} thread(s)): prompt {r['python']['prompt_tok_s']:6.1f} tok/s, "
            f"generation {r['python']['gen_tok_s']:6.1f} tok/s through Python; "
            f"JS alone {r['js']['gen_tok_s']:6.1f} tok/s; "
            f"Python/JS {r['python_over_js']:.3f}"
        )
    for native_name in [k for k in report if k == "native" or k.startswith("native kv=")]:
        n = report[native_name]
        lines.append(
            f"  {native_name} llama.cpp (pr_native, 1 thread): prompt {n['prompt_tok_s']:6.1f} tok/s, "
            f"generation {n['gen_tok_s']:6.1f} tok/s"
        )
    if "native" in report or any(k.startswith("native kv=") for k in report):
        for build, r in report["builds"].items():
            if "over_native" not in r:
                continue
            o = r["over_native"]
            lines.append(
                f"  {build} / native: generation {o['gen_tok_s']:.2f}x, prompt {o['prompt_tok_s']:.2f}x"
            )
    if "mt_over_st" in report:
        lines.append(f"  mt / st generation: {report['mt_over_st']:.2f}x")
    for base, r in report.get("relaxed_over_simd128", {}).items():
        lines.append(
            f"  {base}-relaxed / {base}: generation {r['gen_tok_s']:.2f}x, prompt {r['prompt_tok_s']:.2f}x"
        )
    for name, r in report.get("kv_over_f16", {}).items():
        build = name.split(" kv=")[0]
        lines.append(f"  {name} / {build}: generation {r['gen_tok_s']:.2f}x, prompt {r['prompt_tok_s']:.2f}x")
    if "native_threads_over_one" in report:
        t = report["native_threads"]
        lines.append(
            f"  native llama.cpp, {t['threads']} threads / 1 thread generation: "
            f"{report['native_threads_over_one']:.2f}x ({t['gen_tok_s']:.1f} tok/s)"
        )
    return "\n".join(lines)
