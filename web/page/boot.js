// Boots Pyodide from this origin and installs py_runner: shared by the demo page, the headless harness, an
// exported site and Python hosted in a module worker (nothing here needs `window` or `document`).
// micropip is loaded from its wheel URL, not by name: by name, Pyodide checks it against the sha256 in its lock
// file, which is for Pyodide's own build of micropip.

/**
 * What relative URLs resolve against when nobody names a base: `location.href` when it is http(s) (a page, a
 * worker started from a URL), else the origin (a worker started from a `blob:` URL has no folder). The same rule
 * as py_runner's default_base_url() (py_runner/_transport/pyodide.py), for Python that was not booted here.
 */
export function defaultBaseUrl() {
  return /^https?:$/.test(location.protocol) ? location.href : `${location.origin}/`;
}

/** url resolved against `base` (default: defaultBaseUrl()); the one helper web/site/harness.js shares. */
export function absolute(url, base = defaultBaseUrl()) {
  return new URL(url, base).href;
}

/**
 * The config URL a page names with <meta name="py-runner-config" content="site.json"> (an exported site), else the
 * dev server's /config.json; resolved against `base`.
 */
export function configUrl(base = defaultBaseUrl()) {
  const meta = globalThis.document && document.querySelector('meta[name="py-runner-config"]');
  return absolute((meta && meta.content) || "/config.json", base);
}

/**
 * @param {{baseUrl?: string, configUrl?: string, onStatus?: (text: string) => void, stdout?: (line: string) => void,
 *          stderr?: (line: string) => void}} options  baseUrl: the page's URL, for a worker (default:
 *   defaultBaseUrl()); relative model paths in Python resolve against it (globalThis.__pyRunnerBaseUrl).
 * @returns the Pyodide instance, with py_runner importable. The config's paths are resolved against the config's
 *   own URL (a site under any base path works); globalThis.__pyRunnerConfig holds it, and
 *   globalThis.__pyRunnerArtifacts the engine's URLs, which LlamaRunner() uses when given no Artifacts.
 */
export async function bootPyodide(options = {}) {
  const status = options.onStatus || (() => {});
  status("Loading configuration…");
  const baseUrl = absolute(options.baseUrl || defaultBaseUrl());
  globalThis.__pyRunnerBaseUrl = baseUrl;
  const url = absolute(options.configUrl || configUrl(baseUrl), baseUrl);
  const configResp = await fetch(url);
  if (!configResp.ok) throw new Error(`GET ${url}: HTTP ${configResp.status}`);
  const config = await configResp.json();
  const resolve = (path) => new URL(path, url).href;
  globalThis.__pyRunnerConfig = config;
  globalThis.__pyRunnerConfigUrl = url;
  globalThis.__pyRunnerArtifacts = {
    single_thread: resolve(config.build.st + "pr_glue.js"),
    multi_thread: resolve(config.build.mt + "pr_glue.js"),
    worker: resolve(config.web + "engine/worker.js"),
    bridge: resolve(config.web + "page/bridge.js"),
    // the relaxed-SIMD variants, where the site serves them (the bridge picks them where the browser can)
    single_thread_relaxed: config.build["st-relaxed"] ? resolve(config.build["st-relaxed"] + "pr_glue.js") : null,
    multi_thread_relaxed: config.build["mt-relaxed"] ? resolve(config.build["mt-relaxed"] + "pr_glue.js") : null,
  };

  status("Loading Pyodide…");
  const indexURL = resolve(config.pyodide);
  const { loadPyodide } = await import(new URL("pyodide.mjs", indexURL).href);
  let pyodide;
  try {
    pyodide = await loadPyodide({ indexURL, stdout: options.stdout, stderr: options.stderr });
  } catch (e) {
    // Pyodide's own start failed, before any of py_runner's or the page's code ran: marked so that a controller
    // can tell it from a failure of that code (WebKitGTK's JavaScriptCore now and then traps inside Pyodide's
    // start with "Out of bounds memory access"; a new page starts).
    if (e && typeof e === "object") e.pyRunnerPhase = "pyodide-start";
    throw e;
  }

  status("Installing py_runner…");
  if (!config.micropip_wheel) throw new Error("no micropip wheel on the server (run scripts/fetch_assets.sh)");
  await pyodide.loadPackage(resolve(config.micropip_wheel), {
    messageCallback: () => {},
    errorCallback: (msg) => (options.stderr || console.error)(msg),
  });
  const micropip = pyodide.pyimport("micropip");
  try {
    await micropip.install(resolve(config.py_runner_wheel));
  } finally {
    micropip.destroy();
  }
  return pyodide;
}

/**
 * A page's whole start: boot Pyodide (progress in `statusElement`), then run the page's own Python file (fetched
 * beside the page); a failure shows in `statusElement` with class "error". The demo and chat pages use it.
 */
export async function runPagePython(pythonFile, statusElement) {
  try {
    const pyodide = await bootPyodide({ onStatus: (text) => (statusElement.textContent = text) });
    const source = await (await fetch(pythonFile)).text();
    await pyodide.runPythonAsync(source, { filename: pythonFile.split("/").pop() });
  } catch (err) {
    statusElement.textContent = String(err);
    statusElement.className = "error";
  }
}
