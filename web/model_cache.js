// py_runner model cache: models loaded from URLs, kept in the Origin Private File System (OPFS).
// A classic script, loaded by web/worker.js with importScripts; it defines self.PyRunnerModelCache.
//
// Why OPFS and not Cache Storage: a FileSystemSyncAccessHandle writes at an offset (an interrupted download resumes
// with an HTTP Range request and appends), `fileHandle.getFile()` is a disk-backed File that WORKERFS mounts without
// reading the bytes into JS, and a full quota shows up as a QuotaExceededError on the write that hits it.
//
// Layout: <OPFS root>/py_runner-models/<key>.gguf (the bytes) + <key>.json
//   {url, size, etag, last_modified, complete, cached_at, sha256}, key = sha-256 hex of the absolute URL.
// An entry is usable only when its json says complete and the file has exactly `size` bytes.
"use strict";

self.PyRunnerModelCache = (() => {
  const DIR_NAME = "py_runner-models";
  const MAX_RETRIES = 3; // resumes after a dropped connection, per download
  const READ_CHUNK = 8 << 20; // verification reads the file back in 8 MiB slices

  class CacheError extends Error {
    constructor(name, message, stage) {
      super(message);
      this.name = name;
      this.stage = stage;
    }
  }

  async function directory() {
    if (!self.navigator || !navigator.storage || !navigator.storage.getDirectory) {
      throw new CacheError("BridgeError", "this browser has no Origin Private File System (OPFS)", "cache");
    }
    const root = await navigator.storage.getDirectory();
    return root.getDirectoryHandle(DIR_NAME, { create: true });
  }

  async function keyOf(url) {
    const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url));
    return hex(new Uint8Array(digest));
  }

  function hex(bytes) {
    let out = "";
    for (const b of bytes) out += b.toString(16).padStart(2, "0");
    return out;
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
    const handle = await fileHandle(dir, `${key}.json`, false);
    if (!handle) return null;
    try {
      return JSON.parse(await (await handle.getFile()).text());
    } catch (_) {
      return null; // unreadable or half-written: treated as no entry
    }
  }

  async function writeMeta(dir, key, meta) {
    const handle = await fileHandle(dir, `${key}.json`, true);
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
    for (const name of [`${key}.gguf`, `${key}.json`]) {
      try {
        await dir.removeEntry(name);
        removed = true;
      } catch (err) {
        if (!err || err.name !== "NotFoundError") throw err;
      }
    }
    return removed;
  }

  function fileName(url) {
    return decodeURIComponent(new URL(url, self.location.href).pathname.split("/").pop()) || "model.gguf";
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

  function isQuota(err) {
    return Boolean(err) && (err.name === "QuotaExceededError" || /quota/i.test(String(err.message || "")));
  }

  /**
   * A complete entry for url as {name, data: File, meta}, or null. No network access. With options.sha256 an entry
   * whose digest is unknown is hashed now; one with another digest is deleted (null: download it again).
   */
  async function lookup(url, state, progress, options = {}) {
    const dir = await directory();
    const key = await keyOf(url);
    const meta = await readMeta(dir, key);
    if (!meta || !meta.complete) return null;
    const handle = await fileHandle(dir, `${key}.gguf`, false);
    const file = handle && (await handle.getFile());
    if (!file || file.size !== meta.size) {
      await removeEntry(dir, key); // the bytes do not match what the entry says: not usable
      return null;
    }
    const wanted = options.sha256 ? String(options.sha256).toLowerCase() : null;
    if (wanted && !meta.sha256) {
      meta.sha256 = await sha256File(file, state, progress);
      await writeMeta(dir, key, meta);
    }
    if (wanted && meta.sha256 !== wanted) {
      await removeEntry(dir, key);
      return null;
    }
    return { name: fileName(url), data: file, meta };
  }

  /**
   * Download url into its cache entry (resuming a partial one) and return {name, data: File, meta}.
   * state: the worker's request state ({aborted, controller}); progress(stage, loaded, total, force).
   * options.sha256: expected hex digest, verified before the entry is marked complete.
   */
  async function download(url, state, progress, options = {}) {
    const dir = await directory();
    const key = await keyOf(url);
    const previous = await readMeta(dir, key);
    const handle = await fileHandle(dir, `${key}.gguf`, true);
    let access = await handle.createSyncAccessHandle();
    const aborted = (stage) => new CacheError("AbortError", "loading was aborted", stage || "downloading");
    let offset = 0;
    try {
      const meta = { url, size: null, etag: null, last_modified: null, complete: false, cached_at: null, sha256: null };
      if (previous && !previous.complete && previous.url === url && (previous.etag || previous.last_modified)) {
        offset = access.getSize(); // a partial download with a validator: resume it
        Object.assign(meta, { size: previous.size, etag: previous.etag, last_modified: previous.last_modified });
      } else {
        access.truncate(0);
      }
      await writeMeta(dir, key, meta); // "not complete" is on disk before any byte is written

      let total = meta.size;
      let retries = 0;
      for (;;) {
        if (state.aborted) throw aborted();
        const headers = {};
        if (offset > 0) {
          headers.Range = `bytes=${offset}-`;
          const validator = meta.etag || meta.last_modified;
          if (validator) headers["If-Range"] = validator;
        }
        state.controller = new AbortController();
        let response;
        try {
          response = await fetch(url, { signal: state.controller.signal, headers });
        } catch (err) {
          if (state.aborted) throw aborted();
          if ((offset > 0 || retries > 0) && retries < MAX_RETRIES) {
            retries += 1;
            continue;
          }
          throw new CacheError("NetworkError", `fetching ${url} failed: ${err.message}`, "downloading");
        }
        if (response.status === 416 && offset > 0 && retries < MAX_RETRIES) {
          // The partial file is not a prefix the server can continue: start over.
          retries += 1;
          access.truncate(0);
          offset = 0;
          continue;
        }
        if (!response.ok) {
          throw new CacheError("NetworkError", `fetching ${url} failed: HTTP ${response.status}`, "downloading");
        }
        if (response.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((response.headers.get("Content-Range") || "").trim());
          if (!m || Number(m[1]) !== offset) {
            response.body.cancel().catch(() => {});
            if (retries >= MAX_RETRIES) {
              throw new CacheError("NetworkError", `${url}: the server resumed at the wrong offset`, "downloading");
            }
            retries += 1;
            access.truncate(0);
            offset = 0;
            continue;
          }
          total = m[3] === "*" ? null : Number(m[3]);
        } else {
          if (offset > 0) {
            access.truncate(0); // a 200 to a Range request: the file changed or Range is unsupported
            offset = 0;
          }
          total = Number(response.headers.get("Content-Length")) || null;
          meta.etag = response.headers.get("ETag");
          meta.last_modified = response.headers.get("Last-Modified");
          meta.size = total;
          await writeMeta(dir, key, meta);
        }

        progress("downloading", offset, total, true);
        const reader = response.body.getReader();
        let failed = null;
        try {
          for (;;) {
            const { done, value } = await reader.read();
            if (done) break;
            writeAll(access, value, offset);
            offset += value.byteLength;
            progress("downloading", offset, total, false);
          }
        } catch (err) {
          if (state.aborted) throw aborted();
          if (isQuota(err)) throw err;
          failed = err;
        }
        if (failed === null && (total === null || offset === total)) break;
        if (retries >= MAX_RETRIES) {
          const why = failed ? failed.message : `${offset} of ${total} bytes`;
          throw new CacheError("NetworkError", `reading ${url} failed after ${offset} bytes: ${why}`, "downloading");
        }
        retries += 1; // dropped connection or a short body: resume from offset
      }
      if (total !== null && offset !== total) {
        throw new CacheError("NetworkError", `${url} was truncated: ${offset} of ${total} bytes`, "downloading");
      }
      progress("downloading", offset, total, true);
      access.flush();
      access.close();
      access = null;

      const file = await handle.getFile();
      if (options.sha256) {
        const digest = await sha256File(file, state, progress);
        if (digest !== String(options.sha256).toLowerCase()) {
          await removeEntry(dir, key);
          throw new CacheError(
            "ModelIntegrityError",
            `${url}: sha256 is ${digest}, expected ${String(options.sha256).toLowerCase()}`,
            "verifying",
          );
        }
        meta.sha256 = digest;
      }
      meta.size = offset;
      meta.complete = true;
      meta.cached_at = new Date().toISOString();
      await writeMeta(dir, key, meta);
      return { name: fileName(url), data: file, meta };
    } catch (err) {
      if (access) {
        try {
          access.flush();
          access.close();
        } catch (_) {
          // already closed
        }
        access = null;
      }
      if (isQuota(err)) {
        await removeEntry(dir, key).catch(() => {});
        throw new CacheError("CacheQuotaError", `no room to cache ${url}: ${err.message}`, "downloading");
      }
      if (offset === 0 && !state.aborted) await removeEntry(dir, key).catch(() => {}); // e.g. HTTP 404
      throw err; // an abort or a network failure keeps the partial entry for a later resume
    } finally {
      state.controller = null;
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
    return removeEntry(dir, await keyOf(url));
  }

  async function clear() {
    const dir = await directory();
    const names = [];
    for await (const [name] of dir.entries()) names.push(name);
    for (const name of names) await dir.removeEntry(name, { recursive: true });
    return names.filter((n) => n.endsWith(".json")).length;
  }

  // --- SHA-256 over a File read back in slices (WebCrypto's digest is one-shot) ----------------------------------
  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98,
    0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8,
    0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819,
    0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2,
  ]);

  class Sha256 {
    constructor() {
      this.h = new Uint32Array([
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
      ]);
      this.w = new Uint32Array(64);
      this.tail = new Uint8Array(64);
      this.tailLength = 0;
      this.length = 0; // bytes hashed so far
    }

    update(bytes) {
      this.length += bytes.length;
      let i = 0;
      if (this.tailLength > 0) {
        const n = Math.min(64 - this.tailLength, bytes.length);
        this.tail.set(bytes.subarray(0, n), this.tailLength);
        this.tailLength += n;
        i = n;
        if (this.tailLength < 64) return;
        this.block(this.tail, 0);
        this.tailLength = 0;
      }
      for (; i + 64 <= bytes.length; i += 64) this.block(bytes, i);
      if (i < bytes.length) {
        this.tail.set(bytes.subarray(i), 0);
        this.tailLength = bytes.length - i;
      }
    }

    digest() {
      const bits = this.length * 8;
      const pad = new Uint8Array((this.tailLength < 56 ? 64 : 128) - this.tailLength);
      pad[0] = 0x80;
      const view = new DataView(pad.buffer);
      view.setUint32(pad.length - 8, Math.floor(bits / 0x100000000));
      view.setUint32(pad.length - 4, bits >>> 0);
      this.update(pad);
      const out = new Uint8Array(32);
      const outView = new DataView(out.buffer);
      for (let j = 0; j < 8; j++) outView.setUint32(j * 4, this.h[j]);
      return hex(out);
    }

    block(bytes, at) {
      const w = this.w;
      for (let j = 0; j < 16; j++) {
        const p = at + j * 4;
        w[j] = (bytes[p] << 24) | (bytes[p + 1] << 16) | (bytes[p + 2] << 8) | bytes[p + 3];
      }
      for (let j = 16; j < 64; j++) {
        const a = w[j - 15];
        const b = w[j - 2];
        const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
        const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
        w[j] = (w[j - 16] + s0 + w[j - 7] + s1) | 0;
      }
      const h = this.h;
      let a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (let j = 0; j < 64; j++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (k + S1 + ch + K[j] + w[j]) | 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & b) ^ (a & c) ^ (b & c);
        const t2 = (S0 + maj) | 0;
        k = g;
        g = f;
        f = e;
        e = (d + t1) | 0;
        d = c;
        c = b;
        b = a;
        a = (t1 + t2) | 0;
      }
      h[0] += a;
      h[1] += b;
      h[2] += c;
      h[3] += d;
      h[4] += e;
      h[5] += f;
      h[6] += g;
      h[7] += k;
    }
  }

  async function sha256File(file, state, progress) {
    const hash = new Sha256();
    progress("verifying", 0, file.size, true);
    for (let at = 0; at < file.size; at += READ_CHUNK) {
      if (state.aborted) throw new CacheError("AbortError", "loading was aborted", "verifying");
      const part = new Uint8Array(await file.slice(at, at + READ_CHUNK).arrayBuffer());
      hash.update(part);
      progress("verifying", Math.min(file.size, at + part.length), file.size, false);
    }
    progress("verifying", file.size, file.size, true);
    return hash.digest();
  }

  return { lookup, download, list, remove, clear, sha256File, CacheError };
})();
