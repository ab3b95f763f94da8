"""py_runner: run llama.cpp (WebAssembly) in the browser, driven from Python in Pyodide.

Importing this package is cheap: no gguf/numpy/playwright, and no js/pyodide until a model loads.
"""

from ._errors import (
    BridgeError,
    GenerationError,
    InvalidParameterError,
    LoadAbortedError,
    LocalWebAIError,
    ModelCompatibilityError,
    ModelInitializationError,
    ModelLoadError,
    ModelNotLoadedError,
    NetworkError,
    RunnerBusyError,
)
from ._params import GenerateTextParams
from ._progress import LoadingStage, ProgressInfo
from ._runner import Artifacts, GenerationResult, LlamaRunner, TokenChunk
from ._spec import MAX_SUPPORTED_GGUF_VERSION, MIN_SUPPORTED_GGUF_VERSION, ModelSpecification

__version__ = "0.1.0"

__all__ = [
    "MAX_SUPPORTED_GGUF_VERSION",
    "MIN_SUPPORTED_GGUF_VERSION",
    "Artifacts",
    "BridgeError",
    "GenerateTextParams",
    "GenerationError",
    "GenerationResult",
    "InvalidParameterError",
    "LlamaRunner",
    "LoadAbortedError",
    "LoadingStage",
    "LocalWebAIError",
    "ModelCompatibilityError",
    "ModelInitializationError",
    "ModelLoadError",
    "ModelNotLoadedError",
    "ModelSpecification",
    "NetworkError",
    "ProgressInfo",
    "RunnerBusyError",
    "TokenChunk",
    "__version__",
]
