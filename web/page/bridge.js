// py_runner bridge: the main-thread ES module that Python (Pyodide) calls. It owns the engine worker, numbers
// requests, routes the worker's replies to per-request callbacks and promises, and forwards aborts.
// The messages and error fields it exchanges are declared in web/protocol.js.

import "../shared/protocol.js";
import "../shared/sha256.js";
import "../shared/download.js";
import "../shared/model_cache.js"; // peek(): the GGUF header of a cached model is read here, without the worker

const { PyRunnerProtocol } = globalThis;
const { PyRunnerError } = PyRunnerProtocol;
export { PyRunnerError };

// What a page can fetch a model from. Any other scheme (javascript:, file:, ...) fails inside fetch() with a
// TypeError that would be reported as a CORS or network failure; it is refused here by name instead.
const FETCHABLE_SCHEMES = ["http:", "https:", "blob:", "data:"];

function modelUrl(u, base) {
  let url;
  try {
    url = new URL(u, base);
  } catch (err) {
    throw new PyRunnerError("InvalidParameterError", `model URL ${JSON.stringify(String(u).slice(0, 80))} is not a valid URL: ${err.message}`);
  }
  if (!FETCHABLE_SCHEMES.includes(url.protocol)) {
    const allowed = FETCHABLE_SCHEMES.join(", ");
    throw new PyRunnerError("InvalidParameterError", `model URL scheme '${url.protocol}' is not supported (${allowed} or a relative URL)`);
  }
  return url;
}

/**
 * The typed error for a fetch that failed without an answer. fetch() throws a bare TypeError whether CORS refused
 * the response or nothing answered at all. A no-cors request tells them apart where the browser lets it: it
 * resolves with an opaque response when the server answered (so CORS is what blocked the model), and fails when
 * nothing did. It also fails for a server that forbids this page its responses (Cross-Origin-Resource-Policy, or
 * none on a cross-origin isolated page): that case stays a plain NetworkError, which says so.
 */
async function fetchFailure(url, err, signal) {
  const fields = { stage: "checking", url: url.href };
  const failed = `fetching ${url.href} failed: ${err.message}`;
  if (url.origin === location.origin || !["http:", "https:"].includes(url.protocol)) {
    return new PyRunnerError("NetworkError", failed, fields);
  }
  try {
    await fetch(url.href, { method: "HEAD", mode: "no-cors", cache: "no-store", credentials: "omit", signal });
  } catch {
    const hidden = globalThis.crossOriginIsolated ? "sends no Cross-Origin-Resource-Policy: cross-origin" : "forbids it by Cross-Origin-Resource-Policy";
    return new PyRunnerError("NetworkError", `${failed} (no answer from the server; to this page, a server that ${hidden} and no CORS looks the same)`, fields);
  }
  return new PyRunnerError("CorsBlockedError", `${failed} (the server answered, but sends no CORS headers that let this page read it)`, fields);
}

/** True when the page may use the pthreads build (cross-origin isolated, SharedArrayBuffer present). */
export function canUseThreads() {
  return Boolean(globalThis.crossOriginIsolated) && typeof SharedArrayBuffer !== "undefined";
}

/** Why the pthreads build cannot run here (by feature, not by browser), or null when it can. */
export function whyNoThreads() {
  if (!globalThis.crossOriginIsolated) {
    return "the page is not cross-origin isolated (serve it with COOP: same-origin and COEP: require-corp, or use coi_sw.js)";
  }
  if (typeof SharedArrayBuffer === "undefined") {
    return "this browser has no SharedArrayBuffer, although the page is cross-origin isolated";
  }
  return null;
}

// The smallest module with a relaxed-SIMD instruction: () -> v128 { i16x8.relaxed_dot_i8x16_i7x16_s(0, 0) }.
// A browser that validates it runs the relaxed builds (Chromium 114+, Firefox 146+; not WebKit).
const RELAXED_SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
  0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, // types: () -> v128
  0x03, 0x02, 0x01, 0x00, // functions: one of type 0
  0x0a, 0x2b, 0x01, 0x29, 0x00, // code: one body of 41 bytes, no locals
  0xfd, 0x0c, ...new Array(16).fill(0), // v128.const 0
  0xfd, 0x0c, ...new Array(16).fill(0), // v128.const 0
  0xfd, 0x92, 0x02, // i16x8.relaxed_dot_i8x16_i7x16_s
  0x0b, // end
]);

/** Why the relaxed-SIMD builds cannot run here (by feature: validating a relaxed instruction), or null. */
export function whyNoRelaxedSimd() {
  try {
    return WebAssembly.validate(RELAXED_SIMD_PROBE) ? null : "this browser's WebAssembly has no relaxed SIMD";
  } catch (err) {
    return `this browser's WebAssembly has no relaxed SIMD (${err})`;
  }
}

// The requests the bridge reshapes before the worker sees them (web/shared/protocol.js says which fields go in).
const PREPARE = {
  // source: a URL string, a Blob/File, a Uint8Array (bytes from Python: one copy into a Blob), or an Array of
  // URLs or Blobs/Files (the shards of a split GGUF; llama.cpp finds shards 2..N beside the first by name).
  load({ source, name, ...fields }, baseUrl) {
    const urls = typeof source === "string" ? [source] : Array.isArray(source) && typeof source[0] === "string" ? source : null;
    if (urls) return { ...fields, urls: urls.map((u) => modelUrl(u, baseUrl).href) };
    const parts = (Array.isArray(source) ? source : [source]).map((part) => (part instanceof Blob ? part : new Blob([part])));
    // structured clone of a Blob shares its bytes, it does not copy them
    return { ...fields, blobs: parts, name: name || parts[0].name || "model.gguf" };
  },
  cache_delete: ({ url }, baseUrl) => ({ url: new URL(url, baseUrl).href }),
};

const SPAWN_TIMEOUT_MS = 5000; // the pthread pool's workers are created in milliseconds when nothing is wrong
// From `new Worker()` to the worker's "spawning": its scripts and the build's .js fetched and run (a second when
// nothing is wrong; generous for a busy two-core machine).
const START_TIMEOUT_MS = 30000;
const SPAWN_ATTEMPTS = 3;

export class Bridge {
  /**
   * @param {{st: {js: string, files?: object}, mt: {js: string, files?: object}, "st-relaxed"?: {js: string,
   *   files?: object}, "mt-relaxed"?: {js: string, files?: object}, worker: string}} artifacts  URLs of the builds
   *   and the worker; `files`: a build's other files by name, where they are not beside its script; the relaxed
   *   builds (relaxed SIMD), where served, are chosen where the browser validates relaxed SIMD
   * @param {{build?: "auto"|"st"|"mt", simd?: "auto"|"relaxed"|"simd128", threads?: number, baseUrl?: string}}
   *   options  baseUrl: what relative URLs (the artifacts, models, cache keys) resolve against; Python's
   *   transport always gives it (default_base_url)
   */
  constructor(artifacts, options = {}) {
    this.artifacts = artifacts;
    this.options = options;
    this.baseUrl = new URL(options.baseUrl || location.href).href;
    this.worker = null;
    this.build = null;
    this.threads = 1;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, onProgress, onToken, kind}
    this.active = {}; // kind ("load" | "generate") -> id of the running request
    this.prefixController = null; // aborts a running readPrefix()
  }

  async start() {
    if (this.worker) return this.info();
    const wanted = this.options.build || "auto";
    const noThreads = whyNoThreads();
    if (wanted === "mt" && noThreads) {
      throw new PyRunnerError("BridgeError", `the multi-thread build cannot run: ${noThreads}`);
    }
    this.build = wanted === "auto" ? (noThreads ? "st" : "mt") : wanted;
    // The SIMD variant: relaxed where this build has one and the browser validates relaxed SIMD, else SIMD128.
    const simd = this.options.simd || "auto";
    const noRelaxed = this.artifacts[`${this.build}-relaxed`] ? whyNoRelaxedSimd() : "no relaxed-SIMD build is served";
    if (simd === "relaxed" && noRelaxed) {
      throw new PyRunnerError("BridgeError", `the relaxed-SIMD build cannot run: ${noRelaxed}`);
    }
    this.simd = simd !== "simd128" && !noRelaxed ? "relaxed" : "simd128";
    // Auto fell back to st where isolation is in place but shared memory is not: say what is missing (a page
    // that is simply not isolated chose st knowingly, and needs no notice).
    this.notice = wanted === "auto" && noThreads && globalThis.crossOriginIsolated ? `single-thread build: ${noThreads}` : null;
    // hardwareConcurrency is a hint (WebKit reports 4 on a 2-core machine): the worker caps the count at its
    // pthread pool, so more threads than the pool never wait for a worker that cannot start.
    const hardware = navigator.hardwareConcurrency || 1;
    let threads = this.build === "mt" ? this.options.threads || hardware : 1;
    for (let attempt = 1; ; attempt++) {
      const stalled = await this._startWorker(threads);
      if (!stalled) return this.info();
      const what = stalled === "start" ? "stalled starting" : `stalled starting its ${threads} threads`;
      const error = new PyRunnerError("BridgeError", `the engine worker ${what}`);
      console.warn(`py_runner: ${error.message} (attempt ${attempt} of ${SPAWN_ATTEMPTS})`);
      if (attempt < SPAWN_ATTEMPTS) continue;
      // The pool never started, in every try: "auto" goes on with st, which starts no worker of its own.
      if (stalled !== "spawn" || wanted !== "auto") throw error;
      this.notice = `single-thread build: the multi-thread build's ${threads} threads did not start (${SPAWN_ATTEMPTS} tries)`;
      console.warn(`py_runner: ${this.notice}`);
      this.build = "st";
      if (!this.artifacts["st-relaxed"]) this.simd = "simd128";
      threads = 1;
      attempt = 0;
    }
  }

  /**
   * One try at starting the engine worker with this.build: null once it answers init (this.worker and
   * this.threads set), or what stalled ("start" or "spawn"; the worker is then terminated).
   */
  async _startWorker(threads) {
    const url = (u) => new URL(u, this.baseUrl).href;
    const chosen = this.artifacts[this.simd === "relaxed" ? `${this.build}-relaxed` : this.build];
    const init = { build: this.build, moduleUrl: url(chosen.js), threads };
    if (chosen.files) init.files = chosen.files; // the build's .wasm (and pthread script) where not beside it
    this.worker = new Worker(url(this.artifacts.worker));
    this.worker.onmessage = (event) => this._onMessage(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault();
      this._failAll(new PyRunnerError("BridgeError", `engine worker failed: ${event.message || "unknown error"}`));
    };
    // Firefox can stall a worker's `new Worker()` for good (seen with coi_sw.js controlling the page, under
    // WebDriver BiDi), the engine worker's own or its pthread pool's: the engine worker says when it starts the
    // pool and when the pool's workers exist (milliseconds apart). One that does not say the first within
    // START_TIMEOUT_MS, or the second within SPAWN_TIMEOUT_MS of the first, is replaced by a fresh one.
    let timer = null;
    let stage = "start"; // what a stall stopped: the worker's start, or the pool's
    const stalled = new Promise((resolve) => {
      timer = setTimeout(() => resolve(true), START_TIMEOUT_MS);
      const onProgress = (event) => {
        if (event.stage === "spawning") {
          clearTimeout(timer);
          stage = "spawn";
          timer = setTimeout(() => resolve(true), SPAWN_TIMEOUT_MS);
        }
        if (event.stage === "spawned") clearTimeout(timer);
      };
      this._initRequest = this._request("init", init, { onProgress });
    });
    const info = await Promise.race([this._initRequest, stalled]).finally(() => clearTimeout(timer));
    if (info !== true) {
      this.threads = info.threads;
      return null;
    }
    this.worker.terminate();
    this.worker = null;
    this._failAll(new PyRunnerError("BridgeError", `the engine worker stalled (${stage})`));
    this._initRequest.catch(() => {});
    return stage;
  }

  info() {
    return {
      build: this.build,
      simd: this.simd, // "relaxed" or "simd128": which variant of the build runs
      threads: this.threads,
      crossOriginIsolated: Boolean(globalThis.crossOriginIsolated),
      baseUrl: this.baseUrl, // what relative model URLs are resolved against
      notice: this.notice, // why auto chose st where mt was expected, or null
    };
  }

  /**
   * Send one request of web/shared/protocol.js ("requests") to the engine worker and resolve with its result.
   * fields: the request's declared fields (anything else is refused); callbacks: {onProgress({stage, loaded,
   * total}), onToken(tokenId, pieceBytes: Uint8Array)}, for the events the request declares. Every request goes
   * this one way; only "load" and "cache_delete" are prepared first (PREPARE: URLs resolved against baseUrl).
   */
  request(type, fields = {}, callbacks = {}) {
    try {
      PyRunnerProtocol.checkRequest(type, fields);
      const prepare = Object.hasOwn(PREPARE, type) ? PREPARE[type] : null;
      return this._request(type, prepare ? prepare(fields, this.baseUrl) : { ...fields }, callbacks);
    } catch (err) {
      return Promise.reject(err); // a rejection, as every other failure of a request is
    }
  }

  /**
   * The first `length` bytes of a model (for the GGUF header check before any download), and its total size
   * when known: {bytes: Uint8Array, total: number|null}. A URL is asked for with a Range request; a server that
   * ignores Range sends the whole file, so the body is cancelled once enough bytes have arrived.
   */
  async readPrefix(source, length) {
    const first = Array.isArray(source) ? source[0] : source;
    if (typeof first !== "string") {
      return { bytes: new Uint8Array(await first.slice(0, length).arrayBuffer()), total: first.size };
    }
    const url = modelUrl(first, this.baseUrl);
    const cached = await globalThis.PyRunnerModelCache.peek(url.href); // a complete cache entry: read it, no network request
    if (cached) return { bytes: new Uint8Array(await cached.slice(0, length).arrayBuffer()), total: cached.size };
    const controller = new AbortController();
    this.prefixController = controller;
    let response;
    try {
      response = await fetch(url.href, { headers: { Range: `bytes=0-${length - 1}` }, signal: controller.signal });
    } catch (err) {
      if (controller.signal.aborted) throw new PyRunnerError("AbortError", "loading was aborted", { stage: "checking" });
      const failure = await fetchFailure(url, err, controller.signal);
      if (controller.signal.aborted) throw new PyRunnerError("AbortError", "loading was aborted", { stage: "checking" });
      throw failure;
    } finally {
      if (this.prefixController === controller) this.prefixController = null;
    }
    if (!response.ok) {
      const fields = { stage: "checking", url: url.href, status: response.status };
      throw new PyRunnerError("NetworkError", `fetching ${url.href} failed: HTTP ${response.status}`, fields);
    }
    const range = /\/(\d+)$/.exec(response.headers.get("Content-Range") || "");
    const total = range ? Number(range[1]) : response.status === 200 ? Number(response.headers.get("Content-Length")) || null : null;
    const reader = response.body.getReader();
    const chunks = [];
    let received = 0;
    // A 206 body is the range we asked for: read it to its end, so that no request is left cancelled. A server
    // that ignored Range sends the whole model: stop reading once the prefix is there.
    const limit = response.status === 206 ? Infinity : length;
    while (received < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      received += value.byteLength;
    }
    if (received >= limit) reader.cancel().catch(() => {});
    const bytes = new Uint8Array(Math.min(received, length));
    let offset = 0;
    for (const chunk of chunks) {
      const part = chunk.subarray(0, bytes.length - offset);
      bytes.set(part, offset);
      offset += part.length;
      if (offset >= bytes.length) break;
    }
    return { bytes, total };
  }

  /** Aborts the running request of that kind ("load" | "generate" | "embed"), if any. */
  abort(kind) {
    if (kind === "load" && this.prefixController) this.prefixController.abort();
    const id = this.active[kind];
    if (id && this.worker) this.worker.postMessage({ type: "abort", target: id });
  }

  terminate() {
    if (this.worker) {
      this.worker.terminate();
      this.worker = null;
    }
    this._failAll(new PyRunnerError("BridgeError", "the runner was terminated"));
  }

  _request(type, fields, callbacks = {}) {
    if (!this.worker) return Promise.reject(new PyRunnerError("BridgeError", "the bridge is not started"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, kind: type, ...callbacks });
      this.active[type] = id;
      this.worker.postMessage({ id, type, ...fields });
    });
  }

  _onMessage(msg) {
    const entry = this.pending.get(msg.id);
    if (!entry) return;
    switch (msg.type) {
      case "progress":
        if (entry.onProgress) entry.onProgress({ stage: msg.stage, loaded: msg.loaded, total: msg.total });
        return;
      case "token":
        if (entry.onToken) entry.onToken(msg.token, msg.piece);
        return;
      case "result":
        this._settle(msg.id, entry);
        entry.resolve(msg.value);
        return;
      case "error":
        this._settle(msg.id, entry);
        entry.reject(PyRunnerError.fromReply(msg));
        return;
    }
  }

  _settle(id, entry) {
    this.pending.delete(id);
    if (this.active[entry.kind] === id) delete this.active[entry.kind];
  }

  _failAll(error) {
    for (const [id, entry] of this.pending) {
      this._settle(id, entry);
      entry.reject(error);
    }
  }
}
