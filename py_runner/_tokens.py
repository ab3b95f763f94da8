"""LlamaRunner's token-level requests (a mixin): tokenize / detokenize, the pieces of tokens, teacher-forced
logits, and evaluating a token sequence into the KV cache (llama-cpp-python's Llama.eval) with the tokens it
then holds. Token ids are checked against the loaded vocabulary before the engine sees them: llama.cpp indexes
its tables with them."""

from __future__ import annotations

from array import array
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import InvalidParameterError
from ._transport import Transport


def _rows(data: bytes, n_vocab: int) -> list[array]:
    """A float32 block of rows x n_vocab logits as its rows (array('f'); no numpy in the page)."""
    flat = array("f")
    flat.frombytes(data)
    return [flat[i : i + n_vocab] for i in range(0, len(flat), n_vocab)]


class TokenMethods:
    # What LlamaRunner provides (_runner.py): one request with crash recovery, and the engine's load report.
    _request: Callable[[str, Callable[[Transport], Awaitable[Any]]], Awaitable[Any]]
    load_details: dict[str, Any]

    async def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of `text`, exactly as llama.cpp's llama_tokenize gives them."""
        return await self._request("tokenize", lambda t: t.tokenize(text, add_special, parse_special))

    async def logits(self, prompt: str, tokens: list[int]) -> list[array]:
        """Teacher-forced raw logits: for each of `tokens`, the model's logits (array('f') of n_vocab floats)
        that predict it, after `prompt` (tokenized as generate_text does) and the tokens before it. Each row
        comes from the same one-token decode as generation: row i's argmax is what greedy generation picks
        there. For comparing with another engine (KL divergence, perplexity) or scoring a continuation."""
        if not tokens:
            return []
        ids = self._token_ids(tokens)
        n_vocab, data = await self._request("compute logits", lambda t: t.logits(prompt, ids))
        return _rows(bytes(data), int(n_vocab))

    async def eval_tokens(self, tokens: list[int], *, rows_from: int | None = None) -> list[array]:
        """Evaluate `tokens` into the KV cache (llama-cpp-python's Llama.eval: the longest prefix the cache
        already holds is kept) and return logits (array('f') rows of n_vocab): with `rows_from`, the row after
        each position from there on, each from a one-token decode (logits_all=True); without, the last
        position's alone."""
        ids = self._token_ids(tokens)
        if not ids:
            raise InvalidParameterError("eval takes at least one token")
        if rows_from is not None and not (isinstance(rows_from, int) and 0 <= rows_from < len(ids)):
            raise InvalidParameterError(f"rows_from must be in 0..{len(ids) - 1}, got {rows_from!r}")
        fields: dict[str, Any] = {"tokens": ids}
        if rows_from is not None:
            fields["rows_from"] = rows_from
        result = await self._request("evaluate tokens", lambda t: t.request("eval", fields))
        return _rows(bytes(result["logits"]), int(result["n_vocab"]))

    async def held_tokens(self) -> list[int]:
        """The tokens the engine's KV cache holds, in order: the last prompt and what was generated after it
        (its last sampled token is decoded only when generation goes on), or what eval_tokens evaluated."""
        result = await self._request("read the held tokens", lambda t: t.request("state_tokens", {}))
        return [int(t) for t in result["tokens"]]

    async def detokenize(
        self, tokens: list[int], *, remove_special: bool = False, unparse_special: bool = False
    ) -> str:
        """The text of `tokens` (llama_detokenize); bytes that are not valid UTF-8 become U+FFFD."""
        data = await self.detokenize_bytes(
            tokens, remove_special=remove_special, unparse_special=unparse_special
        )
        return data.decode("utf-8", errors="replace")

    async def detokenize_bytes(
        self, tokens: list[int], *, remove_special: bool = False, unparse_special: bool = False
    ) -> bytes:
        """The bytes of `tokens` (llama_detokenize), as they are: a token may end inside a UTF-8 character."""
        ids = self._token_ids(tokens)
        return await self._request("detokenize", lambda t: t.detokenize(ids, remove_special, unparse_special))

    async def token_pieces(self, tokens: list[int]) -> list[bytes]:
        """Each token's own bytes, as `detokenize_bytes([token])` gives them, for many tokens in one request
        (logprobs show a token and its alternatives so)."""
        ids = self._token_ids(tokens)
        result = await self._request("token_pieces", lambda t: t.request("token_pieces", {"tokens": ids}))
        data, pieces, at = bytes(result["bytes"]), [], 0
        for length in result["lengths"]:
            pieces.append(data[at : at + int(length)])
            at += int(length)
        return pieces

    def _token_ids(self, tokens: list[int]) -> list[int]:
        """Token ids checked against the vocabulary: llama.cpp indexes its tables with them."""
        n_vocab = int(self.load_details.get("n_vocab") or 0)
        ids = []
        for t in tokens:
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < (n_vocab or 2**31):
                raise InvalidParameterError(f"token ids must be ints in 0..{n_vocab - 1}, got {t!r}")
            ids.append(t)
        return ids
