"""`py-runner perplexity`: the browser against native llama.cpp over the same tokens, by llama-perplexity's
`--kl-divergence` method.

The text is tokenized once (native, no special tokens) and cut into windows that fit `ctx`. For each window,
native llama.cpp (`pr_native score --logits-out`) and the browser (`LlamaRunner.logits`, in headless Chromium)
compute the logits that predict each of its tokens after the same short prompt (`PROMPT`, which both tokenize
as generation tokenizes a prompt: each window starts fresh, as llama-perplexity's chunks do). The page reads
native's logits from the server and reduces both, row by row, to what the report needs: each side's negative
log-likelihood of the true token, the KL divergence of the browser's distribution from native's, and whether
their best tokens agree. Pure Python in the page (no numpy there).
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from pathlib import Path

from .paths import native_binary

DEFAULT_TEXT = Path(__file__).parent / "texts" / "declaration-and-gettysburg-address.txt"
PROMPT = "Text:\n"  # not empty: a model without a BOS token would have no prompt at all
PROMPT_ROOM = 16  # context slots kept for the prompt's tokens

PAGE_PROGRAM = """
import json, math
from array import array
import js
from py_runner import LlamaRunner

if "perplexity_runner" not in globals():
    perplexity_runner = LlamaRunner(build={build!r})
    await perplexity_runner.load_model({model_url!r}, ctx_size={ctx}, cache=False)

def log_softmax_at(row, index):
    top = max(row)
    lse = top + math.log(math.fsum(math.exp(x - top) for x in row))
    return lse, row[index] - lse

async def window_rows(prompt, tokens, native_url):
    data = await (await js.fetch(native_url)).arrayBuffer()
    native = array("f")
    native.frombytes(data.to_bytes())
    rows = await perplexity_runner.logits(prompt, tokens)
    n_vocab = len(rows[0])
    out = []
    for i, (row, token) in enumerate(zip(rows, tokens)):
        ref = native[i * n_vocab : (i + 1) * n_vocab]
        ref_lse, ref_lp = log_softmax_at(ref, token)
        row_lse, row_lp = log_softmax_at(row, token)
        kld = math.fsum(math.exp(a - ref_lse) * ((a - ref_lse) - (b - row_lse)) for a, b in zip(ref, row))
        out.append([-ref_lp, -row_lp, max(kld, 0.0), ref.index(max(ref)) == row.index(max(row))])
    return out

json.dumps(await window_rows({prompt!r}, {tokens!r}, {native_url!r}))
"""


def _native(*args: str, timeout: float = 600) -> dict:
    proc = subprocess.run(
        [str(native_binary()), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pr_native {args[0]} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def windows(tokens: list[int], ctx: int) -> list[list[int]]:
    """`tokens` cut into windows that fit a context of `ctx` after the prompt."""
    size = max(1, ctx - PROMPT_ROOM)
    return [tokens[i : i + size] for i in range(0, len(tokens), size)]


def perplexity(
    model: Path, text: str, *, ctx: int = 512, build: str = "st", max_tokens: int | None = None
) -> dict:
    """The report: {"tokens", "perplexity", "native_perplexity", "mean_kld", "p99_kld", "top1_agreement"}
    (+ "model", "build", "ctx", "windows")."""
    from .headless import harness_page
    from .server import start_server, stop_server

    if not native_binary().is_file():
        raise RuntimeError(f"{native_binary()} is missing: run build_wasm.sh")
    tokens = _native("tokenize", "--model", str(model), "--text", text, "--add-special", "0")["tokens"]
    if max_tokens is not None:
        tokens = tokens[:max_tokens]
    parts = windows(tokens, ctx)
    if not parts:
        raise ValueError("the text has no tokens")
    rows: list[list] = []
    with tempfile.TemporaryDirectory(prefix="py_runner-perplexity-") as tmp:
        work = Path(tmp)
        model_url = f"/local-model/{model.name}"
        server, base_url = start_server("127.0.0.1", 0, files_dir=work, extra_files={model_url: model})
        try:
            with harness_page(base_url) as page:
                for i, part in enumerate(parts):
                    logits_file = work / f"native-{i}.f32"
                    _native(
                        "score", "--model", str(model), "--prompt", PROMPT,
                        "--tokens", ",".join(map(str, part)), "--threads", "1",
                        "--ctx-size", str(ctx), "--logits-out", str(logits_file),
                    )  # fmt: skip
                    program = PAGE_PROGRAM.format(
                        build=build, model_url=model_url, ctx=ctx, prompt=PROMPT, tokens=part,
                        native_url=f"/files/{logits_file.name}",
                    )  # fmt: skip
                    rows.extend(json.loads(page.run(program, timeout_s=3600)))
                    logits_file.unlink()
                page.run("perplexity_runner.terminate(); None")
        finally:
            stop_server(server)
    return summarize(rows) | {"model": str(model), "build": build, "ctx": ctx, "windows": len(parts)}


def summarize(rows: list[list]) -> dict:
    """rows: [native NLL, browser NLL, KLD, same best token] per scored token."""
    n = len(rows)
    klds = sorted(r[2] for r in rows)
    return {
        "tokens": n,
        "perplexity": math.exp(math.fsum(r[1] for r in rows) / n),
        "native_perplexity": math.exp(math.fsum(r[0] for r in rows) / n),
        "mean_kld": math.fsum(klds) / n,
        "p99_kld": klds[min(n - 1, math.ceil(0.99 * n) - 1)],
        "top1_agreement": sum(1 for r in rows if r[3]) / n,
    }


def format_report(report: dict) -> str:
    return "\n".join(
        [
            f"{report['model']} ({report['build']}, ctx {report['ctx']}, {report['windows']} window(s)): "
            f"{report['tokens']} tokens scored",
            f"  perplexity: browser {report['perplexity']:.4f}, native {report['native_perplexity']:.4f}",
            f"  KL divergence (browser from native): mean {report['mean_kld']:.3e}, "
            f"99th percentile {report['p99_kld']:.3e}",
            f"  top-1 agreement: {100 * report['top1_agreement']:.2f} %",
        ]
    )
