"""`py-runner export --jupyterlite OUT`: a JupyterLite site whose Python kernel installs py_runner from the
site and asks the models shipped with it, with no CDN and no server set-up (README, "In JupyterLite").

JupyterLite builds it, as its users do: `jupyter lite build` (PyPI's jupyterlite-core and
jupyterlite-pyodide-kernel, the `jupyterlite` extra) over a source folder this module prepares:

    static/pyodide/   the pinned Pyodide (npm), where the kernel's build looks for a local Pyodide, with
                      micropip and the wheels the kernel installs as it starts (ipython, jedi, ... from PyPI,
                      pinned: pins.JUPYTERLITE_KERNEL_WHEELS); its lock rewritten to name those files
    pypi/             the site's piplite index: the page's py_runner wheel (`%pip install py_runner`) and comm
    jupyter-lite.json the kernel never falls back to PyPI (a missing wheel fails at once, not on a network
                      that may not answer)

The built site gets, beside what `jupyter lite build` writes (lab/, repl/, notebooks/, extensions/, ...):

    models/           the --model files; in the kernel a relative model URL resolves against the site's root
    _headers .nojekyll  COOP/COEP for hosts that read a _headers file (the kernel then runs the mt build)
    .py_runner-export.json  our marker, as for `export`: a re-export replaces only what it lists

No coi_sw.js: JupyterLite's own service worker holds the site's scope. Cross-origin isolation, and with it the
mt build, comes from the host's headers; a plain host runs st.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .build import paths as _paths
from .build.assets import FetchError, jupyterlite_kernel_wheels
from .build.notices import FILE_NAME as NOTICES
from .build.notices import ModelLicense, site_notices
from .build.paths import PYODIDE_FILES
from .build.wheel import build_wheel
from .export import (
    DEFAULT_MAX_FILE_SIZE,
    ISOLATION_HEADERS,
    PYODIDE_LOCK,
    ExportError,
    ExportReport,
    _export_model,
    _model_sources,
    publish,
    pyodide_lock,
)

# The kernel's settings in jupyter-lite.json (jupyterlite-pyodide-kernel's schema, kernel.v0.schema.json)
KERNEL_PLUGIN = "@jupyterlite/pyodide-kernel-extension:kernel"
# The one requirement of the kernel that Pyodide's lock lacks: served in piplite's index, not beside Pyodide
OUTSIDE_THE_LOCK = ("comm",)
TOOLS = ("jupyterlite_core", "jupyterlite_pyodide_kernel")


def export_jupyterlite(
    out: Path | str,
    *,
    models: list[str] = (),  # type: ignore[assignment]
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
) -> ExportReport:
    """A JupyterLite site in `out` (new, empty or an earlier export), with `models` in its models/; every
    input checked, then built beside `out` and swapped in whole (see export.export_site)."""
    missing = [name for name in TOOLS if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(
            f"JupyterLite's build tools are not installed ({', '.join(missing)}): "
            "pip install 'py_runner[jupyterlite]' (in a checkout: pip install -e '.[jupyterlite]')"
        )
    sources = _model_sources(models)
    pyodide = _paths.pyodide_dir()
    micropip = sorted(_paths.wheels_dir().glob(f"micropip-{_paths.MICROPIP_VERSION}-*.whl"))
    if not all((pyodide / name).is_file() for name in PYODIDE_FILES) or not micropip:
        raise ExportError("Pyodide or micropip is not fetched: run scripts/fetch_assets.sh")
    try:
        kernel_wheels = jupyterlite_kernel_wheels()  # from the cache, or fetched through pip now
    except FetchError as exc:
        raise ExportError(f"cannot fetch the wheels JupyterLite's kernel installs: {exc}") from exc

    def build(stage: Path) -> tuple[list[str], dict[str, list[str]]]:
        with tempfile.TemporaryDirectory(prefix="py_runner-lite-") as tmp:
            lite = Path(tmp) / "lite"
            _lite_source(lite, pyodide, [micropip[-1], *kernel_wheels], Path(tmp))
            _jupyter_lite_build(lite, stage / "site")
        # `jupyter lite build` wants an output folder of its own; the site is its contents
        for entry in (stage / "site").iterdir():
            entry.rename(stage / entry.name)
        (stage / "site").rmdir()
        files = sorted(
            p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file() or p.is_symlink()
        )

        def put(src: Path, rel: str) -> None:
            dest = stage / rel
            if dest.exists():
                raise ExportError(f"two files would be written as {rel}")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            files.append(rel)

        licenses: list[ModelLicense] = []
        model_files = {
            f"models/{name}": _export_model(model, name, stage, max_file_size, put, licenses)
            for model, name in sources
        }
        unlicensed.extend(f"models/{m.file_name}" for m in licenses if not m.named)
        extra = {
            "_headers": "/*\n" + "".join(f"  {k}: {v}\n" for k, v in ISOLATION_HEADERS.items()),
            ".nojekyll": "",
            NOTICES: site_notices(licenses, kernel_wheels),
        }
        for rel, text in extra.items():
            (stage / rel).write_text(text, encoding="utf-8")
            files.append(rel)
        return files, model_files

    unlicensed: list[str] = []
    return publish(Path(out), build, unlicensed)


def _lite_source(lite: Path, pyodide: Path, wheels: list[Path], tmp: Path) -> None:
    """JupyterLite's source folder (the module's docstring): Pyodide and the wheels it serves, piplite's
    index, the kernel's settings."""
    local_pyodide = lite / "static" / "pyodide"  # where the kernel's build looks for a Pyodide of the site's
    local_pyodide.mkdir(parents=True)
    for name in PYODIDE_FILES:
        if name != PYODIDE_LOCK:
            shutil.copyfile(pyodide / name, local_pyodide / name)
    beside_pyodide = [w for w in wheels if not w.name.startswith(tuple(f"{n}-" for n in OUTSIDE_THE_LOCK))]
    for wheel in beside_pyodide:
        shutil.copyfile(wheel, local_pyodide / wheel.name)
    (local_pyodide / PYODIDE_LOCK).write_text(pyodide_lock(beside_pyodide), encoding="utf-8")
    index = lite / "pypi"
    index.mkdir()
    try:
        page_wheel = build_wheel(tmp)
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise ExportError(f"cannot build the page's py_runner wheel: {exc}") from exc
    for wheel in [page_wheel, *(w for w in wheels if w not in beside_pyodide)]:
        shutil.copyfile(wheel, index / wheel.name)
    settings = {KERNEL_PLUGIN: {"disablePyPIFallback": True}}
    config = {"jupyter-lite-schema-version": 0, "jupyter-config-data": {"litePluginSettings": settings}}
    (lite / "jupyter-lite.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")


def _jupyter_lite_build(lite: Path, output: Path) -> None:
    """`jupyter lite build`, in its own process; its log is shown only when it fails."""
    cmd = [sys.executable, "-m", "jupyterlite_core", "build", "--lite-dir", str(lite), "--output-dir",
           str(output), "--no-sourcemaps"]  # fmt: skip
    # SOURCE_DATE_EPOCH: the same inputs make the same site (JupyterLite stamps files with it)
    env = {**os.environ, "SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", "315532800")}
    proc = subprocess.run(cmd, cwd=lite, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        log = (proc.stdout + proc.stderr).strip()[-3000:]
        raise ExportError(f"`jupyter lite build` failed with status {proc.returncode}:\n{log}")
