// py_runner model fetch: a model URL's bytes for the engine, from the model cache (or into it), or with the cache
// off into a scratch file (or memory). A plain script web/engine/worker.js loads with importScripts; it shares the
// worker's global scope (P, PyRunnerError) and uses self.PyRunnerModelCache and self.PyRunnerDownload.
"use strict";

// Run body holding the Web Lock of url's cache entry (shared by every tab of the origin). Waiting for it can be
// aborted like the rest of a load. Browsers without Web Locks run body directly.
async function withEntryLock(url, state, body) {
  if (!self.navigator || !navigator.locks) return body();
  const waiting = new AbortController();
  state.controller = waiting;
  try {
    return await navigator.locks.request(P.opfs.dir + ":" + (await P.cacheKey(url)), { signal: waiting.signal }, () => {
      if (state.controller === waiting) state.controller = null;
      return body();
    });
  } catch (err) {
    if (state.aborted) throw new PyRunnerError("AbortError", "loading was aborted", { stage: "cache" });
    throw err;
  } finally {
    if (state.controller === waiting) state.controller = null;
  }
}

const NO_CACHE_NOTICE =
  "model cache off: this browser offers neither an Origin Private File System with sync access nor Cache Storage " +
  "here; the model was downloaded for this page only";

// One model file from a URL: from the cache (or into it), or into memory with cache off (or no cache backend).
async function fetchUrl(url, msg, cacheBackend, state, progress, minSize) {
  if (cacheBackend) {
    // Cache on: a complete entry is mounted with no network request at all; else the download streams into it.
    // One tab (worker) at a time looks up and fills a URL's entry: another tab loading the same URL waits for it,
    // then finds the entry complete, instead of failing to open a file the first one is writing.
    progress("cache", 0, null, true);
    return withEntryLock(url, state, async () => {
      let entry = await self.PyRunnerModelCache.lookup(url, state, progress, { sha256: msg.sha256 });
      const cacheHit = Boolean(entry);
      if (entry) progress("cache", entry.data.size, entry.data.size, true);
      if (state.aborted) throw new PyRunnerError("AbortError", "loading was aborted", { stage: "cache" });
      if (!entry) entry = await self.PyRunnerModelCache.download(url, state, progress, { sha256: msg.sha256, minSize });
      return {
        file: { name: entry.name, data: entry.data, handle: entry.handle, shared: entry.shared },
        cacheHit,
        sha256: entry.meta.sha256 || null,
        etag: entry.meta.etag || null,
        cachedAt: entry.meta.cached_at || null,
      };
    });
  }
  const file = await downloadUncached(url, state, progress, minSize);
  let sha256 = null;
  if (msg.sha256) {
    sha256 = await self.PyRunnerSha256.sha256File(file.data, state, progress);
    if (sha256 !== String(msg.sha256).toLowerCase()) {
      const message = `${url}: sha256 is ${sha256}, expected ${msg.sha256}`;
      throw new PyRunnerError("ModelIntegrityError", message, { stage: "verifying", url });
    }
  }
  return { file, cacheHit: false, sha256, etag: null, cachedAt: null };
}

// The cache off: a scratch file on disk (OPFS) that the load removes once the engine has read it, so the model is
// not held in memory twice (web/shared/model_cache.js "scratch files"); in memory where OPFS cannot be written, or is
// full: {name, data, release?}.
async function downloadUncached(url, state, progress, minSize) {
  const cache = self.PyRunnerModelCache;
  if (await cache.opfsWritable()) {
    try {
      return await cache.downloadScratch(url, state, progress, { minSize });
    } catch (err) {
      if (!cache.isQuota(err) || state.aborted) throw err;
      // no room on disk for this origin: memory is the one place left
    }
  }
  const sink = new self.PyRunnerDownload.MemorySink();
  await self.PyRunnerDownload.download(url, state, progress, sink, { minSize });
  return { name: P.fileNameOf(url), data: sink.blob() };
}
