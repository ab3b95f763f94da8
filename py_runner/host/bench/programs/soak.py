"""`bench soak` in the page: one runner (kept as `soak_runner`, which the host ends), many generates, then
many loads of the same model; the wasm heap after each load."""

import json

from py_runner import GenerateTextParams, LlamaRunner


async def main(params: dict) -> str:
    global soak_runner
    url = params["url"]
    soak_runner = LlamaRunner(build=params["build"])
    await soak_runner.load_model(url, ctx_size=256)
    heaps = [soak_runner.load_details["wasm_heap_bytes"]]
    tokens = 0
    for i in range(params["generates"]):
        sampling = GenerateTextParams(n_predict=params["n_predict"], temp=0.8, seed=i)
        result = await soak_runner.generate_text(f"Story {i}: once upon a time", sampling)
        tokens += len(result.tokens)
    for _ in range(params["loads"]):
        await soak_runner.load_model(url, ctx_size=256)  # each load frees the model before it
        heaps.append(soak_runner.load_details["wasm_heap_bytes"])
    return json.dumps({"heaps": heaps, "tokens": tokens})
