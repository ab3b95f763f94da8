"""Llama: llama-cpp-python's API in the browser, over LlamaRunner.

The same names, arguments and return shapes as `llama_cpp.Llama` (OpenAI-shaped dicts: `id`, `object`,
`created`, `model`, `choices`, `usage`; stream chunks), so code written for llama-cpp-python moves over.
Every method has an async twin (`await Llama.load(...)`, `acreate_completion`, `acreate_chat_completion`,
...). The sync methods run their twin to completion: in Pyodide with `pyodide.ffi.run_sync` (JSPI: the page
keeps running while Python waits for the engine), in CPython on the Llama's own event loop; where neither can
work (a browser without JSPI, or a caller already inside a running event loop) they raise SyncCallError naming
the twin.

Arguments that mean nothing in a browser (`n_gpu_layers`, `use_mmap`, `use_mlock`, `numa`, ...) are accepted
and ignored; those whose effect would silently differ (`suffix`, token-list prompts, `mirostat_mode`, `tools`,
`logits_processor`, ...) raise InvalidParameterError.

Here is the class; its jobs live apart: _llama_args (keyword arguments), _llama_request (a request's prompt
and GenerateTextParams; chats by _chat's policy), _openai_shapes (the response dicts), _logprobs, _llama_sync
(sync over async), _llama_eval (the token-level methods: eval, sample, generate, reset, n_tokens, input_ids,
scores), _llama_cache (set_cache's caches). Streams run on LlamaRunner's one stream pump
(LlamaRunner._stream)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from . import _llama_args as args
from . import _logprobs
from . import _openai_shapes as shapes
from ._chat import reply_message
from ._errors import InvalidParameterError
from ._generation import GenerationResult, TokenChunk
from ._llama_args import LLAMA_DEFAULT_SEED
from ._llama_cache import BaseLlamaCache, longest_token_prefix
from ._llama_eval import LlamaTokenMethods
from ._llama_request import LlamaRequest
from ._llama_sync import SyncRunner
from ._progress import ProgressCallback
from ._runner import LlamaRunner
from ._state import LlamaState

_IGNORED_INIT = set(
    """n_gpu_layers split_mode main_gpu tensor_split use_mmap use_mlock kv_overrides rpc_servers
    n_ubatch n_threads_batch rope_scaling_type pooling_type rope_freq_base rope_freq_scale yarn_ext_factor
    yarn_attn_factor yarn_beta_fast yarn_beta_slow yarn_orig_ctx offload_kqv flash_attn op_offload
    swa_full no_perf last_n_tokens_size lora_base lora_scale lora_path numa chat_handler draft_model tokenizer
    spm_infill""".split()
)  # what llama-cpp-python's Llama() takes and a browser build has no use for


class Llama(LlamaTokenMethods):
    """llama-cpp-python's `Llama`, running llama.cpp in the browser.

        llm = Llama(model_path="models/SmolLM2-135M-Instruct.Q4_1.gguf", n_ctx=2048)       # sync (JSPI)
        llm = await Llama.load("models/SmolLM2-135M-Instruct.Q4_1.gguf", n_ctx=2048)       # async twin
        out = llm.create_chat_completion(messages=[{"role": "user", "content": "Hi"}])
        print(out["choices"][0]["message"]["content"])

    `model_path` is a URL (relative ones resolve against the page) or anything LlamaRunner.load_model takes.
    Beyond llama-cpp-python's arguments: `runner` (a LlamaRunner to use, e.g. with build="st") and
    `progress_callback` (LlamaRunner.load_model's), `base_url` (LlamaRunner's: what a relative `model_path`
    resolves against, for Python hosted in a worker). `llm.runner` is the LlamaRunner underneath.
    `vocab_only=True` loads the tokenizer alone (no weights, no context): tokenize/detokenize and the metadata
    work, generation raises GenerationNotSupportedError. `logits_all=True` keeps the logits after every
    position `eval` evaluates (`scores`).
    """

    def __init__(
        self,
        model_path: Any = None,
        *,
        n_ctx: int = 512,
        n_batch: int = 512,
        n_threads: int | None = None,
        seed: int = LLAMA_DEFAULT_SEED,
        chat_format: str | None = None,
        embedding: bool = False,
        vocab_only: bool = False,
        logits_all: bool = False,
        verbose: bool = True,
        runner: LlamaRunner | None = None,
        progress_callback: ProgressCallback | None = None,
        base_url: str | None = None,
        type_k: int | str | None = None,
        type_v: int | str | None = None,
        **kwargs: Any,
    ) -> None:
        unknown = set(kwargs) - _IGNORED_INIT
        if unknown:
            raise TypeError(f"Llama() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
        n_ctx, n_batch, seed = args.init_args(n_ctx, n_batch, n_threads, seed, chat_format)
        self.model_path = model_path
        self._n_ctx_requested = n_ctx
        self.n_batch = n_batch
        self.seed = seed
        # the KV cache's types: llama-cpp-python's ggml_type numbers (or load_model's names)
        self.type_k = args.cache_type("type_k", type_k)
        self.type_v = args.cache_type("type_v", type_v)
        self.chat_format = chat_format
        self.embedding = bool(args.flag("embedding", embedding))
        self.vocab_only = bool(args.flag("vocab_only", vocab_only))
        self.logits_all = bool(args.flag("logits_all", logits_all))
        self.verbose = bool(args.flag("verbose", verbose))
        if runner is not None and base_url is not None:
            raise InvalidParameterError("give base_url to the LlamaRunner you pass as runner, not to Llama")
        self._owns_runner = runner is None  # close() (and garbage collection) stops only an engine it started
        self.runner = runner if runner is not None else LlamaRunner(n_threads=n_threads, base_url=base_url)
        self._progress_callback = progress_callback  # py_runner's: the load's ProgressInfo events
        self._sync = SyncRunner()
        self.cache: BaseLlamaCache | None = None  # set_cache's
        self._tokens: list[int] | None = []  # the tokens evaluated (_llama_eval: None = the engine's)
        self._scores: dict[int, Any] = {}
        if model_path is not None:
            self._sync.run(self._aload(), "Llama.load")

    # ---- loading -----------------------------------------------------------------------------------------
    @classmethod
    async def load(cls, model_path: Any, **kwargs: Any) -> Llama:
        """The async twin of `Llama(model_path=..., ...)`."""
        llm = cls(None, **kwargs)
        llm.model_path = model_path
        await llm._aload()
        return llm

    async def _aload(self) -> None:
        # n_ctx=0: the model's training context, as llama.cpp reads it.
        ctx = self._n_ctx_requested
        self._set_view([])
        if self.vocab_only:
            await self.runner.load_model(self.model_path, self._progress_callback, vocab_only=True)
            return
        kv = {"type_k": self.type_k, "type_v": self.type_v}
        spec = await self.runner.load_model(
            self.model_path, self._progress_callback, ctx_size=max(ctx, 16), batch_size=self.n_batch, **kv
        )
        if ctx == 0 and spec.context_length and spec.context_length != self.runner.load_details.get("n_ctx"):
            spec = await self.runner.load_model(
                self.model_path, ctx_size=spec.context_length, batch_size=self.n_batch, **kv
            )
        if self.embedding and not spec.embedding_model:
            # A generative model embeds with mean pooling, as llama-cpp-python's embedding=True gives it.
            n_ctx = self.runner.load_details.get("n_ctx") or ctx
            batch = self.n_batch
            await self.runner.load_model(
                self.model_path, ctx_size=n_ctx, batch_size=batch, pooling="mean", **kv
            )

    # ---- model facts -------------------------------------------------------------------------------------
    @property
    def metadata(self) -> dict[str, str]:
        """The GGUF's key/values, as strings (llama-cpp-python's `Llama.metadata`)."""
        return {str(k): str(v) for k, v in (self.runner.load_details.get("meta") or {}).items()}

    def n_ctx(self) -> int:
        return int(self.runner.load_details.get("n_ctx") or 0)

    def n_vocab(self) -> int:
        return int(self.runner.load_details.get("n_vocab") or 0)

    def n_embd(self) -> int:
        return int(self.runner.load_details.get("n_embd") or 0)

    def token_eos(self) -> int:
        return int(self.metadata.get("tokenizer.ggml.eos_token_id", -1))

    def token_bos(self) -> int:
        return int(self.metadata.get("tokenizer.ggml.bos_token_id", -1))

    def token_nl(self) -> int:
        """The newline token (llama.cpp's llama_vocab_nl: the token of "\\n")."""
        return self._sync.run(self._atoken_nl(), "atokenize")

    async def _atoken_nl(self) -> int:
        tokens = await self.runner.tokenize("\n", add_special=False, parse_special=False)
        return tokens[0] if tokens else -1

    def set_seed(self, seed: int) -> None:
        """The seed the next samplings start from (llama-cpp-python's set_seed)."""
        self.seed = args.init_args(self._n_ctx_requested, self.n_batch, None, seed, None)[2]

    @property
    def _is_recurrent(self) -> bool:
        """A recurrent model (Mamba, RWKV): llama.cpp's llama_model_is_recurrent, which llama-cpp-python
        reads."""
        return bool(self.runner.load_details.get("recurrent"))

    @property
    def _is_hybrid(self) -> bool:
        """A hybrid attention/recurrent model (Jamba, Falcon-H1, ...): llama_model_is_hybrid."""
        return bool(self.runner.load_details.get("hybrid"))

    # ---- tokens ------------------------------------------------------------------------------------------
    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return self._sync.run(self.atokenize(text, add_bos, special), "atokenize")

    async def atokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        if not isinstance(text, bytes | bytearray):
            raise InvalidParameterError("tokenize takes bytes (llama-cpp-python's signature): text.encode()")
        add_bos, special = bool(args.flag("add_bos", add_bos)), bool(args.flag("special", special))
        return await self.runner.tokenize(bytes(text).decode("utf-8", "replace"), add_bos, special)

    def detokenize(
        self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
    ) -> bytes:
        return self._sync.run(self.adetokenize(tokens, prev_tokens, special), "adetokenize")

    async def adetokenize(
        self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
    ) -> bytes:
        if not isinstance(tokens, list | tuple):
            raise InvalidParameterError(f"tokens must be a list of token ids, got {type(tokens).__name__}")
        # llama-cpp-python joins each token's piece as it is, then drops the space a SentencePiece
        # vocabulary (Llama 1 and 2) puts before the first word when a BOS comes first. llama_detokenize
        # drops that space from the first token whatever it is: behind a BOS of its own (its text dropped
        # again) the pieces come out as llama-cpp-python joins them.
        tokens, unparse = list(tokens), bool(args.flag("special", special))
        bos = self.token_bos()
        if not tokens or bos < 0 or tokens[0] == bos:
            data = await self.runner.detokenize_bytes(tokens, unparse_special=unparse)
            return data[1:] if tokens and tokens[0] == bos and data.startswith(b" ") else data
        data = await self.runner.detokenize_bytes([bos, *tokens], unparse_special=unparse)
        bos_text = await self.runner.detokenize_bytes([bos], unparse_special=unparse) if unparse else b""
        return data[len(bos_text) :] if data.startswith(bos_text) else data

    # ---- completions -------------------------------------------------------------------------------------
    def create_completion(self, prompt: str | list[int], **kwargs: Any) -> Any:
        """A completion dict, or with stream=True an iterator of chunks (llama-cpp-python's shapes). `prompt`
        is text or a list of token ids (evaluated as they are)."""
        if args.streaming(kwargs):
            return self._sync.iterate(self._completion_chunks(prompt, **kwargs), "acreate_completion")
        if self.cache is not None:
            # as llama-cpp-python does, through load_state: a cached state that shares more of the prompt
            state = self._sync.run(self._cached_state(prompt), "acreate_completion")
            if state is not None:
                self.load_state(state)
        return self._sync.run(self.acreate_completion(prompt, **kwargs), "acreate_completion")

    __call__ = create_completion

    async def acreate_completion(self, prompt: str | list[int], **kwargs: Any) -> Any:
        """The async twin of create_completion; with stream=True an async iterator of chunks."""
        if args.streaming(kwargs):
            return self._completion_chunks(prompt, **kwargs)
        request = LlamaRequest.completion(self, prompt, kwargs)
        result = await self._generate(request)
        logprobs = None
        if request.logprobs is not None:
            logprobs = await _logprobs.completion_logprobs(
                self.runner, request.prompt, list(result.tokens), request.logprobs, echo=request.echo
            )
        text = (await self._prompt_text(prompt) if request.echo else "") + result.text
        return shapes.completion(request.head, text, logprobs, result)

    async def _prompt_text(self, prompt: str | list[int]) -> str:
        return prompt if isinstance(prompt, str) else await self.runner.detokenize(prompt)

    async def _completion_chunks(
        self, prompt: str | list[int], **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        request = LlamaRequest.completion(self, prompt, {**kwargs, "stream": False})
        if request.logprobs is not None:
            raise InvalidParameterError("logprobs with stream=True is not supported: use stream=False")
        if request.echo:
            yield shapes.completion_chunk(request.head, await self._prompt_text(prompt))
        async for item in self._generate_stream(request):
            if isinstance(item, GenerationResult):
                yield shapes.completion_chunk(request.head, "", shapes.finish_reason(item))
            elif item.text:
                yield shapes.completion_chunk(request.head, item.text)

    # ---- chat --------------------------------------------------------------------------------------------
    def create_chat_completion(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        """A chat completion dict, or with stream=True an iterator of chunks (OpenAI / llama-cpp-python
        shapes). The model's chat template (or chat_format) formats the messages, rendered by llama.cpp."""
        if args.streaming(kwargs):
            return self._sync.iterate(self._chat_chunks(messages, **kwargs), "acreate_chat_completion")
        return self._sync.run(self.acreate_chat_completion(messages, **kwargs), "acreate_chat_completion")

    async def acreate_chat_completion(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        if args.streaming(kwargs):
            return self._chat_chunks(messages, **kwargs)
        request = await LlamaRequest.chat(self, messages, kwargs)
        result = await self._generate(request)
        logprobs = None
        if request.logprobs is not None:
            logprobs = await _logprobs.chat_logprobs(
                self.runner, request.prompt, list(result.tokens), request.logprobs
            )
        message, finish = await self._reply(request, result)
        return shapes.chat_completion(request.head, message, logprobs, finish, result)

    async def _reply(self, request: LlamaRequest, result: GenerationResult) -> tuple[dict[str, Any], str]:
        assert request.rendered is not None  # a chat request
        return await reply_message(self.runner, request.rendered, result.text, shapes.finish_reason(result))

    async def _chat_chunks(
        self, messages: list[dict[str, Any]], **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        request = await LlamaRequest.chat(self, messages, {**kwargs, "stream": False})
        if request.logprobs is not None:
            raise InvalidParameterError("logprobs with stream=True is not supported: use stream=False")
        parsed = request.rendered is not None and request.rendered.parse_reply
        yield shapes.chat_chunk(request.head, {"role": "assistant"})
        async for item in self._generate_stream(request):
            if isinstance(item, GenerationResult):
                finish = shapes.finish_reason(item)
                if parsed:  # with tools, the reply is parsed once it is complete
                    message, finish = await self._reply(request, item)
                    delta = shapes.message_delta(message)
                    if delta:
                        yield shapes.chat_chunk(request.head, delta)
                yield shapes.chat_chunk(request.head, {}, finish)
            elif item.text and not parsed:
                yield shapes.chat_chunk(request.head, {"content": item.text})

    # ---- embeddings --------------------------------------------------------------------------------------
    def create_embedding(self, input: str | list[str], model: str | None = None) -> dict[str, Any]:  # noqa: A002
        return self._sync.run(self.acreate_embedding(input, model), "acreate_embedding")

    async def acreate_embedding(self, input: str | list[str], model: str | None = None) -> dict[str, Any]:  # noqa: A002
        texts = args.texts("input", input)
        if model is not None and not isinstance(model, str):
            raise InvalidParameterError(f"model must be None or a str, got {model!r}")
        vectors = await self.runner.embed(texts)
        counts = [len(await self.runner.tokenize(t)) for t in texts]
        return {
            "object": "list",
            "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
            "model": model or str(self.model_path),
            "usage": {"prompt_tokens": sum(counts), "total_tokens": sum(counts)},
        }

    def embed(self, input: str | list[str], normalize: bool = True, truncate: bool = True) -> Any:  # noqa: A002
        return self._sync.run(self.aembed(input, normalize, truncate), "aembed")

    async def aembed(self, input: str | list[str], normalize: bool = True, truncate: bool = True) -> Any:  # noqa: A002
        texts = args.texts("input", input)
        normalize, truncate = bool(args.flag("normalize", normalize)), bool(args.flag("truncate", truncate))
        vectors = await self.runner.embed(texts, normalize=normalize, truncate=truncate)
        return vectors[0] if isinstance(input, str) else vectors

    # ---- reranking ---------------------------------------------------------------------------------------
    def rerank(self, query: str, documents: list[str], top_n: int | None = None) -> dict[str, Any]:
        return self._sync.run(self.arerank(query, documents, top_n), "arerank")

    async def arerank(self, query: str, documents: list[str], top_n: int | None = None) -> dict[str, Any]:
        """llama-server's /v1/rerank response for a reranker model (LlamaRunner.rerank), with "model"."""
        return {"model": str(self.model_path), **await self.runner.rerank(query, documents, top_n)}

    # ---- saved state -------------------------------------------------------------------------------------
    def save_state(self) -> LlamaState:
        return self._sync.run(self.asave_state(), "asave_state")

    async def asave_state(self) -> LlamaState:
        """The conversation the engine holds, as llama-cpp-python's LlamaState (LlamaRunner.save_state),
        carrying this Llama's seed."""
        return dataclasses.replace(await self.runner.save_state(), seed=self.seed)

    def load_state(self, state: LlamaState) -> None:
        return self._sync.run(self.aload_state(state), "aload_state")

    async def aload_state(self, state: LlamaState) -> None:
        """Restore a LlamaState saved with this model and context (LlamaRunner.load_state) and its seed."""
        await self.runner.load_state(state)
        self.seed = state.seed
        self._set_view(list(state.input_ids))

    # ---- prompt cache ------------------------------------------------------------------------------------
    def set_cache(self, cache: BaseLlamaCache | None) -> None:
        """llama-cpp-python's: keep each completion's state in `cache` (a LlamaRAMCache), keyed by its prompt
        and completion tokens; a later prompt that starts with a cached conversation continues from its state
        (only its own new tokens are evaluated) when that shares more of it than what the engine holds."""
        if cache is not None and not isinstance(cache, BaseLlamaCache):
            raise InvalidParameterError(f"set_cache takes a LlamaRAMCache or None: {type(cache).__name__}")
        self.cache = cache

    async def _prompt_tokens(self, prompt: str | list[int]) -> list[int]:
        if isinstance(prompt, list):
            return list(prompt)
        return await self.runner.tokenize(prompt, add_special=True, parse_special=True)

    async def _cached_state(self, prompt: str | list[int]) -> LlamaState | None:
        """The cached state that shares the most of the prompt, where it shares more than what the engine
        holds (restoring it saves evaluating that much); None otherwise."""
        assert self.cache is not None
        tokens = await self._prompt_tokens(prompt)
        try:
            state = self.cache[tokens]
        except KeyError:
            return None
        held = await self.runner.held_tokens()
        if longest_token_prefix(state.input_ids, tokens) > longest_token_prefix(held, tokens):
            return state
        return None

    # ---- shared ------------------------------------------------------------------------------------------
    async def _generate(self, request: LlamaRequest) -> GenerationResult:
        """The request's GenerationResult (through the stream below: one path, the cache's included)."""
        async with contextlib.aclosing(self._generate_stream(request)) as items:
            async for item in items:
                if isinstance(item, GenerationResult):
                    return item
        raise AssertionError("a generation stream ends with its result")

    async def _generate_stream(self, request: LlamaRequest) -> AsyncIterator[TokenChunk | GenerationResult]:
        """The request's tokens as they come, then its GenerationResult; leaving early cancels it (the
        runner's one stream pump, LlamaRunner._stream). With a cache (set_cache), the prompt may continue from
        a cached state, and the completion's state is cached after it."""
        prompt_tokens = None
        if self.cache is not None:
            state = await self._cached_state(request.prompt)
            if state is not None:
                await self.aload_state(state)
            prompt_tokens = await self._prompt_tokens(request.prompt)
        results: list[GenerationResult] = []
        start = lambda on_token: self.runner.generate_text(  # noqa: E731
            request.prompt, request.params, on_token, results.append
        )
        try:
            async with contextlib.aclosing(self.runner._stream(start)) as chunks:
                async for chunk in chunks:
                    yield chunk
        finally:
            self._set_view(None)  # what the engine holds now: read when n_tokens / input_ids are asked
        if self.cache is not None and prompt_tokens is not None:
            self.cache[prompt_tokens + list(results[0].tokens)] = await self.asave_state()
        yield results[0]

    def close(self) -> None:
        """Stop the engine (llama-cpp-python's close())."""
        self.runner.terminate()
        self._sync.close()

    def __del__(self) -> None:
        # llama-cpp-python frees its model when the Llama is collected: an engine this Llama started goes too
        # (a page that makes many Llamas would otherwise keep every worker's memory).
        if getattr(self, "_owns_runner", False) and getattr(self, "runner", None) is not None:
            with contextlib.suppress(Exception):
                self.runner.terminate()
