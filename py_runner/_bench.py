"""`py-runner bench load`: model load throughput (network, cache) and peak browser memory during a load.

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


def bench_load(model: Path, *, build: str = "st", runs: int = 2, ctx_size: int = 2048) -> dict:
    """Load `model` from the local server over HTTP (cache off; cache cleared, then written), from the
    browser cache and as a File (as a file picker gives it), `runs` times each; returns the best
    throughputs and the peak memory ratios."""
    from ._headless import harness_page
    from ._server import start_server, stop_server

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
