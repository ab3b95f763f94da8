"""py_runner: run llama.cpp (WebAssembly) in the browser, driven from Python in Pyodide.

Importing this package is cheap: no gguf/numpy/playwright, and no js/pyodide until a model loads.
"""

from ._cache import CachedModel, ModelCache
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
    RunnerBusyError,
    ServerError,
    SyncCallError,
    TruncatedModelError,
)
from ._generation import GenerationResult, TokenChunk
from ._llama import Llama
from ._params import GenerateTextParams
from ._progress import LoadingStage, ProgressInfo
from ._runner import LlamaRunner
from ._spec import MAX_SUPPORTED_GGUF_VERSION, MIN_SUPPORTED_GGUF_VERSION, ModelSpecification
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
    "Llama",
    "LlamaRunner",
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
    "RunnerBusyError",
    "ServerError",
    "SyncCallError",
    "TokenChunk",
    "TruncatedModelError",
    "__version__",
]
