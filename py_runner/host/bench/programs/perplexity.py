"""`py-runner perplexity` in the page: the browser's logits for one window, reduced row by row against
native's (fetched from the server). `log_softmax_at` and `reduce_row` are the one reduction: the host runs
this file too (without `main`) on a second native build's logits, so that the two reports compare number for
number. Pure Python (no numpy in the page); the runner is kept as `perplexity_runner` across windows."""

import json
import math
from array import array


def log_softmax_at(row, index):
    top = max(row)
    lse = top + math.log(math.fsum(math.exp(x - top) for x in row))
    return lse, row[index] - lse


def reduce_row(ref, row, token):
    """`ref` and `row` are the logits predicting `token`, native's and the candidate's: [native NLL,
    candidate NLL, KL divergence of the candidate from native, the same best token]."""
    ref_lse, ref_lp = log_softmax_at(ref, token)
    row_lse, row_lp = log_softmax_at(row, token)
    pairs = zip(ref, row, strict=False)
    kld = math.fsum(math.exp(a - ref_lse) * ((a - ref_lse) - (b - row_lse)) for a, b in pairs)
    return [-ref_lp, -row_lp, max(kld, 0.0), ref.index(max(ref)) == row.index(max(row))]


async def main(params: dict) -> str:
    import js  # the page's; the host reads this file for the reduction alone

    from py_runner import LlamaRunner

    global perplexity_runner
    if "perplexity_runner" not in globals():
        perplexity_runner = LlamaRunner(build=params["build"])
        await perplexity_runner.load_model(params["model_url"], ctx_size=params["ctx"], cache=False)
    data = await (await js.fetch(params["native_url"])).arrayBuffer()
    native = array("f")
    native.frombytes(data.to_bytes())
    tokens = params["tokens"]
    rows = await perplexity_runner.logits(params["prompt"], tokens)
    n_vocab = len(rows[0])
    return json.dumps(
        [
            reduce_row(native[i * n_vocab : (i + 1) * n_vocab], row, token)
            for i, (row, token) in enumerate(zip(rows, tokens, strict=False))
        ]
    )
