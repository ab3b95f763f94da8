"""The worker protocol, mirrored from web/shared/protocol.js: request kinds, error names, glue return codes,
OPFS layout and defaults.

web/shared/protocol.js is the declaration; this is its Python twin, a literal copy of its JSON.
tests/unit/test_protocol.py fails when the two, wasm/glue.h, the worker's handlers, the bridge's requests or
the Python error tree disagree. Change all of them together.
"""

from __future__ import annotations

from typing import Any, Final

PROTOCOL: Final[dict[str, Any]] = {
    "requests": {
        "init": {
            "fields": {"build": "str", "moduleUrl": "str", "threads": "int", "files": "dict?"},
            "events": ["progress"],
            "result": {"build": "str", "threads": "int"},
        },
        "load": {
            "fields": {
                "source": "str|blob|list",
                "n_ctx": "int?",
                "n_batch": "int?",
                "cache": "bool?",
                "n_threads": "int?",
                "pooling": "int?",
                "sha256": "str?",
                "sizes": "list?",
                "min_size": "int?",
                "name": "str?",
                "type_k": "int?",
                "type_v": "int?",
                "vocab_only": "bool?",
            },
            "events": ["progress"],
            "result": "dict",
        },
        "generate": {
            "fields": {
                "prompt": "str|list",
                "n_predict": "int?",
                "n_threads": "int?",
                "ignore_eos": "bool?",
                "logit_bias": "list?",
                "grammar": "str?",
                "grammar_triggers": "list?",
                "grammar_prefill": "str?",
                "temp": "float?",
                "top_k": "int?",
                "top_p": "float?",
                "min_p": "float?",
                "typical_p": "float?",
                "repeat_penalty": "float?",
                "repeat_last_n": "int?",
                "frequency_penalty": "float?",
                "presence_penalty": "float?",
                "seed": "int?",
            },
            "events": ["token"],
            "result": {
                "tokens": "list",
                "prompt_tokens": "int",
                "prompt_tokens_reused": "int",
                "prompt_tokens_evaluated": "int",
                "finish_reason": "str",
                "eog_token": "int",
                "threads": "int",
                "timings": "dict",
            },
        },
        "embed": {
            "fields": {"texts": "list", "normalize": "bool", "truncate": "bool"},
            "events": ["progress"],
            "result": {"embeddings": "float32", "n_embd": "int", "n_tokens": "list"},
        },
        "logits": {
            "fields": {"prompt": "str", "tokens": "list"},
            "events": [],
            "result": {"n_vocab": "int", "rows": "int", "logits": "float32"},
        },
        "eval": {
            "fields": {"tokens": "list", "rows_from": "int?"},
            "events": [],
            "result": {"n_vocab": "int", "rows": "int", "logits": "float32", "reused": "int"},
        },
        "tokenize": {
            "fields": {"text": "str", "add_special": "bool", "parse_special": "bool"},
            "events": [],
            "result": {"tokens": "list"},
        },
        "detokenize": {
            "fields": {"tokens": "list", "remove_special": "bool", "unparse_special": "bool"},
            "events": [],
            "result": {"bytes": "bytes"},
        },
        "token_pieces": {
            "fields": {"tokens": "list"},
            "events": [],
            "result": {"bytes": "bytes", "lengths": "list"},
        },
        "chat_format": {
            "fields": {"messages": "list", "add_assistant": "bool", "template": "str?"},
            "events": [],
            "result": {"prompt": "str"},
        },
        "chat_apply": {"fields": {"request": "json"}, "events": [], "result": {"json": "json"}},
        "chat_parse": {"fields": {"state": "json", "text": "str"}, "events": [], "result": {"json": "json"}},
        "cache_list": {"fields": {}, "events": [], "result": "list"},
        "cache_delete": {"fields": {"url": "str"}, "events": [], "result": "bool"},
        "cache_clear": {"fields": {}, "events": [], "result": "int"},
        "cache_usage": {
            "fields": {},
            "events": [],
            "result": {"models": "int", "usage": "int?", "quota": "int?"},
        },
        "rerank": {
            "fields": {"query": "str", "documents": "list"},
            "events": ["progress"],
            "result": {"scores": "list", "n_tokens": "list"},
        },
        "state_tokens": {
            "fields": {},
            "events": [],
            "result": {"tokens": "list"},
        },
        "state_save": {
            "fields": {},
            "events": [],
            "result": {"tokens": "list", "state": "bytes", "model": "dict"},
        },
        "state_load": {
            "fields": {"tokens": "list", "state": "bytes", "model": "dict"},
            "events": [],
            "result": {"tokens": "int"},
        },
        "session_save": {"fields": {"name": "str"}, "events": [], "result": "dict"},
        "session_load": {"fields": {"name": "str"}, "events": [], "result": "dict"},
        "session_list": {"fields": {}, "events": [], "result": "list"},
        "session_delete": {"fields": {"name": "str"}, "events": [], "result": "bool"},
    },
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
        "RerankNotSupportedError",
        "SessionNotFoundError",
        "StateError",
        "StateIntegrityError",
        "StateMismatchError",
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
        "PR_ERR_STATE": -7,
        "PR_ERR_NOT_RERANKER": -8,
        "PR_ERR_VOCAB_ONLY": -9,
        "PR_ERR_EXCEPTION": -2147483648,
        "PR_POOLING_MODEL": -1,
        "PR_POOLING_MEAN": 1,
        "PR_POOLING_CLS": 2,
        "PR_POOLING_LAST": 3,
        "PR_POOLING_RANK": 4,
        "PR_CACHE_TYPE_DEFAULT": -1,
        "PR_CACHE_TYPE_F32": 0,
        "PR_CACHE_TYPE_F16": 1,
        "PR_CACHE_TYPE_Q4_0": 2,
        "PR_CACHE_TYPE_Q4_1": 3,
        "PR_CACHE_TYPE_Q5_0": 6,
        "PR_CACHE_TYPE_Q5_1": 7,
        "PR_CACHE_TYPE_Q8_0": 8,
        "PR_CACHE_TYPE_IQ4_NL": 20,
        "PR_CACHE_TYPE_BF16": 30,
    },
    "pooling": {"mean": 1, "cls": 2, "last": 3, "rank": 4},
    "opfs": {
        "dir": "py_runner-models",
        "data_suffix": ".gguf",
        "meta_suffix": ".json",
        "scratch_dir": "py_runner-scratch",
        "sessions_dir": "py_runner-sessions",
        "session_suffix": ".session",
    },
    "pthread_pool_size": 4,
    "download_window_bytes": 33554432,
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

# request type -> {fields: {name: type}, events, result: {name: type} | type}; web/shared/protocol.js explains
REQUESTS: Final[dict[str, dict[str, Any]]] = PROTOCOL["requests"]
ERROR_NAMES: Final[frozenset[str]] = frozenset(PROTOCOL["errors"])
ERROR_FIELDS: Final[tuple[str, ...]] = tuple(PROTOCOL["error_fields"])
GLUE: Final[dict[str, int]] = PROTOCOL["glue"]
POOLING: Final[dict[str, int]] = PROTOCOL["pooling"]  # load_model(pooling=...) -> llama_pooling_type
# load_model(type_k=, type_v=) by ggml's names -> ggml_type: the glue's PR_CACHE_TYPE_* constants, named
CACHE_TYPES: Final[dict[str, int]] = {
    name.removeprefix("PR_CACHE_TYPE_").lower(): value
    for name, value in GLUE.items()
    if name.startswith("PR_CACHE_TYPE_") and name != "PR_CACHE_TYPE_DEFAULT"
}
OPFS: Final[dict[str, str]] = PROTOCOL["opfs"]
PTHREAD_POOL_SIZE: Final[int] = PROTOCOL["pthread_pool_size"]
# a same-origin model download asks for at most this many bytes per request (web/shared/download.js)
DOWNLOAD_WINDOW_BYTES: Final[int] = PROTOCOL["download_window_bytes"]
# pr_sampler_configure's knobs in its order: the generate request sends each, the worker passes them so.
SAMPLER_KNOBS: Final[tuple[str, ...]] = tuple(PROTOCOL["sampler"])
# The engine's defaults, load (n_ctx, n_batch) and sampling: GenerateTextParams and load_model start here.
DEFAULTS: Final[dict[str, Any]] = PROTOCOL["defaults"]


_TYPES: Final[dict[str, tuple[type, ...]]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list, tuple),
    "dict": (dict,),
    "bytes": (bytes, bytearray, memoryview),
    "float32": (bytes, bytearray, memoryview),
    "json": (str,),
}


def _conforms(value: Any, kind: str) -> bool:
    """Whether a Python value fits a declared type ("int", "str?", "str|blob|list"; blob: anything)."""
    if kind.endswith("?"):
        return value is None or _conforms(value, kind[:-1])
    return any(
        alternative not in _TYPES or isinstance(value, _TYPES[alternative]) for alternative in kind.split("|")
    )


def request_problems(type: str, fields: dict[str, Any]) -> list[str]:
    """What is wrong with a request against its declaration (empty: nothing), as the bridge checks it, and
    the types too. MockTransport refuses such a request, so unit tests see a field that drifted."""
    declared = REQUESTS.get(type)
    if declared is None:
        return [f"unknown request type {type}"]
    problems = [f"{type}: no field {name}" for name in fields if name not in declared["fields"]]
    for name, kind in declared["fields"].items():
        if fields.get(name) is None and not kind.endswith("?"):
            problems.append(f"{type}: {name} is missing")
        elif name in fields and not _conforms(fields[name], kind):
            problems.append(f"{type}: {name} should be {kind}, got {fields[name]!r:.60}")
    return problems


def result_problems(type: str, result: Any) -> list[str]:
    """What is wrong with a request's result (as a transport returns it to Python) against its declaration."""
    declared = REQUESTS[type]["result"]
    if isinstance(declared, str):
        return (
            []
            if _conforms(result, declared)
            else [f"{type}: result should be {declared}, got {result!r:.60}"]
        )
    if not isinstance(result, dict):
        return [f"{type}: result should be a dict of {sorted(declared)}, got {result!r:.60}"]
    problems = [f"{type}: result has no field {name}" for name in result if name not in declared]
    problems += [
        f"{type}: result.{name} should be {kind}"
        for name, kind in declared.items()
        if name in result and not _conforms(result[name], kind)
    ]
    return problems
