"""`py-runner bench load`: model load throughput (network, cache) and peak browser memory during a load;
`bench generate`: tok/s through Python, from JS alone and natively; `bench soak`: heap figures over many
calls; `bench vs-wllama`: tok/s against wllama in the same page.

Everything runs in the real stack (server, headless Chromium, Pyodide, the engine worker); memory is the
resident set of every Chromium process this run started, sampled from /proc, relative to its level with
the page ready and no model loaded.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from py_runner._transport.protocol import DEFAULTS
from py_runner.host.browsers import selected_browser

LOAD_PROGRAM = """
import json, time
import js
from py_runner import LlamaRunner

runner = LlamaRunner(build={build!r})
if {clear_cache}:
    await runner.cache.clear()
start = time.perf_counter()
spec = await runner.load_model({source}, cache={cache}, ctx_size={ctx_size})
seconds = time.perf_counter() - start
heap = runner.load_details.get("wasm_heap_bytes")
memory = runner.load_details.get("memory")  # what llama.cpp allocated: model, context (KV), compute
runner.terminate()
json.dumps({{"seconds": seconds, "cache_hit": spec.cache_hit, "file_size": spec.file_size, "heap": heap,
             "memory": memory}})
"""


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _rss_bytes(pids: list[int], fields: tuple[str, ...] = ("RssAnon", "RssShmem")) -> int:
    """The memory `pids` hold: anonymous and shared memory (the wasm heap, the JS heaps, Blobs in memory).
    Not the pages of files they have mapped (RssFile: a cached model read from disk is mapped by the browser's
    storage process), which the kernel drops under pressure; `fields=("RssFile",)` measures those."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    name, _, value = line.partition(":")
                    if name in fields:
                        total += int(value.split()[0]) * 1024  # kB
        except (OSError, IndexError, ValueError):
            continue
    return total


class _PeakSampler:
    """Samples the summed RSS of this process's descendants (the browser) every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_file_pages = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            pids = _descendants(os.getpid())
            self.peak = max(self.peak, _rss_bytes(pids))
            self.peak_file_pages = max(self.peak_file_pages, _rss_bytes(pids, ("RssFile",)))
            self._stop.wait(0.02)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def bench_load(model: Path, *, build: str = "st", runs: int = 2, ctx_size: int = DEFAULTS["n_ctx"]) -> dict:
    """Load `model` from the local server over HTTP (cache off; cache cleared, then written), from the
    browser cache and as a File (as a file picker gives it), `runs` times each; returns the best
    throughputs and the peak memory ratios."""
    from .headless import harness_page
    from .server import start_server, stop_server

    size = model.stat().st_size
    url = f"/local-model/{model.name}"
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    url_source = repr(url)
    file_source = 'js.document.getElementById("bench-file").files.item(0)'  # a File, as from a file picker
    # (label, source expression, cache=, clear the cache first)
    kinds = [
        ("network, no cache", url_source, False, False),
        ("network, to cache", url_source, True, True),
        ("cache", url_source, True, False),
        ("file", file_source, True, False),
    ]
    results: dict[str, list[dict]] = {label: [] for label, *_ in kinds}
    try:
        with harness_page(base_url) as page:
            page.page.evaluate(
                "() => { const i = document.createElement('input'); i.type = 'file'; i.id = 'bench-file';"
                " document.body.appendChild(i); }"
            )
            page.page.set_input_files("#bench-file", str(model))
            for _ in range(runs):
                for kind, source, cache, clear in kinds:
                    program = LOAD_PROGRAM.format(
                        build=build, source=source, cache=cache, clear_cache=clear, ctx_size=ctx_size
                    )
                    baseline = _rss_bytes(_descendants(os.getpid()))
                    file_baseline = _rss_bytes(_descendants(os.getpid()), ("RssFile",))
                    with _PeakSampler() as sampler:
                        run = json.loads(page.run(program))
                    run["peak_extra_bytes"] = max(0, sampler.peak - baseline)
                    run["peak_file_pages_bytes"] = max(0, sampler.peak_file_pages - file_baseline)
                    results[kind].append(run)
                    time.sleep(0.5)  # let the terminated worker's memory go back
    finally:
        stop_server(server)
    report: dict = {"model": str(model), "file_size": size, "build": build, "runs": runs}
    report["ctx_size"] = ctx_size
    for kind, runs_of_kind in results.items():
        best = min(runs_of_kind, key=lambda r: r["seconds"])
        heap = best["heap"] or 0
        peak = max(r["peak_extra_bytes"] for r in runs_of_kind)
        report[kind] = {
            "mb_per_s": size / 1e6 / best["seconds"],
            "seconds": best["seconds"],
            "cache_hit": best["cache_hit"],
            "peak_memory_ratio": peak / size,
            "wasm_heap_ratio": heap / size,
            # issue 13's memory goals: the heap against what llama.cpp allocated, and what the load needs
            # beyond the heap at its peak, in units of the model's size
            "peak_beyond_heap_ratio": (peak - heap) / size,
            # mapped pages of files (the cached model, read from disk): not held, reclaimable; shown apart
            "peak_file_pages_ratio": max(r["peak_file_pages_bytes"] for r in runs_of_kind) / size,
        }
        memory = best.get("memory")
        if memory:
            report["llama_cpp_memory"] = memory
            report[kind]["heap_over_allocated"] = heap / sum(memory.values())
    return report


def format_load_report(report: dict) -> str:
    lines = [
        f"model {report['model']} ({report['file_size'] / 1e6:.1f} MB), {report['build']} build, "
        f"ctx_size {report['ctx_size']} (its KV cache is part of the load)"
    ]
    memory = report.get("llama_cpp_memory")
    if memory:
        lines.append(
            "  llama.cpp allocated: "
            + ", ".join(f"{name} {value / 1e6:.1f} MB" for name, value in memory.items())
            + f" = {sum(memory.values()) / 1e6:.1f} MB"
        )
    for kind in ("network, no cache", "network, to cache", "cache", "file"):
        r = report[kind]
        allocated = r.get("heap_over_allocated")
        lines.append(
            f"  {kind:17}: {r['mb_per_s']:7.1f} MB/s ({r['seconds']:.2f} s, cache hit {r['cache_hit']}), "
            f"peak browser memory +{r['peak_memory_ratio']:.2f}x the model size "
            f"(wasm heap after load {r['wasm_heap_ratio']:.2f}x"
            + ("" if allocated is None else f" = {allocated:.2f}x what llama.cpp allocated")
            + f"; peak beyond the heap {r['peak_beyond_heap_ratio']:+.2f}x the model; file pages mapped"
            + f" +{r['peak_file_pages_ratio']:.2f}x)"
        )
    return "\n".join(lines)


# Python side: one runner kept in Pyodide's globals between steps (setup, one run, teardown).
GENERATE_PYTHON_SETUP = """
from py_runner import GenerateTextParams, LlamaRunner

bench_runner = LlamaRunner(build={build!r}, n_threads={threads})
await bench_runner.load_model({url!r}, cache=False, ctx_size=512)
bench_params = GenerateTextParams(n_predict={n_predict}, temp=0, seed=0, n_threads={threads})
await bench_runner.generate_text("warm-up: " + {prompt!r}, bench_params)  # V8 tiers the wasm up on first use
"""

GENERATE_PYTHON_RUN = """
import json
streamed = []
r = await bench_runner.generate_text({prompt!r}, bench_params, token_callback=streamed.append)
json.dumps({{"prompt_tok_s": r.prompt_tok_s, "gen_tok_s": r.gen_tok_s, "tokens": len(streamed),
             "build": bench_runner.build, "threads": r.threads}})
"""

# The same requests straight from JavaScript (no Python, no Pyodide proxies): the baseline for streaming.
GENERATE_JS_SETUP = """
async ({build, threads, url, prompt, nPredict}) => {
  const { Bridge } = await import("/web/bridge.js");
  const bridge = new Bridge(
    { st: { js: "/build/st/pr_glue.js" }, mt: { js: "/build/mt/pr_glue.js" }, worker: "/web/worker.js" },
    { build, threads },
  );
  await bridge.start();
  await bridge.load(url, { n_ctx: 512, n_threads: threads, cache: false });
  // Fields left out take web/protocol.js's defaults, the values the Python side sends: both do the same work.
  window.__benchOptions = { n_predict: nPredict, temp: 0, seed: 0, n_threads: threads };
  await bridge.generate("warm-up: " + prompt, window.__benchOptions, () => {});
  window.__benchBridge = bridge;
}
"""

GENERATE_JS_RUN = """
async (prompt) => {
  let streamed = 0;
  const r = await window.__benchBridge.generate(prompt, window.__benchOptions, () => { streamed += 1; });
  return {
    prompt_tok_s: (r.prompt_tokens_evaluated * 1000) / r.timings.prompt_ms,
    gen_tok_s: (r.tokens.length * 1000) / r.timings.gen_ms,
    tokens: streamed, threads: r.threads,
  };
}
"""


def _native_generate(model: Path, prompt: str, n_predict: int, threads: int) -> dict:
    """pr_native (llama.cpp built natively, the same glue) on the same request: its prompt and generation
    tok/s by the same timers."""
    import subprocess

    from .paths import native_binary

    proc = subprocess.run(
        [str(native_binary()), "generate", "--model", str(model), "--prompt", prompt, "--n-predict",
         str(n_predict), "--threads", str(threads), "--temp", "0", "--ctx-size", "512"],
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
    model: Path, *, builds=("st", "mt"), threads: int = 1, n_predict: int = 64, runs: int = 3
) -> dict:
    """Prompt and generation tok/s for each build, streamed through Python (LlamaRunner) and driven from
    JavaScript alone (the bridge, its own engine) in the same page, and native llama.cpp (pr_native, one
    thread) on the same requests, runs alternating; best of `runs` after a warm-up. Each run's prompt starts
    differently, so the KV cache cannot shorten it; the paths get the same prompt. The st build always runs
    one thread, mt `threads`."""
    from .headless import harness_page
    from .paths import native_binary
    from .server import start_server, stop_server

    url = f"/local-model/{model.name}"
    text = "Once upon a time, in a land far away, there lived a young princess who loved to read. " * 3
    with_native = native_binary().is_file()
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    report: dict = {
        "model": str(model), "browser": None, "threads": threads, "n_predict": n_predict,
        "builds": {}, "not_run": {},
    }  # fmt: skip
    native_runs: list[dict] = []
    native_mt_runs: list[dict] = []
    try:
        with harness_page(base_url) as page:
            report["browser"] = page.engine
            for build in builds:
                missing = page.page.evaluate(WHY_NO_THREADS_JS) if build == "mt" else None
                if missing:  # e.g. WebKit: an isolated page without SharedArrayBuffer
                    report["not_run"][build] = missing
                    continue
                common = {"build": build, "threads": threads, "url": url, "prompt": text}
                page.run(GENERATE_PYTHON_SETUP.format(n_predict=n_predict, **common))
                page.page.evaluate(GENERATE_JS_SETUP, {**common, "nPredict": n_predict})
                python_runs, js_runs = [], []
                for i in range(runs):
                    prompt = f"Story {i + 1}. {text}"
                    # Which goes first alternates: neither is favoured by the machine's drift.
                    for path in ("python", "js") if i % 2 == 0 else ("js", "python"):
                        if path == "python":
                            python_runs.append(
                                json.loads(page.run(GENERATE_PYTHON_RUN.format(prompt=prompt)))
                            )
                        else:
                            js_runs.append(page.page.evaluate(GENERATE_JS_RUN, prompt))
                    if with_native:
                        native_runs.append(_native_generate(model, prompt, n_predict, 1))
                        if build == "mt" and threads > 1:  # what native llama.cpp gains from the threads here
                            native_mt_runs.append(_native_generate(model, prompt, n_predict, threads))
                page.run("bench_runner.terminate()")
                page.page.evaluate("() => window.__benchBridge.terminate()")
                best = {
                    name: {key: max(r[key] for r in rs) for key in ("prompt_tok_s", "gen_tok_s")}
                    for name, rs in (("python", python_runs), ("js", js_runs))
                }
                best["python_over_js"] = best["python"]["gen_tok_s"] / best["js"]["gen_tok_s"]
                best["tokens"] = python_runs[0]["tokens"]
                best["threads"] = python_runs[0]["threads"]
                report["builds"][build] = best
    finally:
        stop_server(server)
    if native_runs:
        native = {key: max(r[key] for r in native_runs) for key in ("prompt_tok_s", "gen_tok_s")}
        report["native"] = native | {"threads": 1}
        for r in report["builds"].values():
            r["over_native"] = {key: r["python"][key] / native[key] for key in ("prompt_tok_s", "gen_tok_s")}
    if "st" in report["builds"] and "mt" in report["builds"]:
        st, mt = report["builds"]["st"], report["builds"]["mt"]
        report["mt_over_st"] = mt["python"]["gen_tok_s"] / st["python"]["gen_tok_s"]
    if native_mt_runs:
        best = max(r["gen_tok_s"] for r in native_mt_runs)
        report["native_threads"] = {"threads": threads, "gen_tok_s": best}
        report["native_threads_over_one"] = best / report["native"]["gen_tok_s"]
    return report


# The bridge's own answer (web/bridge.js whyNoThreads), asked of the page before an mt run.
WHY_NO_THREADS_JS = """async () => (await import(new URL("bridge.js", location.href).href)).whyNoThreads()"""


def format_generate_report(report: dict) -> str:
    lines = [
        f"{report.get('browser', 'chromium')}: model {report['model']}, {report['threads']} thread(s) "
        f"for mt, {report['n_predict']} tokens, best of runs"
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
    if "native" in report:
        n = report["native"]
        lines.append(
            f"  native llama.cpp (pr_native, 1 thread): prompt {n['prompt_tok_s']:6.1f} tok/s, "
            f"generation {n['gen_tok_s']:6.1f} tok/s"
        )
        for build, r in report["builds"].items():
            o = r["over_native"]
            lines.append(
                f"  {build} / native: generation {o['gen_tok_s']:.2f}x, prompt {o['prompt_tok_s']:.2f}x"
            )
    if "mt_over_st" in report:
        lines.append(f"  mt / st generation: {report['mt_over_st']:.2f}x")
    if "native_threads_over_one" in report:
        t = report["native_threads"]
        lines.append(
            f"  native llama.cpp, {t['threads']} threads / 1 thread generation: "
            f"{report['native_threads_over_one']:.2f}x ({t['gen_tok_s']:.1f} tok/s)"
        )
    return "\n".join(lines)


SOAK_PROGRAM = """
import json
from py_runner import GenerateTextParams, LlamaRunner

soak_runner = LlamaRunner(build={build!r})
await soak_runner.load_model({url!r}, ctx_size=256)
heaps = [soak_runner.load_details["wasm_heap_bytes"]]
tokens = 0
for i in range({generates}):
    result = await soak_runner.generate_text(
        f"Story {{i}}: once upon a time", GenerateTextParams(n_predict={n_predict}, temp=0.8, seed=i))
    tokens += len(result.tokens)
for i in range({loads}):
    await soak_runner.load_model({url!r}, ctx_size=256)  # each load frees the model before it
    heaps.append(soak_runner.load_details["wasm_heap_bytes"])
json.dumps({{"heaps": heaps, "tokens": tokens}})
"""


def bench_soak(
    model: Path, *, build: str = "st", generates: int = 1000, loads: int = 100, n_predict: int = 4
) -> dict:
    """One page, one runner: `generates` generate calls, then `loads` load cycles of the same model (from the
    browser cache). Reports the wasm heap after the first load, after the generates (the next load's report)
    and after the last load, and the page's JS heap (after a garbage collection) before and after."""
    from .headless import harness_page
    from .server import start_server, stop_server

    url = f"/local-model/{model.name}"
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    try:
        with harness_page(base_url) as page:
            # The JS heap after a collection is a DevTools Protocol reading: other browsers report none.
            new_cdp_session = getattr(getattr(page.page, "context", None), "new_cdp_session", None)
            cdp = new_cdp_session(page.page) if selected_browser() == "chromium" and new_cdp_session else None

            def js_heap() -> int | None:
                if cdp is None:
                    return None
                cdp.send("HeapProfiler.collectGarbage")
                return int(cdp.send("Runtime.getHeapUsage")["usedSize"])

            page.run("import gc; gc.collect(); None")
            js_start = js_heap()
            start = time.perf_counter()
            program = SOAK_PROGRAM.format(
                build=build, url=url, generates=generates, loads=loads, n_predict=n_predict
            )
            run = json.loads(page.run(program, timeout_s=3600))
            seconds = time.perf_counter() - start
            page.run("soak_runner.terminate(); del soak_runner; import gc; gc.collect(); None")
            js_end = js_heap()
    finally:
        stop_server(server)
    heaps = run["heaps"]
    return {
        "model": str(model),
        "build": build,
        "generates": generates,
        "loads": loads,
        "tokens": run["tokens"],
        "seconds": seconds,
        "wasm_heap_first_load": heaps[0],
        "wasm_heap_after_generates": heaps[1] if len(heaps) > 1 else None,
        "wasm_heap_last_load": heaps[-1],
        "js_heap_start": js_start,
        "js_heap_end": js_end,
    }


def format_soak_report(report: dict) -> str:
    mib = 1 << 20
    return "\n".join(
        [
            f"soak: {report['build']}, {report['generates']} generate calls ({report['tokens']} tokens) and "
            f"{report['loads']} load cycles of {report['model']} in {report['seconds']:.0f} s",
            f"  wasm heap: {report['wasm_heap_first_load'] / mib:.1f} MiB after the first load, "
            f"{(report['wasm_heap_after_generates'] or 0) / mib:.1f} MiB after the generates, "
            f"{report['wasm_heap_last_load'] / mib:.1f} MiB after the last load",
            (
                f"  JS heap (page, after GC): {report['js_heap_start'] / mib:.1f} MiB at the start, "
                f"{report['js_heap_end'] / mib:.1f} MiB at the end"
                if report["js_heap_start"] is not None
                else "  JS heap: not measured (only Chromium's DevTools protocol reports it)"
            ),
        ]
    )


# `bench vs-wllama`: py_runner (the bridge, JS alone) and wllama in the same page, the same GGUF, one thread,
# runs alternating. Both report llama.cpp's own timings of the prompt and of the generated tokens.
VS_WLLAMA_SETUP = """
async ({url, nCtx, threads, prompt, nPredict}) => {
  const { Bridge } = await import("/web/bridge.js");
  const bridge = new Bridge(
    { st: { js: "/build/st/pr_glue.js" }, mt: { js: "/build/mt/pr_glue.js" }, worker: "/web/worker.js" },
    { build: "st", threads },
  );
  await bridge.start();
  await bridge.load(url, { n_ctx: nCtx, n_threads: threads, cache: false });
  const { Wllama } = await import("/wllama/esm/index.js");
  const wllama = new Wllama({ default: "/wllama/esm/wasm/wllama.wasm" }, { suppressNativeLog: true });
  // n_gpu_layers 0: headless Chromium has navigator.gpu but no adapter; both engines on the CPU
  await wllama.loadModelFromUrl(new URL(url, location.href).href,
                                { n_ctx: nCtx, n_threads: threads, n_gpu_layers: 0, useCache: false });
  window.__vs = { bridge, wllama, options: { n_predict: nPredict, temp: 0, seed: 0, n_threads: threads,
                                             ignore_eos: true } };
  for (const engine of ["py_runner", "wllama"]) await window.__vsRun(engine, "warm-up: " + prompt);
}
"""

VS_WLLAMA_RUN = """
window.__vsRun = async (engine, prompt) => {
  const { bridge, wllama, options } = window.__vs;
  if (engine === "py_runner") {
    const r = await bridge.generate(prompt, options, () => {});
    return { prompt_tokens: r.prompt_tokens_evaluated, tokens: r.tokens.length,
             prompt_tok_s: (r.prompt_tokens_evaluated * 1000) / r.timings.prompt_ms,
             gen_tok_s: (r.tokens.length * 1000) / r.timings.gen_ms };
  }
  const r = await wllama.createCompletion({ prompt, max_tokens: options.n_predict, temperature: 0, seed: 0,
                                            ignore_eos: true });
  const t = r.timings;
  return { prompt_tokens: t.prompt_n, tokens: t.predicted_n,
           prompt_tok_s: t.prompt_per_second, gen_tok_s: t.predicted_per_second };
};
"""


def requantized(model: Path, qtype: str) -> Path:
    """`model` requantized to `qtype` (q8_0, q4_k_m) by pr_native (llama.cpp's quantizer, requantizing
    allowed), kept in the models cache beside the fixtures."""
    import subprocess

    from .paths import models_dir, native_binary

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
    from .assets import wllama
    from .headless import harness_page
    from .server import start_server, stop_server

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
            page.page.evaluate(f"() => {{ {VS_WLLAMA_RUN} }}")
            for model in models:
                page.page.evaluate(
                    VS_WLLAMA_SETUP,
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
        f"py_runner (st) against wllama {_wllama_version()}, {report['threads']} thread(s), "
        f"{report['n_predict']} tokens, best of {report['runs']} alternating runs"
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
    from .pins import WLLAMA

    return WLLAMA.version


# `bench first-token`: a fresh page with the model already in the browser's cache, as a returning visitor.
FIRST_TOKEN_PROGRAM = """
import json
import js
from py_runner import GenerateTextParams, LlamaRunner

booted = js.performance.now()  # ms since the page's navigation began: Pyodide and py_runner are ready
runner = LlamaRunner(build={build!r})
spec = await runner.load_model({url!r})
loaded = js.performance.now()
first = []
params = GenerateTextParams(n_predict=1, temp=0)
await runner.generate_text({prompt!r}, params, token_callback=lambda _: first.append(js.performance.now()))
runner.terminate()
json.dumps({{"boot_ms": booted, "load_ms": loaded - booted, "first_token_ms": first[0] - loaded,
             "cache_hit": spec.cache_hit}})
"""


def bench_first_token(model: Path, *, build: str = "st", runs: int = 3) -> dict:
    """From a page load to the first token with the model already cached: the boot (page, Pyodide,
    micropip, py_runner), then the engine's start and the load from the cache, then the prompt and the first
    token. A first visit fills the cache; then `runs` fresh pages in the same browser profile; best run."""
    from .headless import open_browser
    from .server import start_server, stop_server

    url = f"/local-model/{model.name}"
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    program = FIRST_TOKEN_PROGRAM.format(build=build, url=url, prompt="Once upon a time")
    results = []
    try:
        with open_browser() as browser:
            context = browser.new_context()  # one profile: its model cache outlives each page
            for visit in range(runs + 1):
                page = context.new_page()
                page.goto(f"{base_url}/web/run.html")
                page.wait_for_function("window.__pyRunnerReady === true", timeout=120_000)
                page.set_default_timeout(300_000)
                run_js = "async (code) => await window.__pyRunnerPyodide.runPythonAsync(code)"
                run = json.loads(page.evaluate(run_js, program))
                page.close()
                if visit > 0:  # the first visit downloads the model into the cache
                    if not run["cache_hit"]:
                        raise RuntimeError("the model did not come from the browser's cache")
                    results.append(run)
            context.close()
    finally:
        stop_server(server)
    best = min(results, key=lambda r: r["load_ms"] + r["first_token_ms"])
    after_boot = (best["load_ms"] + best["first_token_ms"]) / 1000
    return {
        "model": str(model), "build": build, "runs": runs,
        "boot_s": best["boot_ms"] / 1000, "load_s": best["load_ms"] / 1000,
        "first_token_s": best["first_token_ms"] / 1000, "after_boot_s": after_boot,
    }  # fmt: skip


def format_first_token_report(report: dict) -> str:
    return (
        f"model {report['model']} ({report['build']} build), cached, fresh page, best of {report['runs']}:\n"
        f"  page load to Pyodide + py_runner ready: {report['boot_s']:.2f} s\n"
        f"  then engine start + load from the cache {report['load_s']:.2f} s, prompt + first token "
        f"{report['first_token_s']:.2f} s: first token {report['after_boot_s']:.2f} s after the boot"
    )
