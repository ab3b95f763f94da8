"""Where py_runner finds its pinned assets and cached artifacts (CPython side only)."""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

from .pins import MICROPIP, PYODIDE

PYODIDE_VERSION = PYODIDE.version
MICROPIP_VERSION = MICROPIP.version

# In a checkout (or an editable install) web/, build_wasm.sh and wasm/ live beside the package. An installed
# package carries web/ as py_runner/host/web/ (pyproject.toml maps it there).
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "build_wasm.sh"
IN_CHECKOUT = BUILD_SCRIPT.is_file() and (REPO_ROOT / "web" / "worker.js").is_file()
WEB_DIR = REPO_ROOT / "web" if IN_CHECKOUT else Path(__file__).resolve().parent / "web"


def cache_root() -> Path:
    return Path(os.environ.get("PY_RUNNER_CACHE", Path.home() / ".cache" / "py_runner"))


def pyodide_dir() -> Path:
    return cache_root() / "pyodide" / PYODIDE_VERSION


def wheels_dir() -> Path:
    return cache_root() / "wheels"


def models_dir() -> Path:
    return cache_root() / "models"


@lru_cache(maxsize=1)
def build_dir() -> Path:
    """The build folder for the current inputs of build_wasm.sh (st/, mt/, native/ inside)."""
    override = os.environ.get("PY_RUNNER_BUILD_DIR")
    if override:
        return Path(override)
    out = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--print-dir"], check=True, capture_output=True, text=True
    )
    return Path(out.stdout.strip())


def native_binary() -> Path:
    return build_dir() / "native" / "pr_native"
