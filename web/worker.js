// py_runner engine worker: hosts the Emscripten build of llama.cpp + wasm/glue.cpp (st or mt) and answers the
// bridge's requests {id, type, ...} with {id, type: "progress" | "token" | "result" | "error", ...}.
// A classic worker, because Emscripten 3.1.x pthread workers load the main script with importScripts.
"use strict";

// protocol.js: request kinds, error names, glue codes, defaults; then hashing, the download loop, the OPFS cache,
// a URL's bytes for a load (model_fetch.js), how the engine reads a model file (engine_files.js) and what calling
// the glue takes (engine_calls.js).
importScripts("./protocol.js", "./sha256.js", "./download.js", "./model_cache.js", "./model_fetch.js",
  "./engine_files.js", "./engine_calls.js");
const P = self.PyRunnerProtocol;
const { PyRunnerError, glue: GLUE, defaults: DEFAULTS } = P;

const MODEL_DIR = "/models";
const PROGRESS_INTERVAL_MS = 100;

let Module = null;
let build = null;
let maxThreads = 1;
let session = 0; // pr_session* of the loaded model, 0 when none
let sessionThreads = 1; // threads the loaded model's context computes with
let pieceBuf = 0; // scratch buffer for pr_token_to_piece
const PIECE_BUF_SIZE = 256;

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

// One handler per request kind of protocol.js (tests/unit/test_protocol.py checks that they are the same).
const HANDLERS = {
  init,
  load,
  generate,
  embed,
  logits,
  tokenize: tokenizeText,
  detokenize: detokenizeTokens,
  chat_format: chatFormat,
  chat_apply: (msg) => chatJson((buf, cap, strings) => Module._pr_chat_apply(session, strings[0], buf, cap), [msg.request]),
  chat_parse: (msg) =>
    chatJson((buf, cap, strings, lengths) => Module._pr_chat_parse(session, strings[0], strings[1], lengths[1], buf, cap), [msg.state, msg.text]),
  cache_list: () => self.PyRunnerModelCache.list(),
  cache_delete: (msg) => self.PyRunnerModelCache.remove(msg.url),
  cache_clear: () => self.PyRunnerModelCache.clear(),
};

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

let engineDead = false;

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
  let glueError = "";
  try {
    glueError = Module.UTF8ToString(Module._pr_last_error());
  } catch (_) {
    // the module may be too broken to answer
  }
  return [glueError, ...recentStderr].filter(Boolean).join(" / ");
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
    locateFile: (path) => new URL(path, moduleUrl).href,
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

function threadsFor(requested) {
  // build_wasm.sh starts pthread_pool_size workers: ggml must never wait for a pthread worker that is not there
  return build === "mt" ? Math.max(1, Math.min(requested || maxThreads, P.pthread_pool_size)) : 1;
}

// --- load: fetch or receive the model, mount it read-only, load it into llama.cpp ------------------------------
async function load(msg, state, reply) {
  const scratch = []; // release() of each scratch file the load downloaded (cache off): gone once it ends
  try {
    return await loadModel(msg, state, reply, scratch);
  } finally {
    for (const release of scratch) await release();
  }
}

async function loadModel(msg, state, reply, scratch) {
  requireModule();
  freeSession();
  let lastProgress = 0;
  const progress = (stage, loaded, total, force) => {
    const now = performance.now();
    if (force || now - lastProgress >= PROGRESS_INTERVAL_MS) {
      lastProgress = now;
      // An unknown total goes as undefined: Pyodide turns JS null into jsnull, not None.
      reply({ type: "progress", stage, loaded, total: total === null ? undefined : total });
    }
  };

  const startedAt = performance.now();
  let files; // [{name, data: Blob}]
  let cacheHit = false;
  let sha256 = null;
  let cachedAt = null;
  // Where a URL's bytes are kept: "opfs", "cache-storage", or null (no cache: asked for none, or none exists).
  const cacheBackend = msg.urls && msg.cache !== false ? await self.PyRunnerModelCache.backend() : null;
  if (msg.urls) {
    // One URL, or the shards of a split GGUF: progress counts over all of them (sizes from the header check).
    const sizes = msg.sizes || [];
    const grandTotal = sizes.length === msg.urls.length && sizes.every((n) => n > 0) ? sizes.reduce((a, b) => a + b, 0) : null;
    let before = 0;
    files = [];
    cacheHit = true;
    for (const url of msg.urls) {
      const shardProgress = (stage, loaded, total, force) =>
        progress(stage, before + (loaded || 0), grandTotal ?? (total == null ? null : before + total), force);
      // The GGUF header's size is the first file's (a split model's other shards have their own).
      const minSize = msg.urls.length === 1 ? msg.min_size || 0 : 0;
      const fetched = await fetchUrl(url, msg, cacheBackend, state, shardProgress, minSize);
      files.push(fetched.file);
      if (fetched.file.release) scratch.push(fetched.file.release);
      cacheHit = cacheHit && fetched.cacheHit;
      sha256 = fetched.sha256;
      cachedAt = fetched.cachedAt;
      before += fetched.file.data.size;
    }
  } else {
    files = msg.blobs.map((blob, i) => ({ name: blob.name || (i === 0 ? msg.name || "model.gguf" : `part-${i}.gguf`), data: blob }));
  }
  if (state.aborted) throw new PyRunnerError("AbortError", "loading was aborted", { stage: "downloading" });
  const fileSize = files.reduce((sum, f) => sum + f.data.size, 0);
  // Where a URL's download was kept while the engine reads it: the cache, a scratch file (cache off; removed
  // after the load), or memory (cache off where no scratch file could be written).
  const downloadStore = !msg.urls ? null : cacheBackend ? "cache" : scratch.length ? "scratch" : "memory";

  // WORKERFS reads slices of the Blob on demand: the bytes are not copied into an in-memory file system first.
  unmountModels();
  const WORKERFS = (Module.FS.filesystems && Module.FS.filesystems.WORKERFS) || Module.WORKERFS;
  installBlockReads(WORKERFS);
  Module.FS.mount(WORKERFS, { blobs: files }, MODEL_DIR);
  const path = `${MODEL_DIR}/${files[0].name}`;
  // A file on OPFS (a scratch file, a cache entry) is read through a sync access handle straight into the heap,
  // with no ArrayBuffer in between (FileReaderSync's buffers are collected late: +0.8x the model at peak). A cache
  // entry is opened read-only, which other tabs may do at once (Chromium); where the browser opens it exclusively
  // and another tab holds it, or cannot open it at all, the engine reads the File instead.
  const accesses = [];
  for (const file of files) {
    if (!file.handle) continue;
    try {
      const access = await file.handle.createSyncAccessHandle(file.shared ? { mode: "read-only" } : undefined);
      accesses.push(access);
      Module.FS.lookupPath(`${MODEL_DIR}/${file.name}`).node.access = access;
    } catch (_) {
      // not to be had: the engine reads the File instead
    }
  }

  progress("loading", 0, fileSize, true);
  Module.onLoadProgress = (fraction) => {
    progress("loading", Math.round(fraction * fileSize), fileSize, fraction >= 1);
    return !state.aborted;
  };
  const threads = threadsFor(msg.n_threads);
  const pathPtr = allocString(path);
  const engineStartedAt = performance.now();
  const heapBefore = Module.HEAPU8.length;
  Object.assign(readStats, { calls: 0, blob_reads: 0, ms: 0, failure: null });
  try {
    const nCtx = msg.n_ctx || DEFAULTS.n_ctx;
    session = Module._pr_load(pathPtr, nCtx, msg.n_batch || DEFAULTS.n_batch, threads, msg.pooling ?? GLUE.PR_POOLING_MODEL);
    sessionThreads = threads;
  } finally {
    Module._free(pathPtr);
    Module.onLoadProgress = null;
    accesses.forEach(closeQuietly);
    keptBlocks = []; // llama.cpp has copied every tensor into the heap: the file is not read again
  }
  if (!session) {
    unmountModels();
    if (state.aborted) throw new PyRunnerError("AbortError", "loading was aborted", { stage: "loading" });
    const cause = Module.UTF8ToString(Module._pr_last_error());
    if (readStats.failure) {
      const held = downloadStore === "memory" ? ` (the download was held in memory: the browser gave this site no room on disk for it; with free disk space it goes to disk)` : "";
      throw new PyRunnerError("ModelInitializationError", `the browser could not read the model file: ${readStats.failure}${held}`, { stage: "loading" });
    }
    throw new PyRunnerError(P.isOutOfMemory(cause) ? "EngineOutOfMemoryError" : "ModelInitializationError", cause, { stage: "loading" });
  }
  if (state.aborted) {
    // The abort arrived while the engine load (one synchronous call) ran: undo it.
    freeSession();
    throw new PyRunnerError("AbortError", "loading was aborted", { stage: "loading" });
  }
  const metadata = JSON.parse(Module.UTF8ToString(Module._pr_metadata_json(session)));
  metadata.file_name = files[0].name;
  metadata.file_names = files.map((f) => f.name);
  metadata.file_size = fileSize;
  metadata.threads = threads;
  metadata.wasm_heap_bytes = Module.HEAPU8.length; // weights + KV cache + compute buffers + allocator slack
  metadata.cache_hit = cacheHit;
  metadata.sha256 = sha256;
  // Where the load's time went: getting the bytes (download, cache lookup, checks), then llama.cpp's load.
  metadata.load_timings = {
    fetch_ms: engineStartedAt - startedAt,
    engine_ms: performance.now() - engineStartedAt,
    reads: readStats.calls, blob_reads: readStats.blob_reads, read_ms: readStats.ms, // of the engine's
  };
  metadata.wasm_heap_bytes_before_load = heapBefore;
  if (cacheHit) metadata.cached_at = cachedAt; // when the cached file was downloaded
  if (msg.urls) {
    metadata.cache_backend = cacheBackend;
    metadata.download_store = downloadStore;
    // Asked for a cache the browser cannot give: the load went on without one, and says so (once, in Python).
    if (msg.cache !== false && !cacheBackend) metadata.cache_notice = NO_CACHE_NOTICE;
  }
  return metadata;
}

// --- generate: tokenize, evaluate the prompt, stream tokens --------------------------------------------------
async function generate(msg, state, reply) {
  requireModule();
  if (!session) throw new PyRunnerError("GenerationError", "no model is loaded");
  if (msg.n_threads && threadsFor(msg.n_threads) !== sessionThreads) {
    sessionThreads = threadsFor(msg.n_threads);
    Module._pr_set_threads(session, sessionThreads);
  }
  const promptTokens = tokenize(msg.prompt, true, true);
  configureSampler(msg);

  const t0 = performance.now();
  const tokensPtr = Module._malloc(promptTokens.length * 4);
  Module.HEAP32.set(promptTokens, tokensPtr >>> 2);
  const rc = Module._pr_eval_prompt(session, tokensPtr, promptTokens.length);
  Module._free(tokensPtr);
  if (rc !== 0) throw evalError(rc);
  const t1 = performance.now();

  const tokens = [];
  let finishReason = "length";
  const nPredict = msg.n_predict ?? DEFAULTS.n_predict;
  while (tokens.length < nPredict) {
    if (state.aborted) {
      finishReason = "aborted";
      break;
    }
    const token = Module._pr_next_token(session);
    if (token === GLUE.PR_ERR_CONTEXT_FULL) {
      finishReason = "context_full";
      break;
    }
    if (token < 0) throw new PyRunnerError("GenerationError", Module.UTF8ToString(Module._pr_last_error()));
    if (Module._pr_is_eog(session, token)) {
      finishReason = "eos";
      break;
    }
    tokens.push(token);
    const piece = tokenPiece(token);
    reply({ type: "token", token, piece }, [piece.buffer]);
    await nextTask(); // lets an "abort" message in between two tokens
  }
  const t2 = performance.now();
  const reused = Module._pr_reused_tokens(session);
  return {
    tokens,
    prompt_tokens: promptTokens.length,
    prompt_tokens_reused: reused, // already in the KV cache from the previous call: not evaluated again
    prompt_tokens_evaluated: promptTokens.length - reused,
    finish_reason: finishReason,
    threads: sessionThreads,
    timings: { prompt_ms: t1 - t0, gen_ms: t2 - t1 },
  };
}

// --- embed: one pooled vector per text -----------------------------------------------------------------------
// Replies progress {stage: "embedding", loaded: texts done, total}; resolves with {embeddings: Float32Array of
// texts x n_embd (one transfer, no per-text copies), n_embd, n_tokens: [per text]}.
async function embed(msg, state, reply) {
  requireSession();
  const texts = Array.from(msg.texts);
  const nEmbd = Module._pr_n_embd(session);
  const limit = JSON.parse(Module.UTF8ToString(Module._pr_metadata_json(session))).n_batch; // one text per batch
  const out = new Float32Array(texts.length * nEmbd);
  const outPtr = Module._malloc(nEmbd * 4);
  const nTokens = [];
  let lastProgress = 0;
  try {
    for (let i = 0; i < texts.length; i++) {
      if (state.aborted) throw new PyRunnerError("EmbeddingAbortedError", `embedding was aborted after ${i} of ${texts.length} texts`);
      let tokens = tokenize(String(texts[i]), true, false);
      if (msg.truncate && tokens.length > limit) tokens = tokens.subarray(0, limit);
      const tokensPtr = Module._malloc(Math.max(1, tokens.length) * 4);
      Module.HEAP32.set(tokens, tokensPtr >>> 2);
      const n = Module._pr_embed(session, tokensPtr, tokens.length, msg.normalize === false ? 0 : 1, outPtr, nEmbd);
      Module._free(tokensPtr);
      if (n < 0) {
        const name =
          n === GLUE.PR_ERR_CONTEXT_FULL ? "EmbeddingInputTooLongError" : n === GLUE.PR_ERR_NO_POOLING ? "EmbeddingNotSupportedError" : "EmbeddingError";
        throw new PyRunnerError(name, `text ${i}: ${Module.UTF8ToString(Module._pr_last_error())}`);
      }
      out.set(new Float32Array(Module.HEAPU8.buffer, outPtr, nEmbd), i * nEmbd);
      nTokens.push(tokens.length);
      const now = performance.now();
      if (i + 1 === texts.length || now - lastProgress >= PROGRESS_INTERVAL_MS) {
        lastProgress = now;
        reply({ type: "progress", stage: "embedding", loaded: i + 1, total: texts.length });
      }
      if (texts.length > 1) await nextTask(); // lets an "abort" message in between two texts
    }
  } finally {
    Module._free(outPtr);
  }
  return { embeddings: out, n_embd: nEmbd, n_tokens: nTokens };
}

// --- logits: teacher-forced, for parity with native llama.cpp, perplexity and logprobs ------------------------
// The prompt is tokenized as generate does; then row i holds the raw logits that predict tokens[i] (after the prompt
// and tokens[0..i-1]), each computed by the same one-token decode as generation (the KV cache keeps the prefix).
// Resolves with {n_vocab, rows, logits: Float32Array (rows x n_vocab), one transfer}.
async function logits(msg, state) {
  requireSession();
  const prompt = tokenize(msg.prompt, true, true);
  const tokens = Int32Array.from(msg.tokens);
  const sequence = new Int32Array(prompt.length + tokens.length);
  sequence.set(prompt);
  sequence.set(tokens, prompt.length);
  const seqPtr = Module._malloc(Math.max(1, sequence.length) * 4);
  const nVocabPtr = Module._malloc(4);
  let out = null;
  try {
    Module.HEAP32.set(sequence, seqPtr >>> 2);
    for (let i = 0; i < tokens.length; i++) {
      if (state.aborted) throw new PyRunnerError("AbortError", `logits were aborted after ${i} of ${tokens.length} rows`);
      const rc = Module._pr_eval_prompt(session, seqPtr, prompt.length + i);
      if (rc !== 0) throw evalError(rc);
      const ptr = Module._pr_logits(session, nVocabPtr);
      const nVocab = Module.HEAP32[nVocabPtr >>> 2];
      if (!ptr) throw new PyRunnerError("GenerationError", Module.UTF8ToString(Module._pr_last_error()));
      out = out || new Float32Array(tokens.length * nVocab);
      out.set(new Float32Array(Module.HEAPU8.buffer, ptr, nVocab), i * nVocab);
    }
  } finally {
    Module._free(seqPtr);
    Module._free(nVocabPtr);
  }
  const nVocab = out ? out.length / tokens.length : 0;
  return { n_vocab: nVocab, rows: tokens.length, logits: out || new Float32Array(0) };
}

// The sampler chain for one generate request (glue: pr_sampler_configure). ignore_eos bans every end-of-generation
// token with a -inf logit bias, as llama.cpp's own tools do.
function configureSampler(msg) {
  const bias = new Map((msg.logit_bias || []).map(([token, value]) => [token, value]));
  if (msg.ignore_eos) for (const token of eogTokens()) bias.set(token, -Infinity);
  const n = bias.size;
  const tokensPtr = Module._malloc(Math.max(1, n) * 4);
  const valuesPtr = Module._malloc(Math.max(1, n) * 4);
  const values = new Float32Array(Module.HEAPU8.buffer, valuesPtr, n); // HEAPU8 is exported by every Emscripten
  let i = 0;
  for (const [token, value] of bias) {
    Module.HEAP32[(tokensPtr >>> 2) + i] = token;
    values[i] = value;
    i += 1;
  }
  // llama.cpp's grammar parser takes a C string: a NUL would end the grammar early, silently.
  if (msg.grammar && msg.grammar.includes("\0")) throw new PyRunnerError("InvalidParameterError", "grammar: holds a NUL character");
  const grammarPtr = msg.grammar ? allocString(msg.grammar) : 0;
  // llama.cpp's chat-layer triggers make the grammar lazy: enforced from the first trigger in the output
  const triggersPtr = msg.grammar && msg.grammar_triggers ? allocString(JSON.stringify(msg.grammar_triggers)) : 0;
  // a chat grammar enforced from the start takes what the template already wrote of the reply as accepted
  const prefillPtr = msg.grammar && !msg.grammar_triggers && msg.grammar_prefill ? allocString(msg.grammar_prefill) : 0;
  try {
    // protocol.js "sampler" lists the knobs in pr_sampler_configure's order (tests/unit/test_protocol.py checks it)
    const knobs = P.sampler.map((name) => msg[name] ?? DEFAULTS[name]);
    const rc = Module._pr_sampler_configure(session, ...knobs, tokensPtr, valuesPtr, n, grammarPtr, triggersPtr, prefillPtr);
    if (rc !== 0) throw new PyRunnerError("InvalidParameterError", Module.UTF8ToString(Module._pr_last_error()));
  } finally {
    Module._free(tokensPtr);
    Module._free(valuesPtr);
    if (grammarPtr) Module._free(grammarPtr);
    if (triggersPtr) Module._free(triggersPtr);
    if (prefillPtr) Module._free(prefillPtr);
  }
}

let eogCache = null; // [session, token ids]
function eogTokens() {
  if (!eogCache || eogCache[0] !== session) {
    const ids = [];
    const nVocab = JSON.parse(Module.UTF8ToString(Module._pr_metadata_json(session))).n_vocab;
    for (let t = 0; t < nVocab; t++) if (Module._pr_is_eog(session, t)) ids.push(t);
    eogCache = [session, ids];
  }
  return eogCache[1];
}

// --- tokenizer and chat template -----------------------------------------------------------------------------
function requireSession() {
  requireModule();
  if (!session) throw new PyRunnerError("ModelNotLoadedError", "no model is loaded");
}

async function tokenizeText(msg) {
  requireSession();
  return { tokens: Array.from(tokenize(msg.text, msg.add_special !== false, Boolean(msg.parse_special))) };
}

async function detokenizeTokens(msg) {
  requireSession();
  const tokens = Int32Array.from(msg.tokens);
  const tokensPtr = Module._malloc(Math.max(1, tokens.length) * 4);
  Module.HEAP32.set(tokens, tokensPtr >>> 2);
  let capacity = tokens.length * 16 + 64;
  try {
    for (;;) {
      const buf = Module._malloc(capacity);
      const n = Module._pr_detokenize(session, tokensPtr, tokens.length, buf, capacity, msg.remove_special ? 1 : 0, msg.unparse_special ? 1 : 0);
      const bytes = n >= 0 ? Module.HEAPU8.slice(buf, buf + n) : null;
      Module._free(buf);
      if (bytes) return { bytes };
      throwIfEngineThrew(n);
      capacity = -n;
    }
  } finally {
    Module._free(tokensPtr);
  }
}

async function chatFormat(msg) {
  requireSession();
  const strings = [];
  const alloc = (text) => {
    const ptr = allocString(text);
    strings.push(ptr);
    return ptr;
  };
  const count = msg.messages.length;
  const rolesPtr = Module._malloc(Math.max(1, count) * 4);
  const contentsPtr = Module._malloc(Math.max(1, count) * 4);
  msg.messages.forEach((m, i) => {
    Module.HEAP32[(rolesPtr >>> 2) + i] = alloc(String(m.role));
    Module.HEAP32[(contentsPtr >>> 2) + i] = alloc(String(m.content));
  });
  const templatePtr = msg.template ? alloc(msg.template) : 0;
  const total = msg.messages.reduce((sum, m) => sum + Module.lengthBytesUTF8(String(m.content)), 0);
  let capacity = 2 * total + 1024;
  try {
    for (;;) {
      const buf = Module._malloc(capacity);
      const n = Module._pr_chat_format(session, templatePtr, rolesPtr, contentsPtr, count, msg.add_assistant ? 1 : 0, buf, capacity);
      const text = n >= 0 ? new TextDecoder().decode(Module.HEAPU8.slice(buf, buf + n)) : null;
      Module._free(buf);
      if (text !== null) return { prompt: text };
      if (n === GLUE.PR_ERR_TEMPLATE) throw new PyRunnerError("ChatTemplateError", Module.UTF8ToString(Module._pr_last_error()));
      capacity = -n;
    }
  } finally {
    strings.forEach((ptr) => Module._free(ptr));
    Module._free(rolesPtr);
    Module._free(contentsPtr);
  }
}

// llama.cpp's chat layer (glue pr_chat_apply / pr_chat_parse): JSON strings in, a JSON string out, as {json}.
async function chatJson(call, texts) {
  requireSession();
  const strings = texts.map((text) => allocString(String(text)));
  const lengths = texts.map((text) => Module.lengthBytesUTF8(String(text))); // a NUL inside is text, not the end
  let capacity = texts.reduce((sum, text) => sum + 2 * String(text).length, 0) + 4096;
  try {
    for (;;) {
      const buf = Module._malloc(capacity);
      const n = call(buf, capacity, strings, lengths);
      const text = n >= 0 ? new TextDecoder().decode(Module.HEAPU8.slice(buf, buf + n)) : null;
      Module._free(buf);
      if (text !== null) return { json: text };
      if (n === GLUE.PR_ERR_TEMPLATE) throw new PyRunnerError("ChatTemplateError", Module.UTF8ToString(Module._pr_last_error()));
      capacity = -n;
    }
  } finally {
    strings.forEach((ptr) => Module._free(ptr));
  }
}

// --- helpers -------------------------------------------------------------------------------------------------
function freeSession() {
  if (session) {
    Module._pr_free(session);
    session = 0;
  }
  unmountModels();
}

function tokenize(text, addSpecial, parseSpecial) {
  const textPtr = allocString(text);
  const textLength = Module.lengthBytesUTF8(text); // passed on: a NUL inside the text is a character, as natively
  let capacity = textLength + 8;
  try {
    for (;;) {
      const outPtr = Module._malloc(capacity * 4);
      const n = Module._pr_tokenize(session, textPtr, textLength, addSpecial ? 1 : 0, parseSpecial ? 1 : 0, outPtr, capacity);
      const ids = n > 0 ? Int32Array.from(Module.HEAP32.subarray(outPtr >>> 2, (outPtr >>> 2) + n)) : new Int32Array(0);
      Module._free(outPtr);
      if (n >= 0) return ids;
      throwIfEngineThrew(n);
      capacity = -n;
    }
  } finally {
    Module._free(textPtr);
  }
}

function tokenPiece(token) {
  const n = Module._pr_token_to_piece(session, token, pieceBuf, PIECE_BUF_SIZE);
  throwIfEngineThrew(n);
  return Module.HEAPU8.slice(pieceBuf, pieceBuf + Math.max(0, n)); // a copy: the heap may grow and move
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
