// py_runner bridge: the main-thread ES module that Python (Pyodide) calls. It owns the engine worker, numbers
// requests, routes the worker's replies to per-request callbacks and promises, and forwards aborts.

export class BridgeError extends Error {
  constructor(name, message, stage) {
    super(message);
    this.name = name;
    this.stage = stage || null;
  }
}

/** True when the page may use the pthreads build (cross-origin isolated, SharedArrayBuffer present). */
export function canUseThreads() {
  return Boolean(globalThis.crossOriginIsolated) && typeof SharedArrayBuffer !== "undefined";
}

export class Bridge {
  /**
   * @param {{st: {js: string}, mt: {js: string}, worker: string}} artifacts  URLs of the builds and the worker
   * @param {{build?: "auto"|"st"|"mt", threads?: number}} options
   */
  constructor(artifacts, options = {}) {
    this.artifacts = artifacts;
    this.options = options;
    this.worker = null;
    this.build = null;
    this.threads = 1;
    this.nextId = 1;
    this.pending = new Map(); // id -> {resolve, reject, onProgress, onToken, kind}
    this.active = {}; // kind ("load" | "generate") -> id of the running request
  }

  async start() {
    if (this.worker) return this.info();
    const wanted = this.options.build || "auto";
    if (wanted === "mt" && !canUseThreads()) {
      throw new BridgeError("BridgeError", "the multi-thread build needs a cross-origin isolated page (COOP/COEP)");
    }
    this.build = wanted === "auto" ? (canUseThreads() ? "mt" : "st") : wanted;
    const hardware = navigator.hardwareConcurrency || 1;
    const threads = this.build === "mt" ? this.options.threads || hardware : 1;
    const url = (u) => new URL(u, location.href).href;

    this.worker = new Worker(url(this.artifacts.worker));
    this.worker.onmessage = (event) => this._onMessage(event.data);
    this.worker.onerror = (event) => {
      event.preventDefault();
      this._failAll(new BridgeError("BridgeError", `engine worker failed: ${event.message || "unknown error"}`));
    };
    const info = await this._request("init", { build: this.build, moduleUrl: url(this.artifacts[this.build].js), threads });
    this.threads = info.threads;
    return this.info();
  }

  info() {
    return { build: this.build, threads: this.threads, crossOriginIsolated: Boolean(globalThis.crossOriginIsolated) };
  }

  /** source: a URL string, a Blob/File, or an Array of Blobs/Files (split GGUF). Resolves with the metadata. */
  load(source, options = {}, onProgress = null) {
    const fields = { n_ctx: options.n_ctx, n_batch: options.n_batch, n_threads: options.n_threads };
    if (typeof source === "string") {
      fields.url = new URL(source, location.href).href;
    } else {
      const blobs = Array.isArray(source) ? source : [source];
      fields.blobs = blobs; // structured clone of a Blob shares its bytes, it does not copy them
      fields.name = options.name || blobs[0].name || "model.gguf";
    }
    return this._request("load", fields, { onProgress });
  }

  /** onToken(tokenId, pieceBytes: Uint8Array). Resolves with {tokens, prompt_tokens, finish_reason, timings}. */
  generate(prompt, options = {}, onToken = null) {
    return this._request("generate", { ...options, prompt }, { onToken });
  }

  unload() {
    return this._request("unload", {});
  }

  /** Aborts the running request of that kind ("load" | "generate"), if any. */
  abort(kind) {
    const id = this.active[kind];
    if (id && this.worker) this.worker.postMessage({ type: "abort", target: id });
  }

  terminate() {
    if (this.worker) {
      this.worker.terminate();
      this.worker = null;
    }
    this._failAll(new BridgeError("BridgeError", "the runner was terminated"));
  }

  _request(type, fields, callbacks = {}) {
    if (!this.worker) return Promise.reject(new BridgeError("BridgeError", "the bridge is not started"));
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
        entry.reject(new BridgeError(msg.name, msg.message, msg.stage));
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
