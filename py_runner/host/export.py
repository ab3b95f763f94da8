"""`py-runner export APP OUT`: a py_runner app as a static site, for hosts where nobody can set headers.

The site holds everything it needs, at relative URLs, so it works at any base path (a GitHub Pages project
site's `user.github.io/repo/`):

    index.html          boots Pyodide, installs py_runner and runs the app (web/site/harness.js, with
    site.json) site.json           where everything below is, relative to the page
    coi_sw.js           the service worker that adds COOP/COEP/CORP (cross-origin isolation: the mt build)
    _headers .nojekyll  the same headers for hosts that read a _headers file; no Jekyll on GitHub Pages
    py_runner/          the bridge, the engine worker and its scripts; st/ and mt/ (the engine builds) and
                        st-relaxed/, mt-relaxed/ (their relaxed-SIMD variants, for browsers that have it)
    pyodide/            the Pyodide files a page needs (no packages: py_runner needs none)
    wheels/             micropip and the page's py_runner wheel
    app/                the app: main.py and the files beside it (written into Pyodide's file system)
    models/             the models given with --model; one larger than --max-file-size is split into
                        llama.cpp's shards (<name>-00001-of-0000N.gguf); the app still loads models/<name>
    THIRD_PARTY_NOTICES.txt   what the site redistributes (llama.cpp, Pyodide, micropip, CPython, the
                        models), each with its license text (build/notices.py); the page's footer links it
    .py_runner-export.json   our marker: each file this export wrote, with its sha256

The page runs its own app and nothing else (no ?script=), and names from the user's files are HTML-escaped.
Links out of the app are refused. A re-export replaces only what the marker lists and is unchanged; files the
user added stay. The site is built beside OUT and swapped in whole: a failure leaves OUT as it was.

`preview()` serves such a folder as a plain static host would: under a subpath, without isolation headers and
without Range support.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

from .build import paths as _paths
from .build.notices import FILE_NAME as NOTICES
from .build.notices import ModelLicense, model_license, site_notices
from .build.paths import ENGINE_FILES, PYODIDE_FILES
from .build.wheel import build_wheel
from .server import _inside  # the dev server's test of a link out of a folder

SITE_CONFIG = "site.json"
# Our own mark on a site we made (what each file's sha256 was): how a re-export knows a folder for an earlier
# export and which files in it are the user's, rather than guessing from a common name such as site.json.
MARKER = ".py_runner-export.json"
DEFAULT_MAX_FILE_SIZE = 95 * 1024 * 1024  # GitHub Pages refuses files over 100 MiB
PYODIDE_LOCK = "pyodide-lock.json"
# The runtime's scripts: every script in web/'s runtime folders (engine/: the worker and what it loads;
# shared/: what the worker and the page both load; page/: the bridge and the boot script; site/: the harness),
# found rather than listed, so a new one is exported with a site, folders kept (their imports are relative).
# web/apps/ is our own pages, not the runtime. The service worker goes to the site's root instead: it must
# control the whole site.
RUNTIME_FOLDERS = ("engine", "shared", "page", "site")
SERVICE_WORKER = "site/coi_sw.js"
WEB_SCRIPTS = tuple(
    sorted(
        p.relative_to(_paths.WEB_DIR).as_posix()
        for folder in RUNTIME_FOLDERS
        for p in (_paths.WEB_DIR / folder).glob("*.js")
        if p.relative_to(_paths.WEB_DIR).as_posix() != SERVICE_WORKER
    )
)
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
  <script type="module" src="py_runner/site/harness.js"></script>
  <style>
    body {{ font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 60em; padding: 0 1em; }}
    #py-runner-status {{ color: #666; margin-bottom: .5em; }}
    pre {{ white-space: pre-wrap; margin: 0; font: 13px/1.4 ui-monospace, monospace; }}
    .stderr {{ color: #b00; }}
    footer {{ margin-top: 2em; font-size: 12px; }}
    footer a {{ color: #666; }}
  </style>
</head>
<body data-py-runner-status="loading">
  <div id="py-runner-status">loading…</div>
  <pre id="py-runner-output"></pre>
  <footer><a href="THIRD_PARTY_NOTICES.txt">Third-party notices</a></footer>
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
    # "models/<name>" of each model whose GGUF names no license (the notices say so; the CLI reminds)
    unlicensed: tuple[str, ...] = ()

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
    pyscript: bool = False,
) -> ExportReport:
    """Export `app` (a .py file, or a folder with main.py) and `models` as a static site in `out`.

    Every input is checked before anything is written. The site is built in a temporary folder beside `out`
    and swapped in whole, so a failure at any point (a bad input, a download, a full disk) leaves `out` as it
    was. `out` may be new, empty, or an earlier export (our marker file says so): files the user added to it
    are carried into the new site, and a file of ours the user changed stops the export (nothing they wrote
    is lost).
    """
    app, out = Path(app), Path(os.path.abspath(out))  # absolute: "." has no name or parent to rename with
    if out.is_symlink():  # a link to the site's folder: replace the folder, never the link
        out = out.resolve()
    main, app_files = _app_files(app)
    _check_apart(app, out)
    sources = _model_sources(models)
    assets = _assets(pyscript)
    unlicensed: list[str] = []
    return publish(
        out,
        lambda stage: _build(stage, app, main, app_files, sources, assets, max_file_size, unlicensed),
        unlicensed,
    )


def publish(
    out: Path,
    build: Callable[[Path], tuple[list[str], dict[str, list[str]]]],
    unlicensed: list[str] | None = None,
) -> ExportReport:
    """`build(stage)` writes a site into the empty folder `stage` and returns (the files it wrote, relative;
    "models/<name>" -> its files); the site then replaces `out` whole, with our marker and the files the user
    added to an earlier export. A failure (of `build`, a full disk) leaves `out` as it was. `unlicensed`: the
    list `build` fills with the models whose GGUF names no license."""
    out = Path(os.path.abspath(out))
    if out.is_symlink():  # a link to the site's folder: replace the folder, never the link
        out = out.resolve()
    keep = _user_files(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out.name}.py_runner-", dir=out.parent) as tmp:
            stage = Path(tmp) / "site"
            stage.mkdir()
            files, model_files = build(stage)
            mine = {rel: _sha256(stage / rel) for rel in files}
            marker = {"made_by": "py-runner export", "files": mine}
            (stage / MARKER).write_text(json.dumps(marker, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            for rel in keep:  # what the user added to the earlier export (their own page beside index.html)
                _carry(out / rel, stage / rel)
            sizes = {rel: (stage / rel).stat().st_size for rel in sorted(files)}
            _swap(stage, out, Path(tmp) / "earlier")
    except OSError as exc:  # a full disk, a folder we may not write: the staging folder goes, `out` stays
        raise ExportError(f"exporting to {out} failed, nothing there changed: {exc}") from exc
    return ExportReport(out, sizes, model_files, tuple(unlicensed or ()))


def _build(
    stage: Path,
    app: Path,
    main: str,
    app_files: list[str],
    sources: list[tuple[str, str]],
    assets: list[tuple[Path, str]],
    max_file_size: int,
    unlicensed: list[str],
) -> tuple[list[str], dict[str, list[str]]]:
    """Write the whole site into `stage`: (the files written, relative; "models/<name>" -> its files); the
    models whose GGUF names no license go into `unlicensed`."""
    files: list[str] = []

    def put(src: Path, rel: str) -> None:
        dest = stage / rel
        if dest.exists():  # two inputs, one name (a model and another's shard): neither silently wins
            raise ExportError(f"two files would be written as {rel}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        _copy_file(src, dest)
        files.append(rel)

    for src, rel in assets:
        put(src, rel)
    with tempfile.TemporaryDirectory(prefix="py_runner-export-") as tmp:
        try:
            page_wheel = build_wheel(tmp)
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            raise ExportError(f"cannot build the page's py_runner wheel: {exc}") from exc
        put(page_wheel, f"wheels/{page_wheel.name}")
    for rel in app_files:
        put(app / rel if app.is_dir() else app, f"app/{rel}")

    # "models/<name>" -> the file(s) written: the page maps a load of a split model's name to its first shard.
    model_files: dict[str, list[str]] = {}
    licenses: list[ModelLicense] = []
    for model, name in sources:
        model_files[f"models/{name}"] = _export_model(model, name, stage, max_file_size, put, licenses)
    unlicensed.extend(f"models/{m.file_name}" for m in licenses if not m.named)

    micropip = next(rel for _, rel in assets if rel.startswith("wheels/micropip-"))
    micropip_source = next(src for src, rel in assets if rel == micropip)
    config = {
        "pyodide": "pyodide/",
        "pyodide_version": _paths.PYODIDE_VERSION,
        "micropip_wheel": micropip,
        "py_runner_wheel": f"wheels/{page_wheel.name}",
        "build": {b: f"py_runner/{b}/" for b in ENGINE_FILES},
        "web": "py_runner/",
        "app": {"main": main, "folder": "app/", "files": app_files},
        "model_files": model_files,
    }
    # Names come from the user's files: escaped, so a file named "x--><img onerror=...>.py" stays text.
    index = INDEX_HTML.format(title=html.escape(_title(app)), main=html.escape(main), config=SITE_CONFIG)
    extra = {
        SITE_CONFIG: json.dumps(config, indent=2) + "\n",
        "index.html": index,
        "_headers": "/*\n" + "".join(f"  {k}: {v}\n" for k, v in ISOLATION_HEADERS.items()),
        ".nojekyll": "",
        f"pyodide/{PYODIDE_LOCK}": pyodide_lock([micropip_source]),
        NOTICES: site_notices(licenses),
    }
    for rel, text in extra.items():
        (stage / rel).write_text(text, encoding="utf-8")
        files.append(rel)
    return files, model_files


def _copy_file(src: Path, dest: Path) -> None:
    """Every copy of the export goes through here (the fault tests inject a failure into it)."""
    shutil.copyfile(src, dest)


def _assets(pyscript: bool = False) -> list[tuple[Path, str]]:
    """(source, path in the site) of everything the page needs besides the app, the models and the wheel (and
    with `pyscript`, the PyScript runtime in pyscript/); an ExportError names the first one missing."""
    assets = [(_paths.WEB_DIR / name, f"py_runner/{name}") for name in WEB_SCRIPTS]
    # at the top: a service worker controls its folder
    assets.append((_paths.WEB_DIR / SERVICE_WORKER, Path(SERVICE_WORKER).name))
    build = _paths.build_dir()
    for variant, names in ENGINE_FILES.items():
        for name in names:
            if not (build / variant / name).is_file():
                raise ExportError(f"the {variant} engine build has no {name} ({build}): run build_wasm.sh")
            assets.append((build / variant / name, f"py_runner/{variant}/{name}"))
    pyodide = _paths.pyodide_dir()
    for name in PYODIDE_FILES:
        if name == PYODIDE_LOCK:
            continue  # written by _build: it names the micropip wheel this site serves
        if not (pyodide / name).is_file():
            raise ExportError(
                f"Pyodide is not fetched ({pyodide / name} is missing): run scripts/fetch_assets.sh"
            )
        assets.append((pyodide / name, f"pyodide/{name}"))
    micropip = sorted(_paths.wheels_dir().glob(f"micropip-{_paths.MICROPIP_VERSION}-*.whl"))
    if not micropip:
        raise ExportError("the micropip wheel is not fetched: run scripts/fetch_assets.sh")
    assets.append((micropip[-1], f"wheels/{micropip[-1].name}"))
    # Beside Pyodide too, where pyodide.loadPackage("micropip") looks (PyScript, a JupyterLite kernel)
    assets.append((micropip[-1], f"pyodide/{micropip[-1].name}"))
    if pyscript:
        runtime = _paths.pyscript_dir()
        if not (runtime / "core.js").is_file():
            raise ExportError(
                f"PyScript is not fetched ({runtime / 'core.js'} is missing): run scripts/fetch_assets.sh"
            )
        assets += [
            (p, f"pyscript/{p.name}") for p in sorted(runtime.iterdir()) if p.suffix in (".js", ".css")
        ]
    return assets


def pyodide_lock(wheels: list[Path]) -> str:
    """Pyodide's lock file, the entries of the packages in `wheels` naming those files: the ones from PyPI
    (pinned), served beside it, not the builds the Pyodide distribution lists, which npm's package does not
    carry. Without it, `pyodide.loadPackage("micropip")` fails the file's integrity check."""
    lock = json.loads((_paths.pyodide_dir() / PYODIDE_LOCK).read_text(encoding="utf-8"))
    for wheel in wheels:
        name = re.sub(r"[-_.]+", "-", wheel.name.split("-", 1)[0]).lower()  # the lock's keys: normalized
        entry = next(e for key, e in lock["packages"].items() if re.sub(r"[-_.]+", "-", key) == name)
        entry.update(file_name=wheel.name, sha256=_sha256(wheel))
    return json.dumps(lock)


def _app_files(app: Path) -> tuple[str, list[str]]:
    """(the main file's name, every app file relative to the app folder). A link that leads out of the app is
    refused, as the dev server refuses one out of a served folder: what it points at was never the app's to
    publish. Caches and hidden files stay out (and so are not checked)."""
    if app.is_file():
        if app.suffix != ".py":
            raise ExportError(f"{app}: an app is a .py file or a folder with main.py")
        return app.name, [app.name]
    if not (app / "main.py").is_file():
        raise ExportError(f"{app}: an app folder needs a main.py")
    root = app.resolve()
    rels: list[str] = []

    def walk(folder: Path, prefix: str, seen: tuple[Path, ...]) -> None:
        for entry in sorted(folder.iterdir()):
            rel = prefix + entry.name
            if _SKIP.search(rel):
                continue
            if entry.is_symlink() and not _inside(entry, root):
                raise ExportError(
                    f"{app / rel} is a link to {os.readlink(entry)}, outside the app: not exported "
                    "(copy the file into the app, or leave it out)"
                )
            if entry.is_dir():
                real = entry.resolve()
                if real in seen:
                    raise ExportError(f"{app / rel} is a link to a folder that holds it (a loop)")
                walk(entry, rel + "/", (*seen, real))
            elif entry.is_file():
                rels.append(rel)

    walk(app, "", (root,))
    return "main.py", sorted(rels)


def _check_apart(app: Path, out: Path) -> None:
    """The output folder must not be, contain or lie inside the app: the export would copy itself, or
    replacing the site would delete the app."""
    app_r, out_r = app.resolve(), out.resolve()
    if app_r == out_r or app_r.is_relative_to(out_r):
        raise ExportError(f"{out} holds the app ({app}): choose an output folder outside it")
    if out_r.is_relative_to(app_r):
        raise ExportError(f"{out} is inside the app folder {app}: choose an output folder outside it")


def _user_files(out: Path) -> list[str]:
    """What in `out` is the user's, to carry into the new site. `out` must be new, empty or an earlier
    export (it has our marker); a file of ours that differs from what the export wrote is the user's edit:
    refused."""
    if not out.exists() and not out.is_symlink():
        return []
    if not out.is_dir():
        raise ExportError(f"{out} exists and is not a folder")
    if not any(out.iterdir()):
        return []
    try:
        mine = json.loads((out / MARKER).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ExportError(
            f"{out} is not empty and not an export of this py_runner (no readable {MARKER}): not "
            "replacing it; choose another folder, or empty it yourself"
        ) from exc
    keep, changed = [], []
    for folder, dirs, names in os.walk(out):
        base = Path(folder)
        for name in [*names, *(d for d in dirs if (base / d).is_symlink())]:
            rel = (base / name).relative_to(out).as_posix()
            if rel == MARKER:
                continue
            if rel not in mine:
                keep.append(rel)
            elif (base / name).is_symlink() or _sha256(base / name) != mine[rel]:
                changed.append(rel)
        if not dirs and not names and base != out:
            keep.append(base.relative_to(out).as_posix() + "/")  # an empty folder the user made
    if changed:
        shown = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        raise ExportError(
            f"{out}: {len(changed)} file(s) changed since the export ({shown}): not replacing your edits; "
            "copy them elsewhere (into the app?) first"
        )
    return sorted(keep)


def _carry(src: Path, dest: Path) -> None:
    """One file (or link, or empty folder) of the user's from the earlier export into the new site."""
    if src.is_dir() and not src.is_symlink():
        dest.mkdir(parents=True, exist_ok=True)
        return
    if dest.exists() or dest.is_symlink() or any(p.is_file() for p in dest.parents):
        raise ExportError(f"{src} is yours, and the export now writes a file of that name: move it first")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(src, dest, follow_symlinks=False)  # a link stays a link


def _swap(stage: Path, out: Path, earlier: Path) -> None:
    """`stage` becomes `out`; an earlier `out` moves to `earlier` (deleted with the temporary folder), and
    comes back if the second rename fails."""
    moved = False
    if out.exists():
        out.rename(earlier)
        moved = True
    try:
        stage.rename(out)
    except BaseException:
        if moved:
            earlier.rename(out)
        raise


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _model_sources(models: list[str]) -> list[tuple[str, str]]:
    """(model, the name it is published under) for each --model, all checked before anything is written: a
    local file that exists, a URL whose path ends in a file name, and no two models with one name."""
    sources: list[tuple[str, str]] = []
    by_name: dict[str, str] = {}
    for model in models:
        if re.match(r"https?://", model, re.IGNORECASE):
            name = unquote(urlsplit(model).path.rsplit("/", 1)[-1]) or "model.gguf"
        else:
            if not Path(model).is_file():
                raise ExportError(f"model not found: {model}")
            name = Path(model).name
        if name in (".", "..") or re.search(r"[/\\\x00-\x1f]", name):
            raise ExportError(f"{model}: {name!r} is not a file name to publish the model under")
        if name in by_name:
            raise ExportError(
                f"two models named {name!r} ({by_name[name]} and {model}): "
                "the app loads each as models/<its name>"
            )
        by_name[name] = model
        sources.append((model, name))
    return sources


def _export_model(
    model: str,
    name: str,
    stage: Path,
    max_file_size: int,
    put: Callable[[Path, str], None],
    licenses: list[ModelLicense],
) -> list[str]:
    """Write one model into the site's models/ (split into shards when over max_file_size); its files. What
    its GGUF says of its license goes into `licenses`."""
    with tempfile.TemporaryDirectory(prefix="py_runner-model-", dir=stage.parent) as tmp:
        if re.match(r"https?://", model, re.IGNORECASE):
            source = Path(tmp) / name
            try:
                with urllib.request.urlopen(model) as response, open(source, "wb") as f:  # noqa: S310 (the user's URL)
                    shutil.copyfileobj(response, f, 1 << 20)
            except (OSError, ValueError) as exc:  # URLError is an OSError
                raise ExportError(f"cannot download {model}: {exc}") from exc
        else:
            source = Path(model)
        licenses.append(model_license(source, name))
        if source.stat().st_size <= max_file_size:
            put(source, f"models/{name}")
            return [f"models/{name}"]
        from .fixtures import split_model  # gguf and numpy: only when a model must be split

        try:
            shards = split_model(source, Path(tmp) / name, max_bytes=max_file_size)
        except (ValueError, KeyError) as exc:  # not a GGUF file, or one too big to split this finely
            raise ExportError(
                f"cannot split {model} into files of at most {max_file_size} bytes: {exc}"
            ) from exc
        for shard in shards:
            put(shard, f"models/{shard.name}")
        return [f"models/{shard.name}" for shard in shards]


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
