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
`logits_processor`, ...) raise InvalidParameterError."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import Any, TypeVar

from . import _llama_args as args
from ._errors import InvalidParameterError, SyncCallError
from ._generation import GenerationResult, TokenChunk
from ._llama_args import LLAMA_DEFAULT_SEED
from ._params import GenerateTextParams
from ._progress import ProgressCallback
from ._runner import LlamaRunner

T = TypeVar("T")

_FINISH = {"eos": "stop", "stop": "stop", "length": "length", "context_full": "length", "aborted": "stop"}
_IGNORED_INIT = set(
    """n_gpu_layers split_mode main_gpu tensor_split vocab_only use_mmap use_mlock kv_overrides rpc_servers
    n_ubatch n_threads_batch rope_scaling_type pooling_type rope_freq_base rope_freq_scale yarn_ext_factor
    yarn_attn_factor yarn_beta_fast yarn_beta_slow yarn_orig_ctx logits_all offload_kqv flash_attn op_offload
    swa_full no_perf last_n_tokens_size lora_base lora_scale lora_path numa chat_handler draft_model tokenizer
    type_k type_v spm_infill""".split()
)  # what llama-cpp-python's Llama() takes and a browser build has no use for


class Llama:
    """llama-cpp-python's `Llama`, running llama.cpp in the browser.

        llm = Llama(model_path="models/SmolLM2-135M-Instruct.Q4_1.gguf", n_ctx=2048)       # sync (JSPI)
        llm = await Llama.load("models/SmolLM2-135M-Instruct.Q4_1.gguf", n_ctx=2048)       # async twin
        out = llm.create_chat_completion(messages=[{"role": "user", "content": "Hi"}])
        print(out["choices"][0]["message"]["content"])

    `model_path` is a URL (relative ones resolve against the page) or anything LlamaRunner.load_model takes.
    Beyond llama-cpp-python's arguments: `runner` (a LlamaRunner to use, e.g. with build="st") and
    `progress_callback` (LlamaRunner.load_model's), `base_url` (LlamaRunner's: what a relative `model_path`
    resolves against, for Python hosted in a worker). `llm.runner` is the LlamaRunner underneath.
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
        verbose: bool = True,
        runner: LlamaRunner | None = None,
        progress_callback: ProgressCallback | None = None,
        base_url: str | None = None,
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
        self.chat_format = chat_format
        self.embedding = bool(args.flag("embedding", embedding))
        self.verbose = bool(args.flag("verbose", verbose))
        if runner is not None and base_url is not None:
            raise InvalidParameterError("give base_url to the LlamaRunner you pass as runner, not to Llama")
        self.runner = runner if runner is not None else LlamaRunner(n_threads=n_threads, base_url=base_url)
        self._progress_callback = progress_callback  # py_runner's: the load's ProgressInfo events
        self._loop: asyncio.AbstractEventLoop | None = None
        if model_path is not None:
            self._sync(self._aload(), "Llama.load")

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
        spec = await self.runner.load_model(
            self.model_path, self._progress_callback, ctx_size=max(ctx, 16), batch_size=self.n_batch
        )
        if ctx == 0 and spec.context_length and spec.context_length != self.runner.load_details.get("n_ctx"):
            spec = await self.runner.load_model(
                self.model_path, ctx_size=spec.context_length, batch_size=self.n_batch
            )
        if self.embedding and not spec.embedding_model:
            # A generative model embeds with mean pooling, as llama-cpp-python's embedding=True gives it.
            n_ctx = self.runner.load_details.get("n_ctx") or ctx
            batch = self.n_batch
            await self.runner.load_model(self.model_path, ctx_size=n_ctx, batch_size=batch, pooling="mean")

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

    # ---- tokens ------------------------------------------------------------------------------------------
    def tokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        return self._sync(self.atokenize(text, add_bos, special), "atokenize")

    async def atokenize(self, text: bytes, add_bos: bool = True, special: bool = False) -> list[int]:
        if not isinstance(text, bytes | bytearray):
            raise InvalidParameterError("tokenize takes bytes (llama-cpp-python's signature): text.encode()")
        add_bos, special = bool(args.flag("add_bos", add_bos)), bool(args.flag("special", special))
        return await self.runner.tokenize(bytes(text).decode("utf-8", "replace"), add_bos, special)

    def detokenize(
        self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
    ) -> bytes:
        return self._sync(self.adetokenize(tokens, prev_tokens, special), "adetokenize")

    async def adetokenize(
        self, tokens: list[int], prev_tokens: list[int] | None = None, special: bool = False
    ) -> bytes:
        if not isinstance(tokens, list | tuple):
            raise InvalidParameterError(f"tokens must be a list of token ids, got {type(tokens).__name__}")
        return await self.runner.detokenize_bytes(
            list(tokens), unparse_special=bool(args.flag("special", special))
        )

    # ---- completions -------------------------------------------------------------------------------------
    def create_completion(self, prompt: str, **kwargs: Any) -> Any:
        """A completion dict, or with stream=True an iterator of chunks (llama-cpp-python's shapes)."""
        if args.streaming(kwargs):
            return self._sync_iter(self._completion_chunks(prompt, **kwargs), "acreate_completion")
        return self._sync(self.acreate_completion(prompt, **kwargs), "acreate_completion")

    __call__ = create_completion

    async def acreate_completion(self, prompt: str, **kwargs: Any) -> Any:
        """The async twin of create_completion; with stream=True an async iterator of chunks."""
        if args.streaming(kwargs):
            return self._completion_chunks(prompt, **kwargs)
        request = _Request.completion(self, prompt, kwargs)
        result = await self.runner.generate_text(request.prompt, request.params)
        choice: dict[str, Any] = {
            "text": (prompt if request.echo else "") + result.text,
            "index": 0,
            "logprobs": await self._completion_logprobs(request, result)
            if request.logprobs is not None
            else None,
            "finish_reason": _FINISH[result.finish_reason],
        }
        return {**request.head("text_completion"), "choices": [choice], "usage": _usage(result)}

    async def _completion_chunks(self, prompt: str, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        request = _Request.completion(self, prompt, {**kwargs, "stream": False})
        if request.logprobs is not None:
            raise InvalidParameterError("logprobs with stream=True is not supported: use stream=False")
        head = request.head("text_completion")
        if request.echo:
            yield {**head, "choices": [{"text": prompt, "index": 0, "logprobs": None, "finish_reason": None}]}
        async for item in self._generate_stream(request):
            if isinstance(item, GenerationResult):
                final = {
                    "text": "",
                    "index": 0,
                    "logprobs": None,
                    "finish_reason": _FINISH[item.finish_reason],
                }
                yield {**head, "choices": [final]}
            elif item.text:
                yield {
                    **head,
                    "choices": [{"text": item.text, "index": 0, "logprobs": None, "finish_reason": None}],
                }

    # ---- chat --------------------------------------------------------------------------------------------
    def create_chat_completion(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        """A chat completion dict, or with stream=True an iterator of chunks (OpenAI / llama-cpp-python
        shapes). The model's chat template (or chat_format) formats the messages, rendered by llama.cpp."""
        if args.streaming(kwargs):
            return self._sync_iter(self._chat_chunks(messages, **kwargs), "acreate_chat_completion")
        return self._sync(self.acreate_chat_completion(messages, **kwargs), "acreate_chat_completion")

    async def acreate_chat_completion(self, messages: list[dict[str, Any]], **kwargs: Any) -> Any:
        if args.streaming(kwargs):
            return self._chat_chunks(messages, **kwargs)
        request = await _Request.chat(self, messages, kwargs)
        result = await self.runner.generate_text(request.prompt, request.params)
        logprobs = await self._chat_logprobs(request, result) if request.logprobs is not None else None
        message, finish = await self._reply(request, result)
        choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}
        return {**request.head("chat.completion"), "choices": [choice], "usage": _usage(result)}

    async def _reply(self, request: _Request, result: GenerationResult) -> tuple[dict[str, Any], str]:
        """The assistant message and finish reason: with tools, the text parsed for tool calls as llama.cpp's
        server parses it."""
        finish = _FINISH[result.finish_reason]
        if request.applied is None:
            return {"role": "assistant", "content": result.text}, finish
        parsed = await self.runner.parse_chat_reply(request.applied, result.text)
        message: dict[str, Any] = {"role": "assistant", "content": parsed.get("content") or None}
        if parsed.get("tool_calls"):
            message["tool_calls"] = parsed["tool_calls"]
            finish = "tool_calls"
        if parsed.get("reasoning_content"):
            message["reasoning_content"] = parsed["reasoning_content"]
        return message, finish

    async def _chat_chunks(
        self, messages: list[dict[str, Any]], **kwargs: Any
    ) -> AsyncIterator[dict[str, Any]]:
        request = await _Request.chat(self, messages, {**kwargs, "stream": False})
        if request.logprobs is not None:
            raise InvalidParameterError("logprobs with stream=True is not supported: use stream=False")
        head = request.head("chat.completion.chunk")
        yield {
            **head,
            "choices": [
                {"index": 0, "delta": {"role": "assistant"}, "logprobs": None, "finish_reason": None}
            ],
        }
        async for item in self._generate_stream(request):
            if isinstance(item, GenerationResult):
                finish = _FINISH[item.finish_reason]
                if request.applied is not None:  # with tools, the reply is parsed once it is complete
                    message, finish = await self._reply(request, item)
                    delta = {k: v for k, v in message.items() if k != "role" and v is not None}
                    if "tool_calls" in delta:
                        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
                    if delta:
                        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
                        yield {**head, "choices": [choice]}
                final = {"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}
                yield {**head, "choices": [final]}
            elif item.text and request.applied is None:
                delta = {"content": item.text}
                yield {
                    **head,
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
                }

    # ---- embeddings --------------------------------------------------------------------------------------
    def create_embedding(self, input: str | list[str], model: str | None = None) -> dict[str, Any]:  # noqa: A002
        return self._sync(self.acreate_embedding(input, model), "acreate_embedding")

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
        return self._sync(self.aembed(input, normalize, truncate), "aembed")

    async def aembed(self, input: str | list[str], normalize: bool = True, truncate: bool = True) -> Any:  # noqa: A002
        texts = args.texts("input", input)
        normalize, truncate = bool(args.flag("normalize", normalize)), bool(args.flag("truncate", truncate))
        vectors = await self.runner.embed(texts, normalize=normalize, truncate=truncate)
        return vectors[0] if isinstance(input, str) else vectors

    # ---- shared ------------------------------------------------------------------------------------------
    async def _generate_stream(self, request: _Request) -> AsyncIterator[TokenChunk | GenerationResult]:
        """The request's tokens as they come, then its GenerationResult; leaving early cancels it."""
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()
        task = asyncio.ensure_future(
            self.runner.generate_text(request.prompt, request.params, queue.put_nowait)
        )
        task.add_done_callback(lambda _: queue.put_nowait(done))
        try:
            while (item := await queue.get()) is not done:
                yield item
            yield task.result()
        finally:
            if not task.done():
                self.runner.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task

    async def _token_logprobs(
        self, prompt: str, tokens: list[int], top_n: int
    ) -> list[tuple[float, list[tuple[int, float]]]]:
        """(logprob of each token, its top_n alternatives) from the raw logits that predicted it."""
        rows = await self.runner.logits(prompt, tokens)
        out = []
        for token, row in zip(tokens, rows, strict=True):
            top = max(row)
            log_z = top + math.log(math.fsum(math.exp(x - top) for x in row))
            best = sorted(range(len(row)), key=row.__getitem__, reverse=True)[:top_n] if top_n else []
            out.append((row[token] - log_z, [(t, row[t] - log_z) for t in best]))
        return out

    async def _pieces(self, tokens: list[int]) -> list[bytes]:
        return [await self.runner.detokenize_bytes([t]) for t in tokens]

    async def _completion_logprobs(self, request: _Request, result: GenerationResult) -> dict[str, Any]:
        tokens = list(result.tokens)
        scored = await self._token_logprobs(request.prompt, tokens, request.logprobs or 0)
        token_lps: list[float | None] = [lp for lp, _ in scored]
        tops: list[dict[str, float] | None] = []
        for _, alternatives in scored:
            tops.append(
                {
                    (await self.runner.detokenize_bytes([t])).decode("utf-8", "replace"): lp
                    for t, lp in alternatives
                }
            )
        pieces = await self._pieces(tokens)
        if (
            request.echo
        ):  # the prompt's tokens too: each predicted by the ones before it (the first by nothing)
            prompt_tokens = await self.runner.tokenize(request.prompt, True, True)
            prompt_scored = await self._token_logprobs("", prompt_tokens[1:], request.logprobs or 0)
            prompt_tops = []
            for _, alternatives in prompt_scored:
                prompt_tops.append(
                    {
                        (await self.runner.detokenize_bytes([t])).decode("utf-8", "replace"): lp
                        for t, lp in alternatives
                    }
                )
            token_lps = [None] + [lp for lp, _ in prompt_scored] + token_lps
            tops = [None, *prompt_tops, *tops]
            pieces = await self._pieces(prompt_tokens) + pieces
        texts = [p.decode("utf-8", "replace") for p in pieces]
        offsets, at = [], 0
        for text in texts:
            offsets.append(at)
            at += len(text)
        return {"tokens": texts, "text_offset": offsets, "token_logprobs": token_lps, "top_logprobs": tops}

    async def _chat_logprobs(self, request: _Request, result: GenerationResult) -> dict[str, Any]:
        tokens = list(result.tokens)
        scored = await self._token_logprobs(request.prompt, tokens, request.logprobs or 0)
        content = []
        for token, (lp, alternatives) in zip(tokens, scored, strict=True):
            piece = await self.runner.detokenize_bytes([token])
            top = []
            for t, alt_lp in alternatives:
                alt = await self.runner.detokenize_bytes([t])
                top.append({"token": alt.decode("utf-8", "replace"), "logprob": alt_lp, "bytes": list(alt)})
            content.append(
                {
                    "token": piece.decode("utf-8", "replace"),
                    "logprob": lp,
                    "bytes": list(piece),
                    "top_logprobs": top,
                }
            )
        return {"content": content}

    def _sync(self, awaitable: Awaitable[T], twin: str) -> T:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is None:  # CPython with no loop (scripts, tests on MockTransport): a loop of our own
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(awaitable)
        try:
            from pyodide.ffi import can_run_sync, run_sync
        except ImportError:
            can_run_sync = None
        if can_run_sync is not None and can_run_sync():
            return run_sync(awaitable)
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        if can_run_sync is None:
            where = "an event loop is already running"
        elif _browser_has_jspi():
            where = "JSPI cannot suspend this call: it did not come from an awaitable run (runPythonAsync)"
        else:
            where = "this browser has no JSPI (WebAssembly.Suspending)"
        call = twin if "." in twin else f"llm.{twin}"  # "Llama.load" is a classmethod, the rest are methods
        raise SyncCallError(f"cannot wait here ({where}): use `await {call}(...)` instead")

    def _sync_iter(self, chunks: AsyncIterator[T], twin: str) -> Iterator[T]:
        # Checked now, not at the first next(): the error belongs to the call that cannot work.
        probe = asyncio.sleep(0)
        self._sync(probe, twin)

        def iterate() -> Iterator[T]:
            try:
                while True:
                    try:
                        yield self._sync(chunks.__anext__(), twin)
                    except StopAsyncIteration:
                        return
            finally:
                with contextlib.suppress(Exception):
                    self._sync(chunks.aclose(), twin)

        return iterate()

    def close(self) -> None:
        """Stop the engine (llama-cpp-python's close())."""
        self.runner.terminate()
        if self._loop is not None:
            self._loop.close()
            self._loop = None


class _Request:
    """One completion or chat request: its prompt, GenerateTextParams and response head."""

    def __init__(self, llm: Llama, prompt: str, params: GenerateTextParams, model: str | None) -> None:
        self.llm = llm
        self.prompt = prompt
        self.params = params
        self.model = model or str(llm.model_path)
        self.echo = False
        self.logprobs: int | None = None
        self.applied: dict[str, Any] | None = None  # llama.cpp's chat result, when the reply is to be parsed
        self.created = int(time.time())

    def head(self, kind: str) -> dict[str, Any]:
        prefix = "cmpl" if kind.startswith("text") else "chatcmpl"
        if not hasattr(self, "_id"):
            self._id = f"{prefix}-{uuid.uuid4()}"
        return {"id": self._id, "object": kind, "created": self.created, "model": self.model}

    @classmethod
    def completion(cls, llm: Llama, prompt: Any, kwargs: dict[str, Any]) -> _Request:
        kwargs = dict(kwargs)
        if not isinstance(prompt, str):
            raise InvalidParameterError("prompt must be a str (token-list prompts are not supported here)")
        if kwargs.pop("suffix", None) is not None:
            raise InvalidParameterError("suffix (infill) is not supported")
        echo = bool(args.flag("echo", kwargs.pop("echo", False)))
        logprobs = args.logprobs_count("logprobs", kwargs.pop("logprobs", None))
        model = kwargs.get("model")
        request = cls(llm, prompt, _params(llm, kwargs, max_tokens=16, temperature=0.8), model)
        request.echo = echo
        request.logprobs = logprobs
        return request

    @classmethod
    async def chat(cls, llm: Llama, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> _Request:
        """The prompt as llama.cpp's server renders the request (common/chat: the model's template, tools), or
        with chat_format (a built-in template name) llama.cpp's fixed list."""
        kwargs = dict(kwargs)
        for name in ("functions", "function_call"):
            if kwargs.pop(name, None):
                raise InvalidParameterError(f"{name} (deprecated by OpenAI) is not supported: use tools")
        tools, tool_choice, parallel = args.tools_args(
            kwargs.pop("tools", None),
            kwargs.pop("tool_choice", None),
            kwargs.pop("parallel_tool_calls", None),
        )
        response_format = kwargs.pop("response_format", None)
        if response_format is not None:
            if tools and tool_choice != "none":
                raise InvalidParameterError("give tools or response_format, not both")
            kwargs["json_schema"], kwargs["grammar"] = args.response_format(
                response_format, kwargs.get("grammar")
            )
        logprobs = args.flag("logprobs", kwargs.pop("logprobs", None), optional=True)
        top_logprobs = args.logprobs_count("top_logprobs", kwargs.pop("top_logprobs", None))
        turns = args.messages(messages)
        _params(llm, dict(kwargs), max_tokens=None, temperature=0.2)  # every argument, before llama.cpp runs
        applied = None
        if llm.chat_format is not None:
            if tools:
                raise InvalidParameterError("tools need the model's own template (leave chat_format unset)")
            plain = [{"role": m["role"], "content": m.get("content") or ""} for m in turns]
            prompt = await llm.runner.format_chat(plain, template=llm.chat_format)
        else:
            applied = await llm.runner.apply_chat(
                turns, tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel
            )
            prompt = applied["prompt"]
            stop = kwargs.get("stop") or []
            stop = [stop] if isinstance(stop, str) else list(stop)
            kwargs["stop"] = stop + [s for s in applied["additional_stops"] if s not in stop]
            if applied["grammar"] and kwargs.get("grammar") is None:
                # tool_choice "required": the reply must be a call; "auto": lazy, from the call's first marker
                kwargs["grammar"] = applied["grammar"]
                if applied["grammar_lazy"]:
                    kwargs["grammar_triggers"] = applied["grammar_triggers"]
                else:  # enforced from the start: past what the template already wrote, as llama-server does
                    kwargs["grammar_prefill"] = applied["generation_prompt"] or None
        request = cls(
            llm, prompt, _params(llm, kwargs, max_tokens=None, temperature=0.2), kwargs.get("model")
        )
        request.logprobs = (top_logprobs or 0) if logprobs else None
        request.applied = (
            applied if tools else None
        )  # replies are parsed for tool calls when tools were given
        return request


def _params(
    llm: Llama, kwargs: dict[str, Any], *, max_tokens: int | None, temperature: float
) -> GenerateTextParams:
    n_ctx, n_vocab = llm.n_ctx() or 512, llm.n_vocab()
    return args.params(
        kwargs,
        n_ctx=n_ctx,
        n_vocab=n_vocab,
        llm_seed=llm.seed,
        max_tokens=max_tokens,
        temperature=temperature,
    )


def _usage(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.generated_tokens,
        "total_tokens": result.prompt_tokens + result.generated_tokens,
    }


def _browser_has_jspi() -> bool:
    """Whether the page's WebAssembly can suspend (JSPI): a feature test, not a browser name."""
    try:
        from js import WebAssembly
    except ImportError:
        return False
    return hasattr(WebAssembly, "Suspending")
