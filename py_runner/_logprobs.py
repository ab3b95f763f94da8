"""Llama's logprobs: log-probabilities of the generated tokens and their top alternatives, in
llama-cpp-python's completion shape and OpenAI's chat shape.

The figures come from one teacher-forced `LlamaRunner.logits` request over the generated tokens (the same
one-token decodes as generation). Each token's text is llama_detokenize of that token alone (`token_pieces`),
looked up once per distinct token of the request, chosen and alternatives together.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._runner import LlamaRunner

Scored = list[tuple[float, list[tuple[int, float]]]]  # per token: (its logprob, [(alternative, logprob)])


async def token_pieces(runner: LlamaRunner, tokens: list[int]) -> dict[int, bytes]:
    """Each distinct token's bytes, as `runner.detokenize_bytes([token])` gives them (llama_detokenize of the
    token alone: a leading space of an SPM piece stripped, control tokens empty).

    The one place that asks the engine for pieces: one `token_pieces` request for all of them."""
    distinct = list(dict.fromkeys(tokens))
    return dict(zip(distinct, await runner.token_pieces(distinct), strict=True))


async def token_logprobs(runner: LlamaRunner, prompt: str, tokens: list[int], top_n: int) -> Scored:
    """(logprob of each token, its top_n alternatives) from the raw logits that predicted it."""
    rows = await runner.logits(prompt, tokens)
    out = []
    for token, row in zip(tokens, rows, strict=True):
        top = max(row)
        log_z = top + math.log(math.fsum(math.exp(x - top) for x in row))
        best = sorted(range(len(row)), key=row.__getitem__, reverse=True)[:top_n] if top_n else []
        out.append((row[token] - log_z, [(t, row[t] - log_z) for t in best]))
    return out


def _alternatives(scored: Scored) -> list[int]:
    return [t for _, alternatives in scored for t, _ in alternatives]


def _text(piece: bytes) -> str:
    return piece.decode("utf-8", "replace")


async def completion_logprobs(
    runner: LlamaRunner, prompt: str, tokens: list[int], top_n: int, *, echo: bool
) -> dict[str, Any]:
    """llama-cpp-python's completion logprobs {"tokens", "text_offset", "token_logprobs", "top_logprobs"} of
    the generated `tokens`; with `echo`, the prompt's tokens first, each predicted by the ones before it
    (the first by nothing: None)."""
    scored = await token_logprobs(runner, prompt, tokens, top_n)
    all_tokens, all_scored, first = list(tokens), list(scored), []
    if echo:
        prompt_tokens = await runner.tokenize(prompt, True, True)
        prompt_scored = await token_logprobs(runner, "", prompt_tokens[1:], top_n)
        all_tokens = prompt_tokens + all_tokens
        all_scored = prompt_scored + all_scored
        first = [None]
    pieces = await token_pieces(runner, all_tokens + _alternatives(all_scored))
    token_lps: list[float | None] = [*first, *(lp for lp, _ in all_scored)]
    tops: list[dict[str, float] | None] = [*first]
    tops += [{_text(pieces[t]): lp for t, lp in alternatives} for _, alternatives in all_scored]
    texts = [_text(pieces[t]) for t in all_tokens]
    offsets, at = [], 0
    for text in texts:
        offsets.append(at)
        at += len(text)
    return {"tokens": texts, "text_offset": offsets, "token_logprobs": token_lps, "top_logprobs": tops}


async def chat_logprobs(runner: LlamaRunner, prompt: str, tokens: list[int], top_n: int) -> dict[str, Any]:
    """OpenAI's chat logprobs {"content": [{"token", "logprob", "bytes", "top_logprobs"}]} of `tokens`."""
    scored = await token_logprobs(runner, prompt, tokens, top_n)
    pieces = await token_pieces(runner, tokens + _alternatives(scored))

    def entry(token: int, lp: float) -> dict[str, Any]:
        return {"token": _text(pieces[token]), "logprob": lp, "bytes": list(pieces[token])}

    content = []
    for token, (lp, alternatives) in zip(tokens, scored, strict=True):
        content.append({**entry(token, lp), "top_logprobs": [entry(t, alt) for t, alt in alternatives]})
    return {"content": content}
