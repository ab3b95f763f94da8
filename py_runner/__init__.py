"""py_runner: run llama.cpp (WebAssembly) in the browser, driven from Python in Pyodide.

What lives here is the library the page installs: every module but host/. `__all__` below is its public API;
the private modules, by job:

- LlamaRunner: _runner (public methods, the one operation state, the engine's lifetime), _loading (the load
  pipeline), _generation + _stop + _utf8 (the per-token pipeline), _chat (the chat policy: which llama.cpp
  path a chat takes, and the runner's chat methods), _state (saved states and sessions, and their methods),
  _rerank (reranking), _params + _json_schema + _limits (generation parameters and input bounds), _progress,
  _cache, _errors.
- Model files: _gguf (the header reader), _fit (does it fit the heap), _sources (URLs, Files, split shards),
  _spec (ModelSpecification).
- Llama (llama-cpp-python's API): _llama (the class), _llama_args (its keyword arguments), _llama_request (a
  request's prompt and parameters), _openai_shapes (response dicts), _logprobs, _llama_sync (sync over async),
  _llama_grammar (LlamaGrammar), _llama_cache (LlamaRAMCache, for Llama.set_cache).
- _transport/: the cut to I/O (the Transport interface, PyodideTransport, MockTransport).
- _prompt_program: what `py-runner run --prompt` runs in the page.
- host/: CPython-only tools (CLI, server, browsers, benches, build); not part of the library.

Import rule (tests/unit/test_layers.py): the library imports the standard library and itself only, plus
Pyodide's `js`/`pyodide` in _transport/pyodide.py and, lazily, in _llama_sync's JSPI test; never host/, and no
import cycle (TYPE_CHECKING imports count). Importing this package is cheap: no gguf/numpy/playwright, and no
js/pyodide until a model loads.
"""

from ._cache import CachedModel, CacheUsage, ModelCache
from ._errors import (
    AccessDeniedError,
    BridgeError,
    CacheQuotaError,
    ChatTemplateError,
    ContextOverflowError,
    CorsBlockedError,
    EmbeddingAbortedError,
    EmbeddingError,
    EmbeddingInputTooLongError,
    EmbeddingNotSupportedError,
    EngineCrashedError,
    EngineOutOfMemoryError,
    GenerationError,
    GenerationNotSupportedError,
    InvalidParameterError,
    LoadAbortedError,
    LocalWebAIError,
    ModelCompatibilityError,
    ModelInitializationError,
    ModelIntegrityError,
    ModelLoadError,
    ModelNotFoundError,
    ModelNotLoadedError,
    ModelTooLargeError,
    NetworkError,
    RerankNotSupportedError,
    RunnerBusyError,
    ServerError,
    SessionNotFoundError,
    StateError,
    StateIntegrityError,
    StateMismatchError,
    SyncCallError,
    TruncatedModelError,
)
from ._generation import GenerationResult, TokenChunk
from ._llama import Llama
from ._llama_cache import BaseLlamaCache, LlamaCache, LlamaRAMCache
from ._llama_grammar import LlamaGrammar
from ._params import GenerateTextParams
from ._progress import LoadingStage, ProgressInfo
from ._runner import LlamaRunner
from ._spec import MAX_SUPPORTED_GGUF_VERSION, MIN_SUPPORTED_GGUF_VERSION, ModelSpecification
from ._state import LlamaState, SessionInfo
from ._transport import Artifacts, MockTransport

__version__ = "0.1.0"

__all__ = [
    "MAX_SUPPORTED_GGUF_VERSION",
    "MIN_SUPPORTED_GGUF_VERSION",
    "AccessDeniedError",
    "Artifacts",
    "BridgeError",
    "CacheQuotaError",
    "ChatTemplateError",
    "ContextOverflowError",
    "CachedModel",
    "CacheUsage",
    "CorsBlockedError",
    "EmbeddingAbortedError",
    "EmbeddingError",
    "EmbeddingInputTooLongError",
    "EmbeddingNotSupportedError",
    "EngineCrashedError",
    "EngineOutOfMemoryError",
    "GenerateTextParams",
    "GenerationError",
    "GenerationNotSupportedError",
    "GenerationResult",
    "InvalidParameterError",
    "BaseLlamaCache",
    "Llama",
    "LlamaCache",
    "LlamaGrammar",
    "LlamaRAMCache",
    "LlamaRunner",
    "LlamaState",
    "LoadAbortedError",
    "LoadingStage",
    "LocalWebAIError",
    "MockTransport",
    "ModelCompatibilityError",
    "ModelTooLargeError",
    "ModelCache",
    "ModelInitializationError",
    "ModelIntegrityError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelNotLoadedError",
    "ModelSpecification",
    "NetworkError",
    "ProgressInfo",
    "RerankNotSupportedError",
    "RunnerBusyError",
    "ServerError",
    "SessionInfo",
    "SessionNotFoundError",
    "StateError",
    "StateIntegrityError",
    "StateMismatchError",
    "SyncCallError",
    "TokenChunk",
    "TruncatedModelError",
    "__version__",
]
