"""LlamaRunner: the public API, pure Python against the Transport interface.

Its jobs live apart: the load pipeline in _loading.py, the per-token pipeline in _generation.py; here are the
public methods, the one operation state (what runs, whether it was cancelled) and the engine's lifetime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, overload

from . import _loading
from ._cache import ModelCache
from ._chat import ChatMethods
from ._errors import (
    BridgeError,
    EmbeddingAbortedError,
    EmbeddingError,
    EngineCrashedError,
    EngineOutOfMemoryError,
    GenerationError,
    GenerationNotSupportedError,
    InvalidParameterError,
    LoadAbortedError,
    LocalWebAIError,
    ModelNotLoadedError,
    RunnerBusyError,
)
from ._generation import GenerationResult, TokenChunk, TokenPipeline
from ._loading import LoadOptions
from ._params import GenerateTextParams
from ._progress import LoadingStage, ProgressCallback, ProgressReporter
from ._rerank import RerankMethods
from ._spec import ModelSpecification
from ._state import StateMethods
from ._tokens import TokenMethods
from ._transport import Artifacts, Transport
from ._transport.protocol import DEFAULTS

__all__ = ["GenerationResult", "LlamaRunner", "TokenChunk"]

log = logging.getLogger(__name__)

_SIGNAL_POLL_S = 0.05


@dataclass
class _Operation:
    """The one operation the engine runs at a time, and whether the caller cancelled it."""

    kind: str  # "load" | "generate" | "embed"
    cancelled: bool = False


def _call_quietly(fn: Callable[..., Any] | None, *args: Any) -> None:
    """User notification hooks must not turn a finished operation into a failure."""
    if fn is not None:
        try:
            fn(*args)
        except Exception:
            log.exception("callback %r raised; ignored", fn)


class LlamaRunner(ChatMethods, StateMethods, RerankMethods, TokenMethods):
    """Loads a GGUF model into llama.cpp (WebAssembly, in a Web Worker) and generates text.

    One operation at a time: a load_model()/generate_text() while another one runs raises
    RunnerBusyError instead of queueing.
    """

    def __init__(
        self,
        artifacts: Artifacts | None = None,
        *,
        transport: Transport | None = None,
        build: str = "auto",
        simd: str = "auto",
        n_threads: int | None = None,
        base_url: str | None = None,
        on_model_loaded: Callable[[ModelSpecification], None] | None = None,
        on_model_load_error: Callable[[LocalWebAIError], None] | None = None,
    ) -> None:
        """`base_url`: what relative URLs (models, the cache's keys, the engine's files) resolve against. By
        default the URL web/page/boot.js was given, else the page's (`location.href` when it is http(s), else
        the origin: a `blob:` worker). Python hosted in a worker (PyScript's worker mode, a JupyterLite
        kernel) passes the page's URL, so that a relative model path means there what it means on the page.
        `simd`: which variant of the build runs: "relaxed" (relaxed SIMD: faster dot products; Chromium,
        Firefox), "simd128" (every browser), or "auto": relaxed where the browser has it and the page serves
        it."""
        if build not in ("auto", "st", "mt"):
            raise InvalidParameterError(f"build must be 'auto', 'st' or 'mt', got {build!r}")
        if simd not in ("auto", "relaxed", "simd128"):
            raise InvalidParameterError(f"simd must be 'auto', 'relaxed' or 'simd128', got {simd!r}")
        if n_threads is not None and n_threads < 1:
            raise InvalidParameterError(f"n_threads must be None or >= 1, got {n_threads!r}")
        # None: the page's (web/page/boot.js publishes them), else the dev server's
        self._artifacts = artifacts
        self._transport = transport
        self._build = build
        self._simd = simd
        self._n_threads = n_threads
        self._base_url = base_url
        self.on_model_loaded = on_model_loaded
        self.on_model_load_error = on_model_load_error
        self._start_info: dict[str, Any] | None = None
        self._op: _Operation | None = None
        self._model: _loading.LoadedModel | None = None
        self._notices: set[str] = set()
        # How the model came (a URL, a File): after the engine dies, the next call loads it into a new one.
        self._reload: tuple[Any, LoadOptions] | None = None
        self._lost: str | None = None  # why there is no model after a crash that cannot be undone (bytes)
        self.last_result: GenerationResult | None = None  # the last finished generation's (Llama's calls too)

    # ---- state -------------------------------------------------------------------------------
    @property
    def is_loading_model(self) -> bool:
        return self._op is not None and self._op.kind == "load"

    @property
    def is_model_loaded(self) -> bool:
        return self._model is not None

    @property
    def build(self) -> str | None:
        """ "st" or "mt" once the engine has started, else None."""
        return self._start_info.get("build") if self._start_info else None

    @property
    def simd(self) -> str | None:
        """ "relaxed" or "simd128" (the build's variant) once the engine has started, else None."""
        return self._start_info.get("simd") if self._start_info else None

    @property
    def spec(self) -> ModelSpecification | None:
        """The loaded model's ModelSpecification (the stable, typed view), or None."""
        return self._model.spec if self._model else None

    def get_model_metadata(self) -> ModelSpecification | None:
        """The loaded model's ModelSpecification (the same as `spec`; the name the API started with)."""
        return self.spec

    @property
    def load_details(self) -> dict[str, Any]:
        """The engine's raw report of the last load (every GGUF key/value, threads, wasm heap size, ...):
        for diagnostics; ModelSpecification (`spec`) is the stable view."""
        return dict(self._model.metadata) if self._model else {}

    @property
    def cache(self) -> ModelCache:
        """The browser's cache of models loaded from URLs: `await runner.cache.list()`, `.delete(url)`,
        `.clear()`."""
        return ModelCache(self._cache_transport, lambda: (self._start_info or {}).get("baseUrl") or "")

    async def _cache_transport(self, what: str) -> Transport:
        self._require_idle(what)
        return await self._ensure_started()

    def _require_idle(self, what: str) -> None:
        """The one busy check: the engine does one thing at a time; a second request is refused."""
        if self._op is not None:
            raise RunnerBusyError(f"cannot {what}: a {self._op.kind} is already running")

    def _begin(self, kind: str, what: str) -> _Operation:
        self._require_idle(what)
        self._op = _Operation(kind)
        return self._op

    def _get_transport(self) -> Transport:
        if self._transport is None:
            from ._transport.pyodide import PyodideTransport

            self._transport = PyodideTransport(
                self._artifacts,
                build=self._build,
                simd=self._simd,
                threads=self._n_threads,
                base_url=self._base_url,
            )
        return self._transport

    async def _ensure_started(self) -> Transport:
        transport = self._get_transport()
        if self._start_info is None:
            self._start_info = dict(await transport.start())
            self._notice(
                self._start_info.get("notice")
            )  # e.g. st chosen: the browser has no SharedArrayBuffer
        return transport

    def _notice(self, text: Any) -> None:
        """One line, once per runner, for what the browser could not give (threads, a cache) while the work
        went on without it."""
        if text and text not in self._notices:
            self._notices.add(str(text))
            log.warning("%s", text)

    # ---- loading -----------------------------------------------------------------------------
    async def load_model(
        self,
        source: Any,
        progress_callback: ProgressCallback | None = None,
        signal: Any = None,
        *,
        ctx_size: int = DEFAULTS["n_ctx"],
        batch_size: int = DEFAULTS["n_batch"],
        cache: bool = True,
        sha256: str | None = None,
        pooling: str | None = None,
        type_k: str | None = None,
        type_v: str | None = None,
        vocab_only: bool = False,
    ) -> ModelSpecification:
        """Load a model from a URL str, bytes-like object, or JS File/Blob; replaces any loaded model.

        A split GGUF: its first shard's URL (the others are found by name), or a list of all its shard URLs,
        Files or Blobs (Files named like shards may come in any order; a FileList from a file input works).

        cache (URLs): keep the download in the browser's model cache (OPFS, see `runner.cache`); a later load
        of the same URL makes no network request (spec.cache_hit) and an interrupted download resumes.
        sha256 (URLs, hex): verify the file before it is loaded or cached; a mismatch raises
        ModelIntegrityError. A full storage quota raises CacheQuotaError.
        pooling ("mean", "cls" or "last"): how embed() pools token embeddings into one vector; None keeps the
        model's own pooling type. An embedding model (one that declares a pooling type, e.g. a BERT sentence
        encoder) needs none; a generative model needs one to embed with, and then embeds texts of up to
        batch_size tokens. An embedding model's context is capped at its training context and takes a whole
        text per batch.
        type_k, type_v: the KV cache's types by ggml's names, as llama.cpp's --cache-type-k/-v take
        them: "f16" (None, the default), "f32", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "iq4_nl".
        "q8_0" halves the cache's memory; spec.type_k / spec.type_v say what the context was made with.
        vocab_only: load the tokenizer alone (llama-cpp-python's vocab_only=True: no weights are read, no
        context is made): tokenize, detokenize, apply_chat_template and the metadata work, and generation,
        logits, embeddings and saved states raise GenerationNotSupportedError (EmbeddingNotSupportedError).
        A vocabulary-only GGUF (llama.cpp's models/ggml-vocab-*.gguf) loads only so.

        signal: anything with a boolean `.aborted` (a JS AbortSignal or a Python object); it is
        polled while loading. Progress goes PREPARING -> DOWNLOADING (URLs) -> LOADING_INTO_ENGINE
        -> READY, or ends with ERROR/ABORTED. Raises ModelLoadError subclasses (LoadAbortedError
        on cancel), BridgeError if the engine itself fails, RunnerBusyError if busy.
        """
        options = LoadOptions(
            ctx_size, batch_size, cache, sha256, pooling, self._n_threads, type_k, type_v, vocab_only
        )
        options.validate()
        return await self._load(source, options, progress_callback, signal)

    async def _load(
        self, source: Any, options: LoadOptions, progress_callback: ProgressCallback | None, signal: Any
    ) -> ModelSpecification:
        op = self._begin("load", "load a model")
        self._model = None  # the worker replaces its model: the old one is gone whatever happens
        self._reload = self._lost = None
        reporter = ProgressReporter(progress_callback)
        watcher: asyncio.Task[None] | None = None

        def raise_if_cancelled() -> None:
            if op.cancelled:
                raise LoadAbortedError("load cancelled")

        try:
            reporter.report(LoadingStage.PREPARING, 0, None, "starting engine")
            if signal is not None and getattr(signal, "aborted", False):
                raise LoadAbortedError("load aborted before it started")
            transport = await self._ensure_started()
            raise_if_cancelled()
            if signal is not None:
                watcher = asyncio.ensure_future(self._watch_signal(signal, op))
            loaded = await _loading.load(transport, source, options, reporter, raise_if_cancelled)
        except asyncio.CancelledError:
            self._abort_transport("load")
            reporter.report(LoadingStage.ABORTED, message="cancelled")
            raise
        except BaseException as exc:
            err = self._as_error(exc, BridgeError)
            self._drop_dead_engine(err)
            if isinstance(err, LoadAbortedError):
                reporter.report(LoadingStage.ABORTED, message=str(err))
            else:
                reporter.report(LoadingStage.ERROR, message=str(err))
            _call_quietly(self.on_model_load_error, err)
            if err is exc:
                raise
            raise err from exc
        finally:
            if watcher is not None:
                watcher.cancel()
            self._op = None
        self._model = loaded
        # bytes are not kept for a reload: the caller's copy may be all the memory the page can spare
        self._reload = None if isinstance(source, bytes | bytearray | memoryview) else (source, options)
        self._notice(loaded.metadata.get("cache_notice"))  # asked for a cache the browser has no room for
        size = loaded.spec.file_size
        reporter.report(LoadingStage.READY, size or 0, size, "model ready")
        _call_quietly(self.on_model_loaded, loaded.spec)
        return loaded.spec

    async def _watch_signal(self, signal: Any, op: _Operation) -> None:
        while self._op is op:
            if getattr(signal, "aborted", False):
                self.cancel_loading()
                return
            await asyncio.sleep(_SIGNAL_POLL_S)

    def cancel_loading(self) -> None:
        """Abort the running load (it raises LoadAbortedError); no-op when not loading."""
        if self._op is not None and self._op.kind == "load":
            self._op.cancelled = True
            self._abort_transport("load")

    # ---- generation --------------------------------------------------------------------------
    async def generate_text(
        self,
        prompt: str | list[int],
        params: GenerateTextParams | None = None,
        token_callback: Callable[[TokenChunk], None] | None = None,
        completion_callback: Callable[[GenerationResult], None] | None = None,
    ) -> GenerationResult:
        """Generate a completion of `prompt`; token_callback(TokenChunk) is called per token.

        `prompt` is text (tokenized with the model's special tokens, BOS added as the model asks), or a list
        of token ids, evaluated as they are (llama-cpp-python's token-list prompts; not with chatml=True).
        cancel() ends it early with finish_reason "aborted" (returned, not raised). If
        token_callback raises, generation is aborted and that exception propagates.
        With no_display_prompt=False the result text starts with the prompt as sent.
        """
        params = params if params is not None else GenerateTextParams()
        if isinstance(prompt, list):
            if params.chatml:
                raise InvalidParameterError("chatml=True wraps a text prompt: give text, not token ids")
        elif not isinstance(prompt, str):
            raise InvalidParameterError(
                f"prompt must be a str or a list of token ids, got {type(prompt).__name__}"
            )
        params.validate()
        await self._recover()
        self._require_idle("generate")
        model = self._model
        if model is None or self._transport is None:
            raise ModelNotLoadedError(self._lost or "load a model before generating")
        if model.spec.embedding_model:
            raise GenerationNotSupportedError(
                f"{model.spec.model_name or 'the model'} is an embedding model "
                f"(pooling {model.spec.pooling_type}): it has no text to generate; use embed()"
            )
        if model.spec.vocab_only:
            raise GenerationNotSupportedError(
                "the model was loaded vocab_only (its tokenizer alone): load it without vocab_only to "
                "generate"
            )
        params.check_context(model.n_ctx, model.n_batch)
        transport = self._transport
        options = params.to_bridge_options()
        full_prompt = self._token_ids(prompt) if isinstance(prompt, list) else params.format_prompt(prompt)
        if isinstance(full_prompt, list) and not full_prompt:
            raise InvalidParameterError("the prompt is an empty list of tokens")
        op = self._begin("generate", "generate")
        pipeline = TokenPipeline(
            params.stop, token_callback, lambda: transport.abort("generate"), lambda: op.cancelled
        )
        try:
            engine = await self._engine_call(
                "generate", transport.generate(full_prompt, options, pipeline.on_token)
            )
        finally:
            self._op = None
        if pipeline.callback_error is not None:
            raise pipeline.callback_error
        prompt_shown = None if params.no_display_prompt else full_prompt
        if isinstance(prompt_shown, list):
            prompt_shown = await self.detokenize(prompt_shown)
        out = pipeline.result(engine, prompt=prompt_shown, seed=options["seed"])
        self.last_result = out
        if completion_callback is not None:
            completion_callback(out)
        return out

    async def stream(
        self, prompt: str, params: GenerateTextParams | None = None
    ) -> AsyncIterator[TokenChunk]:
        """Async iterator of TokenChunk, built on generate_text(); errors propagate at the end.
        Leaving the loop early cancels the generation and waits for the engine to stop."""
        start = lambda on_token: self.generate_text(prompt, params, on_token)  # noqa: E731
        async with contextlib.aclosing(self._stream(start)) as chunks:  # closing it cancels the generation
            async for chunk in chunks:
                yield chunk

    @overload
    async def embed(
        self,
        texts: str,
        *,
        normalize: bool = ...,
        truncate: bool = ...,
        progress_callback: Callable[[int, int], None] | None = ...,
    ) -> list[float]: ...

    @overload
    async def embed(
        self,
        texts: Sequence[str],
        *,
        normalize: bool = ...,
        truncate: bool = ...,
        progress_callback: Callable[[int, int], None] | None = ...,
    ) -> list[list[float]]: ...

    async def embed(
        self,
        texts: str | Sequence[str],
        *,
        normalize: bool = True,
        truncate: bool = False,
        progress_callback: Callable[[int, int], None] | None = None,
    ) -> list[float] | list[list[float]]:
        """The pooled embedding of a text (a list of floats), or of each text in a list (a list of them), as
        llama.cpp computes it with the context's pooling (the model's own, or load_model's `pooling`).

        normalize: scale each vector to unit length (Euclidean), as llama.cpp's embedding tool and server
        do, so that a dot product is the cosine similarity. Texts are tokenized with the model's special
        tokens (BERT's [CLS] ... [SEP]). A text longer than one batch raises EmbeddingInputTooLongError, or
        with truncate=True is cut to its first tokens. progress_callback(done, total) follows a list of
        texts; cancel() stops between two texts with EmbeddingAbortedError. A model that declares no pooling
        raises EmbeddingNotSupportedError. Embedding clears the KV cache: the next prompt is evaluated anew.
        """
        single = isinstance(texts, str)
        batch = [texts] if single else list(texts)
        if not all(isinstance(t, str) for t in batch):
            raise InvalidParameterError("texts must be a str or a sequence of str")
        await self._recover()
        transport = self._idle_transport("embed")
        if not batch:
            return []
        op = self._begin("embed", "embed")
        late = []  # texts the engine embedded after cancel(), while the abort was on its way

        def on_progress(p: dict[str, Any]) -> None:
            if op.cancelled:
                late.append(int(p.get("loaded") or 1))
            elif progress_callback is not None:
                progress_callback(int(p.get("loaded") or 0), int(p.get("total") or len(batch)))

        options = {"normalize": bool(normalize), "truncate": bool(truncate)}
        try:
            result = await self._engine_call("embed", transport.embed(batch, options, on_progress))
        except EmbeddingError as err:
            if op.cancelled and not isinstance(err, EmbeddingAbortedError):
                raise EmbeddingAbortedError(str(err)) from err
            raise
        finally:
            self._op = None
        if late:  # as a generation drops tokens made after cancel(): the caller gets what it had, not more
            raise EmbeddingAbortedError(f"embedding was aborted after {late[0] - 1} of {len(batch)} texts")
        vectors = [list(v) for v in result["embeddings"]]
        return vectors[0] if single else vectors

    def _idle_transport(self, what: str) -> Transport:
        if self._model is None or self._transport is None:
            raise ModelNotLoadedError(self._lost or f"load a model before you {what}")
        self._require_idle(what)
        return self._transport

    async def _request(self, what: str, call: Callable[[Transport], Awaitable[Any]]) -> Any:
        """One request that needs the model (tokenize, a chat's rendering, ...): an engine that died under it
        is dropped, and the next call loads the model into a fresh one."""
        await self._recover()
        try:
            return await call(self._idle_transport(what))
        except (EngineCrashedError, EngineOutOfMemoryError) as err:
            self._drop_dead_engine(err)
            raise

    async def _recover(self) -> None:
        """After the engine died with a model loaded, load that model again (same source, same options)
        into a new engine, so that the call after the error answers as if nothing had happened."""
        if self._model is None and self._reload is not None and self._op is None:
            source, options = self._reload
            await self._load(source, options, None, None)

    async def _stream(
        self, start: Callable[[Callable[[TokenChunk], None]], Any]
    ) -> AsyncIterator[TokenChunk]:
        queue: asyncio.Queue[Any] = asyncio.Queue()
        done = object()
        task = asyncio.ensure_future(start(queue.put_nowait))
        task.add_done_callback(lambda _: queue.put_nowait(done))
        try:
            while (item := await queue.get()) is not done:
                yield item
            task.result()
        finally:
            if not task.done():
                self.cancel()
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await task

    def cancel(self) -> None:
        """Abort the running generation: it returns with finish_reason "aborted" and holds exactly the
        tokens delivered before this call (tokens the engine made while the abort was on its way are dropped).
        A running embed() stops between two texts and raises EmbeddingAbortedError.
        """
        if self._op is not None and self._op.kind in ("generate", "embed") and self._transport is not None:
            self._op.cancelled = True
            self._transport.abort(self._op.kind)

    def terminate(self) -> None:
        """Kill the engine and forget the model; the next load_model() starts a fresh engine."""
        transport = self._transport
        self._model = None
        self._reload = self._lost = None
        self._start_info = None
        if self._op is not None and self._op.kind == "load":
            self._op.cancelled = True
        if transport is not None:
            transport.terminate()

    # ---- helpers -----------------------------------------------------------------------------
    async def _engine_call(self, kind: str, request: Awaitable[dict[str, Any]]) -> dict[str, Any]:
        """Await one engine request ("generate" | "embed"): task cancellation aborts it in the worker, other
        exceptions become that kind's error class, and an engine that died is dropped for a fresh one."""
        try:
            return await request
        except asyncio.CancelledError:
            self._abort_transport(kind)
            raise
        except BaseException as exc:
            err = self._as_error(exc, EmbeddingError if kind == "embed" else GenerationError)
            self._drop_dead_engine(err)
            if err is exc:
                raise
            raise err from exc

    def _abort_transport(self, kind: str) -> None:
        if self._transport is not None:
            try:
                self._transport.abort(kind)
            except Exception:
                log.exception("transport.abort(%r) failed", kind)

    def _drop_dead_engine(self, err: BaseException) -> None:
        """After llama.cpp aborted, its wasm instance is unusable: kill the worker so that the next call
        starts a fresh engine instead of failing forever."""
        if isinstance(err, EngineOutOfMemoryError | EngineCrashedError) and self._transport is not None:
            if self._model is not None and self._reload is None:
                self._lost = f"the engine crashed ({err}); the model came as bytes: load it again"
            elif self._model is None:
                self._reload = None  # it died loading: that load failed, there is nothing to restore
            self._model = None
            self._start_info = None
            self._transport.terminate()

    @staticmethod
    def _as_error(exc: BaseException, fallback: type[LocalWebAIError]) -> BaseException:
        """Keep our errors and non-Exception signals as they are; wrap anything else."""
        if isinstance(exc, LocalWebAIError) or not isinstance(exc, Exception):
            return exc
        return fallback(f"{type(exc).__name__}: {exc}")
