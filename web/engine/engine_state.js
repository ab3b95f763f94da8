// py_runner engine state: the saved-state requests (state_save, state_load) and the sessions stored in the browser
// (session_save, session_load, session_list, session_delete; web/shared/session_store.js), each a handler of
// web/engine/worker.js's table. A plain script the worker loads with importScripts; it shares the worker's global
// scope (Module, session, GLUE, PyRunnerError, loadedModel) and engine_calls.js's helpers. py_runner/_state.py says
// what a state holds and why.
"use strict";

// The keys of a model's identity (engine_load.js sets loadedModel) that must be equal for a state to be restored;
// sha256 and etag are compared where both sides know them.
const IDENTITY_KEYS = ["source", "size", "n_ctx", "type_k", "type_v"];
const IDENTITY_IF_KNOWN = ["sha256", "etag"];

/** Why a state saved with model `saved` cannot go into the loaded one, or null when it can. */
function identityMismatch(saved) {
  if (!saved || typeof saved !== "object") return "the state names no model";
  const differs = (key) => `its ${key} is ${JSON.stringify(saved[key] ?? null)}, the loaded model's ${JSON.stringify(loadedModel[key] ?? null)}`;
  for (const key of IDENTITY_KEYS) {
    if (saved[key] !== loadedModel[key]) return differs(key);
  }
  for (const key of IDENTITY_IF_KNOWN) {
    if (saved[key] && loadedModel[key] && saved[key] !== loadedModel[key]) return differs(key);
  }
  return null;
}

/** The tokens the KV cache holds (Int32Array) and that cache's state (Uint8Array), copied out of the heap. */
function saveEngineState() {
  requireSession();
  const tokens = new Int32Array(callGrowing(1024, 4, (buf, cap) => Module._pr_state_tokens(session, buf, cap), "state_save").buffer);
  const size = Module._pr_state_size(session);
  if (size < 0) throw glueError("state_save", size);
  const buf = Module._malloc(Math.max(1, size));
  try {
    const written = Module._pr_state_save(session, buf, size);
    if (written < 0) throw glueError("state_save", written);
    return { tokens, state: Module.HEAPU8.slice(buf, buf + written) }; // a copy: the heap may grow and move
  } finally {
    Module._free(buf);
  }
}

/** Restore tokens + state saved with model `saved` (an identity); StateMismatchError when it is another's. */
function loadEngineState(saved, tokens, state) {
  requireSession();
  const why = identityMismatch(saved);
  if (why) throw new PyRunnerError("StateMismatchError", `the state was saved with another model or context: ${why}`);
  const tokensPtr = Module._malloc(Math.max(1, tokens.length) * 4);
  const statePtr = Module._malloc(Math.max(1, state.length));
  try {
    Module.HEAP32.set(tokens, tokensPtr >>> 2);
    Module.HEAPU8.set(state, statePtr);
    const rc = Module._pr_state_load(session, statePtr, state.length, tokensPtr, tokens.length);
    if (rc !== 0) throw glueError("state_load", rc);
  } finally {
    Module._free(tokensPtr);
    Module._free(statePtr);
  }
}

function sessionError(name) {
  return new PyRunnerError("SessionNotFoundError", `no session named ${JSON.stringify(name)} is stored in this browser`);
}

const STATE_HANDLERS = {
  // the tokens the KV cache holds, without the state's bytes (llama-cpp-python's n_tokens / input_ids)
  state_tokens: () => {
    requireSession();
    const read = (buf, cap) => Module._pr_state_tokens(session, buf, cap);
    return { tokens: Array.from(new Int32Array(callGrowing(1024, 4, read, "state_save").buffer)) };
  },
  state_save: () => {
    const { tokens, state } = saveEngineState();
    return { tokens: Array.from(tokens), state, model: { ...loadedModel } };
  },
  state_load: (msg) => {
    loadEngineState(msg.model, Int32Array.from(msg.tokens), msg.state);
    return { tokens: msg.tokens.length };
  },
  session_save: async (msg) => {
    const { tokens, state } = saveEngineState();
    return self.PyRunnerSessionStore.save(msg.name, { ...loadedModel }, tokens, state);
  },
  session_load: async (msg) => {
    requireSession();
    const entry = await self.PyRunnerSessionStore.load(msg.name);
    if (!entry) throw sessionError(msg.name);
    loadEngineState(entry.meta.model, entry.tokens, entry.state);
    return entry.meta;
  },
  session_list: () => self.PyRunnerSessionStore.list(),
  session_delete: (msg) => self.PyRunnerSessionStore.remove(msg.name),
};
