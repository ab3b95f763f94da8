// py_runner harness (ES module, loaded by web/run.html).
//
//   run.html?script=/files/app.py&argv=["a","b"]
//
// Boots Pyodide and installs py_runner's wheel with web/boot.js (micropip is loaded by its wheel URL:
// by name it fails the lock file's integrity check), fetches the script and runs it with
// pyodide.runPythonAsync (top-level await allowed, sys.argv set). Output and the exit status go to
// window.__pyRunnerOutput(stream, text) and window.__pyRunnerExit(code) when the controlling program
// defines them (Playwright expose_function), else to the console and the page. Everything is fetched
// from this page's origin.

import { absolute, bootPyodide } from "./boot.js";

const params = new URLSearchParams(location.search);
const statusEl = document.getElementById("status");
const outputEl = document.getElementById("output");

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
    return;
  }
  (stream === "stderr" ? console.error : console.log)(text.replace(/\n$/, ""));
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

window.addEventListener("error", (ev) => emit("stderr", `page error: ${ev.message}\n`));
window.addEventListener("unhandledrejection", (ev) => {
  const r = ev.reason;
  emit("stderr", `unhandled rejection: ${(r && (r.stack || r.message)) || r}\n`);
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
  const pyodide = await bootPyodide({
    onStatus: setStatus,
    stdout: (line) => emit("stdout", line + "\n"),
    stderr: (line) => emit("stderr", line + "\n"),
  });
  const out = makeWriter("stdout");
  const err = makeWriter("stderr");
  pyodide.setStdout(out);
  pyodide.setStderr(err);
  window.__pyRunnerPyodide = pyodide;
  window.__pyRunnerReady = true;

  const script = params.get("script");
  if (!script) {
    setStatus("ready (no ?script= given)");
    return null;
  }
  const argv = JSON.parse(params.get("argv") || "[]");
  if (!Array.isArray(argv)) throw new Error("?argv= must be a JSON list");

  setStatus(`running ${script}…`);
  const scriptResp = await fetch(absolute(script));
  if (!scriptResp.ok) throw new Error(`GET ${script}: HTTP ${scriptResp.status}`);
  const source = await scriptResp.text();
  const filename = decodeURIComponent(new URL(absolute(script)).pathname.split("/").pop() || "main.py");

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

main().then(
  async (status) => {
    if (status !== null) await exit(status);
  },
  async (e) => {
    emit("stderr", `py_runner harness: ${(e && (e.stack || e.message)) || e}\n`);
    await exit(1);
  },
);
