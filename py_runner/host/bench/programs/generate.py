"""`bench generate` through Python in the page: `setup` (one runner and its parameters, kept as `bench_runner`
and `bench_params` between the steps; the host ends the runner), then `run` once per measured run."""

import json

from py_runner import GenerateTextParams, LlamaRunner


async def setup(params: dict) -> None:
    global bench_runner, bench_params
    threads = params["threads"]
    bench_runner = LlamaRunner(build=params["build"], simd=params["simd"], n_threads=threads)
    kv = params["cache_type"]
    await bench_runner.load_model(
        params["url"], cache=False, ctx_size=params["ctx_size"], type_k=kv, type_v=kv
    )
    bench_params = GenerateTextParams(n_predict=params["n_predict"], temp=0, seed=0, n_threads=threads)
    # V8 tiers the wasm up on first use
    await bench_runner.generate_text("warm-up: " + params["prompt"], bench_params)


async def run(params: dict) -> str:
    streamed = []
    r = await bench_runner.generate_text(params["prompt"], bench_params, token_callback=streamed.append)
    return json.dumps(
        {
            "prompt_tok_s": r.prompt_tok_s,
            "gen_tok_s": r.gen_tok_s,
            "tokens": len(streamed),
            "prompt_tokens": r.prompt_tokens,
            "build": bench_runner.build,
            "simd": bench_runner.simd,
            "threads": r.threads,
        }
    )
