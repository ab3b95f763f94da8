// py_runner model cache: models loaded from URLs, kept in the browser, in one of two backends chosen by feature
// detection (never by browser name). A plain script, loaded by web/engine/worker.js with importScripts (and by
// web/page/bridge.js as a side-effect import, for peek()) after protocol.js, sha256.js and download.js; it defines
// self.PyRunnerModelCache.
//
// 1. The Origin Private File System with a FileSystemSyncAccessHandle (Chromium, Firefox), preferred: the handle
//    writes at an offset (an interrupted download resumes with an HTTP Range request and appends),
//    `fileHandle.getFile()` is a disk-backed File that WORKERFS mounts without reading the bytes into JS, and a
//    full quota shows up as a QuotaExceededError on the write that hits it.
//    Layout (protocol.js `opfs`): <OPFS root>/py_runner-models/<key>.gguf (the bytes) + <key>.json
//    {url, size, etag, last_modified, complete, cached_at, sha256}, key = protocol.js cacheKey(absolute URL).
//    An entry is usable only when its json says complete and the file has exactly `size` bytes.
// 2. Cache Storage, where there is no OPFS sync handle (WebKit: no `navigator.storage` at all in WebKitGTK 2.50):
//    the same metadata rides in a header of the stored Response, keyed by the model's URL. The same guarantees
//    but one: a response is stored whole, so an interrupted download starts over (nothing partial is kept).
//    The sha256 is verified before the put; a full quota rejects the put (CacheQuotaError).
// With neither, a load goes on without a cache (web/engine/worker.js says so once, in the load's metadata).
self.PyRunnerModelCache = (() => {
  const P = () => self.PyRunnerProtocol;
  const error = (name, message, stage, url) => new (P().PyRunnerError)(name, message, { stage, url });
  const dataName = (key) => key + P().opfs.data_suffix;
  const metaName = (key) => key + P().opfs.meta_suffix;

  async function directory(create = true) {
    if (!hasOpfs()) {
      throw error("BridgeError", "this browser has no Origin Private File System (OPFS)", "cache");
    }
    const root = await navigator.storage.getDirectory();
    return root.getDirectoryHandle(P().opfs.dir, { create });
  }

  async function fileHandle(dir, name, create) {
    try {
      return await dir.getFileHandle(name, { create: Boolean(create) });
    } catch (err) {
      if (!create && err && (err.name === "NotFoundError" || err.name === "TypeMismatchError")) return null;
      throw err;
    }
  }

  async function readMeta(dir, key) {
    const handle = await fileHandle(dir, metaName(key), false);
    if (!handle) return null;
    try {
      return JSON.parse(await (await handle.getFile()).text());
    } catch (_) {
      return null; // unreadable or half-written: treated as no entry
    }
  }

  async function writeMeta(dir, key, meta) {
    const handle = await fileHandle(dir, metaName(key), true);
    const access = await handle.createSyncAccessHandle();
    try {
      const bytes = new TextEncoder().encode(JSON.stringify(meta));
      access.truncate(0);
      writeAll(access, bytes, 0);
      access.flush();
    } finally {
      access.close();
    }
  }

  async function removeEntry(dir, key) {
    let removed = false;
    for (const name of [dataName(key), metaName(key)]) {
      try {
        await dir.removeEntry(name);
        removed = true;
      } catch (err) {
        if (!err || err.name !== "NotFoundError") throw err;
      }
    }
    return removed;
  }

  /**
   * access.write until every byte is written. Chromium reports a full quota either with a QuotaExceededError or
   * (seen in Chromium 13x) by returning base::File's error code as an unsigned count (-8, FILE_ERROR_NO_SPACE, as
   * 4294967288) after a partial write: any count outside 1..length is taken as "no space".
   */
  function writeAll(access, bytes, at) {
    let written = 0;
    while (written < bytes.byteLength) {
      const n = access.write(bytes.subarray(written), { at: at + written });
      if (!(n > 0 && n <= bytes.byteLength - written)) {
        throw new DOMException(`the file system wrote no bytes (write returned ${n})`, "QuotaExceededError");
      }
      written += n;
    }
  }

  // A full quota, as each browser words it: QuotaExceededError (the standard), or Firefox's Cache Storage
  // rejecting a put with NS_ERROR_FILE_NO_DEVICE_SPACE.
  function isQuota(err) {
    const said = `${(err && err.name) || ""} ${(err && err.message) || ""}`;
    return Boolean(err) && (err.name === "QuotaExceededError" || /quota|NO_DEVICE_SPACE/i.test(said));
  }

  /**
   * A complete entry for url as {name, data: File, handle, shared, meta}, or null. No network access. With options.sha256 an entry
   * whose digest is unknown is hashed now; one with another digest is deleted (null: download it again).
   */
  async function lookup(url, state, progress, options = {}) {
    const dir = await directory();
    const key = await P().cacheKey(url);
    const meta = await readMeta(dir, key);
    if (!meta || !meta.complete) return null;
    const handle = await fileHandle(dir, dataName(key), false);
    const file = handle && (await handle.getFile());
    if (!file || file.size !== meta.size) {
      await removeEntry(dir, key); // the bytes do not match what the entry says: not usable
      return null;
    }
    const wanted = options.sha256 ? String(options.sha256).toLowerCase() : null;
    if (wanted && !meta.sha256) {
      meta.sha256 = await self.PyRunnerSha256.sha256File(file, state, progress);
      await writeMeta(dir, key, meta);
    }
    if (wanted && meta.sha256 !== wanted) {
      await removeEntry(dir, key);
      return null;
    }
    return { name: P().fileNameOf(url), data: file, handle, shared: true, meta };
  }

  /**
   * Download url into its cache entry (resuming a partial one) and return {name, data: File, handle, shared, meta}
   * (handle: the entry's file; shared: other tabs may read it too).
   * state: the worker's request state ({aborted, controller}); progress(stage, loaded, total, force).
   * options.sha256: expected hex digest, verified before the entry is marked complete. options.minSize: the size the
   * GGUF header implies (web/shared/download.js).
   */
  async function download(url, state, progress, options = {}) {
    const dir = await directory();
    const key = await P().cacheKey(url);
    const previous = await readMeta(dir, key);
    const handle = await fileHandle(dir, dataName(key), true);
    let access = await handle.createSyncAccessHandle();
    const meta = { url, size: null, etag: null, last_modified: null, complete: false, cached_at: null, sha256: null };
    // A partial download with a validator is resumed; anything else starts over.
    const resume = previous && !previous.complete && previous.url === url && (previous.etag || previous.last_modified);
    if (resume) Object.assign(meta, { size: previous.size, etag: previous.etag, last_modified: previous.last_modified });
    const sink = {
      size: () => access.getSize(),
      truncate: () => access.truncate(0),
      write: (bytes, at) => writeAll(access, bytes, at),
    };
    let written = 0;
    try {
      await writeMeta(dir, key, meta); // "not complete" is on disk before any byte is written
      const got = await self.PyRunnerDownload.download(url, state, progress, sink, {
        resume: resume ? meta : null,
        minSize: options.minSize,
        onStart: async (validators) => {
          Object.assign(meta, validators);
          await writeMeta(dir, key, meta);
        },
      });
      access.flush();
      access.close();
      access = null;

      const file = await handle.getFile();
      if (options.sha256) {
        const wanted = String(options.sha256).toLowerCase();
        const digest = await self.PyRunnerSha256.sha256File(file, state, progress);
        if (digest !== wanted) {
          await removeEntry(dir, key);
          throw error("ModelIntegrityError", `${url}: sha256 is ${digest}, expected ${wanted}`, "verifying", url);
        }
        meta.sha256 = digest;
      }
      Object.assign(meta, { size: got.size, etag: got.etag, last_modified: got.last_modified });
      meta.complete = true;
      meta.cached_at = new Date().toISOString();
      await writeMeta(dir, key, meta);
      return { name: P().fileNameOf(url), data: file, handle, shared: true, meta };
    } catch (err) {
      if (access) {
        try {
          written = access.getSize();
          access.flush();
          access.close();
        } catch (_) {
          // already closed
        }
        access = null;
      }
      if (isQuota(err)) {
        await removeEntry(dir, key).catch(() => {});
        const why = await roomNeeded(meta.size || options.minSize);
        throw error("CacheQuotaError", `no room to cache ${url}: ${err.message}. ${why}`, "downloading", url);
      }
      if (written === 0 && !state.aborted) await removeEntry(dir, key).catch(() => {}); // e.g. HTTP 404
      throw err; // an abort or a network failure keeps the partial entry for a later resume
    }
  }

  /**
   * The File of url's complete entry, or null: read-only, never creates the cache folder, never hashes, never
   * touches the network (the bridge reads a cached model's GGUF header with it).
   */
  async function peek(url) {
    try {
      const dir = await directory(false);
      const key = await P().cacheKey(url);
      const meta = await readMeta(dir, key);
      const handle = meta && meta.complete && meta.url === url ? await fileHandle(dir, dataName(key), false) : null;
      const file = handle && (await handle.getFile());
      return file && file.size === meta.size ? file : null;
    } catch (_) {
      return null; // no OPFS, no cache folder, no entry, or an entry being written
    }
  }

  async function list() {
    const dir = await directory();
    const entries = [];
    for await (const [name, handle] of dir.entries()) {
      if (handle.kind !== "file" || !name.endsWith(".json")) continue;
      const meta = await readMeta(dir, name.slice(0, -5));
      if (!meta) continue;
      entries.push({
        url: meta.url,
        size: meta.size,
        complete: Boolean(meta.complete),
        cached_at: meta.cached_at,
        sha256: meta.sha256 || null,
      });
    }
    entries.sort((a, b) => String(a.url).localeCompare(String(b.url)));
    return entries;
  }

  async function remove(url) {
    const dir = await directory();
    return removeEntry(dir, await P().cacheKey(url));
  }

  async function clear() {
    const dir = await directory();
    const names = [];
    for await (const [name] of dir.entries()) names.push(name);
    for (const name of names) await dir.removeEntry(name, { recursive: true });
    return names.filter((n) => n.endsWith(".json")).length;
  }

  /** What a full quota means for a model of `size` bytes, in words: what the browser grants, and what to do. */
  async function roomNeeded(size) {
    const mb = (n) => `${(n / 1e6).toFixed(0)} MB`;
    let granted = "";
    try {
      const { quota, usage } = await navigator.storage.estimate();
      granted = `; the browser grants this site ${mb(quota)}, ${mb(usage)} of it in use`;
    } catch (_) {
      // no estimate: the advice stands on its own
    }
    const needs = size ? `The model needs ${mb(size)}` : "The model needs more room";
    return `${needs}${granted}. Free disk space (or delete cached models: runner.cache), or load with cache=False`;
  }

  // ---- scratch files: a download with the cache off ---------------------------------------------------------
  // A load with cache=False still needs the whole file before llama.cpp reads it (a synchronous read cannot wait
  // for the network). Kept in memory, a Blob, the file was held twice at the end of the load (the Blob and the
  // weights in the heap), and Chromium could not read back a Blob past 2 GiB at all. So, where OPFS can be
  // written, the download goes to a scratch file on disk instead, removed as soon as the engine has read it.
  // Each scratch file is held by a Web Lock while in use; one left by a tab that died is removed by the next.
  const scratchLock = (name) => `${P().opfs.scratch_dir}:${name}`;

  async function scratchDirectory() {
    const root = await navigator.storage.getDirectory();
    return root.getDirectoryHandle(P().opfs.scratch_dir, { create: true });
  }

  async function sweepScratch(dir) {
    if (!self.navigator || !navigator.locks || !navigator.locks.query) return;
    const held = new Set(((await navigator.locks.query()).held || []).map((lock) => lock.name));
    const names = [];
    for await (const [name] of dir.entries()) names.push(name);
    for (const name of names) {
      if (!held.has(scratchLock(name))) await dir.removeEntry(name).catch(() => {});
    }
  }

  /**
   * Download url into a new scratch file: {name, data: File, release()}. release() removes the file; call it once
   * the engine has read it. A full quota rejects with a QuotaExceededError (the caller downloads into memory).
   */
  async function downloadScratch(url, state, progress, options = {}) {
    const dir = await scratchDirectory();
    await sweepScratch(dir);
    const name = `${self.crypto.randomUUID()}${P().opfs.data_suffix}`;
    let unlock = () => {};
    if (self.navigator && navigator.locks) {
      await new Promise((locked) => {
        navigator.locks.request(scratchLock(name), () => {
          locked();
          return new Promise((resolve) => (unlock = resolve)); // held until release()
        });
      });
    }
    const release = async () => {
      await dir.removeEntry(name).catch(() => {});
      unlock();
    };
    let access = null;
    try {
      const handle = await dir.getFileHandle(name, { create: true });
      access = await handle.createSyncAccessHandle();
      const sink = {
        size: () => access.getSize(),
        truncate: () => access.truncate(0),
        write: (bytes, at) => writeAll(access, bytes, at),
      };
      await self.PyRunnerDownload.download(url, state, progress, sink, { minSize: options.minSize });
      access.flush();
      access.close();
      access = null;
      return { name: P().fileNameOf(url), data: await handle.getFile(), handle, release };
    } catch (err) {
      if (access) {
        try {
          access.close();
        } catch (_) {
          // already closed
        }
      }
      await release();
      throw err;
    }
  }

  const opfs = { lookup, download, peek, list, remove, clear };

  // ---- feature detection ------------------------------------------------------------------------------------

  function hasOpfs() {
    return Boolean(self.navigator && navigator.storage && navigator.storage.getDirectory);
  }

  function hasCacheStorage() {
    return typeof self.caches === "object" && self.caches !== null && typeof self.caches.open === "function";
  }

  let writableOpfs = null; // a promise, probed once per worker: can OPFS be opened and written with a sync handle?
  function opfsWritable() {
    if (!writableOpfs) {
      writableOpfs = (async () => {
        if (!hasOpfs() || !self.FileSystemFileHandle || !("createSyncAccessHandle" in FileSystemFileHandle.prototype)) {
          return false;
        }
        try {
          await directory(); // may still fail: a browser can expose the API and refuse the folder
          return true;
        } catch (_) {
          return false;
        }
      })();
    }
    return writableOpfs;
  }

  /** The backend loads write to, in a worker: "opfs", "cache-storage", or null (loads go on without a cache). */
  async function backend() {
    if (await opfsWritable()) return "opfs";
    return hasCacheStorage() ? "cache-storage" : null;
  }

  // ---- Cache Storage ----------------------------------------------------------------------------------------

  const META_HEADER = "x-py-runner-meta"; // encodeURIComponent(JSON): a header value holds Latin-1 only

  async function storedEntry(url) {
    const store = await caches.open(P().opfs.dir);
    const response = await store.match(url);
    if (!response) return { store, meta: null, response: null };
    let meta = null;
    try {
      meta = JSON.parse(decodeURIComponent(response.headers.get(META_HEADER) || ""));
    } catch (_) {
      meta = null; // not ours, or unreadable: treated as no entry
    }
    return { store, meta, response };
  }

  function storedResponse(blob, meta) {
    const headers = { "content-type": "application/octet-stream", [META_HEADER]: encodeURIComponent(JSON.stringify(meta)) };
    return new Response(blob, { headers });
  }

  async function put(store, url, blob, meta) {
    try {
      await store.put(url, storedResponse(blob, meta));
    } catch (err) {
      await store.delete(url).catch(() => {});
      if (isQuota(err)) {
        const why = await roomNeeded(blob.size);
        throw error("CacheQuotaError", `no room to cache ${url}: ${err.message}. ${why}`, "downloading", url);
      }
      throw err;
    }
  }

  const cacheStorage = {
    async lookup(url, state, progress, options = {}) {
      const { store, meta, response } = await storedEntry(url);
      if (!response) return null;
      const data = meta && meta.complete && meta.url === url ? await response.blob() : null;
      if (!data || data.size !== meta.size) {
        await store.delete(url); // the bytes do not match what the entry says: not usable
        return null;
      }
      const wanted = options.sha256 ? String(options.sha256).toLowerCase() : null;
      if (wanted && !meta.sha256) {
        meta.sha256 = await self.PyRunnerSha256.sha256File(data, state, progress);
        await put(store, url, data, meta);
      }
      if (wanted && meta.sha256 !== wanted) {
        await store.delete(url);
        return null;
      }
      return { name: P().fileNameOf(url), data, meta };
    },

    async download(url, state, progress, options = {}) {
      const store = await caches.open(P().opfs.dir);
      const sink = new self.PyRunnerDownload.MemorySink();
      const got = await self.PyRunnerDownload.download(url, state, progress, sink, { minSize: options.minSize });
      const data = sink.blob();
      const meta = { url, size: got.size, etag: got.etag, last_modified: got.last_modified, complete: true, cached_at: null, sha256: null };
      if (options.sha256) {
        const wanted = String(options.sha256).toLowerCase();
        const digest = await self.PyRunnerSha256.sha256File(data, state, progress);
        if (digest !== wanted) {
          throw error("ModelIntegrityError", `${url}: sha256 is ${digest}, expected ${wanted}`, "verifying", url);
        }
        meta.sha256 = digest;
      }
      meta.cached_at = new Date().toISOString();
      await put(store, url, data, meta);
      return { name: P().fileNameOf(url), data, meta };
    },

    async peek(url) {
      try {
        const { meta, response } = await storedEntry(url);
        if (!response || !meta || !meta.complete || meta.url !== url) return null;
        const data = await response.blob();
        return data.size === meta.size ? data : null;
      } catch (_) {
        return null;
      }
    },

    async list() {
      const store = await caches.open(P().opfs.dir);
      const entries = [];
      for (const request of await store.keys()) {
        const { meta } = await storedEntry(request.url);
        if (!meta) continue;
        entries.push({ url: meta.url, size: meta.size, complete: Boolean(meta.complete), cached_at: meta.cached_at, sha256: meta.sha256 || null });
      }
      return entries;
    },

    async remove(url) {
      return (await caches.open(P().opfs.dir)).delete(url);
    },

    async clear() {
      const count = (await (await caches.open(P().opfs.dir)).keys()).length;
      await caches.delete(P().opfs.dir);
      return count;
    },
  };

  // ---- the cache: loads use the worker's backend; listing and removal see both ---------------------------------

  /** The backends that may hold entries here (listing, peeking, removal look in each). */
  function readable() {
    const found = [];
    if (hasOpfs()) found.push(opfs);
    if (hasCacheStorage()) found.push(cacheStorage);
    return found;
  }

  async function writer() {
    const name = await backend();
    return name === "opfs" ? opfs : name === "cache-storage" ? cacheStorage : null;
  }

  return {
    backend,
    backends: { opfs, cacheStorage }, // each on its own, for tests and for a page that wants one in particular
    downloadScratch, // cache off: OPFS only (web/engine/worker.js checks opfsWritable first)
    opfsWritable,
    isQuota,
    writeAll, // for the session store (web/shared/session_store.js), which writes OPFS files the same way
    async lookup(url, state, progress, options) {
      const chosen = await writer();
      return chosen ? chosen.lookup(url, state, progress, options) : null;
    },
    async download(url, state, progress, options) {
      const chosen = await writer();
      if (!chosen) throw error("BridgeError", "this browser offers no storage for a model cache", "cache", url);
      return chosen.download(url, state, progress, options);
    },
    async peek(url) {
      for (const one of readable()) {
        const found = await one.peek(url);
        if (found) return found;
      }
      return null;
    },
    async list() {
      const entries = [];
      for (const one of readable()) entries.push(...(await one.list().catch(() => [])));
      entries.sort((a, b) => String(a.url).localeCompare(String(b.url)));
      return entries;
    },
    async remove(url) {
      let removed = false;
      for (const one of readable()) removed = (await one.remove(url).catch(() => false)) || removed;
      return removed;
    },
    async clear() {
      let count = 0;
      for (const one of readable()) count += await one.clear().catch(() => 0);
      return count;
    },
  };
})();
