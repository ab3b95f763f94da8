"""`py-runner bench soak`: heap figures over many generates and loads."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..browser.browsers import selected_browser
from .programs import python_call


def bench_soak(
    model: Path, *, build: str = "st", generates: int = 1000, loads: int = 100, n_predict: int = 4
) -> dict:
    """One page, one runner: `generates` generate calls, then `loads` load cycles of the same model (from the
    browser cache). Reports the wasm heap after the first load, after the generates (the next load's report)
    and after the last load, and the page's JS heap (after a garbage collection) before and after."""
    from ..browser.headless import harness_page
    from ..server import start_server, stop_server

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
            program = python_call(
                "soak", build=build, url=url, generates=generates, loads=loads, n_predict=n_predict
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
