"""`py-runner perplexity`: the browser against native llama.cpp over the same tokens, by llama-perplexity's
`--kl-divergence` method.

The text is tokenized once (native, no special tokens) and cut into windows that fit `ctx`. For each window,
native llama.cpp (`pr_native score --logits-out`) and the browser (`LlamaRunner.logits`, in headless Chromium)
compute the logits that predict each of its tokens after the same short prompt (`PROMPT`, which both tokenize
as generation tokenizes a prompt: each window starts fresh, as llama-perplexity's chunks do). The page reads
native's logits from the server and reduces both, row by row, to what the report needs: each side's negative
log-likelihood of the true token, the KL divergence of the browser's distribution from native's, and whether
their best tokens agree. Pure Python in the page (no numpy there).

With `--candidate-native PATH`, a second `pr_native` (llama.cpp built for another instruction set, say AVX2
instead of AVX-512: `scripts/native_isa_variant.sh`) takes the browser's place, reduced by the same code: how
far two native builds of the same source are from each other, the floor under any comparison with native.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
from array import array
from pathlib import Path

from .bench.programs import python_call
from .bench.programs import source as program_source
from .build.paths import native_binary

DEFAULT_TEXT = Path(__file__).parent / "texts" / "declaration-and-gettysburg-address.txt"
PROMPT = "Text:\n"  # not empty: a model without a BOS token would have no prompt at all
PROMPT_ROOM = 16  # context slots kept for the prompt's tokens

# One reduction for both candidates: the page runs it on the browser's logits, the host on a second native
# build's (`candidate_native`), so the two reports are comparable number for number
# (bench/programs/perplexity.py, which the page runs whole).
REDUCE_SOURCE = program_source("perplexity.py")


def _native(*args: str, timeout: float = 600, binary: Path | None = None) -> dict:
    proc = subprocess.run(
        [str(binary or native_binary()), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pr_native {args[0]} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def windows(tokens: list[int], ctx: int) -> list[list[int]]:
    """`tokens` cut into windows that fit a context of `ctx` after the prompt."""
    size = max(1, ctx - PROMPT_ROOM)
    return [tokens[i : i + size] for i in range(0, len(tokens), size)]


def _score(model: Path, part: list[int], ctx: int, logits_file: Path, binary: Path | None = None) -> None:
    _native(
        "score", "--model", str(model), "--prompt", PROMPT, "--tokens", ",".join(map(str, part)),
        "--threads", "1", "--ctx-size", str(ctx), "--logits-out", str(logits_file), binary=binary,
    )  # fmt: skip


def _read_f32(path: Path) -> array:
    values = array("f")
    values.frombytes(path.read_bytes())
    return values


def perplexity(
    model: Path,
    text: str,
    *,
    ctx: int = 512,
    build: str = "st",
    max_tokens: int | None = None,
    candidate_native: Path | None = None,
) -> dict:
    """The report: {"tokens", "perplexity", "native_perplexity", "mean_kld", "p99_kld", "top1_agreement"}
    (+ "model", "build", "browser" (the engine that ran; None for a native candidate), "ctx", "windows",
    and the true token's log-probability difference).

    `candidate_native`: score this other `pr_native` build (llama.cpp compiled for another instruction set)
    in place of the browser: the difference two native builds of the same source have between themselves.
    """
    if not native_binary().is_file():
        raise RuntimeError(f"{native_binary()} is missing: run build_wasm.sh")
    if candidate_native is not None and not candidate_native.is_file():
        raise RuntimeError(f"{candidate_native} is missing")
    tokens = _native("tokenize", "--model", str(model), "--text", text, "--add-special", "0")["tokens"]
    if max_tokens is not None:
        tokens = tokens[:max_tokens]
    parts = windows(tokens, ctx)
    if not parts:
        raise ValueError("the text has no tokens")
    with tempfile.TemporaryDirectory(prefix="py_runner-perplexity-") as tmp:
        if candidate_native is None:
            rows, browser = _browser_rows(model, parts, ctx, build, Path(tmp))
        else:
            rows, browser = _native_rows(model, parts, ctx, candidate_native, Path(tmp)), None
    candidate = build if candidate_native is None else f"native:{candidate_native}"
    where = {"model": str(model), "build": candidate, "browser": browser, "ctx": ctx, "windows": len(parts)}
    return summarize(rows) | where


def _browser_rows(
    model: Path, parts: list[list[int]], ctx: int, build: str, work: Path
) -> tuple[list[list], str]:
    """The rows the page scored, and the engine that ran it (from its user agent)."""
    from .browser.headless import harness_page
    from .server import start_server, stop_server

    rows: list[list] = []
    model_url = f"/local-model/{model.name}"
    server, base_url = start_server("127.0.0.1", 0, files_dir=work, extra_files={model_url: model})
    try:
        with harness_page(base_url) as page:
            browser = page.engine
            for i, part in enumerate(parts):
                logits_file = work / f"native-{i}.f32"
                _score(model, part, ctx, logits_file)
                program = python_call(
                    "perplexity", build=build, model_url=model_url, ctx=ctx, prompt=PROMPT, tokens=part,
                    native_url=f"/files/{logits_file.name}",
                )  # fmt: skip
                rows.extend(json.loads(page.run(program, timeout_s=3600)))
                logits_file.unlink()
            page.run("perplexity_runner.terminate(); None")
    finally:
        stop_server(server)
    return rows, browser


def _native_rows(model: Path, parts: list[list[int]], ctx: int, binary: Path, work: Path) -> list[list]:
    reducer: dict = {}
    exec(REDUCE_SOURCE, reducer)  # the page's own reduction, so both reports mean the same
    rows: list[list] = []
    for part in parts:
        _score(model, part, ctx, work / "native.f32")
        _score(model, part, ctx, work / "candidate.f32", binary)
        ref, cand = _read_f32(work / "native.f32"), _read_f32(work / "candidate.f32")
        n_vocab = len(ref) // len(part)
        for i, token in enumerate(part):
            span = slice(i * n_vocab, (i + 1) * n_vocab)
            rows.append(reducer["reduce_row"](ref[span].tolist(), cand[span].tolist(), token))
    return rows


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
        # issue 11's measure: how far the candidate's log-probability of each true token is from native's
        "mean_logprob_diff": math.fsum(abs(r[0] - r[1]) for r in rows) / n,
        "max_logprob_diff": max(abs(r[0] - r[1]) for r in rows),
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
            f"  true token's log-probability difference: mean {report['mean_logprob_diff']:.3e}, "
            f"largest {report['max_logprob_diff']:.3e}",
        ]
    )
