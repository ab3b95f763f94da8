// py_runner harness (ES module): runs a Python program in Pyodide in a page. Loaded by web/site/run.html (the dev
// server's headless runner) and by the index.html of an exported site.
//
//   run.html?script=/files/app.py&argv=["a","b"]      a script the dev server serves
//   index.html (<meta name="py-runner-config" content="site.json">)   the app the config names: its files are
//                                                     written into Pyodide's file system and main.py is run there
//
// ?script= is code: only a page that opts in with <meta name="py-runner-scripts" content="same-origin"> (run.html)
// takes it, and only a path on the page's own origin, fetched without following redirects. An exported
// index.html has no such meta and runs its own app alone: otherwise any link to it (?script=data:..., or a
// script on another origin that sends CORS headers) would run code in the site's origin, and on the dev
// server any web page could open a tab that reads /models/ and /config.json, undoing its DNS-rebinding defence.
//
// Boots Pyodide and installs py_runner's wheel with web/page/boot.js (micropip is loaded by its wheel URL:
// by name it fails the lock file's integrity check), then runs the program with pyodide.runPythonAsync
// (top-level await allowed, sys.argv set). Output goes to <pre id="py-runner-output"> and, when the controlling
// program defines them (Playwright expose_function), to window.__pyRunnerOutput(stream, text), the exit status to
// window.__pyRunnerExit(code). document.body.dataset.pyRunnerStatus goes "running" -> "done" | "error", with the
// exit status in data-py-runner-exit, so people and tests can watch it; data-py-runner-boot-failed="pyodide-start"
// says Pyodide itself failed to start, before any other code ran. Everything is fetched from this site.

import { bootPyodide } from "../page/boot.js";

const params = new URLSearchParams(location.search);

// An error as one text: its message, then its stack. Chromium's stack starts with the message; Firefox's and
// WebKit's hold only the frames, so the message would be lost.
function describe(err) {
  if (!err || typeof err !== "object") return String(err);
  const stack = String(err.stack || "");
  const message = err.message ? `${err.name || "Error"}: ${err.message}` : "";
  return message && !stack.includes(err.message) ? `${message}\n${stack}` : stack || message || String(err);
}
const SCRIPTS_META = 'meta[name="py-runner-scripts"][content="same-origin"]';

/**
 * The absolute URL of `script` (a ?script= value) when it is a path on this page's origin; else an Error that
 * says why. Refused: a scheme (data:, blob:, javascript:, another http(s) origin), a protocol-relative
 * "//host", backslashes and control characters (the URL parser reads a backslash as "/" and drops tabs and
 * newlines: "/\host" and "/<tab>/host" are "//host"); what is left must resolve to this origin, over http(s).
 */
export function sameOriginScriptUrl(script, page = location.href) {
  const refuse = (why) => new Error(`?script=${JSON.stringify(script)} refused: ${why}`);
  if (/[\\\u0000-\u001f\u007f]/.test(script)) return refuse("backslash or control character");
  if (/^[a-z][a-z0-9+.-]*:/i.test(script) || script.startsWith("//")) {
    return refuse("only a path on this server is run (no scheme, no //host)");
  }
  let url;
  try {
    url = new URL(script, page);
  } catch {
    return refuse("not a URL path");
  }
  const origin = new URL(page).origin;
  if (!/^https?:$/.test(url.protocol) || url.origin !== origin) return refuse(`not on ${origin}`);
  return url.href;
}

const statusEl = document.getElementById("py-runner-status");
const outputEl = document.getElementById("py-runner-output");
const APP_DIR = "/home/pyodide/app"; // an exported app's files, and its working folder

// ---- output to the controller -------------------------------------------------------------------

const pending = new Set(); // promises of exposed-function calls still in flight

function track(p) {
  if (p && typeof p.then === "function") {
    pending.add(p);
    p.then(
      () => pending.delete(p),
      () => pending.delete(p),
    );
  }
}

async function drain() {
  while (pending.size) await Promise.allSettled([...pending]);
}

function emit(stream, text) {
  if (!text) return;
  if (typeof window.__pyRunnerOutput === "function") {
    track(window.__pyRunnerOutput(stream, text));
  } else {
    (stream === "stderr" ? console.error : console.log)(text.replace(/\n$/, ""));
  }
  if (outputEl) {
    const span = document.createElement("span");
    span.className = stream;
    span.textContent = text;
    outputEl.appendChild(span);
  }
}

// Pyodide's raw writer: bytes as Python writes them (no line batching, so "\r" progress lines and
// token streams arrive as soon as Python flushes). A streaming decoder keeps split UTF-8 sequences whole.
function makeWriter(stream) {
  const decoder = new TextDecoder("utf-8");
  return {
    isatty: false,
    write(buffer) {
      emit(stream, decoder.decode(buffer, { stream: true }));
      return buffer.length;
    },
    flush() {
      emit(stream, decoder.decode());
    },
  };
}

let exited = false;
async function exit(code) {
  if (exited) return;
  exited = true;
  window.__pyRunnerExitCode = code;
  if (statusEl) statusEl.textContent = `exited with status ${code}`;
  document.body.dataset.pyRunnerExit = String(code);
  document.body.dataset.pyRunnerStatus = code === 0 ? "done" : "error";
  await drain();
  if (typeof window.__pyRunnerExit === "function") {
    await window.__pyRunnerExit(code);
  } else {
    console.log(`py_runner: exit status ${code}`);
  }
}

function setStatus(text) {
  if (statusEl) statusEl.textContent = text;
}

// Pyodide's fatal error (a stack overflow inside the interpreter, an abort) leaves it unable to run Python and
// the program's promise unsettled: the run ends here, with status 1, instead of leaving the controller to wait
// out its timeout. window.__pyRunnerFatal tells a controller that runs code in the page itself (the pytest
// plugin) the same. Reported through Pyodide's own hook, and by the error's mark should that hook go.
function onFatal(error) {
  if (window.__pyRunnerFatal) return;
  const cause = String((error && error.message) || error);
  window.__pyRunnerFatal = cause;
  emit("stderr", `py_runner harness: Pyodide suffered a fatal error and can no longer run Python (${cause})\n`);
  if (document.body.dataset.pyRunnerStatus === "running") exit(1);
}

window.addEventListener("error", (ev) => {
  emit("stderr", `page error: ${ev.message}\n`);
  if (ev.error && ev.error.pyodide_fatal_error) onFatal(ev.error);
});
window.addEventListener("unhandledrejection", (ev) => {
  const r = ev.reason;
  emit("stderr", `unhandled rejection: ${describe(r)}\n`);
  if (r && r.pyodide_fatal_error) onFatal(r);
});

// ---- the Python side of the harness -------------------------------------------------------------

// Runs the program as __main__ with top-level await; returns its exit status (SystemExit code, 1 on an
// uncaught exception after printing the traceback without this driver's own frame).
const DRIVER = `
import ast
import builtins
import linecache
import sys
import traceback


def _exit_status(code):
    if code is None:
        return 0
    if isinstance(code, bool):
        return int(code)
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


async def _py_runner_run(source, filename, argv):
    sys.argv = list(argv)
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns = {"__name__": "__main__", "__file__": filename, "__builtins__": builtins}
    try:
        code = compile(source, filename, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
        result = eval(code, ns)
        if result is not None and hasattr(result, "__await__"):
            await result
        status = 0
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException as exc:
        traceback.print_exception(type(exc), exc, exc.__traceback__.tb_next)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    return status
`;

async function main() {
  document.body.dataset.pyRunnerStatus = "running";
  // Checked before anything loads: a refused script fails at once, with nothing fetched.
  const takesScripts = document.querySelector(SCRIPTS_META) !== null;
  const script = takesScripts ? params.get("script") : null;
  if (!takesScripts && params.has("script")) console.warn("py_runner: this page runs its own app; ?script= ignored");
  const scriptUrl = script ? sameOriginScriptUrl(script) : null;
  if (scriptUrl instanceof Error) throw scriptUrl;
  const argv = JSON.parse((takesScripts && params.get("argv")) || "[]");
  if (!Array.isArray(argv)) throw new Error("?argv= must be a JSON list");
  // An exported site's coi_sw.js may reload the page once to make it cross-origin isolated: wait for its verdict
  // before any download starts.
  if (window.__pyRunnerCoiReady) await window.__pyRunnerCoiReady;
  const pyodide = await bootPyodide({
    onStatus: setStatus,
    stdout: (line) => emit("stdout", line + "\n"),
    stderr: (line) => emit("stderr", line + "\n"),
  });
  const out = makeWriter("stdout");
  const err = makeWriter("stderr");
  pyodide.setStdout(out);
  pyodide.setStderr(err);
  if (pyodide._api) pyodide._api.on_fatal = onFatal;
  window.__pyRunnerPyodide = pyodide;
  window.__pyRunnerReady = true;

  const app = globalThis.__pyRunnerConfig.app;
  let source;
  let filename;
  if (script) {
    setStatus(`running ${script}…`);
    // redirect "error": a same-origin path that redirects elsewhere is not run either.
    const scriptResp = await fetch(scriptUrl, { redirect: "error", credentials: "same-origin" });
    if (!scriptResp.ok) throw new Error(`GET ${script}: HTTP ${scriptResp.status}`);
    source = await scriptResp.text();
    filename = decodeURIComponent(new URL(scriptUrl).pathname.split("/").pop() || "main.py");
  } else if (app) {
    setStatus("loading the app…");
    source = await installApp(pyodide, app);
    filename = `${APP_DIR}/${app.main}`;
    setStatus(`running ${app.main}…`);
  } else {
    document.body.dataset.pyRunnerStatus = "ready";
    setStatus("ready (no ?script= given)");
    return null;
  }

  const ns = pyodide.globals.get("dict")();
  try {
    pyodide.runPython(DRIVER, { globals: ns });
    ns.set("_source", source);
    ns.set("_filename", filename);
    const pyArgv = pyodide.toPy([filename, ...argv.map(String)]);
    ns.set("_argv", pyArgv);
    pyArgv.destroy();
    const status = await pyodide.runPythonAsync("await _py_runner_run(_source, _filename, _argv)", {
      globals: ns,
      filename: "<py_runner harness>",
    });
    out.flush();
    err.flush();
    return status;
  } finally {
    ns.destroy();
  }
}

// The app's files into Pyodide's file system (so main.py imports its modules and opens its data files as on a
// desktop), the folder made the working directory and first on sys.path. Returns main's source.
async function installApp(pyodide, app) {
  const base = new URL(app.folder, globalThis.__pyRunnerConfigUrl);
  let mainSource = null;
  for (const rel of app.files) {
    const response = await fetch(new URL(rel.split("/").map(encodeURIComponent).join("/"), base));
    if (!response.ok) throw new Error(`GET ${app.folder}${rel}: HTTP ${response.status}`);
    const bytes = new Uint8Array(await response.arrayBuffer());
    const path = `${APP_DIR}/${rel}`;
    pyodide.FS.mkdirTree(path.slice(0, path.lastIndexOf("/")));
    pyodide.FS.writeFile(path, bytes);
    if (rel === app.main) mainSource = new TextDecoder().decode(bytes);
  }
  if (mainSource === null) throw new Error(`the app has no ${app.main}`);
  pyodide.FS.chdir(APP_DIR);
  pyodide.runPython(`import sys\nif ${JSON.stringify(APP_DIR)} not in sys.path: sys.path.insert(0, ${JSON.stringify(APP_DIR)})`);
  return mainSource;
}

main().then(
  async (status) => {
    if (status !== null) await exit(status);
  },
  async (e) => {
    emit("stderr", `py_runner harness: ${describe(e)}\n`);
    // A controller may open the page once more after this failure (py_runner.host.browser.headless).
    if (e && e.pyRunnerPhase === "pyodide-start") document.body.dataset.pyRunnerBootFailed = "pyodide-start";
    await exit(1);
  },
);
