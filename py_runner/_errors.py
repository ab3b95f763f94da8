"""Exception hierarchy shared by every layer; JS errors are mapped onto it by name."""

from __future__ import annotations


class LocalWebAIError(Exception):
    """Root of every error py_runner raises on purpose; catch this to handle them all."""


class ModelLoadError(LocalWebAIError):
    """Loading a model failed (root of all load failures)."""


class ModelCompatibilityError(ModelLoadError):
    """The model file is not one we can run (e.g. unsupported GGUF version)."""


class ModelTooLargeError(ModelCompatibilityError):
    """The model cannot fit the engine's memory (a 32-bit WebAssembly heap of at most 4 GiB): its weights,
    KV cache at the asked context and compute buffers add up to more. Raised from the GGUF header, before
    any download; the message says what would fit (a smaller ctx_size, or a smaller quant). `needed` and
    `limit` are the estimate and the limit in bytes."""

    def __init__(self, message: str, *, needed: int | None = None, limit: int | None = None) -> None:
        super().__init__(message)
        self.needed = needed
        self.limit = limit


class ModelInitializationError(ModelLoadError):
    """llama.cpp could not create the model or its context (bad file, out of memory, ...)."""


class EngineOutOfMemoryError(ModelInitializationError):
    """The engine ran out of memory (the 4 GB wasm32 address space, or the browser's limit) while loading
    the model or creating its context: try a smaller model, quantization or ctx_size. The runner restarts
    its engine on the next call."""


class NetworkError(ModelLoadError):
    """Fetching the model failed; `url` and HTTP `status` (when known) say where and how."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ModelNotFoundError(NetworkError):
    """The server answered HTTP 404 or 410 for the model URL."""


class AccessDeniedError(NetworkError):
    """The server refused the model URL (HTTP 401 or 403)."""


class ServerError(NetworkError):
    """The server failed (HTTP 5xx)."""


class CorsBlockedError(NetworkError):
    """A cross-origin model URL could not be fetched: the server answered, but sends no CORS headers
    allowing this page. A server that did not answer (a dead port, the network down) is a plain
    NetworkError; so is one the page cannot tell from it: a server whose Cross-Origin-Resource-Policy
    forbids this page, or, with COEP `require-corp`, one that sends no
    `Cross-Origin-Resource-Policy: cross-origin`."""


class TruncatedModelError(ModelLoadError):
    """The model file is shorter than its own GGUF header says it must be (an incomplete download or
    copy)."""


class CacheQuotaError(ModelLoadError):
    """The browser's storage quota has no room to cache the model (a QuotaExceededError while writing it to
    the Origin Private File System). The partial entry is deleted; free space with `runner.cache.delete()`
    or `clear()`, or load with `cache=False`."""


class ModelIntegrityError(ModelLoadError):
    """The downloaded model's sha256 is not the one the caller gave; the cache entry is deleted."""


class LoadAbortedError(ModelLoadError):
    """The load was cancelled (cancel_loading(), an abort signal, or task cancellation)."""


class ModelNotLoadedError(LocalWebAIError):
    """An operation needs a loaded model and there is none."""


class GenerationError(LocalWebAIError):
    """Text generation failed inside the engine (decode failure, tokenizer error, ...)."""


class ContextOverflowError(GenerationError):
    """The prompt does not fit the context (load_model's ctx_size); generation that fills the context ends
    with finish_reason "context_full" instead."""


class ChatTemplateError(GenerationError):
    """The model has no chat template (pass chatml=True for ChatML), or llama.cpp does not support its
    template."""


class GenerationNotSupportedError(GenerationError):
    """The loaded model is an embedding model (it declares a pooling type and has no language-model
    head): use embed()."""


class EmbeddingError(LocalWebAIError):
    """Computing embeddings failed inside the engine (root of all embed() failures)."""


class EmbeddingNotSupportedError(EmbeddingError):
    """The model declares no pooling type (a generative model; load it with pooling="mean", "cls" or
    "last" to embed with it), or it is a reranker (pooling type rank)."""


class EmbeddingInputTooLongError(EmbeddingError, ContextOverflowError):
    """A text has more tokens than one batch holds (an embedding model: its context, at most its training
    context; a generative model: load_model's batch_size). Pass truncate=True to embed the first tokens."""


class EmbeddingAbortedError(EmbeddingError):
    """embed() was cancelled (cancel() or task cancellation) before every text was embedded."""


class RerankNotSupportedError(EmbeddingError):
    """rerank() needs a reranker: a model whose GGUF declares pooling type rank (a cross-encoder with a
    classification head, as llama.cpp's server runs with --reranking)."""


class StateError(LocalWebAIError):
    """A saved state (save_state(), a session) could not be saved or restored (root of the state errors)."""


class StateMismatchError(StateError):
    """The state was saved with another model (its source, size, sha256 or ETag differ), another context
    size or other KV cache types; restoring it here would give undefined results, so it is refused."""


class StateIntegrityError(StateError):
    """A stored session's bytes are not the ones that were saved (its sha256 differs, or it is cut short);
    it is deleted."""


class SessionNotFoundError(StateError, KeyError):
    """No session of that name is stored in this browser (for this origin)."""

    def __str__(self) -> str:  # KeyError's would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidParameterError(LocalWebAIError, ValueError):
    """A parameter is out of range; also a ValueError so generic validation code catches it."""


class BridgeError(LocalWebAIError):
    """The JS side failed: the bridge or worker crashed, was terminated, or replied nonsense."""


class EngineCrashedError(BridgeError):
    """llama.cpp aborted inside the worker; that engine instance is gone. The runner starts a fresh
    engine on the next call."""


class SyncCallError(LocalWebAIError, RuntimeError):
    """A sync `Llama` method was called where it cannot wait for the engine (a browser without JSPI, or code
    already inside a running event loop): await its async twin instead; the message names it."""


class RunnerBusyError(LocalWebAIError):
    """A load, generation or embedding is already running; the runner does one operation at a time and
    rejects (rather than queues) a second one, so callers never wait on hidden work."""


_BY_JS_NAME: dict[str, type[LocalWebAIError]] = {
    "AbortError": LoadAbortedError,
    "NetworkError": NetworkError,
    "CorsBlockedError": CorsBlockedError,
    "TruncatedModelError": TruncatedModelError,
    "CacheQuotaError": CacheQuotaError,
    "ModelIntegrityError": ModelIntegrityError,
    "ModelInitializationError": ModelInitializationError,
    "ModelCompatibilityError": ModelCompatibilityError,
    "GenerationError": GenerationError,
    "ChatTemplateError": ChatTemplateError,
    "ContextOverflowError": ContextOverflowError,
    "GenerationNotSupportedError": GenerationNotSupportedError,
    "EmbeddingError": EmbeddingError,
    "EmbeddingNotSupportedError": EmbeddingNotSupportedError,
    "EmbeddingInputTooLongError": EmbeddingInputTooLongError,
    "EmbeddingAbortedError": EmbeddingAbortedError,
    "InvalidParameterError": InvalidParameterError,
    "RerankNotSupportedError": RerankNotSupportedError,
    "StateError": StateError,
    "StateMismatchError": StateMismatchError,
    "StateIntegrityError": StateIntegrityError,
    "SessionNotFoundError": SessionNotFoundError,
    "ModelNotLoadedError": ModelNotLoadedError,
    "BridgeError": BridgeError,
    "EngineOutOfMemoryError": EngineOutOfMemoryError,
    "EngineCrashedError": EngineCrashedError,
}


def error_from_js(
    name: str, message: str, stage: str | None = None, *, url: str | None = None, status: int | None = None
) -> LocalWebAIError:
    """Map a JS error (the reply fields `name, message, stage, url, status` of web/shared/protocol.js) to its
    Python class; unknown names are treated as a crash of the JS side (BridgeError), keeping the name in the
    message. A NetworkError with an HTTP status becomes the subclass for that status."""
    cls = _BY_JS_NAME.get(name or "", BridgeError)
    text = message or name or "unknown error"
    if cls is BridgeError and name and name != "BridgeError":
        text = f"{name}: {text}"
    if stage:
        text = f"{text} (stage: {stage})"
    if issubclass(cls, NetworkError):
        if cls is NetworkError and status is not None:
            cls = network_error_class(status)
        return cls(text, url=url, status=status)
    return cls(text)


def network_error_class(status: int) -> type[NetworkError]:
    """The NetworkError subclass for an HTTP error status."""
    if status in (404, 410):
        return ModelNotFoundError
    if status in (401, 403):
        return AccessDeniedError
    if status >= 500:
        return ServerError
    return NetworkError
