"""`py-runner bench load`: model load throughput (network, cache, File) and peak browser memory during a
load."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from py_runner._transport.protocol import DEFAULTS

from ._memory import _descendants, _PeakSampler, _rss_bytes
from .programs import python_call


def bench_load(model: Path, *, build: str = "st", runs: int = 2, ctx_size: int = DEFAULTS["n_ctx"]) -> dict:
    """Load `model` from the local server over HTTP (cache off; cache cleared, then written), from the
    browser cache and as a File (as a file picker gives it), `runs` times each; returns the best
    throughputs and the peak memory ratios."""
    from ..browser.headless import harness_page
    from ..server import start_server, stop_server

    size = model.stat().st_size
    url = f"/local-model/{model.name}"
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    # (label, the file input holding the model as a File, as from a file picker (else the URL), cache=, clear
    # the cache first)
    kinds = [
        ("network, no cache", None, False, False),
        ("network, to cache", None, True, True),
        ("cache", None, True, False),
        ("file", "bench-file", True, False),
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
                for kind, file_input, cache, clear in kinds:
                    program = python_call(
                        "load", build=build, url=url, file_input=file_input, cache=cache, clear_cache=clear,
                        ctx_size=ctx_size,
                    )  # fmt: skip
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
