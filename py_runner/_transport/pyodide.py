"""Transport over web/page/bridge.js inside Pyodide: the only module that touches `js`/`pyodide`.

Imports of js/pyodide are lazy so that `import py_runner` works in CPython.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from .._errors import BridgeError, LocalWebAIError, error_from_js
from . import installed
from .base import Artifacts, ProgressCallback, TokenCallback, Transport


def _ffi() -> Any:
    import js  # noqa: F401  (Pyodide only)
    import pyodide.ffi

    return pyodide.ffi


def _is_js_file_list(source: Any) -> bool:
    """A JS FileList (or any array-like of Files that is not itself a Blob): it has `length` and `item()`."""
    ffi = _ffi()
    return (
        isinstance(source, ffi.JsProxy)
        and hasattr(source, "length")
        and hasattr(source, "item")
        and not hasattr(source, "arrayBuffer")
    )


def _convert(exc: BaseException) -> LocalWebAIError:
    """JsException -> LocalWebAIError by the JS error's fields (web/shared/protocol.js PyRunnerError: name,
    message, stage, url, status)."""
    ffi = _ffi()
    err = getattr(exc, "js_error", exc)  # older Pyodide wraps the error; newer is the JsProxy itself

    def attr(name: str) -> Any:
        try:
            value = getattr(err, name)
        except Exception:
            return None
        return None if value is None or value is ffi.jsnull else value

    status = attr("status")
    url = attr("url")
    converted = error_from_js(
        str(attr("name") or "BridgeError"),
        str(attr("message") or exc),
        None if attr("stage") is None else str(attr("stage")),
        url=None if url is None else str(url),
        status=int(status) if isinstance(status, int | float) else None,
    )
    converted.__cause__ = exc
    return converted


def _to_js_value(value: Any) -> Any:
    """A request field for JS: bytes-like as one Uint8Array copy, a list (of shards, ids, ...) as an Array,
    the rest as ffi.to_js makes it (a JS File/Blob passes through unchanged)."""
    ffi = _ffi()
    if isinstance(value, bytes | bytearray | memoryview):
        return ffi.to_js(memoryview(value))
    if isinstance(value, list | tuple):
        return [_to_js_value(v) for v in value]
    return value


def _to_python(value: Any) -> Any:
    """A request's result for Python: an object's fields one by one (typed arrays, the float32 and bytes
    results, as bytes: one copy out of JS), anything else by to_py()."""
    import js

    ffi = _ffi()
    if value is None or value is getattr(ffi, "jsnull", None):  # JS null arrives as jsnull, not None
        return None
    if not isinstance(value, ffi.JsProxy):
        return value
    if hasattr(value, "BYTES_PER_ELEMENT"):
        return value.to_bytes()
    if hasattr(value, "length"):  # an Array
        return value.to_py()
    return {str(k): _to_python(v) for k, v in js.Object.entries(value)}


def _page_artifacts() -> Artifacts | None:
    """The engine's URLs as the page's boot script published them (globalThis.__pyRunnerArtifacts, absolute,
    so an exported site works under any base path), or None."""
    import js

    published = getattr(js.globalThis, "__pyRunnerArtifacts", None)
    if published is None or published is _ffi().jsnull:
        return None
    found = {name: getattr(published, name, None) for name in Artifacts.__dataclass_fields__}
    return Artifacts(**{name: str(url) for name, url in found.items() if url not in (None, _ffi().jsnull)})


def _runnable_builds(build: str) -> tuple[str, ...]:
    """The builds this page may start for `build` ("auto" | "st" | "mt"): mt only where it is cross-origin
    isolated with SharedArrayBuffer (web/page/bridge.js canUseThreads() is the same rule)."""
    import js

    threads = bool(getattr(js.globalThis, "crossOriginIsolated", False)) and hasattr(js, "SharedArrayBuffer")
    return {"st": ("st",), "mt": ("mt",)}.get(build, ("mt",) if threads else ("st",))


def _page_model_aliases() -> dict[str, list[str]]:
    """Models an export split into shards, from the page's config: {"models/big.gguf":
    ["models/big-00001-of-00002.gguf", ...]}, so an app loads "models/big.gguf" whatever a file size cap made
    of it."""
    import js

    config = getattr(js.globalThis, "__pyRunnerConfig", None)
    models = getattr(config, "model_files", None) if config is not None else None
    if models is None or models is _ffi().jsnull:
        return {}
    return {str(k): [str(u) for u in v] for k, v in models.to_py().items()}


# Where a JupyterLite site keeps its Pyodide kernel's worker script; the site's root is what comes before it.
JUPYTERLITE_KERNEL_FOLDER = "/extensions/@jupyterlite/pyodide-kernel-extension/"


def default_base_url() -> str:
    """What relative URLs resolve against when the caller names nothing: the URL web/page/boot.js was given
    (`globalThis.__pyRunnerBaseUrl`), else the site's root in a JupyterLite kernel, else `location.href` when
    it is http(s), else the origin (a `blob:` or `data:` worker has no folder to resolve against).
    web/page/boot.js's defaultBaseUrl() is the same rule, for pages and workers booted without Python.

    A JupyterLite kernel is a worker whose script lies deep in the site's extensions/ (and the notebook's page
    is out of its reach): there "models/x.gguf" means the site's models/, whatever notebook asks."""
    import js

    published = getattr(js.globalThis, "__pyRunnerBaseUrl", None)
    if published is not None and published is not _ffi().jsnull:
        return str(published)
    location = js.location
    if str(location.protocol) in ("http:", "https:"):
        href = str(location.href)
        if JUPYTERLITE_KERNEL_FOLDER in href and "pyodide_kernel" in sys.modules:
            return href.split(JUPYTERLITE_KERNEL_FOLDER, 1)[0] + "/"
        return href
    return f"{location.origin}/"


class PyodideTransport(Transport):
    def __init__(
        self,
        artifacts: Artifacts | None,
        *,
        build: str = "auto",
        simd: str = "auto",
        threads: int | None = None,
        base_url: str | None = None,
    ) -> None:
        self._artifacts = artifacts
        self._build = build
        self._simd = simd
        self._threads = threads
        self._base_url = base_url
        self._bridge: Any = None

    @property
    def base_url(self) -> str:
        """Absolute: the caller's base URL (itself resolved against the default), else the default."""
        import js

        default = default_base_url()
        return default if self._base_url is None else str(js.URL.new(self._base_url, default).href)

    def _url(self, url: str) -> str:
        import js

        return str(js.URL.new(url, self.base_url).href)

    async def start(self) -> dict[str, Any]:
        import js
        from pyodide.code import run_js

        ffi = _ffi()
        # Where the engine is: what the caller named, else what the page's boot script published, else the
        # engine installed inside the wheel (micropip.install in any Pyodide), else the dev server's layout.
        files: dict[str, dict[str, str]] = {}
        a = self._artifacts or _page_artifacts()
        from_the_wheel = a is None and installed.available()
        bridge_url = installed.bridge_url() if from_the_wheel else self._url((a or Artifacts()).bridge)
        try:
            module = await run_js(f"import({json.dumps(bridge_url)})")
        except ffi.JsException as exc:
            raise BridgeError(f"cannot import {bridge_url}: {exc}") from exc
        if from_the_wheel:  # Blobs of only what this page runs: the relaxed variants where the browser can
            relaxed = self._simd == "relaxed" or (self._simd == "auto" and not module.whyNoRelaxedSimd())
            a, files = installed.artifacts(_runnable_builds(self._build), relaxed=relaxed)
        a = a or Artifacts()
        urls = {"st": a.single_thread, "mt": a.multi_thread}
        urls |= {"st-relaxed": a.single_thread_relaxed, "mt-relaxed": a.multi_thread_relaxed}
        config: dict[str, Any] = {
            build: {"js": self._url(url), **({"files": files[build]} if build in files else {})}
            for build, url in urls.items()
            if url is not None
        }
        config["worker"] = self._url(a.worker)
        options: dict[str, Any] = {"build": self._build, "simd": self._simd, "baseUrl": self.base_url}
        if self._threads is not None:
            options["threads"] = self._threads
        to_obj = js.Object.fromEntries
        self._bridge = module.Bridge.new(
            ffi.to_js(config, dict_converter=to_obj), ffi.to_js(options, dict_converter=to_obj)
        )
        try:
            return (await self._bridge.start()).to_py()
        except ffi.JsException as exc:
            raise _convert(exc) from exc

    def resolve_source(self, source: Any) -> Any:
        if _is_js_file_list(source):  # an <input type=file multiple>'s FileList: the shards of a split model
            return [source.item(i) for i in range(source.length)]
        if isinstance(source, str):
            aliases = _page_model_aliases()
            key = source.removeprefix("./")
            if key in aliases and aliases[key]:
                return aliases[key][0]  # the first shard: the load finds the others by name
        return source

    def _require_bridge(self) -> Any:
        if self._bridge is None:
            raise BridgeError("transport not started")
        return self._bridge

    async def request(
        self,
        type: str,
        fields: dict[str, Any],
        *,
        on_progress: ProgressCallback | None = None,
        on_token: TokenCallback | None = None,
    ) -> Any:
        """The one way to the engine: fields to JS, callbacks as proxies, the result back to Python and a JS
        error to its LocalWebAIError, here and nowhere else."""
        import js

        ffi = _ffi()
        bridge = self._require_bridge()
        proxies = []
        callbacks: dict[str, Any] = {}
        if on_progress is not None:
            proxies.append(ffi.create_proxy(lambda p: on_progress(p.to_py())))
            callbacks["onProgress"] = proxies[-1]
        if on_token is not None:
            proxies.append(ffi.create_proxy(lambda tok, piece: on_token(int(tok), piece.to_bytes())))
            callbacks["onToken"] = proxies[-1]
        to_obj = js.Object.fromEntries
        try:
            js_fields = ffi.to_js({k: _to_js_value(v) for k, v in fields.items()}, dict_converter=to_obj)
            result = await bridge.request(type, js_fields, ffi.to_js(callbacks, dict_converter=to_obj))
        except ffi.JsException as exc:
            raise _convert(exc) from exc
        finally:
            for proxy in proxies:
                proxy.destroy()
        return _to_python(result)

    async def read_prefix(self, source: Any, length: int) -> tuple[bytes, int | None]:
        if isinstance(source, bytes | bytearray | memoryview):
            view = memoryview(source)
            return bytes(view[:length]), view.nbytes
        ffi = _ffi()
        bridge = self._require_bridge()
        if isinstance(source, list | tuple):
            source = ffi.to_js(list(source))
        try:
            result = await bridge.readPrefix(source, length)
        except ffi.JsException as exc:
            raise _convert(exc) from exc
        total = result.total
        return result.bytes.to_bytes(), None if total is None or total is ffi.jsnull else int(total)

    def abort(self, kind: str) -> None:
        if self._bridge is not None:
            self._bridge.abort(kind)

    def terminate(self) -> None:
        bridge, self._bridge = self._bridge, None
        if bridge is not None:
            bridge.terminate()
