// `bench generate` from JavaScript alone (no Python, no Pyodide proxies), the baseline for streaming: one
// bridge and engine of its own, kept as window.__benchBridge; the same requests as the Python path.
async ({build, simd, threads, url, prompt, nPredict, ctx_size, cache_type}) => {
  const { Bridge } = await import("/web/page/bridge.js");
  const builds = Object.fromEntries(["st", "mt", "st-relaxed", "mt-relaxed"].map((b) => [b, { js: `/build/${b}/pr_glue.js` }]));
  const bridge = new Bridge({ ...builds, worker: "/web/engine/worker.js" }, { build, simd, threads });
  await bridge.start();
  // the glue's PR_CACHE_TYPE_* constant for the type's name (the bridge module's import defined the protocol)
  const type = cache_type && globalThis.PyRunnerProtocol.glue[`PR_CACHE_TYPE_${cache_type.toUpperCase()}`];
  const kv = cache_type ? { type_k: type, type_v: type } : {};
  await bridge.request("load", { source: url, n_ctx: ctx_size, n_threads: threads, cache: false, ...kv });
  // Fields left out take web/shared/protocol.js's defaults, the values the Python side sends: both do the same work.
  window.__benchOptions = { n_predict: nPredict, temp: 0, seed: 0, n_threads: threads };
  const warmUp = { ...window.__benchOptions, prompt: "warm-up: " + prompt };
  await bridge.request("generate", warmUp, { onToken: () => {} });
  window.__benchBridge = bridge;
}
