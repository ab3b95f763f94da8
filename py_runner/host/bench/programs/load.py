"""`bench load` in the page: one load of the model (its URL, or the File in the page's file input), timed."""

import json
import time

import js

from py_runner import LlamaRunner


async def main(params: dict) -> str:
    runner = LlamaRunner(build=params["build"])
    if params["clear_cache"]:
        await runner.cache.clear()
    start = time.perf_counter()
    file_input = params["file_input"]  # a File, as from a file picker, or the URL
    model = js.document.getElementById(file_input).files.item(0) if file_input else params["url"]
    spec = await runner.load_model(model, cache=params["cache"], ctx_size=params["ctx_size"])
    seconds = time.perf_counter() - start
    heap = runner.load_details.get("wasm_heap_bytes")
    memory = runner.load_details.get("memory")  # what llama.cpp allocated: model, context (KV), compute
    runner.terminate()
    return json.dumps(
        {
            "seconds": seconds,
            "cache_hit": spec.cache_hit,
            "file_size": spec.file_size,
            "heap": heap,
            "memory": memory,
        }
    )
