// py_runner protocol: the one declaration of what crosses between Python, the bridge, the engine worker and the glue.
// A plain script that works both ways it is loaded — importScripts in the worker, `import "../shared/protocol.js"` in the
// bridge — and defines globalThis.PyRunnerProtocol. The JSON between the markers is mirrored by
// py_runner/_transport/protocol.py; tests/unit/test_protocol.py fails when this file, that module, wasm/glue.h, the
// worker's handlers and docs/DESIGN.md's protocol table disagree.
//
// "requests": each request Python sends through Bridge.request(type, fields, callbacks), as
//   {fields: {name: type}, events: the replies it streams before its result, result: {name: type} or a type}.
//   Types: str int float bool list dict bytes (Uint8Array) float32 (a Float32Array; bytes in Python) json (a JSON
//   text); "?" marks a field that may be left out or null; "a|b" either. The bridge refuses a field not declared
//   and a required one missing. Only "load" is reshaped on the way: the bridge turns its `source` into `urls`
//   (resolved, checked) or `blobs` + `name` for the worker.
// Messages, bridge -> worker: {id, type: <a request>, ...fields} and {type: "abort", target: id}.
// Replies, worker -> bridge: {id, type: "progress", stage, loaded, total} | {id, type: "token", token, piece}
//   | {id, type: "result", value} | {id, type: "error", name, message, stage, url, status}.
"use strict";

(() => {
  const PROTOCOL = /* protocol-json-begin */ {
    "requests": {
      "init": {
        "fields": {"build": "str", "moduleUrl": "str", "threads": "int", "files": "dict?"},
        "events": ["progress"],
        "result": {"build": "str", "threads": "int"}
      },
      "load": {
        "fields": {
          "source": "str|blob|list", "n_ctx": "int?", "n_batch": "int?", "cache": "bool?", "n_threads": "int?",
          "pooling": "int?", "sha256": "str?", "sizes": "list?", "min_size": "int?", "name": "str?",
          "type_k": "int?", "type_v": "int?", "vocab_only": "bool?"
        },
        "events": ["progress"],
        "result": "dict"
      },
      "generate": {
        "fields": {
          "prompt": "str|list", "n_predict": "int?", "n_threads": "int?", "ignore_eos": "bool?", "logit_bias": "list?",
          "grammar": "str?", "grammar_triggers": "list?", "grammar_prefill": "str?", "temp": "float?",
          "top_k": "int?", "top_p": "float?", "min_p": "float?", "typical_p": "float?", "repeat_penalty": "float?",
          "repeat_last_n": "int?", "frequency_penalty": "float?", "presence_penalty": "float?", "seed": "int?"
        },
        "events": ["token"],
        "result": {
          "tokens": "list", "prompt_tokens": "int", "prompt_tokens_reused": "int",
          "prompt_tokens_evaluated": "int", "finish_reason": "str", "eog_token": "int", "threads": "int",
          "timings": "dict"
        }
      },
      "embed": {
        "fields": {"texts": "list", "normalize": "bool", "truncate": "bool"},
        "events": ["progress"],
        "result": {"embeddings": "float32", "n_embd": "int", "n_tokens": "list"}
      },
      "logits": {
        "fields": {"prompt": "str", "tokens": "list"},
        "events": [],
        "result": {"n_vocab": "int", "rows": "int", "logits": "float32"}
      },
      "eval": {
        "fields": {"tokens": "list", "rows_from": "int?"},
        "events": [],
        "result": {"n_vocab": "int", "rows": "int", "logits": "float32", "reused": "int"}
      },
      "tokenize": {
        "fields": {"text": "str", "add_special": "bool", "parse_special": "bool"},
        "events": [],
        "result": {"tokens": "list"}
      },
      "detokenize": {
        "fields": {"tokens": "list", "remove_special": "bool", "unparse_special": "bool"},
        "events": [],
        "result": {"bytes": "bytes"}
      },
      "token_pieces": {
        "fields": {"tokens": "list"},
        "events": [],
        "result": {"bytes": "bytes", "lengths": "list"}
      },
      "chat_format": {
        "fields": {"messages": "list", "add_assistant": "bool", "template": "str?"},
        "events": [],
        "result": {"prompt": "str"}
      },
      "chat_apply": {
        "fields": {"request": "json"},
        "events": [],
        "result": {"json": "json"}
      },
      "chat_parse": {
        "fields": {"state": "json", "text": "str"},
        "events": [],
        "result": {"json": "json"}
      },
      "cache_list": {
        "fields": {},
        "events": [],
        "result": "list"
      },
      "cache_delete": {
        "fields": {"url": "str"},
        "events": [],
        "result": "bool"
      },
      "cache_clear": {
        "fields": {},
        "events": [],
        "result": "int"
      },
      "cache_usage": {
        "fields": {},
        "events": [],
        "result": {"models": "int", "usage": "int?", "quota": "int?"}
      },
      "rerank": {
        "fields": {"query": "str", "documents": "list"},
        "events": ["progress"],
        "result": {"scores": "list", "n_tokens": "list"}
      },
      "state_tokens": {
        "fields": {},
        "events": [],
        "result": {"tokens": "list"}
      },
      "state_save": {
        "fields": {},
        "events": [],
        "result": {"tokens": "list", "state": "bytes", "model": "dict"}
      },
      "state_load": {
        "fields": {"tokens": "list", "state": "bytes", "model": "dict"},
        "events": [],
        "result": {"tokens": "int"}
      },
      "session_save": {
        "fields": {"name": "str"},
        "events": [],
        "result": "dict"
      },
      "session_load": {
        "fields": {"name": "str"},
        "events": [],
        "result": "dict"
      },
      "session_list": {
        "fields": {},
        "events": [],
        "result": "list"
      },
      "session_delete": {
        "fields": {"name": "str"},
        "events": [],
        "result": "bool"
      }
    },
    "control": ["abort"],
    "replies": ["progress", "token", "result", "error"],
    "error_fields": ["name", "message", "stage", "url", "status"],
    "errors": [
      "AbortError", "BridgeError", "CacheQuotaError", "ChatTemplateError", "ContextOverflowError", "CorsBlockedError",
      "EmbeddingAbortedError", "EmbeddingError", "EmbeddingInputTooLongError", "EmbeddingNotSupportedError",
      "EngineCrashedError", "EngineOutOfMemoryError", "GenerationError", "GenerationNotSupportedError",
      "InvalidParameterError", "ModelCompatibilityError", "ModelInitializationError", "ModelIntegrityError",
      "ModelNotLoadedError", "NetworkError", "RerankNotSupportedError", "SessionNotFoundError", "StateError",
      "StateIntegrityError", "StateMismatchError", "TruncatedModelError"
    ],
    "stages": ["checking", "cache", "downloading", "verifying", "loading", "embedding", "spawning", "spawned"],
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
      "PR_CACHE_TYPE_BF16": 30
    },
    "pooling": {"mean": 1, "cls": 2, "last": 3, "rank": 4},
    "opfs": {
      "dir": "py_runner-models", "data_suffix": ".gguf", "meta_suffix": ".json", "scratch_dir": "py_runner-scratch",
      "sessions_dir": "py_runner-sessions", "session_suffix": ".session"
    },
    "pthread_pool_size": 4,
    "download_window_bytes": 33554432,
    "sampler": [
      "temp", "top_k", "top_p", "min_p", "typical_p", "repeat_penalty", "repeat_last_n", "frequency_penalty",
      "presence_penalty", "seed"
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
      "seed": 0
    },
    "out_of_memory": "failed to allocate|out of memory|not enough space|\\bOOM\\b"
  } /* protocol-json-end */;

  /** The one error class of the JS side: it crosses to Python as {name, message, stage, url, status}. */
  class PyRunnerError extends Error {
    constructor(name, message, fields = {}) {
      super(message);
      this.name = name;
      this.stage = fields.stage ?? null;
      this.url = fields.url ?? null;
      this.status = fields.status ?? null;
    }

    /** The error reply's fields of any thrown value; names outside PROTOCOL.errors become BridgeError. */
    static fieldsOf(err) {
      const name = err && PROTOCOL.errors.includes(err.name) ? err.name : "BridgeError";
      const raw = String((err && err.message) || err);
      const message = name === "BridgeError" && err && err.name && err.name !== "BridgeError" ? `${err.name}: ${raw}` : raw;
      return { name, message, stage: err?.stage ?? null, url: err?.url ?? null, status: err?.status ?? null };
    }

    static fromReply(reply) {
      return new PyRunnerError(reply.name, reply.message, reply);
    }
  }

  const outOfMemory = new RegExp(PROTOCOL.out_of_memory, "i");

  /** Refuse a request the declaration does not allow: an unknown type, a field not declared, one missing. */
  function checkRequest(type, fields) {
    const declared = Object.hasOwn(PROTOCOL.requests, type) ? PROTOCOL.requests[type] : null;
    if (!declared) throw new PyRunnerError("BridgeError", `unknown request type ${type}`);
    for (const name of Object.keys(fields)) {
      if (!Object.hasOwn(declared.fields, name)) throw new PyRunnerError("BridgeError", `${type}: no field ${name}`);
    }
    for (const [name, kind] of Object.entries(declared.fields)) {
      if (!kind.endsWith("?") && fields[name] == null) throw new PyRunnerError("BridgeError", `${type}: ${name} is missing`);
    }
  }

  /** The cache entry's key of an absolute URL: the hex SHA-256 of the URL (OPFS file names cannot hold a URL). */
  async function cacheKey(url) {
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url)));
    return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  /** The file name a model URL is mounted under (llama.cpp finds a split model's shards beside it by name). */
  function fileNameOf(url) {
    const last = new URL(url, self.location.href).pathname.split("/").pop();
    let name = last;
    try {
      name = decodeURIComponent(last);
    } catch (_) {
      // a stray "%" (e.g. "100%.gguf"): keep the name as written
    }
    return name.replace(/[/\\]/g, "_") || "model.gguf";
  }

  globalThis.PyRunnerProtocol = Object.freeze({
    ...PROTOCOL,
    PyRunnerError,
    isOutOfMemory: (text) => outOfMemory.test(String(text || "")),
    checkRequest,
    cacheKey,
    fileNameOf,
  });
})();
