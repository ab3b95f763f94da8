// Boots Pyodide from this origin and installs py_runner: shared by the demo page and the headless harness.
// micropip is loaded from its wheel URL, not by name: by name, Pyodide checks it against the sha256 in its lock
// file, which is for Pyodide's own build of micropip.

/** url resolved against this page (the one helper web/harness.js shares). */
export function absolute(url) {
  return new URL(url, location.href).href;
}

/**
 * @param {{onStatus?: (text: string) => void, stdout?: (line: string) => void, stderr?: (line: string) => void}} options
 * @returns the Pyodide instance, with py_runner importable; window.__pyRunnerConfig holds /config.json
 */
export async function bootPyodide(options = {}) {
  const status = options.onStatus || (() => {});
  status("Loading configuration…");
  const configResp = await fetch("/config.json");
  if (!configResp.ok) throw new Error(`GET /config.json: HTTP ${configResp.status}`);
  const config = await configResp.json();
  window.__pyRunnerConfig = config;

  status("Loading Pyodide…");
  const indexURL = absolute(config.pyodide);
  const { loadPyodide } = await import(new URL("pyodide.mjs", indexURL).href);
  const pyodide = await loadPyodide({ indexURL, stdout: options.stdout, stderr: options.stderr });

  status("Installing py_runner…");
  if (!config.micropip_wheel) throw new Error("no micropip wheel on the server (run scripts/fetch_assets.sh)");
  await pyodide.loadPackage(absolute(config.micropip_wheel), {
    messageCallback: () => {},
    errorCallback: (msg) => (options.stderr || console.error)(msg),
  });
  const micropip = pyodide.pyimport("micropip");
  try {
    await micropip.install(absolute(config.py_runner_wheel));
  } finally {
    micropip.destroy();
  }
  return pyodide;
}
