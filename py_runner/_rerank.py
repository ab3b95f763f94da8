"""Reranking: how relevant each document is to a query, scored by a reranker model (a cross-encoder whose GGUF
declares pooling type rank), in the shape of llama.cpp server's /v1/rerank; LlamaRunner's method (a mixin),
which Llama.rerank uses too.

Each (query, document) pair is formatted as llama-server formats it (the model's "rerank" chat template when
it has one, else BOS query EOS SEP document EOS, as its vocabulary adds them: wasm/glue_tokens.cpp pr_rerank)
and evaluated alone; its score is the classifier's first output, unnormalised, as llama-server returns it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._errors import InvalidParameterError
from ._transport import Transport


def rerank_response(scores: list[float], n_tokens: list[int], top_n: int | None) -> dict[str, Any]:
    """llama-server's /v1/rerank body (less "model"): results by relevance, best first, cut to top_n."""
    results = [{"index": i, "relevance_score": float(s)} for i, s in enumerate(scores)]
    results.sort(key=lambda r: r["relevance_score"], reverse=True)  # stable: ties keep the documents' order
    if top_n is not None:
        results = results[:top_n]
    used = sum(n_tokens)
    return {"object": "list", "usage": {"prompt_tokens": used, "total_tokens": used}, "results": results}


class RerankMethods:
    # What LlamaRunner provides (_runner.py): one request with crash recovery.
    _request: Callable[[str, Callable[[Transport], Awaitable[Any]]], Awaitable[Any]]

    async def rerank(
        self,
        query: str,
        documents: Sequence[str],
        top_n: int | None = None,
        *,
        progress_callback: Callable[[int, int], None] | None = None,
    ) -> dict[str, Any]:
        """Score each document's relevance to `query` with the loaded reranker: llama-server's /v1/rerank
        response, `{"object": "list", "usage": {...}, "results": [{"index", "relevance_score"}, ...]}`, best
        first, the first `top_n` only when given. progress_callback(done, total) follows the documents.
        Raises RerankNotSupportedError for a model that is not a reranker, EmbeddingInputTooLongError for a
        pair longer than the context."""
        if not isinstance(query, str):
            raise InvalidParameterError(f"query must be a str, got {type(query).__name__}")
        if isinstance(documents, str) or not all(isinstance(d, str) for d in documents):
            raise InvalidParameterError("documents must be a sequence of str")
        docs = list(documents)
        if not docs:
            raise InvalidParameterError("documents must hold at least one str")
        if top_n is not None and (isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1):
            raise InvalidParameterError(f"top_n must be None or an int >= 1, got {top_n!r}")

        def on_progress(p: dict[str, Any]) -> None:
            if progress_callback is not None:
                progress_callback(int(p.get("loaded") or 0), int(p.get("total") or len(docs)))

        fields = {"query": query, "documents": docs}
        result = await self._request("rerank", lambda t: t.request("rerank", fields, on_progress=on_progress))
        scores = [float(s) for s in result["scores"]]
        return rerank_response(scores, [int(n) for n in result["n_tokens"]], top_n)
