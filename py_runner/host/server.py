"""Development / harness HTTP server (CPython side).

Serves the page, the WASM builds, Pyodide, wheels and models from one origin, with the headers that
make the page ``crossOriginIsolated`` (SharedArrayBuffer for the pthreads build). Files are streamed in
chunks with HTTP Range support, so multi-hundred-MB models never sit in memory.

URL layout::

    /                      -> 302 /web/apps/chat.html (the chat page; web/apps/index.html is the completion
    page) /config.json           -> {"pyodide", "micropip_wheel", "py_runner_wheel", ...}
    /web/...               -> WEB_DIR
    /build/st/, /build/mt/ -> build_dir()/st, build_dir()/mt (and /build/st-relaxed/, /build/mt-relaxed/)
    /pyodide/...           -> pyodide_dir()
    /wheels/<name>         -> the freshly built py_runner wheel, else wheels_dir()
    /models/...            -> models folder (default models_dir(), where test fixtures are written too; the
                              pages list its models only when it was given: the user's --models-dir)
    /files/...             -> optional folder (run --script)
    <extra single files>   -> e.g. /local-model/<basename> for run --model PATH
"""

from __future__ import annotations

import collections
import email.utils
import json
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .build import paths as _paths
from .build.wheel import build_wheel

CHUNK_SIZE = 1 << 20  # 1 MiB per write
REQUEST_TIMEOUT_S = 30  # a connection that sends nothing for this long is closed (half-sent requests)
MAX_RANGE_DIGITS = 19  # a byte offset past int64 is no offset of a file we serve
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]", "::1")

ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}

MIME_TYPES = {
    ".wasm": "application/wasm",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
    ".py": "text/plain; charset=utf-8",
    ".ts": "text/plain; charset=utf-8",
    ".whl": "application/octet-stream",
    ".gguf": "application/octet-stream",
    ".bin": "application/octet-stream",
    ".zip": "application/zip",
    ".tar": "application/x-tar",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

_RANGE_RE = re.compile(r"^bytes=(\d*)-(\d*)$")

# A mount's folder may be computed on first use (build_dir() runs a script and may fail).
DirSource = Path | Callable[[], Path]


def guess_type(path: Path | str) -> str:
    return MIME_TYPES.get(Path(path).suffix.lower(), "application/octet-stream")


class PyRunnerServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        *,
        mounts: Mapping[str, DirSource],
        files: Mapping[str, Path],
        config: dict,
        verbose: bool = False,
        isolate: bool = True,
        cleanup_dirs: tuple[Path, ...] = (),
        drop_after: Mapping[str, int] | None = None,
        listed_models: Path | None = None,
    ) -> None:
        super().__init__(address, _Handler)
        self.listed_models = listed_models  # the folder whose models the pages offer (None: the default only)
        # Longest prefix first so /build/st/ wins over a hypothetical /build/.
        self.mounts = dict(sorted(mounts.items(), key=lambda kv: -len(kv[0])))
        self.files = dict(files)
        self.config = config
        self.verbose = verbose
        self.isolate = isolate
        self._cleanup_dirs = cleanup_dirs
        self._resolved: dict[str, Path | None] = {}
        self._resolve_lock = threading.Lock()
        # Body bytes written per URL path: tests and `bench load` read it to prove what crossed the wire.
        self.bytes_sent: collections.Counter[str] = collections.Counter()
        # Test-only: URL path -> body bytes after which the first response for it drops the connection.
        self.drop_after = dict(drop_after or {})
        self.thread: threading.Thread | None = None

    def mount_dir(self, prefix: str) -> Path | None:
        src = self.mounts[prefix]
        if isinstance(src, Path):
            return src
        with self._resolve_lock:
            if prefix not in self._resolved:
                try:
                    self._resolved[prefix] = Path(src())
                except Exception as exc:  # e.g. build_wasm.sh missing: serve 404s, keep running
                    if self.verbose:
                        print(f"py_runner server: cannot resolve {prefix}: {exc}", file=sys.stderr)
                    return None
            return self._resolved[prefix]

    def handle_error(self, request, client_address) -> None:
        # A browser that cancels a download (an aborted load, a header probe) resets its connection: normal.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def server_close(self) -> None:
        super().server_close()
        for d in self._cleanup_dirs:
            shutil.rmtree(d, ignore_errors=True)


class _Handler(BaseHTTPRequestHandler):
    server: PyRunnerServer
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT_S

    def version_string(self) -> str:
        return "py_runner"

    # ---- plumbing -------------------------------------------------------------------------------

    def end_headers(self) -> None:
        if self.server.isolate:
            for name, value in ISOLATION_HEADERS.items():
                self.send_header(name, value)
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        self._handle(head=False)

    def do_HEAD(self) -> None:
        self._handle(head=True)

    def _not_found(self) -> None:
        self.send_error(HTTPStatus.NOT_FOUND, "Not found")

    # ---- routing --------------------------------------------------------------------------------

    def _host_allowed(self) -> bool:
        """DNS rebinding: a page on another site may point its own host name at 127.0.0.1 and read this server
        with the page's origin. Only the names this server is reached by are served: loopback names with its
        port, or, when it listens on another address, that address (and any name with --host 0.0.0.0)."""
        host = (self.headers.get("Host") or "").strip().lower()
        name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
        if not name:
            name, port = host, ""
        if port and port != str(self.server.server_address[1]):
            return False
        bound = str(self.server.server_address[0]).lower()
        if bound in ("0.0.0.0", "::"):
            return bool(name)
        return name in LOOPBACK_NAMES or name == bound or name == f"[{bound}]"

    def _handle(self, head: bool) -> None:
        try:
            if not self._host_allowed():
                self.send_error(HTTPStatus.MISDIRECTED_REQUEST, "Unknown host (a DNS rebinding attempt?)")
                return
            url_path = urlsplit(self.path).path
            if url_path == "/":
                self._redirect("/web/apps/chat.html")
                return
            if url_path == "/config.json":
                config = {**self.server.config, "models": self._model_names()}
                self._send_bytes(json.dumps(config).encode(), "application/json", head)
                return
            target = self._resolve(url_path)
            if target is None:
                self._not_found()
                return
            self._send_file(target, head)
        except ConnectionError:  # the client went away (e.g. an aborted model download)
            self.close_connection = True
        except (OSError, ValueError):  # a name too long for the file system, a path the OS refuses
            self._not_found()

    def _model_names(self) -> list[str]:
        """The models the pages offer: the default model first, then the GGUF files of the user's models
        folder (--models-dir). Without one, the default alone: the cache's models folder also holds the
        project's test fixtures (random weights), which are no model to chat with."""
        first = [url.removeprefix("/models/") for url in self.server.files if url.startswith("/models/")]
        folder = self.server.listed_models
        if folder is None or not folder.is_dir():
            return first
        found = sorted(
            p.name for p in folder.glob("*.gguf") if not p.name.startswith(".") and _inside(p, folder)
        )
        return first + [name for name in found if name not in first]

    def _resolve(self, url_path: str) -> Path | None:
        decoded = unquote(url_path)
        if "\x00" in decoded or "\\" in decoded:
            return None
        single = self.server.files.get(decoded)
        if single is not None:
            return single if single.is_file() else None
        for prefix in self.server.mounts:
            if not decoded.startswith(prefix):
                continue
            rest = decoded[len(prefix) :]
            parts = rest.split("/")
            # No traversal and no hidden files (".", "..", ".x"); no empty segments ("a//b").
            if any(p.startswith(".") for p in parts) or "" in parts[:-1]:
                return None
            root = self.server.mount_dir(prefix)
            if root is None:
                return None
            candidate = root.joinpath(*parts)
            if not _inside(candidate, root):  # a symlink that leads out of the mounted folder
                return None
            if candidate.is_dir():
                index = candidate / "index.html"
                return index if index.is_file() else None
            return candidate if candidate.is_file() else None
        return None

    # ---- responses ------------------------------------------------------------------------------

    def _redirect(self, location: str) -> None:
        self.send_response(HTTPStatus.FOUND)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_bytes(self, data: bytes, content_type: str, head: bool) -> None:
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)

    def _send_file(self, path: Path, head: bool) -> None:
        try:
            f = open(path, "rb")
        except OSError:
            self._not_found()
            return
        with f:
            st = os.fstat(f.fileno())
            size = st.st_size
            etag = f'"{st.st_size:x}-{st.st_mtime_ns:x}"'
            last_modified = email.utils.formatdate(st.st_mtime, usegmt=True)
            if etag in [t.strip() for t in (self.headers.get("If-None-Match") or "").split(",")]:
                self.send_response(HTTPStatus.NOT_MODIFIED)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            start, end = 0, size - 1
            status = HTTPStatus.OK
            range_header = self.headers.get("Range")
            if_range = self.headers.get("If-Range")
            if range_header and if_range is not None and if_range.strip() not in (etag, last_modified):
                range_header = None  # the file changed since the client's copy: the whole of it, with 200
            if range_header:
                parsed = _parse_range(range_header, size)
                if parsed == "unsatisfiable":
                    self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                    self.send_header("Content-Range", f"bytes */{size}")
                    self.send_header("Accept-Ranges", "bytes")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if parsed is not None:
                    start, end = parsed
                    status = HTTPStatus.PARTIAL_CONTENT
            length = max(0, end - start + 1)
            self.send_response(status)
            self.send_header("Content-Type", guess_type(path))
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", last_modified)
            self.send_header("ETag", etag)
            if status == HTTPStatus.PARTIAL_CONTENT:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if head or length == 0:
                return
            f.seek(start)
            remaining = length
            drop = self.server.drop_after.get(urlsplit(self.path).path)
            if drop is not None and drop < remaining:  # the first response it cuts short, then no more
                self.server.drop_after.pop(urlsplit(self.path).path, None)
                remaining = drop
                self.close_connection = True  # then the socket closes: the client sees a short body
            while remaining > 0:
                chunk = f.read(min(CHUNK_SIZE, remaining))
                if not chunk:  # file shrank under us: stop, the client sees a short body
                    self.close_connection = True
                    break
                self.wfile.write(chunk)
                self.server.bytes_sent[urlsplit(self.path).path] += len(chunk)
                remaining -= len(chunk)


def _parse_range(header: str, size: int) -> tuple[int, int] | str | None:
    """One ``bytes=`` range -> (start, end) inclusive; "unsatisfiable"; None = ignore (serve all).

    Multi-range and malformed headers are ignored (a full 200 response is allowed by RFC 9110).
    """
    m = _RANGE_RE.match(header.strip())
    if not m:
        return None
    first, last = m.groups()
    if first == "" and last == "":
        return None
    if len(first) > MAX_RANGE_DIGITS or len(last) > MAX_RANGE_DIGITS:
        return "unsatisfiable"  # beyond any file: int() of thousands of digits would even refuse to parse
    if first == "":  # suffix: the last N bytes
        n = int(last)
        if n == 0 or size == 0:
            return "unsatisfiable"
        return max(0, size - n), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        return "unsatisfiable"
    end = int(last) if last else size - 1
    return start, min(end, size - 1)


# ---- assembly ---------------------------------------------------------------------------------


def _inside(path: Path, root: Path) -> bool:
    """Whether `path`, symlinks resolved, is `root` or below it."""
    try:
        return path.resolve().is_relative_to(root.resolve())
    except (OSError, RuntimeError):  # a symlink loop, a name too long
        return False


def _find_micropip(wheels: Path) -> Path | None:
    exact = sorted(wheels.glob(f"micropip-{_paths.MICROPIP_VERSION}-*.whl"))
    if exact:
        return exact[0]
    any_version = sorted(wheels.glob("micropip-*.whl"))
    return any_version[-1] if any_version else None


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    models_dir: Path | str | None = None,
    files_dir: Path | str | None = None,
    extra_files: Mapping[str, Path | str] | None = None,
    default_model: Path | None = None,
    web_dir: Path | str | None = None,
    verbose: bool = False,
    isolate: bool = True,
    drop_after: Mapping[str, int] | None = None,
) -> PyRunnerServer:
    """Create (bind) the server without starting it. Builds py_runner's wheel into a temp folder.

    default_model is served as /models/<its name> whatever the models folder, and offered first.
    isolate=False leaves out the cross-origin isolation headers (the page then gets no
    SharedArrayBuffer, so the bridge picks the single-thread build).
    drop_after (tests): {url_path: nbytes}: the first response for that path closes the connection
    after nbytes of its body (a dropped download, for resume tests).
    """
    wheel_tmp = Path(tempfile.mkdtemp(prefix="py_runner-wheel-"))
    try:
        wheel = build_wheel(wheel_tmp)
        wheels = _paths.wheels_dir()
        micropip = _find_micropip(wheels)

        mounts: dict[str, DirSource] = {
            "/web/": Path(web_dir) if web_dir else _paths.WEB_DIR,
            **{f"/build/{b}/": (lambda b=b: _paths.build_dir() / b) for b in _paths.ENGINE_FILES},
            "/pyodide/": _paths.pyodide_dir(),
            "/wheels/": wheels,
            "/models/": Path(models_dir) if models_dir else _paths.models_dir(),
        }
        if files_dir is not None:
            mounts["/files/"] = Path(files_dir)
        files: dict[str, Path] = {f"/wheels/{wheel.name}": wheel}
        if default_model is not None:
            files[f"/models/{default_model.name}"] = default_model
        for url, path in (extra_files or {}).items():
            files[url if url.startswith("/") else "/" + url] = Path(path)

        config = {
            "pyodide": "/pyodide/",
            "pyodide_version": _paths.PYODIDE_VERSION,
            "micropip_wheel": f"/wheels/{micropip.name}" if micropip else None,
            "py_runner_wheel": f"/wheels/{wheel.name}",
            "build": {b: f"/build/{b}/" for b in _paths.ENGINE_FILES},
            "web": "/web/",
        }
        return PyRunnerServer(
            (host, port),
            mounts=mounts,
            files=files,
            config=config,
            verbose=verbose,
            isolate=isolate,
            cleanup_dirs=(wheel_tmp,),
            drop_after=drop_after,
            listed_models=Path(models_dir) if models_dir else None,
        )
    except BaseException:
        shutil.rmtree(wheel_tmp, ignore_errors=True)
        raise


def base_url_of(server: PyRunnerServer) -> str:
    host, port = server.server_address[:2]
    if ":" in host:
        host = f"[{host}]"
    if host in ("0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def start_server(host: str = "127.0.0.1", port: int = 0, **kwargs) -> tuple[PyRunnerServer, str]:
    """Start the server in a daemon thread. Returns ``(server, base_url)``; stop it with ``stop_server``."""
    server = make_server(host, port, **kwargs)
    thread = threading.Thread(target=server.serve_forever, name="py_runner-server", daemon=True)
    thread.start()
    server.thread = thread
    return server, base_url_of(server)


def stop_server(server: PyRunnerServer) -> None:
    server.shutdown()
    server.server_close()


def exposure_warning(host: str) -> str | None:
    """What listening on `host` exposes, when it is more than this machine."""
    if host in LOOPBACK_NAMES:
        return None
    where = "every network interface" if host in ("0.0.0.0", "::") else host
    return (
        f"listening on {where}: anyone who can reach it reads the models and files served, "
        "and any host name is accepted"
        if host in ("0.0.0.0", "::")
        else f"listening on {where}: anyone who can reach it reads the models and files served"
    )


def serve_forever(host: str = "127.0.0.1", port: int = 8000, **kwargs) -> None:
    """Serve in the foreground until Ctrl-C (for ``py-runner serve``)."""
    server = make_server(host, port, **kwargs)
    base = base_url_of(server)
    warning = exposure_warning(host)
    if warning:
        print(f"py_runner: warning: {warning}", file=sys.stderr, flush=True)
        if host not in ("0.0.0.0", "::"):
            base = f"http://{host}:{server.server_address[1]}"
    print(f"py_runner: serving on {base}/ (Ctrl-C to stop)", flush=True)
    print(f"  chat page: {base}/web/apps/chat.html   completion page: {base}/web/apps/index.html", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
