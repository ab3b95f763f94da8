"""The wheel Pyodide installs in the page: the library (py_runner/ without host/) and the engine inside it
(`py_runner/_engine/`: the st and mt builds and web/'s runtime scripts, which _transport/installed.py starts
from blob: URLs where no page set py_runner up), built by the standard build backend (setuptools, through its
PEP 517 hook) and reproducible. No dependency: `micropip.install(<its URL>)` in any Pyodide.

The library's files are staged into an empty folder beside a generated pyproject.toml that declares only the
library's packages, so no host tool, web asset or stale build folder can slip in. SOURCE_DATE_EPOCH fixes the
zip timestamps and the staged files get fixed permissions: the same sources give the same bytes (and sha256).
Built wheels are kept by the hash of their inputs, so a dev server starts without rebuilding.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import py_runner

PACKAGE_DIR = Path(py_runner.__file__).resolve().parent  # the library, in a checkout or installed
DIST_NAME = "py_runner"
_LICENSE = PACKAGE_DIR.parent / "LICENSE"  # the page wheel is built in a checkout only (build_wheel says why)

_PYPROJECT = """\
[build-system]
requires = ["setuptools>=70.1"]
build-backend = "setuptools.build_meta"

[project]
name = "{name}"
version = "{version}"
description = "Run llama.cpp (WebAssembly) in the browser, driven from Python in Pyodide (the page's library)"
requires-python = ">=3.11"
license = "MIT"
license-files = ["LICENSE"]
dependencies = []

[tool.setuptools]
packages = {packages}

[tool.setuptools.package-data]
py_runner = ["_engine/*.txt", "_engine/*/*", "_engine/web/*/*"]
"""


def library_files() -> list[Path]:
    """The library's modules, relative to the package folder: every .py outside host/."""
    return sorted(
        p.relative_to(PACKAGE_DIR)
        for p in PACKAGE_DIR.rglob("*.py")
        if "host" not in p.relative_to(PACKAGE_DIR).parts and "__pycache__" not in p.parts
    )


ENGINE_WEB = (("engine", "*.js"), ("shared", "*.js"), ("page", "bridge.js"))  # what the engine needs of web/
# The library's subpackage that the page's wheel also carries as a top-level package: `import llama_cpp` in
# Pyodide (py_runner/_llama_cpp/__init__.py says why only there).
TOP_LEVEL_ALIASES = {"_llama_cpp": "llama_cpp"}


def engine_files() -> list[tuple[Path, str]]:
    """(source, path under py_runner/_engine/) of the engine the wheel carries: both builds of the current
    inputs and the scripts the worker and the bridge load; empty where the builds are not built (a wheel of
    the library alone, as unit tests build it)."""
    from .paths import ENGINE_FILES, WEB_DIR, build_dir

    build = build_dir()
    builds = [
        (build / variant / name, f"{variant}/{name}")
        for variant, names in ENGINE_FILES.items()
        for name in names
    ]
    if not all(src.is_file() for src, _ in builds):
        return []
    web = [
        (src, f"web/{folder}/{src.name}")
        for folder, pattern in ENGINE_WEB
        for src in sorted((WEB_DIR / folder).glob(pattern))
    ]
    return builds + web


def wheel_name() -> str:
    return f"{DIST_NAME}-{py_runner.__version__}-py3-none-any.whl"


def _packages(files: list[Path]) -> list[str]:
    return sorted({".".join((DIST_NAME, *f.parent.parts)) for f in files})


def _notices(engine: list[tuple[Path, str]]) -> str | None:
    """THIRD_PARTY_NOTICES.txt for a wheel that carries the engine (llama.cpp's builds); None without."""
    if not engine:
        return None
    from .notices import bundled_notices

    return bundled_notices()


def _inputs_hash(files: list[Path], engine: list[tuple[Path, str]]) -> str:
    digest = hashlib.sha256(_PYPROJECT.encode())
    digest.update(py_runner.__version__.encode())
    digest.update(_LICENSE.read_bytes() + (_notices(engine) or "").encode())
    for rel in files:
        digest.update(rel.as_posix().encode() + b"\0" + (PACKAGE_DIR / rel).read_bytes() + b"\0")
    for src, rel_engine in engine:
        digest.update(b"_engine/" + rel_engine.encode() + b"\0" + src.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _cache_dir() -> Path:
    from .paths import cache_root

    return cache_root() / "page-wheels"


def build_wheel(out_dir: str | Path, *, use_cache: bool = True) -> Path:
    """Write the page's ``py_runner-<version>-py3-none-any.whl`` into ``out_dir`` and return its path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    from .paths import BUNDLE_DIR, IN_CHECKOUT

    if not IN_CHECKOUT:  # installed: the wheel python -m build made beside the engine (backend.py)
        bundled = BUNDLE_DIR / "wheels" / wheel_name()
        if not bundled.is_file():
            raise RuntimeError(f"{bundled} is missing: this py_runner was installed without its bundle")
        target = out_dir / bundled.name
        shutil.copyfile(bundled, target)
        return target
    files = library_files()
    engine = engine_files()
    cached = _cache_dir() / _inputs_hash(files, engine) / wheel_name()
    if not (use_cache and cached.is_file()):
        with tempfile.TemporaryDirectory(prefix="py_runner-page-wheel-") as tmp:
            built = _build(Path(tmp), files, engine)
            if not use_cache:
                target = out_dir / built.name
                shutil.copyfile(built, target)
                return target
            cached.parent.mkdir(parents=True, exist_ok=True)
            partial = cached.with_name(cached.name + f".{os.getpid()}.tmp")
            shutil.copyfile(built, partial)
            partial.replace(cached)
    target = out_dir / cached.name
    shutil.copyfile(cached, target)
    return target


def _build(tmp: Path, files: list[Path], engine: list[tuple[Path, str]]) -> Path:
    stage = tmp / "src"
    staged = [(PACKAGE_DIR / rel, Path(DIST_NAME) / rel) for rel in files]
    staged += [(src, Path(DIST_NAME) / "_engine" / rel) for src, rel in engine]
    aliased = [(rel, TOP_LEVEL_ALIASES[rel.parts[0]]) for rel in files if rel.parts[0] in TOP_LEVEL_ALIASES]
    staged += [(PACKAGE_DIR / rel, Path(alias, *rel.parts[1:])) for rel, alias in aliased]
    for src, rel in staged:
        dest = stage / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        dest.chmod(0o644)
    shutil.copyfile(_LICENSE, stage / "LICENSE")
    notices = _notices(engine)
    if notices is not None:
        (stage / DIST_NAME / "_engine" / "THIRD_PARTY_NOTICES.txt").write_text(notices, encoding="utf-8")
    pyproject = _PYPROJECT.format(
        name=DIST_NAME,
        version=py_runner.__version__,
        packages=json.dumps(_packages(files) + sorted(set(TOP_LEVEL_ALIASES.values()))),
    )
    (stage / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    out = tmp / "dist"
    # The backend's own PEP 517 hook, in a fresh interpreter: its build folders stay inside the stage.
    hook = "import sys, setuptools.build_meta as b; print(b.build_wheel(sys.argv[1]))"
    from .reproducible import DEFAULT_EPOCH  # the time every py_runner archive holds

    env = {**os.environ, "SOURCE_DATE_EPOCH": str(DEFAULT_EPOCH), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", hook, str(out)], cwd=stage, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"building the page wheel failed:\n{done.stdout}\n{done.stderr}")
    return out / done.stdout.strip().splitlines()[-1]
