"""`bench first-token` in the page: from the page's start to the first token, the model in the cache."""

import json

import js

from py_runner import GenerateTextParams, LlamaRunner


async def main(params: dict) -> str:
    booted = js.performance.now()  # ms since the page's navigation began: Pyodide and py_runner are ready
    runner = LlamaRunner(build=params["build"])
    spec = await runner.load_model(params["url"])
    loaded = js.performance.now()
    first = []
    generate = GenerateTextParams(n_predict=1, temp=0)
    await runner.generate_text(
        params["prompt"], generate, token_callback=lambda _: first.append(js.performance.now())
    )
    runner.terminate()
    return json.dumps(
        {
            "boot_ms": booted,
            "load_ms": loaded - booted,
            "first_token_ms": first[0] - loaded,
            "cache_hit": spec.cache_hit,
        }
    )
