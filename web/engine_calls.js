// py_runner engine calls: what calling the glue (wasm/glue.h) from JS takes: unsigned pointers, C strings in the
// heap, return codes as errors. A plain script web/worker.js loads with importScripts; it shares the worker's
// global scope (Module, GLUE, PyRunnerError).
"use strict";

// A wasm32 pointer is an unsigned 32-bit number, but a wasm function's i32 result reaches JS signed: past 2 GiB of
// heap (a 2.6 GB model) _malloc and the glue's pointer results come back negative, and a negative typed-array
// index or offset reads or writes nothing (or throws). Emscripten 3.1.6 converts in its own library code (FS.read,
// UTF8ToString: CAN_ADDRESS_2GB), not in what a module exports, so the pointer-returning exports JS calls are
// wrapped here, once, and every index below uses >>>.
const POINTER_RESULTS = ["_malloc", "_pr_load", "_pr_metadata_json", "_pr_last_error", "_pr_logits"];
function unsignedPointers(module) {
  for (const name of POINTER_RESULTS) {
    const signed = module[name];
    module[name] = (...args) => signed(...args) >>> 0;
  }
}

// pr_eval_prompt's failure as the error Python expects.
function evalError(rc) {
  const name =
    rc === GLUE.PR_ERR_CONTEXT_FULL ? "ContextOverflowError" : rc === GLUE.PR_ERR_EMBEDDING_MODEL ? "GenerationNotSupportedError" : "GenerationError";
  return new PyRunnerError(name, Module.UTF8ToString(Module._pr_last_error()));
}

function throwIfEngineThrew(rc) {
  if (rc === GLUE.PR_ERR_EXCEPTION) throw new PyRunnerError("GenerationError", Module.UTF8ToString(Module._pr_last_error()));
}

function allocString(text) {
  const size = Module.lengthBytesUTF8(text) + 1;
  const ptr = Module._malloc(size);
  Module.stringToUTF8(text, ptr, size);
  return ptr;
}
