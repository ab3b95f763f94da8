// py_runner download: the one loop that fetches a model URL, used by the OPFS cache (web/shared/model_cache.js) and by loads
// with the cache off (web/engine/worker.js). A dropped connection or a short body resumes with a Range request; the bytes go
// to a sink: an OPFS file, or Blob parts in memory. A resumed file is never spliced from two versions: If-Range asks
// the server for the whole file if it changed, and a 206 is used only when its total size and ETag are the ones
// recorded (a server may ignore If-Range). A body with no length must reach the size the GGUF header implies.
// From its own origin, a model comes in windows (protocol.js's download_window_bytes), one Range request each, the
// next sent while this one is read (a request's latency, unhidden, halved Chromium's throughput). Why: Firefox's
// parent process buffers what the worker has not yet taken of a response, and a local server sends faster than a
// worker writes to disk, so one request for a 2.6 GB model cost the whole model in the parent (bench load); two
// windows in flight bound that. Another origin gets one request: Range and Content-Range need its CORS headers.
// A plain script (importScripts, or a side-effect import after protocol.js); it defines self.PyRunnerDownload.
"use strict";

self.PyRunnerDownload = (() => {
  const MAX_RETRIES = 3; // resumes after a dropped connection, per download
  const BLOB_PART_BYTES = 8 << 20;

  const sameOrigin = (url) => {
    try {
      return new URL(url, self.location.href).origin === self.location.origin;
    } catch {
      return false;
    }
  };

  /** Blob parts in memory: chunks gather into a Blob every few MB, so the JS heap never holds more than that. */
  class MemorySink {
    constructor() {
      this.truncate();
    }

    size() {
      return this.length;
    }

    truncate() {
      this.parts = [];
      this.chunks = [];
      this.pending = 0;
      this.length = 0;
    }

    write(bytes, at) {
      if (at !== this.length) throw new Error(`memory sink: write at ${at}, expected ${this.length}`);
      this.chunks.push(bytes);
      this.pending += bytes.byteLength;
      this.length += bytes.byteLength;
      if (this.pending >= BLOB_PART_BYTES) this.seal();
    }

    seal() {
      if (this.chunks.length) this.parts.push(new Blob(this.chunks));
      this.chunks = [];
      this.pending = 0;
    }

    blob() {
      this.seal();
      return new Blob(this.parts); // a Blob of Blobs references its parts, it does not copy them
    }
  }

  /**
   * Fetch url into sink ({size(), truncate(), write(bytes, at)}) and resolve with {size, etag, last_modified}.
   * state: the worker's request state ({aborted, controller}); progress(stage, loaded, total, force).
   * options.resume ({size, etag, last_modified}): the sink holds a prefix of that file; continue after it.
   * options.onStart(validators) is awaited when a full (200) response begins, before any byte is written.
   * options.minSize: the size the file's GGUF header implies; a body with no Content-Length that ends before it is
   * a dropped connection (resumed), not the end of the file.
   * A failure of sink.write (a full quota) ends the download as it is; network failures retry MAX_RETRIES times.
   */
  async function download(url, state, progress, sink, options = {}) {
    const { PyRunnerError } = self.PyRunnerProtocol;
    const fields = (status) => ({ stage: "downloading", url, status: status ?? null });
    const WINDOW_BYTES = self.PyRunnerProtocol.download_window_bytes; // one request's body at most (see above)
    const aborted = () => new PyRunnerError("AbortError", "loading was aborted", fields());
    const resume = options.resume || null;
    const validators = {
      size: resume ? resume.size : null,
      etag: resume ? resume.etag : null,
      last_modified: resume ? resume.last_modified : null,
    };
    const minSize = options.minSize || 0;
    let offset = resume ? sink.size() : 0;
    if (!resume) sink.truncate();
    let total = validators.size;
    let retries = 0;
    let windowed = sameOrigin(url); // off once the server ignores a Range or gives no total
    let windowEnd = null; // where the current response's body ends, if it is a window
    const restart = () => {
      retries += 1;
      sink.truncate();
      offset = 0;
    };
    const inFlight = new Set(); // the AbortControllers of requests not yet done with; abort() ends them all
    state.controller = { abort: () => inFlight.forEach((controller) => controller.abort()) };
    const send = (from) => {
      const headers = {};
      // not cut to the file's size: a server reads a range past the end as "to the end" (RFC 9110 14.1.1), and a
      // download's request from byte 0 is always the same first window
      const last = windowed ? from + WINDOW_BYTES - 1 : null;
      if (from > 0 || last !== null) headers.Range = `bytes=${from}-${last ?? ""}`;
      if (from > 0) {
        const validator = validators.etag || validators.last_modified;
        if (validator) headers["If-Range"] = validator;
      }
      const controller = new AbortController();
      inFlight.add(controller);
      // no-store: the browser's HTTP cache keeps a cut-short response and completes it later with its own
      // Range request, splicing two versions when the server ignores If-Range (seen in Chromium). This loop
      // resumes by itself, and a model's bytes are kept once, in OPFS, not twice.
      const promise = fetch(url, { signal: controller.signal, headers, cache: "no-store" });
      promise.catch(() => {}); // a window dropped unread rejects unobserved; a read one is awaited below
      return { from, controller, promise };
    };
    const drop = (request) => {
      if (!request) return;
      request.controller.abort();
      inFlight.delete(request.controller);
    };
    let next = null; // the next window's request, sent while the current one is read
    let current = null;
    try {
      for (;;) {
        if (state.aborted) throw aborted();
        drop(current);
        current = next && next.from === offset ? next : send(offset);
        if (next !== current) drop(next);
        next = null;
        windowEnd = null;
        let response;
        try {
          response = await current.promise;
        } catch (err) {
          if (state.aborted) throw aborted();
          if ((offset > 0 || retries > 0) && retries < MAX_RETRIES) {
            retries += 1;
            continue;
          }
          throw new PyRunnerError("NetworkError", `fetching ${url} failed: ${err.message}`, fields());
        }
        if (response.status === 416 && offset === 0 && windowed) {
          windowed = false; // an empty file has no first window: ask for it whole
          continue;
        }
        if (response.status === 416 && offset > 0 && retries < MAX_RETRIES) {
          restart(); // the partial file is not a prefix the server can continue: start over
          continue;
        }
        if (!response.ok) {
          throw new PyRunnerError("NetworkError", `fetching ${url} failed: HTTP ${response.status}`, fields(response.status));
        }
        if (response.status === 206) {
          const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec((response.headers.get("Content-Range") || "").trim());
          if (!m || Number(m[1]) !== offset) {
            response.body.cancel().catch(() => {});
            if (retries >= MAX_RETRIES) {
              throw new PyRunnerError("NetworkError", `${url}: the server resumed at the wrong offset`, fields(206));
            }
            restart();
            continue;
          }
          const rangeTotal = m[3] === "*" ? null : Number(m[3]);
          const etag = response.headers.get("ETag");
          windowEnd = Number(m[2]) + 1;
          if (rangeTotal === null) windowed = false;
          if (offset === 0) {
            // the first window: it starts the file, as a 200 does
            total = rangeTotal;
            validators.size = rangeTotal;
            validators.etag = etag;
            validators.last_modified = response.headers.get("Last-Modified");
            if (options.onStart) await options.onStart({ ...validators });
          }
          const sizeChanged = validators.size !== null && rangeTotal !== null && rangeTotal !== validators.size;
          const etagChanged = Boolean(validators.etag && etag && etag !== validators.etag);
          if (sizeChanged || etagChanged) {
            // The file on the server is not the one the sink holds the start of: splicing would corrupt it.
            response.body.cancel().catch(() => {});
            if (retries >= MAX_RETRIES) {
              throw new PyRunnerError("NetworkError", `${url} kept changing while it downloaded`, fields(206));
            }
            restart();
            continue;
          }
          total = rangeTotal;
        } else {
          windowed = false; // the server ignored Range: the body is the whole file
          if (offset > 0) {
            sink.truncate(); // a 200 to a Range request: the file changed or Range is unsupported
            offset = 0;
          }
          total = Number(response.headers.get("Content-Length")) || null;
          validators.size = total;
          validators.etag = response.headers.get("ETag");
          validators.last_modified = response.headers.get("Last-Modified");
          if (options.onStart) await options.onStart({ ...validators });
        }

        if (windowed && windowEnd !== null && windowEnd < total) next = send(windowEnd);
        progress("downloading", offset, total, true);
        const reader = response.body.getReader();
        let failed = null;
        for (;;) {
          let chunk;
          try {
            chunk = await reader.read();
          } catch (err) {
            if (state.aborted) throw aborted();
            failed = err;
            break;
          }
          if (chunk.done) break;
          sink.write(chunk.value, offset); // a write failure (a full quota) is not a network failure: it ends here
          offset += chunk.value.byteLength;
          progress("downloading", offset, total, false);
        }
        if (failed === null && (total === null ? offset >= minSize : offset === total)) break;
        if (failed === null && windowEnd !== null && offset === windowEnd) continue; // the next window
        if (retries >= MAX_RETRIES) {
          if (failed === null && total === null) {
            const why = `the body ended after ${offset} bytes but the GGUF header describes ${minSize}`;
            throw new PyRunnerError("TruncatedModelError", `${url}: ${why}`, fields());
          }
          const why = failed ? failed.message : `${offset} of ${total} bytes`;
          throw new PyRunnerError("NetworkError", `reading ${url} failed after ${offset} bytes: ${why}`, fields());
        }
        retries += 1; // dropped connection or a short body: resume from offset
      }
    } finally {
      drop(next);
      inFlight.clear();
      state.controller = null;
    }
    progress("downloading", offset, total, true);
    return { size: offset, etag: validators.etag, last_modified: validators.last_modified };
  }

  return { download, MemorySink };
})();
