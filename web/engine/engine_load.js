// py_runner engine load: the "load" request: a model's bytes fetched (a URL: model_fetch.js) or received (Files,
// Blobs), mounted read-only for llama.cpp (engine_files.js) and loaded into a session. A plain script web/engine/worker.js
// loads with importScripts; it shares the worker's global scope (Module, session, P, PyRunnerError, ...).
"use strict";

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
  let etag = null;
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
      etag = fetched.etag;
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
    // vocab_only (llama-cpp-python's): the tokenizer alone, no tensors read and no context made
    session = msg.vocab_only ? Module._pr_load_vocab(pathPtr) : Module._pr_load(
      pathPtr, nCtx, msg.n_batch || DEFAULTS.n_batch, threads, msg.pooling ?? GLUE.PR_POOLING_MODEL,
      msg.type_k ?? GLUE.PR_CACHE_TYPE_DEFAULT, msg.type_v ?? GLUE.PR_CACHE_TYPE_DEFAULT,
    );
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
    const cause = lastError();
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
  metadata.vocab_only = Boolean(msg.vocab_only); // a tokenizer alone: no context (n_ctx 0)
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
  // What a saved state must have been saved with (engine_state.js): the model's source (URLs, or the names of the
  // files given), bytes, digest and ETag where known, and the context's size and KV cache types.
  loadedModel = {
    source: msg.urls ? msg.urls.join(" ") : "file:" + metadata.file_names.join(" "),
    size: fileSize, sha256: sha256 || null, etag: etag || null,
    n_ctx: metadata.n_ctx, type_k: metadata.type_k, type_v: metadata.type_v,
  };
  if (msg.urls) {
    metadata.cache_backend = cacheBackend;
    metadata.download_store = downloadStore;
    // Asked for a cache the browser cannot give: the load went on without one, and says so (once, in Python).
    if (msg.cache !== false && !cacheBackend) metadata.cache_notice = NO_CACHE_NOTICE;
  }
  return metadata;
}
