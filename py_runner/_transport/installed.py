"""The engine that came inside the wheel: started from `blob:` URLs made from the installed files, so that a
Pyodide nobody set up for py_runner (JupyterLite, PyScript, a bare page) runs it after `micropip.install`.

The page wheel (py_runner/host/build/wheel.py) carries `py_runner/_engine/`: the st and mt builds (each in its
SIMD128 and its relaxed-SIMD variant) and the
runtime scripts of web/ (engine/, shared/, page/bridge.js). Relative URLs mean nothing inside a `blob:` URL,
so each script becomes a Blob of its own and what it loads is pointed at those: the worker learns its
scripts' URLs from a first line (`self.__pyRunnerScriptUrls`), the bridge's imports are rewritten to theirs,
and the Emscripten module finds its .wasm and pthread worker script through the init request's `files`.
Only the builds this page can run are made into Blobs (mt needs cross-origin isolation; the relaxed variants a
browser with relaxed SIMD), once per process.
Pyodide only (imports `js`); a checkout or a CPython install has no `_engine/` and never comes here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from .base import Artifacts

ENGINE_DIR = Path(__file__).resolve().parent.parent / "_engine"
BUILD_FILES = {"st": ("pr_glue.wasm",), "mt": ("pr_glue.wasm", "pr_glue.worker.js")}
BUILD_FILES |= {f"{build}-relaxed": names for build, names in BUILD_FILES.items()}
_made: dict[str, Any] = {}  # what was made into Blobs, by key: kept for the process (the files never change)


def available() -> bool:
    """Whether this install carries the engine (the page wheel does; a checkout does not)."""
    return (ENGINE_DIR / "web" / "engine" / "worker.js").is_file()


def _blob_url(data: bytes, mime: str) -> str:
    import js
    from pyodide.ffi import to_js

    options = to_js({"type": mime}, dict_converter=js.Object.fromEntries)
    return str(js.URL.createObjectURL(js.Blob.new(to_js([to_js(memoryview(data))]), options)))


def _script_url(path: str) -> str:
    """A blob: URL of one of the engine's files (relative to _engine/), made once."""
    if path not in _made:
        mime = "application/wasm" if path.endswith(".wasm") else "text/javascript"
        _made[path] = _blob_url((ENGINE_DIR / path).read_bytes(), mime)
    return _made[path]


def _worker_url() -> str:
    """The engine worker: worker.js after a line that gives it the URL of every script it imports."""
    if "worker" not in _made:
        urls = {}
        for folder in ("shared", "engine"):
            for script in sorted((ENGINE_DIR / "web" / folder).glob("*.js")):
                prefix = "./" if folder == "engine" else "../shared/"
                urls[prefix + script.name] = _script_url(f"web/{folder}/{script.name}")
        prelude = f"self.__pyRunnerScriptUrls = {json.dumps(urls)};\n"
        worker = (ENGINE_DIR / "web" / "engine" / "worker.js").read_text(encoding="utf-8")
        _made["worker"] = _blob_url((prelude + worker).encode(), "text/javascript")
    return _made["worker"]


def bridge_url() -> str:
    """The bridge module, its imports of ../shared/*.js pointed at their blob: URLs."""
    if "bridge" not in _made:
        source = (ENGINE_DIR / "web" / "page" / "bridge.js").read_text(encoding="utf-8")

        def point(match: re.Match[str]) -> str:
            return f'import "{_script_url("web/shared/" + match.group(1))}"'

        pointed = re.sub(r'import "\.\./shared/([\w.]+)"', point, source)
        _made["bridge"] = _blob_url(pointed.encode(), "text/javascript")
    return _made["bridge"]


def artifacts(builds: tuple[str, ...], *, relaxed: bool) -> tuple[Artifacts, dict[str, dict[str, str]]]:
    """The installed engine as Artifacts (blob: URLs), and per build the files Emscripten locates by name.
    `builds`: the ones this page can run ("st", and "mt" where it is cross-origin isolated), in their
    relaxed-SIMD variant when `relaxed` (the browser has relaxed SIMD); the others' Artifacts fields name a
    build that is not there, which the bridge never chooses."""
    files: dict[str, dict[str, str]] = {}
    js_urls: dict[str, str] = {}
    for build in (f"{b}-relaxed" if relaxed else b for b in builds):
        if (ENGINE_DIR / build / "pr_glue.js").is_file():  # a wheel from before the relaxed builds has none
            js_urls[build] = _script_url(f"{build}/pr_glue.js")
            files[build] = {name: _script_url(f"{build}/{name}") for name in BUILD_FILES[build]}
    made = Artifacts(
        single_thread=js_urls.get("st", "about:blank#no-st-build"),
        multi_thread=js_urls.get("mt", "about:blank#no-mt-build"),
        worker=_worker_url(),
        bridge=bridge_url(),
        single_thread_relaxed=js_urls.get("st-relaxed"),
        multi_thread_relaxed=js_urls.get("mt-relaxed"),
    )
    return made, files
