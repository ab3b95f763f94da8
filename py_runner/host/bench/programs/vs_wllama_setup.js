// `bench vs-wllama`: py_runner's bridge (st, in the variant a page gets: relaxed SIMD where the browser has it)
// and wllama on the same model in one page, kept as window.__vs; one warm-up run each (vs_wllama_run.js defines
// window.__vsRun). Returns the SIMD variant py_runner runs.
async ({url, nCtx, threads, prompt, nPredict}) => {
  const { Bridge } = await import("/web/page/bridge.js");
  const builds = Object.fromEntries(["st", "mt", "st-relaxed", "mt-relaxed"].map((b) => [b, { js: `/build/${b}/pr_glue.js` }]));
  const bridge = new Bridge({ ...builds, worker: "/web/engine/worker.js" }, { build: "st", threads });
  const { simd } = await bridge.start();
  await bridge.request("load", { source: url, n_ctx: nCtx, n_threads: threads, cache: false });
  const { Wllama } = await import("/wllama/esm/index.js");
  const wllama = new Wllama({ default: "/wllama/esm/wasm/wllama.wasm" }, { suppressNativeLog: true });
  // n_gpu_layers 0: headless Chromium has navigator.gpu but no adapter; both engines on the CPU
  await wllama.loadModelFromUrl(new URL(url, location.href).href,
                                { n_ctx: nCtx, n_threads: threads, n_gpu_layers: 0, useCache: false });
  window.__vs = { bridge, wllama, options: { n_predict: nPredict, temp: 0, seed: 0, n_threads: threads,
                                             ignore_eos: true } };
  for (const engine of ["py_runner", "wllama"]) await window.__vsRun(engine, "warm-up: " + prompt);
  return simd;
}
