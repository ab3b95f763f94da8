// py_runner engine worker: hosts the Emscripten build of llama.cpp + wasm/glue_*.cpp (st or mt) and answers the
// bridge's requests {id, type, ...} with {id, type: "progress" | "token" | "result" | "error", ...}.
// A classic worker, because Emscripten 3.1.x pthread workers load the main script with importScripts.
"use strict";

// protocol.js: the requests, error names, glue codes, defaults. Then hashing, the download loop and the OPFS
// cache (shared with the page's bridge); a URL's bytes for a load (model_fetch.js); how the engine reads a model
// file (engine_files.js); what calling the glue takes (engine_calls.js); the handlers: load (engine_load.js),
// generate, embed, rerank, logits, tokenizer, chat (engine_text.js), saved states and sessions (engine_state.js,
// stored by session_store.js).
// Started from a blob: URL (the engine installed inside the wheel: py_runner/_transport/installed.py), the worker
// is told each script's own blob: URL first, since relative paths resolve against nothing there.
const scriptUrl = (path) => (self.__pyRunnerScriptUrls && self.__pyRunnerScriptUrls[path]) || path;
importScripts(scriptUrl("../shared/protocol.js"));
const P = self.PyRunnerProtocol;
const { PyRunnerError, glue: GLUE, defaults: DEFAULTS } = P; // before the scripts below, which use them
importScripts(...["../shared/sha256.js", "../shared/download.js", "../shared/model_cache.js", "../shared/session_store.js",
  "./model_fetch.js", "./engine_files.js", "./engine_calls.js", "./engine_load.js", "./engine_text.js",
  "./engine_state.js"].map(scriptUrl));

const MODEL_DIR = "/models";
const PROGRESS_INTERVAL_MS = 100;
const PIECE_BUF_SIZE = 256;

// The engine's state: the module, the loaded model, and whether llama.cpp aborted (the module is then unusable).
let Module = null;
let build = null;
let maxThreads = 1;
let engineDead = false;
let session = 0; // pr_session* of the loaded model, 0 when none
// The loaded model's identity, which a saved state must match (engine_state.js): {source, size, sha256, etag, n_ctx,
// type_k, type_v}; null when none.
let loadedModel = null;
let sessionThreads = 1; // threads the loaded model's context computes with
let pieceBuf = 0; // scratch buffer for pr_token_to_piece

const running = new Map(); // request id -> {aborted: bool, controller?: AbortController}
let chain = Promise.resolve(); // requests run one after another; "abort" bypasses the chain

self.onmessage = (event) => {
  const msg = event.data;
  if (msg.type === "abort") {
    const state = running.get(msg.target);
    if (state) {
      state.aborted = true;
      if (state.controller) state.controller.abort();
    }
    return;
  }
  const state = { aborted: false, controller: null };
  running.set(msg.id, state);
  chain = chain.then(() => handle(msg, state)).finally(() => running.delete(msg.id));
};

// One handler per request of protocol.js (tests/unit/test_protocol.py checks that they are the same): the engine's
// own here, the text requests from engine_text.js's table (a new one is added there, and declared in protocol.js),
// the saved states' from engine_state.js's.
const HANDLERS = {
  init,
  load,
  ...TEXT_HANDLERS,
  ...STATE_HANDLERS,
  cache_list: () => self.PyRunnerModelCache.list(),
  cache_delete: (msg) => self.PyRunnerModelCache.remove(msg.url),
  cache_clear: () => self.PyRunnerModelCache.clear(),
  cache_usage: cacheUsage,
};

/** The cached models' bytes, and the origin's usage and quota as navigator.storage.estimate() says them. */
async function cacheUsage() {
  const entries = await self.PyRunnerModelCache.list();
  const estimate = navigator.storage && navigator.storage.estimate ? await navigator.storage.estimate() : {};
  const models = entries.reduce((sum, entry) => sum + (entry.size || 0), 0);
  return { models, usage: estimate.usage ?? null, quota: estimate.quota ?? null };
}

async function handle(msg, state) {
  const reply = (fields, transfer) => self.postMessage({ id: msg.id, ...fields }, transfer || []);
  try {
    const handler = Object.hasOwn(HANDLERS, msg.type) ? HANDLERS[msg.type] : null;
    if (!handler) throw new PyRunnerError("BridgeError", `unknown request type ${msg.type}`);
    const value = await handler(msg, state, reply);
    reply({ type: "result", value });
  } catch (err) {
    if (isEngineAbort(err)) {
      // llama.cpp hit abort() (e.g. an allocation it cannot survive): the module's state is gone for good.
      engineDead = true;
      // abort()'s reason is in the engine's last words; a trap's or a stack overflow's in the error itself
      const cause = (!STACK_OVERFLOW.test(String(err.message)) && lastEngineError()) || String(err.message || err);
      const name = P.isOutOfMemory(cause) ? "EngineOutOfMemoryError" : "EngineCrashedError";
      const stage = msg.type === "load" ? "loading" : msg.type;
      reply({ type: "error", ...PyRunnerError.fieldsOf(new PyRunnerError(name, `the engine aborted: ${cause}`, { stage })) });
      return;
    }
    reply({ type: "error", ...PyRunnerError.fieldsOf(err) });
  }
}

// A trap, llama.cpp's abort(), or the browser's stack limit hit inside the engine (input nested deeper than any
// check caught): a stack overflow unwinds through C++ frames without running them to the end and leaves the
// module's own stack pointer where it was, so that module is no safer to use than after an abort.
const STACK_OVERFLOW = /Maximum call stack size exceeded|too much recursion/i; // Chromium and WebKit; Firefox

function isEngineAbort(err) {
  const message = String((err && err.message) || "");
  return err instanceof WebAssembly.RuntimeError || /^Aborted\(/.test(message) || STACK_OVERFLOW.test(message);
}

const recentStderr = [];

function lastEngineError() {
  let message = "";
  try {
    message = lastError();
  } catch (_) {
    // the module may be too broken to answer
  }
  return [message, ...recentStderr].filter(Boolean).join(" / ");
}

// --- init: load the Emscripten module ------------------------------------------------------------------------
async function init(msg, state, reply) {
  if (Module) return { build, threads: maxThreads };
  importScripts(msg.moduleUrl);
  const moduleUrl = new URL(msg.moduleUrl, self.location.href).href;
  // The mt build starts its pthread pool inside the factory call, with one blocking `new Worker()` each. Firefox
  // can stall such a nested `new Worker()` for good (a controlled page under WebDriver BiDi): "spawning" before
  // and "spawned" after it let the bridge see that and start a fresh engine worker.
  reply({ type: "progress", stage: "spawning" });
  const created = self.createPyRunnerModule({
    // the build's other files beside its script, or where the init request says (a blob: URL has no "beside")
    locateFile: (path) => (msg.files && msg.files[path]) || new URL(path, moduleUrl).href,
    mainScriptUrlOrBlob: moduleUrl, // pthread workers must load pr_glue.js, not this worker script
    print: (text) => console.log(text),
    printErr: (text) => {
      recentStderr.push(text); // the engine's last words before an abort() explain it
      if (recentStderr.length > 4) recentStderr.shift();
      console.warn(text);
    },
  });
  reply({ type: "progress", stage: "spawned" });
  Module = await created;
  unsignedPointers(Module);
  build = msg.build;
  maxThreads = build === "mt" ? Math.max(1, Math.min(msg.threads || 1, P.pthread_pool_size)) : 1;
  Module._pr_init();
  pieceBuf = Module._malloc(PIECE_BUF_SIZE);
  Module.FS.mkdir(MODEL_DIR);
  return { build, threads: maxThreads };
}

function requireModule() {
  if (!Module) throw new PyRunnerError("BridgeError", "the engine is not initialised");
  if (engineDead) throw new PyRunnerError("EngineCrashedError", "the engine aborted earlier; start a new runner");
}

function requireSession() {
  requireModule();
  if (!session) throw new PyRunnerError("ModelNotLoadedError", "no model is loaded");
}

function threadsFor(requested) {
  // build_wasm.sh starts pthread_pool_size workers: ggml must never wait for a pthread worker that is not there
  return build === "mt" ? Math.max(1, Math.min(requested || maxThreads, P.pthread_pool_size)) : 1;
}

// --- helpers -------------------------------------------------------------------------------------------------
function freeSession() {
  if (session) {
    Module._pr_free(session);
    session = 0;
  }
  loadedModel = null;
  unmountModels();
}

const channel = new MessageChannel();
const waiting = [];
channel.port1.onmessage = () => waiting.shift()();
function nextTask() {
  // A macrotask without setTimeout's 4 ms clamp.
  return new Promise((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(0);
  });
}
