"""`py-runner export APP OUT`: a py_runner app as a static site, for hosts where nobody can set headers.

The site holds everything it needs, at relative URLs, so it works at any base path (a GitHub Pages project
site's `user.github.io/repo/`):

    index.html          boots Pyodide, installs py_runner and runs the app (web/harness.js, with site.json)
    site.json           where everything below is, relative to the page
    coi_sw.js           the service worker that adds COOP/COEP/CORP (cross-origin isolation: the mt build)
    _headers .nojekyll  the same headers for hosts that read a _headers file; no Jekyll on GitHub Pages
    py_runner/          the bridge, the engine worker and its scripts; st/ and mt/ (the engine builds)
    pyodide/            the Pyodide files a page needs (no packages: py_runner needs none)
    wheels/             micropip and the page's py_runner wheel
    app/                the app: main.py and the files beside it (written into Pyodide's file system)
    models/             the models given with --model; one larger than --max-file-size is split into
                        llama.cpp's shards (<name>-00001-of-0000N.gguf); the app still loads models/<name>

`preview()` serves such a folder as a plain static host would: under a subpath, without isolation headers and
without Range support.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import paths as _paths
from .paths import ENGINE_FILES, PYODIDE_FILES
from .wheel import build_wheel

SITE_CONFIG = "site.json"
DEFAULT_MAX_FILE_SIZE = 95 * 1024 * 1024  # GitHub Pages refuses files over 100 MiB
WEB_SCRIPTS = ("bridge.js", "protocol.js", "download.js", "model_cache.js", "sha256.js", "worker.js")
WEB_SCRIPTS += ("boot.js", "harness.js", "python_worker.js")
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "cross-origin",
}
_SKIP = re.compile(r"(^|/)(__pycache__|\.[^/]*)(/|$)")  # caches and hidden files stay out of app/

INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>{title}</title>
  <link rel="icon" href="data:,">
  <!-- Made by `py-runner export`: boots Pyodide, installs py_runner and runs app/{main}. -->
  <meta name="py-runner-config" content="{config}">
  <script src="coi_sw.js"></script>
  <script type="module" src="py_runner/harness.js"></script>
  <style>
    body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em; }}
    #py-runner-status {{ color: #666; margin-bottom: .5em; }}
    pre {{ white-space: pre-wrap; margin: 0; font: 13px/1.4 ui-monospace, monospace; }}
    .stderr {{ color: #b00; }}
  </style>
</head>
<body data-py-runner-status="loading">
  <div id="py-runner-status">loading…</div>
  <pre id="py-runner-output"></pre>
</body>
</html>
"""


class ExportError(Exception):
    """The app or a model cannot be exported (missing, or an output folder that is not ours to replace)."""


@dataclass(frozen=True)
class ExportReport:
    out: Path
    files: dict[str, int]  # path relative to out -> bytes
    models: dict[str, list[str]]  # "models/<name>" (what the app loads) -> the file(s) written for it

    @property
    def total_bytes(self) -> int:
        return sum(self.files.values())


def parse_size(text: str) -> int:
    """'95M', '100MiB', '2G', '123456' -> bytes (K/M/G are powers of 1024, as file size caps are)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmg]?)(?:i?b)?\s*", text, re.IGNORECASE)
    if not match:
        raise ExportError(f"not a size: {text!r} (examples: 95M, 2G, 500000)")
    value = float(match[1]) * 1024 ** " kmg".index((match[2] or " ").lower())
    if value < 1024 * 1024:
        raise ExportError(f"--max-file-size must be at least 1M, got {text}")
    return int(value)


def export_site(
    app: Path | str,
    out: Path | str,
    *,
    models: list[str] = (),  # type: ignore[assignment]
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
) -> ExportReport:
    app, out = Path(app), Path(out)
    main, app_files = _app_files(app)
    _prepare_out(out)
    files: list[Path] = []

    def put(src: Path, rel: str) -> None:
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        files.append(dest)

    for name in WEB_SCRIPTS:
        put(_paths.WEB_DIR / name, f"py_runner/{name}")
    put(
        _paths.WEB_DIR / "coi_sw.js", "coi_sw.js"
    )  # at the top: a service worker controls its own folder and below
    build = _paths.build_dir()
    for variant, names in ENGINE_FILES.items():
        for name in names:
            src = build / variant / name
            if not src.is_file():
                raise ExportError(f"the {variant} engine build has no {name} ({build}): run build_wasm.sh")
            put(src, f"py_runner/{variant}/{name}")
    pyodide = _paths.pyodide_dir()
    for name in PYODIDE_FILES:
        if not (pyodide / name).is_file():
            raise ExportError(
                f"Pyodide is not fetched ({pyodide / name} is missing): run scripts/fetch_assets.sh"
            )
        put(pyodide / name, f"pyodide/{name}")
    micropip = sorted(_paths.wheels_dir().glob(f"micropip-{_paths.MICROPIP_VERSION}-*.whl"))
    if not micropip:
        raise ExportError("the micropip wheel is not fetched: run scripts/fetch_assets.sh")
    put(micropip[-1], f"wheels/{micropip[-1].name}")
    with tempfile.TemporaryDirectory(prefix="py_runner-export-") as tmp:
        page_wheel = build_wheel(tmp)
        put(page_wheel, f"wheels/{page_wheel.name}")
    for rel in app_files:
        put(app / rel if app.is_dir() else app, f"app/{rel}")

    # "models/<name>" -> the file(s) written: the page maps a load of a split model's name to its first shard.
    model_files: dict[str, list[str]] = {}
    for model in models:
        name, written = _export_model(model, out / "models", max_file_size, files)
        model_files[f"models/{name}"] = written

    config = {
        "pyodide": "pyodide/",
        "pyodide_version": _paths.PYODIDE_VERSION,
        "micropip_wheel": f"wheels/{micropip[-1].name}",
        "py_runner_wheel": f"wheels/{page_wheel.name}",
        "build": {"st": "py_runner/st/", "mt": "py_runner/mt/"},
        "web": "py_runner/",
        "app": {"main": main, "folder": "app/", "files": app_files},
        "model_files": model_files,
    }
    extra = {
        SITE_CONFIG: json.dumps(config, indent=2) + "\n",
        "index.html": INDEX_HTML.format(title=_title(app), main=main, config=SITE_CONFIG),
        "_headers": "/*\n" + "".join(f"  {k}: {v}\n" for k, v in ISOLATION_HEADERS.items()),
        ".nojekyll": "",
    }
    for rel, text in extra.items():
        (out / rel).write_text(text, encoding="utf-8")
        files.append(out / rel)
    sizes = {p.relative_to(out).as_posix(): p.stat().st_size for p in sorted(files)}
    return ExportReport(out, sizes, model_files)


def _app_files(app: Path) -> tuple[str, list[str]]:
    """(the main file's name, every app file relative to the app folder)."""
    if app.is_file():
        if app.suffix != ".py":
            raise ExportError(f"{app}: an app is a .py file or a folder with main.py")
        return app.name, [app.name]
    if not (app / "main.py").is_file():
        raise ExportError(f"{app}: an app folder needs a main.py")
    rels = sorted(p.relative_to(app).as_posix() for p in app.rglob("*") if p.is_file())
    return "main.py", [r for r in rels if not _SKIP.search(r)]


def _prepare_out(out: Path) -> None:
    """An empty (or new) folder, or an earlier export (it has site.json): nothing else is ours to replace."""
    if out.exists():
        if not out.is_dir():
            raise ExportError(f"{out} exists and is not a folder")
        if any(out.iterdir()):
            if not (out / SITE_CONFIG).is_file():
                raise ExportError(
                    f"{out} is not empty and not an earlier export (no {SITE_CONFIG}): not replacing it"
                )
            shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _export_model(model: str, folder: Path, max_file_size: int, files: list[Path]) -> tuple[str, list[str]]:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="py_runner-model-", dir=folder) as tmp:
        if re.match(r"https?://", model):
            name = Path(urllib.request.urlparse(model).path).name or "model.gguf"
            source = Path(tmp) / name
            with urllib.request.urlopen(model) as response, open(source, "wb") as f:  # noqa: S310 (the user's URL)
                shutil.copyfileobj(response, f, 1 << 20)
        else:
            source = Path(model)
            if not source.is_file():
                raise ExportError(f"model not found: {model}")
            name = source.name
        if source.stat().st_size <= max_file_size:
            shutil.copyfile(source, folder / name)
            written = [folder / name]
        else:
            from .fixtures import split_model  # gguf and numpy: only when a model must be split

            shards = split_model(source, Path(tmp) / name, max_bytes=max_file_size)
            written = []
            for shard in shards:
                shutil.move(shard, folder / shard.name)
                written.append(folder / shard.name)
    files.extend(written)
    return name, [f"models/{p.name}" for p in written]


def _title(app: Path) -> str:
    return (app.stem if app.is_file() else app.resolve().name) or "py_runner app"


# ---- preview: a plain static host -----------------------------------------------------------------------


class _PlainStaticHandler(SimpleHTTPRequestHandler):
    """Python's static file handler, as a plain host serves: no COOP/COEP, no Range (a Range request gets the
    whole file with 200). Only paths under the site's base path exist. Each request's path is logged on the
    server (`server.requests`), so tests can tell what a visit fetched."""

    base = "/"

    def translate_path(self, path: str) -> str:
        return super().translate_path("/" + path[len(self.base) :])  # send_head checked the prefix

    def send_head(self):  # noqa: ANN201 (http.server's signature)
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        if not self.path.startswith(self.base):
            self.send_error(404, "outside the site's base path")
            return None
        return super().send_head()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)


class PreviewServer(ThreadingHTTPServer):
    daemon_threads = True
    verbose = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.requests: list[str] = []

    def handle_error(self, request, client_address) -> None:
        # A browser that has what it needs closes the connection mid-body (the GGUF header probe reads a few
        # hundred KB of a 200 that carries the whole model, since there is no Range): not an error.
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def preview_server(
    site: Path | str,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    base: str | None = None,
    verbose: bool = False,
) -> tuple[PreviewServer, str]:
    """(server, the site's URL): `site` served under `base` (default /<folder name>/) by a plain static
    server, in a thread; stop it with server.shutdown(); server.server_close()."""
    import threading

    site = Path(site).resolve()
    if not (site / "index.html").is_file():
        raise ExportError(f"{site} has no index.html: export an app there first")
    base = "/" + (base if base is not None else site.name).strip("/") + "/"
    base = "/" if base == "//" else base
    handler = type("Handler", (_PlainStaticHandler,), {"base": base})
    server = PreviewServer((host, port), functools.partial(handler, directory=str(site)))
    server.verbose = verbose
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{host}:{server.server_address[1]}{base}"
