"""`py-runner bench first-token`: from the page's start to the first token, with a cached model."""

from __future__ import annotations

import json
from pathlib import Path

from .programs import python_call


def bench_first_token(model: Path, *, build: str = "st", runs: int = 3) -> dict:
    """From a page load to the first token with the model already cached: the boot (page, Pyodide,
    micropip, py_runner), then the engine's start and the load from the cache, then the prompt and the first
    token. A first visit fills the cache; then `runs` fresh pages in the same browser profile; best run."""
    from ..browser.headless import HarnessPage, open_browser
    from ..server import start_server, stop_server

    url = f"/local-model/{model.name}"
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    program = python_call("first_token", build=build, url=url, prompt="Once upon a time")
    results = []
    try:
        with open_browser() as browser:
            context = browser.new_context()  # one profile: its model cache outlives each page
            for visit in range(runs + 1):
                page = HarnessPage(context.new_page())
                page.boot(base_url, timeout_s=120)
                run = json.loads(page.run(program, timeout_s=300))
                page.page.close()
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
