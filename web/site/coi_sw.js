// py_runner cross-origin isolation for static hosts: one classic script that is both a service worker and its loader.
// Hosts such as GitHub Pages cannot send COOP/COEP, so the page cannot be crossOriginIsolated (SharedArrayBuffer, the
// mt build). Run as a service worker, this file adds those headers to the site's own responses; loaded by a page with
// <script src="coi_sw.js"></script>, it registers itself and reloads the page once so the page comes through it.
// The page side reports window.__pyRunnerCoi = {state, reason} and window.__pyRunnerCoiReady (a Promise of the final
// state); ?coi=0 in the page URL, or window.__pyRunnerCoiDisabled = true set before it runs, opts out.
"use strict";

if (typeof ServiceWorkerGlobalScope !== "undefined" && self instanceof ServiceWorkerGlobalScope) {
  // ---- Service worker side ----
  const ISOLATION_HEADERS = {
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "cross-origin",
  };
  const WORKER_DESTINATIONS = ["worker", "sharedworker", "iframe", "frame"];
  // new Response() throws for a status outside 200-599 (0 of opaque redirects) and for a body with 204/205/304.
  const canRewrap = (status) => status >= 200 && status <= 599 && ![204, 205, 304].includes(status);

  // Take over at once: this worker keeps no caches, so an old and a new version are interchangeable.
  self.addEventListener("install", () => self.skipWaiting());
  self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

  self.addEventListener("fetch", (event) => {
    const request = event.request;
    // DevTools issues only-if-cached requests, and fetch() throws on them unless their mode is same-origin.
    if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
    // Cross-origin requests are left to the browser: a CORS response passes COEP without CORP, an opaque one cannot
    // be changed from here, and wrapping would pipe multi-GB model downloads through this worker for nothing.
    if (new URL(request.url).origin !== self.location.origin) return;
    // Only documents and worker scripts need the headers: COEP and COOP are read from them, and a same-origin
    // subresource (a script, the wasm, a model fetched by the engine) passes COEP as it is. The rest goes
    // straight to the network: a model download is not piped through this worker, and a body the page cancels
    // (the GGUF header probe reads a prefix and stops) is not an error here (Firefox reports one as a page error).
    if (request.mode !== "navigate" && !WORKER_DESTINATIONS.includes(request.destination)) return;
    // fetch(request) keeps the Range and If-Range headers, so resumed downloads still get their 206.
    event.respondWith(fetch(request).then((response) => {
      // Opaque redirects (of navigations), redirects to other origins and bodiless statuses go back untouched.
      if (response.type !== "basic" || !canRewrap(response.status)) return response;
      // A dedicated worker takes its COEP from its own script response, and a require-corp page refuses to start a
      // worker (engine or pthread) without it.
      // Copying the headers keeps Content-Range, Content-Type (application/wasm for streaming compile) and ETag.
      const headers = new Headers(response.headers);
      for (const [name, value] of Object.entries(ISOLATION_HEADERS)) headers.set(name, value);
      return new Response(response.body, {status: response.status, statusText: response.statusText, headers});
    }));
  });
} else if (typeof window !== "undefined") {
  // ---- Page side ----
  (() => {
    const RELOAD_KEY = "py_runner-coi-reloaded";
    const FINAL = ["isolated", "unavailable", "failed", "disabled"];
    let resolveReady;
    window.__pyRunnerCoiReady = new Promise((resolve) => { resolveReady = resolve; });
    const report = (state, reason) => {
      window.__pyRunnerCoi = reason ? {state, reason} : {state};
      // "registering" and "reloading" are on the way; a reload replaces the page, so its promise never settles.
      if (FINAL.includes(state)) resolveReady(state);
    };

    const container = navigator.serviceWorker; // undefined outside secure contexts and where workers are off
    const script = document.currentScript; // null when loaded as a module: then there is no URL to register
    // The worker's scope is its own folder, the widest one allowed without a Service-Worker-Allowed header, so that
    // worker scripts in sibling folders (the builds) are controlled too; it works under any subpath.
    const scope = script && new URL("./", script.src).href;

    // Did the previous load of this tab reload for us? Read once and clear, so a later manual reload may retry once.
    let reloaded = false;
    let storage = null;
    try {
      storage = window.sessionStorage;
      reloaded = storage.getItem(RELOAD_KEY) !== null;
      storage.removeItem(RELOAD_KEY);
    } catch (err) {
      storage = null; // storage blocked: a reload could not be guarded against looping, so none is attempted
    }
    const reload = () => {
      storage.setItem(RELOAD_KEY, "1");
      report("reloading");
      window.location.reload();
    };

    const disabled = new URLSearchParams(window.location.search).get("coi") === "0" ||
      window.__pyRunnerCoiDisabled === true;
    if (disabled) {
      if (!container || !script) return report("disabled");
      window.__pyRunnerCoi = {state: "disabled"}; // the promise waits: unregistering may still reload the page
      container.getRegistration().then(async (reg) => {
        const ours = reg && [reg.active, reg.waiting, reg.installing].some((w) => w && w.scriptURL === script.src);
        // A page that came through the worker is still isolated after unregistering: reload once for the plain page.
        if (ours && (await reg.unregister()) && container.controller && !reloaded && storage) return reload();
        report("disabled");
      }).catch((err) => report("disabled", `could not unregister the service worker: ${err}`));
      return;
    }

    if (window.crossOriginIsolated === true) {
      report("isolated", container && container.controller ? "headers added by the service worker" : "server headers");
      return;
    }
    if (typeof window.crossOriginIsolated !== "boolean") return report("unavailable", "no crossOriginIsolated here");
    if (!window.isSecureContext) return report("unavailable", "not a secure context (needs https or localhost)");
    if (!container) return report("unavailable", "no navigator.serviceWorker (e.g. private browsing)");
    if (!storage) return report("unavailable", "no sessionStorage to guard the reload");
    if (!script) return report("failed", "coi_sw.js must be loaded by a classic <script src>");
    if (!window.location.href.startsWith(scope)) return report("failed", `the page is outside the scope ${scope}`);
    if (reloaded) {
      return report("failed", container.controller
        ? "the page came through the service worker but is still not isolated (a non-isolated parent frame?)"
        : "the service worker did not take control of the reloaded page");
    }

    report("registering");
    container.register(script.src, {scope})
      .then((reg) => new Promise((resolve, reject) => {
        // Wait for the newest worker to be activated: only then does a reload go through it.
        const worker = reg.installing || reg.waiting || reg.active;
        const check = () => {
          if (worker.state === "activated") resolve();
          else if (worker.state === "redundant") reject(new Error("the service worker became redundant"));
        };
        worker.addEventListener("statechange", check);
        check();
      }))
      // The page's own document came without COOP/COEP, so even a controlled page must be loaded again.
      .then(reload)
      .catch((err) => report("failed", `could not install the service worker: ${err}`));
  })();
}
