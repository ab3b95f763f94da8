// py_runner engine calls: what calling the glue (wasm/glue.h) from JS takes: unsigned pointers, C strings in the
// heap, buffers that grow to what a call needs, and return codes as errors (the one map from codes to names). A
// plain script web/engine/worker.js loads with importScripts; it shares the worker's global scope (Module, GLUE,
// PyRunnerError).
"use strict";

// A wasm32 pointer is an unsigned 32-bit number, but a wasm function's i32 result reaches JS signed: past 2 GiB of
// heap (a 2.6 GB model) _malloc and the glue's pointer results come back negative, and a negative typed-array
// index or offset reads or writes nothing (or throws). Emscripten 3.1.6 converts in its own library code (FS.read,
// UTF8ToString: CAN_ADDRESS_2GB), not in what a module exports, so the pointer-returning exports JS calls are
// wrapped here, once, and every index below uses >>>.
const POINTER_RESULTS = ["_malloc", "_pr_load", "_pr_load_vocab", "_pr_metadata_json", "_pr_last_error", "_pr_logits"];
function unsignedPointers(module) {
  for (const name of POINTER_RESULTS) {
    const signed = module[name];
    module[name] = (...args) => signed(...args) >>> 0;
  }
}

/** The glue's message for its last failure (pr_last_error). */
function lastError() {
  return Module.UTF8ToString(Module._pr_last_error());
}

// What a glue return code means, by the kind of call that returned it: the one place where C's codes become the
// error names of protocol.js. `default`: any other failure of that kind of call.
const GLUE_ERRORS = {
  eval: {
    [GLUE.PR_ERR_CONTEXT_FULL]: "ContextOverflowError",
    [GLUE.PR_ERR_EMBEDDING_MODEL]: "GenerationNotSupportedError",
    [GLUE.PR_ERR_VOCAB_ONLY]: "GenerationNotSupportedError",
    default: "GenerationError",
  },
  engine: { default: "GenerationError" }, // next token, logits, tokenizer: llama.cpp threw or refused
  embed: {
    [GLUE.PR_ERR_CONTEXT_FULL]: "EmbeddingInputTooLongError",
    [GLUE.PR_ERR_NO_POOLING]: "EmbeddingNotSupportedError",
    [GLUE.PR_ERR_VOCAB_ONLY]: "EmbeddingNotSupportedError",
    default: "EmbeddingError",
  },
  rerank: {
    [GLUE.PR_ERR_CONTEXT_FULL]: "EmbeddingInputTooLongError",
    [GLUE.PR_ERR_NOT_RERANKER]: "RerankNotSupportedError",
    [GLUE.PR_ERR_VOCAB_ONLY]: "RerankNotSupportedError",
    default: "EmbeddingError",
  },
  state_save: { [GLUE.PR_ERR_VOCAB_ONLY]: "GenerationNotSupportedError", default: "StateError" },
  state_load: {
    [GLUE.PR_ERR_STATE]: "StateMismatchError", // llama.cpp refused it: another model's shapes or KV cache types
    [GLUE.PR_ERR_CONTEXT_FULL]: "StateMismatchError", // more tokens than this context holds
    [GLUE.PR_ERR_EMBEDDING_MODEL]: "GenerationNotSupportedError",
    [GLUE.PR_ERR_VOCAB_ONLY]: "GenerationNotSupportedError",
    default: "StateError",
  },
  template: { [GLUE.PR_ERR_TEMPLATE]: "ChatTemplateError", default: "GenerationError" },
  sampler: { default: "InvalidParameterError" },
};

/** The error for return code rc of a glue call of that kind, with the glue's own message. */
function glueError(kind, rc, prefix = "") {
  const names = GLUE_ERRORS[kind];
  const name = Object.hasOwn(names, rc) ? names[rc] : names.default;
  return new PyRunnerError(name, prefix + lastError());
}

/**
 * Call a glue function that writes into the buffer it is given: call(buf, capacity) returns the count written
 * (units of unitBytes), or minus the capacity it needs, as llama.cpp's own tokenize/detokenize do; then again with
 * that capacity. `failures`: the return codes that are errors, not sizes. Returns a copy of what was written.
 */
function callGrowing(capacity, unitBytes, call, kind, failures = [GLUE.PR_ERR_EXCEPTION]) {
  for (;;) {
    const buf = Module._malloc(Math.max(1, capacity) * unitBytes);
    let n;
    try {
      n = call(buf, capacity);
      if (n >= 0) return Module.HEAPU8.slice(buf, buf + n * unitBytes); // a copy: the heap may grow and move
    } finally {
      Module._free(buf);
    }
    if (failures.includes(n)) throw glueError(kind, n);
    capacity = -n;
  }
}

function allocString(text) {
  const size = Module.lengthBytesUTF8(text) + 1;
  const ptr = Module._malloc(size);
  Module.stringToUTF8(text, ptr, size);
  return ptr;
}

/** Token ids of text (Int32Array). Its byte length goes along: a NUL inside the text is a character, as natively. */
function tokenize(text, addSpecial, parseSpecial) {
  const textPtr = allocString(text);
  const textLength = Module.lengthBytesUTF8(text);
  try {
    const call = (out, capacity) => Module._pr_tokenize(session, textPtr, textLength, addSpecial ? 1 : 0, parseSpecial ? 1 : 0, out, capacity);
    return new Int32Array(callGrowing(textLength + 8, 4, call, "engine").buffer);
  } finally {
    Module._free(textPtr);
  }
}

/** The bytes of token ids (llama_detokenize); ids: an Int32Array. */
function detokenize(ids, removeSpecial, unparseSpecial) {
  const tokensPtr = Module._malloc(Math.max(1, ids.length) * 4);
  Module.HEAP32.set(ids, tokensPtr >>> 2);
  try {
    const call = (buf, capacity) => Module._pr_detokenize(session, tokensPtr, ids.length, buf, capacity, removeSpecial ? 1 : 0, unparseSpecial ? 1 : 0);
    return callGrowing(ids.length * 16 + 64, 1, call, "engine");
  } finally {
    Module._free(tokensPtr);
  }
}

/** A generated token's piece, special tokens rendered (pr_token_to_piece), into the worker's one piece buffer. */
function tokenPiece(token) {
  const n = Module._pr_token_to_piece(session, token, pieceBuf, PIECE_BUF_SIZE);
  if (n === GLUE.PR_ERR_EXCEPTION) throw glueError("engine", n);
  return Module.HEAPU8.slice(pieceBuf, pieceBuf + Math.max(0, n)); // a copy: the heap may grow and move
}
