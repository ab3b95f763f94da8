// Python in a module worker: boots Pyodide with py_runner (web/page/boot.js) off the page's main thread and runs the
// Python code it is sent, as PyScript's worker mode and JupyterLite kernels run Python. Start it from a URL or
// from a `blob:` module that imports it; py_runner's own engine worker is then a worker of this one.
//
//   const py = new Worker("/web/page/python_worker.js", { type: "module" });
//   py.postMessage({ id: 1, boot: { baseUrl: location.href } });   // optional, first: the page's URL (and
//                                                                  // configUrl: an exported site's site.json)
//   py.postMessage({ id: 2, code: "await something()" });          // top-level await allowed
//   py.onmessage = ({ data }) => ...  // {id, value} | {id, error} per request; {stream, text} for print()
//
// `baseUrl` is what relative URLs mean in Python here (model paths, cache keys): give the page's URL so that they
// mean what they mean on the page (default: this worker's URL, or the origin for a `blob:` worker). A worker has
// no <meta name="py-runner-config">: an exported site passes its site.json as `configUrl` (default: the dev
// server's /config.json).
// The last expression's value comes back converted to JS (dicts as objects); nothing here needs `window`.

import { bootPyodide } from "./boot.js";

let booting = null; // the one boot: a Promise of the Pyodide instance

function boot(options = {}) {
  if (!booting) {
    booting = bootPyodide({
      baseUrl: options.baseUrl,
      configUrl: options.configUrl,
      stdout: (text) => self.postMessage({ stream: "stdout", text }),
      stderr: (text) => self.postMessage({ stream: "stderr", text }),
    });
  }
  return booting;
}

async function run(pyodide, code) {
  const value = await pyodide.runPythonAsync(code);
  if (value && typeof value.toJs === "function") {
    const converted = value.toJs({ dict_converter: Object.fromEntries });
    value.destroy();
    return converted;
  }
  return value;
}

self.onmessage = async ({ data }) => {
  const { id } = data;
  try {
    if (data.boot) {
      if (booting) throw new Error("Pyodide is already booted: send `boot` first, once");
      await boot(data.boot);
      self.postMessage({ id, value: globalThis.__pyRunnerBaseUrl });
      return;
    }
    self.postMessage({ id, value: await run(await boot(), data.code) });
  } catch (err) {
    self.postMessage({ id, error: String((err && err.message) || err) });
  }
};
