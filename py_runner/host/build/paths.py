"""Where py_runner finds its pinned assets and cached artifacts (CPython side only)."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

from .pins import MICROPIP, PYODIDE, PYSCRIPT

PYODIDE_VERSION = PYODIDE.version
MICROPIP_VERSION = MICROPIP.version

# In a checkout (or an editable install) web/, build_wasm.sh and wasm/ live beside the package, the engine is
# built by build_wasm.sh and Pyodide is fetched into the cache. An installed package (python -m build's wheel)
# carries web/ as py_runner/host/web/ and, in py_runner/host/bundle/, what the build staged: the engine builds
# (st/, mt/), the Pyodide files a page needs, micropip and the page's wheel (backend.py): no emcc,
# npm or checkout needed.
REPO_ROOT = Path(__file__).resolve().parents[3]
BUILD_SCRIPT = REPO_ROOT / "build_wasm.sh"
IN_CHECKOUT = BUILD_SCRIPT.is_file() and (REPO_ROOT / "web" / "engine" / "worker.js").is_file()
HOST_DIR = Path(__file__).resolve().parents[1]  # py_runner/host/
WEB_DIR = REPO_ROOT / "web" if IN_CHECKOUT else HOST_DIR / "web"
BUNDLE_DIR = HOST_DIR / "bundle"

# What a page needs of each engine build (build_wasm.sh's outputs) and of Pyodide (no packages: py_runner
# needs none): what an export ships and what the wheel bundles.
ENGINE_FILES = {
    "st": ("pr_glue.js", "pr_glue.wasm"),
    "mt": ("pr_glue.js", "pr_glue.wasm", "pr_glue.worker.js"),
}
# each build's relaxed-SIMD variant (build_wasm.sh): the same files
ENGINE_FILES |= {f"{build}-relaxed": names for build, names in ENGINE_FILES.items()}
PYODIDE_FILES = ("pyodide.mjs", "pyodide.asm.mjs", "pyodide.asm.wasm", "python_stdlib.zip")
PYODIDE_FILES += ("pyodide-lock.json",)


def cache_root() -> Path:
    return Path(os.environ.get("PY_RUNNER_CACHE", Path.home() / ".cache" / "py_runner"))


def pyodide_dir() -> Path:
    return cache_root() / "pyodide" / PYODIDE_VERSION if IN_CHECKOUT else BUNDLE_DIR / "pyodide"


def pyscript_dir() -> Path:
    """The PyScript runtime (@pyscript/core's dist/), for `py-runner export --pyscript`."""
    return cache_root() / "pyscript" / PYSCRIPT.version / "dist" if IN_CHECKOUT else BUNDLE_DIR / "pyscript"


def wheels_dir() -> Path:
    """micropip's wheel (and, installed, the page's py_runner wheel)."""
    return cache_root() / "wheels" if IN_CHECKOUT else BUNDLE_DIR / "wheels"


def models_dir() -> Path:
    return cache_root() / "models"


@lru_cache(maxsize=1)
def build_dir() -> Path:
    """The build folder for the current inputs of build_wasm.sh (st/, mt/, native/ inside)."""
    override = os.environ.get("PY_RUNNER_BUILD_DIR")
    if override:
        return Path(override)
    if not IN_CHECKOUT:
        return BUNDLE_DIR / "engine"
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def native_binary() -> Path:
    return build_dir() / "native" / "pr_native"
