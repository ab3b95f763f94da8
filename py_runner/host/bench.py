"""`py-runner bench load`: model load throughput (network, cache) and peak browser memory during a load;
`bench generate`: tok/s through Python and from JS alone; `bench soak`: heap figures over many calls.

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

_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")

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
runner.terminate()
json.dumps({{"seconds": seconds, "cache_hit": spec.cache_hit, "file_size": spec.file_size, "heap": heap}})
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


def _rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/statm", "rb") as f:
                total += int(f.read().split()[1]) * _PAGE_SIZE
        except (OSError, IndexError, ValueError):
            continue
    return total


class _PeakSampler:
    """Samples the summed RSS of this process's descendants (the browser) every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, _rss_bytes(_descendants(os.getpid())))
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
                    with _PeakSampler() as sampler:
                        run = json.loads(page.run(program))
                    run["peak_extra_bytes"] = max(0, sampler.peak - baseline)
                    results[kind].append(run)
                    time.sleep(0.5)  # let the terminated worker's memory go back
    finally:
        stop_server(server)
    report: dict = {"model": str(model), "file_size": size, "build": build, "runs": runs}
    report["ctx_size"] = ctx_size
    for kind, runs_of_kind in results.items():
        best = min(runs_of_kind, key=lambda r: r["seconds"])
        report[kind] = {
            "mb_per_s": size / 1e6 / best["seconds"],
            "seconds": best["seconds"],
            "cache_hit": best["cache_hit"],
            "peak_memory_ratio": max(r["peak_extra_bytes"] for r in runs_of_kind) / size,
            "wasm_heap_ratio": (best["heap"] or 0) / size,
        }
    return report


def format_load_report(report: dict) -> str:
    lines = [
        f"model {report['model']} ({report['file_size'] / 1e6:.1f} MB), {report['build']} build, "
        f"ctx_size {report['ctx_size']} (its KV cache is part of the load)"
    ]
    for kind in ("network, no cache", "network, to cache", "cache", "file"):
        r = report[kind]
        lines.append(
            f"  {kind:17}: {r['mb_per_s']:7.1f} MB/s ({r['seconds']:.2f} s, cache hit {r['cache_hit']}), "
            f"peak browser memory +{r['peak_memory_ratio']:.2f}x the model size "
            f"(wasm heap after load {r['wasm_heap_ratio']:.2f}x)"
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


def bench_generate(
    model: Path, *, builds=("st", "mt"), threads: int = 1, n_predict: int = 64, runs: int = 3
) -> dict:
    """Prompt and generation tok/s for each build, streamed through Python (LlamaRunner) and driven from
    JavaScript alone (the bridge), in the same page, runs alternating; best of `runs` after a warm-up. Each
    run's prompt starts differently, so the KV cache cannot shorten the prompt."""
    from .headless import harness_page
    from .server import start_server, stop_server

    url = f"/local-model/{model.name}"
    text = "Once upon a time, in a land far away, there lived a young princess who loved to read. " * 3
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    report: dict = {"model": str(model), "threads": threads, "n_predict": n_predict, "builds": {}}
    try:
        with harness_page(base_url) as page:
            for build in builds:
                common = {"build": build, "threads": threads, "url": url, "prompt": text}
                page.run(GENERATE_PYTHON_SETUP.format(n_predict=n_predict, **common))
                page.page.evaluate(GENERATE_JS_SETUP, {**common, "nPredict": n_predict})
                python_runs, js_runs = [], []
                for i in range(runs):
                    prompt = f"Story {i + 1}. {text}"
                    python_runs.append(json.loads(page.run(GENERATE_PYTHON_RUN.format(prompt=prompt))))
                    js_runs.append(page.page.evaluate(GENERATE_JS_RUN, f"Tale {i + 1}. {text}"))
                page.run("bench_runner.terminate()")
                page.page.evaluate("() => window.__benchBridge.terminate()")
                best = {
                    name: {key: max(r[key] for r in rs) for key in ("prompt_tok_s", "gen_tok_s")}
                    for name, rs in (("python", python_runs), ("js", js_runs))
                }
                best["python_over_js"] = best["python"]["gen_tok_s"] / best["js"]["gen_tok_s"]
                best["tokens"] = python_runs[0]["tokens"]
                report["builds"][build] = best
    finally:
        stop_server(server)
    return report


def format_generate_report(report: dict) -> str:
    lines = [
        f"model {report['model']}, {report['threads']} thread(s), {report['n_predict']} tokens, best of runs"
    ]
    for build, r in report["builds"].items():
        lines.append(
            f"  {build}: prompt {r['python']['prompt_tok_s']:6.1f} tok/s, "
            f"generation {r['python']['gen_tok_s']:6.1f} tok/s through Python; "
            f"JS alone {r['js']['gen_tok_s']:6.1f} tok/s; "
            f"Python/JS {r['python_over_js']:.3f}"
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
            cdp = page.page.context.new_cdp_session(page.page)

            def js_heap() -> int:
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
            f"  JS heap (page, after GC): {report['js_heap_start'] / mib:.1f} MiB at the start, "
            f"{report['js_heap_end'] / mib:.1f} MiB at the end",
        ]
    )
