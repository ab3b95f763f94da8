"""The single cut between the Python API and I/O (like an httpx transport).

LlamaRunner talks only to this interface; PyodideTransport drives web/page/bridge.js in the browser,
MockTransport is a scripted engine for tests. Every engine request goes through one method, `request(type,
fields)`, whose types, fields and results web/shared/protocol.js declares; the typed helpers below build the
fields and shape the results, the same for every transport. Implementations raise LocalWebAIError subclasses.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ProgressCallback = Callable[[dict[str, Any]], None]  # {stage, loaded, total}
TokenCallback = Callable[[int, bytes], None]  # (token id, its piece's bytes)


@dataclass(frozen=True)
class Artifacts:
    """URLs of the engine's files, resolved against the page URL."""

    single_thread: str = "/build/st/pr_glue.js"
    multi_thread: str = "/build/mt/pr_glue.js"
    worker: str = "/web/engine/worker.js"
    bridge: str = "/web/page/bridge.js"
    # The builds' relaxed-SIMD variants, where served: the bridge runs them where the browser validates
    # relaxed SIMD (unless LlamaRunner's `simd` says otherwise), else the SIMD128 builds above.
    single_thread_relaxed: str | None = None
    multi_thread_relaxed: str | None = None


class Transport(ABC):
    # ---- what a transport implements ---------------------------------------------------------------------
    @abstractmethod
    async def start(self) -> dict[str, Any]:
        """Start the engine (worker + wasm build): the protocol's "init".
        Returns {build: "st"|"mt", simd: "relaxed"|"simd128", threads, crossOriginIsolated, baseUrl, notice}:
        simd is the build's variant, baseUrl what relative model URLs resolve against, notice why "auto" chose
        st where mt was expected (or None)."""

    @abstractmethod
    async def request(
        self,
        type: str,
        fields: dict[str, Any],
        *,
        on_progress: ProgressCallback | None = None,
        on_token: TokenCallback | None = None,
    ) -> Any:
        """Send one request of web/shared/protocol.js ("requests") with its declared fields and return its
        result, converted to Python: a dict of its declared fields (bytes and float32 fields as bytes), or the
        declared type. on_progress/on_token receive the events the request streams."""

    @abstractmethod
    async def read_prefix(self, source: Any, length: int) -> tuple[bytes, int | None]:
        """The first `length` bytes of a model source (fewer if it is shorter) and its total size when
        known, for the GGUF header check before any download. Raises NetworkError subclasses."""

    @abstractmethod
    def abort(self, kind: str) -> None:
        """Abort the running request of this kind ("load" | "generate" | "embed"); no-op if none runs."""

    @abstractmethod
    def terminate(self) -> None:
        """Kill the engine; pending requests fail with BridgeError. start() may be called again."""

    def resolve_source(self, source: Any) -> Any:
        """The source to load for what the caller named: the same by default; the page transport maps a
        model that an export split into shards (`models/big.gguf`) to its first shard."""
        return source

    # ---- typed helpers: one request each -----------------------------------------------------------------
    async def load(
        self, source: Any, options: dict[str, Any], on_progress: ProgressCallback
    ) -> dict[str, Any]:
        """Load a model. source: URL str, bytes-like, a JS File/Blob, or a list of shards. options: the load
        fields (n_ctx, n_batch, cache, ...). Returns the worker's metadata dict. An abort ends it with
        LoadAbortedError."""
        return dict(await self.request("load", {"source": source, **options}, on_progress=on_progress))

    async def generate(self, prompt: str, options: dict[str, Any], on_token: TokenCallback) -> dict[str, Any]:
        """Generate; on_token(token_id, piece_bytes) per token. Returns {tokens, prompt_tokens,
        timings: {prompt_ms, gen_ms}, finish_reason: "eos"|"length"|"aborted"|"context_full", ...}."""
        return dict(await self.request("generate", {**options, "prompt": prompt}, on_token=on_token))

    async def embed(
        self, texts: list[str], options: dict[str, Any], on_progress: ProgressCallback
    ) -> dict[str, Any]:
        """Pooled embeddings (options: normalize, truncate); on_progress gets {stage: "embedding", loaded:
        texts done, total}. Returns {embeddings: [[float] per text], n_tokens: [int per text]}. Raises
        EmbeddingError subclasses."""
        result = await self.request("embed", {**options, "texts": list(texts)}, on_progress=on_progress)
        flat = array("f")  # one copy of the float32 block, then plain Python floats (no numpy in Pyodide)
        flat.frombytes(result["embeddings"])
        n_embd = int(result["n_embd"])
        vectors = [flat[i : i + n_embd].tolist() for i in range(0, len(flat), n_embd)]
        return {"embeddings": vectors, "n_tokens": [int(n) for n in result["n_tokens"]]}

    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        """Token ids of `text` with the loaded model's tokenizer."""
        fields = {"text": text, "add_special": add_special, "parse_special": parse_special}
        return [int(t) for t in (await self.request("tokenize", fields))["tokens"]]

    async def detokenize(self, tokens: list[int], remove_special: bool, unparse_special: bool) -> bytes:
        """The bytes of a token sequence's text."""
        fields = {"tokens": [int(t) for t in tokens], "remove_special": remove_special}
        fields["unparse_special"] = unparse_special
        return bytes((await self.request("detokenize", fields))["bytes"])

    async def logits(self, prompt: str, tokens: list[int]) -> tuple[int, bytes]:
        """Teacher-forced logits: row i (n_vocab float32, native byte order) predicts tokens[i] after
        `prompt` and tokens[:i]. Returns (n_vocab, all rows' bytes)."""
        result = await self.request("logits", {"prompt": prompt, "tokens": [int(t) for t in tokens]})
        return int(result["n_vocab"]), bytes(result["logits"])

    async def chat_format(
        self, messages: list[dict[str, str]], add_assistant: bool, template: str | None
    ) -> str:
        """The chat as a prompt, formatted by llama.cpp with the model's template (or `template`).
        Raises ChatTemplateError when the template is missing or unsupported."""
        fields = {"messages": [dict(m) for m in messages], "add_assistant": add_assistant}
        fields["template"] = template
        return str((await self.request("chat_format", fields))["prompt"])

    async def chat_apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """A chat rendered by llama.cpp's chat layer (common/chat) as its server renders an OpenAI request:
        request {messages, tools, tool_choice, parallel_tool_calls, add_generation_prompt, template} ->
        {prompt, format, format_name, grammar, grammar_lazy, grammar_triggers, generation_prompt,
        additional_stops, preserved_tokens, parser}. Raises ChatTemplateError."""
        # JSON text both ways: no proxies for nested messages and tools
        return json.loads((await self.request("chat_apply", {"request": json.dumps(request)}))["json"])

    async def chat_parse(self, applied: dict[str, Any], text: str) -> dict[str, Any]:
        """A finished reply parsed as llama.cpp's server parses it, given what chat_apply returned: the OpenAI
        message {role, content, tool_calls?, reasoning_content?}."""
        fields = {"state": json.dumps(applied), "text": text}
        return json.loads((await self.request("chat_parse", fields))["json"])

    async def cache_list(self) -> list[dict[str, Any]]:
        """The model cache's entries: [{url, size, complete, cached_at}]."""
        return [dict(entry) for entry in await self.request("cache_list", {})]

    async def cache_delete(self, url: str) -> bool:
        """Delete the cache entry of url (relative URLs resolve against the page); True if there was one."""
        return bool(await self.request("cache_delete", {"url": url}))

    async def cache_clear(self) -> int:
        """Delete every cache entry; returns how many there were."""
        return int(await self.request("cache_clear", {}) or 0)
