"""The worker protocol, mirrored from web/protocol.js: request kinds, error names, glue return codes,
OPFS layout and defaults.

web/protocol.js is the declaration; this is its Python twin, a literal copy of its JSON.
tests/unit/test_protocol.py fails when the two, wasm/glue.h, the worker's handlers, the bridge's requests or
the Python error tree disagree. Change all of them together.
"""

from __future__ import annotations

from typing import Any, Final

PROTOCOL: Final[dict[str, Any]] = {
    "requests": [
        "init",
        "load",
        "generate",
        "embed",
        "logits",
        "tokenize",
        "detokenize",
        "chat_format",
        "chat_apply",
        "chat_parse",
        "cache_list",
        "cache_delete",
        "cache_clear",
    ],
    "control": ["abort"],
    "replies": ["progress", "token", "result", "error"],
    "error_fields": ["name", "message", "stage", "url", "status"],
    "errors": [
        "AbortError",
        "BridgeError",
        "CacheQuotaError",
        "ChatTemplateError",
        "ContextOverflowError",
        "CorsBlockedError",
        "EmbeddingAbortedError",
        "EmbeddingError",
        "EmbeddingInputTooLongError",
        "EmbeddingNotSupportedError",
        "EngineCrashedError",
        "EngineOutOfMemoryError",
        "GenerationError",
        "GenerationNotSupportedError",
        "InvalidParameterError",
        "ModelCompatibilityError",
        "ModelInitializationError",
        "ModelIntegrityError",
        "ModelNotLoadedError",
        "NetworkError",
        "TruncatedModelError",
    ],
    "stages": [
        "checking",
        "cache",
        "downloading",
        "verifying",
        "loading",
        "embedding",
        "spawning",
        "spawned",
    ],
    "glue": {
        "PR_ERR_DECODE": -1,
        "PR_ERR_CONTEXT_FULL": -2,
        "PR_ERR_NO_PROMPT": -3,
        "PR_ERR_TEMPLATE": -4,
        "PR_ERR_NO_POOLING": -5,
        "PR_ERR_EMBEDDING_MODEL": -6,
        "PR_ERR_EXCEPTION": -2147483648,
        "PR_POOLING_MODEL": -1,
        "PR_POOLING_MEAN": 1,
        "PR_POOLING_CLS": 2,
        "PR_POOLING_LAST": 3,
    },
    "pooling": {"mean": 1, "cls": 2, "last": 3},
    "opfs": {
        "dir": "py_runner-models",
        "data_suffix": ".gguf",
        "meta_suffix": ".json",
        "scratch_dir": "py_runner-scratch",
    },
    "pthread_pool_size": 4,
    "sampler": [
        "temp",
        "top_k",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "repeat_last_n",
        "frequency_penalty",
        "presence_penalty",
        "seed",
    ],
    "defaults": {
        "n_ctx": 2048,
        "n_batch": 256,
        "n_predict": 128,
        "temp": 0.8,
        "top_k": 40,
        "top_p": 0.95,
        "min_p": 0.05,
        "typical_p": 1.0,
        "repeat_penalty": 1.0,
        "repeat_last_n": 64,
        "frequency_penalty": 0.0,
        "presence_penalty": 0.0,
        "seed": 0,
    },
    "out_of_memory": "failed to allocate|out of memory|not enough space|\\bOOM\\b",
}

REQUESTS: Final[tuple[str, ...]] = tuple(PROTOCOL["requests"])
ERROR_NAMES: Final[frozenset[str]] = frozenset(PROTOCOL["errors"])
ERROR_FIELDS: Final[tuple[str, ...]] = tuple(PROTOCOL["error_fields"])
GLUE: Final[dict[str, int]] = PROTOCOL["glue"]
POOLING: Final[dict[str, int]] = PROTOCOL["pooling"]  # load_model(pooling=...) -> llama_pooling_type
OPFS: Final[dict[str, str]] = PROTOCOL["opfs"]
PTHREAD_POOL_SIZE: Final[int] = PROTOCOL["pthread_pool_size"]
# pr_sampler_configure's knobs in its order: the generate request sends each, the worker passes them so.
SAMPLER_KNOBS: Final[tuple[str, ...]] = tuple(PROTOCOL["sampler"])
# The engine's defaults, load (n_ctx, n_batch) and sampling: GenerateTextParams and load_model start here.
DEFAULTS: Final[dict[str, Any]] = PROTOCOL["defaults"]
