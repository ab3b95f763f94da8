"""The single cut between the Python API and I/O (like an httpx transport).

LlamaRunner talks only to this interface; PyodideTransport drives web/bridge.js in the browser,
unit tests use a scripted fake. Implementations raise LocalWebAIError subclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Artifacts:
    """URLs of the engine's files, resolved against the page URL."""

    single_thread: str = "/build/st/pr_glue.js"
    multi_thread: str = "/build/mt/pr_glue.js"
    worker: str = "/web/worker.js"
    bridge: str = "/web/bridge.js"


class Transport(ABC):
    @abstractmethod
    async def start(self) -> dict[str, Any]:
        """Start the engine (worker + wasm build).
        Returns {build: "st"|"mt", threads, crossOriginIsolated}."""

    @abstractmethod
    async def load(
        self, source: Any, options: dict[str, Any], on_progress: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Load a model. source: URL str, bytes-like, or a JS File/Blob. options: n_ctx, n_batch,
        n_threads. on_progress gets {stage: "downloading"|"loading", loaded, total}. Returns the
        worker's metadata dict. An abort ends it with LoadAbortedError."""

    @abstractmethod
    async def generate(
        self, prompt: str, options: dict[str, Any], on_token: Callable[[int, bytes], None]
    ) -> dict[str, Any]:
        """Generate; on_token(token_id, piece_bytes) per token. Returns {tokens, prompt_tokens,
        timings: {prompt_ms, gen_ms}, finish_reason: "eos"|"length"|"aborted"}."""

    def resolve_source(self, source: Any) -> Any:
        """The source to load for what the caller named: the same by default; the page transport maps a
        model that an export split into shards (`models/big.gguf`) to its first shard."""
        return source

    @abstractmethod
    async def read_prefix(self, source: Any, length: int) -> tuple[bytes, int | None]:
        """The first `length` bytes of a model source (fewer if it is shorter) and its total size when
        known, for the GGUF header check before any download. Raises NetworkError subclasses."""

    @abstractmethod
    async def cache_list(self) -> list[dict[str, Any]]:
        """The model cache's entries: [{url, size, complete, cached_at}]."""

    @abstractmethod
    async def cache_delete(self, url: str) -> bool:
        """Delete the cache entry of url (relative URLs resolve against the page); True if there was one."""

    @abstractmethod
    async def cache_clear(self) -> int:
        """Delete every cache entry; returns how many there were."""

    @abstractmethod
    async def tokenize(self, text: str, add_special: bool, parse_special: bool) -> list[int]:
        """Token ids of `text` with the loaded model's tokenizer."""

    @abstractmethod
    async def detokenize(self, tokens: list[int], remove_special: bool, unparse_special: bool) -> bytes:
        """The bytes of a token sequence's text."""

    @abstractmethod
    async def logits(self, prompt: str, tokens: list[int]) -> tuple[int, bytes]:
        """Teacher-forced logits: row i (n_vocab float32, native byte order) predicts tokens[i] after
        `prompt` and tokens[:i]. Returns (n_vocab, all rows' bytes)."""

    @abstractmethod
    async def chat_format(
        self, messages: list[dict[str, str]], add_assistant: bool, template: str | None
    ) -> str:
        """The chat as a prompt, formatted by llama.cpp with the model's template (or `template`).
        Raises ChatTemplateError when the template is missing or unsupported."""

    @abstractmethod
    async def chat_apply(self, request: dict[str, Any]) -> dict[str, Any]:
        """A chat rendered by llama.cpp's chat layer (common/chat) as its server renders an OpenAI request:
        request {messages, tools, tool_choice, parallel_tool_calls, add_generation_prompt, template} ->
        {prompt, format, format_name, grammar, grammar_lazy, grammar_triggers, generation_prompt,
        additional_stops, preserved_tokens, parser}. Raises ChatTemplateError."""

    @abstractmethod
    async def chat_parse(self, applied: dict[str, Any], text: str) -> dict[str, Any]:
        """A finished reply parsed as llama.cpp's server parses it, given what chat_apply returned: the OpenAI
        message {role, content, tool_calls?, reasoning_content?}."""

    @abstractmethod
    async def embed(
        self, texts: list[str], options: dict[str, Any], on_progress: Callable[[dict[str, Any]], None]
    ) -> dict[str, Any]:
        """Pooled embeddings (options: normalize, truncate); on_progress gets {stage: "embedding", loaded:
        texts done, total}. Returns {embeddings: [[float] per text], n_tokens: [int per text]}. Raises
        EmbeddingError subclasses."""

    @abstractmethod
    def abort(self, kind: str) -> None:
        """Abort the running request of this kind ("load" | "generate" | "embed"); no-op if none runs."""

    @abstractmethod
    def terminate(self) -> None:
        """Kill the engine; pending requests fail with BridgeError. start() may be called again."""
