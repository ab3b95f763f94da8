"""The PEP 517 backend of `python -m build`: setuptools.build_meta, reproducible, with the engine inside.

setuptools writes reproducible wheels when SOURCE_DATE_EPOCH is set (sorted entries, fixed zip times): the
hooks set it (default 1980-01-01) unless the caller did. Its sdist keeps each file's mtime, the builder's user
and the gzip header's time, so build_sdist rewrites the archive it made: the same members in sorted order,
every time SOURCE_DATE_EPOCH, owner root, modes 0644/0755, a gzip header without a time. The same sources
give the same bytes. Everything else is setuptools' own.

Built from a checkout, both hooks first stage py_runner/host/bundle/ (git-ignored): the engine builds of the
current inputs (build_wasm.sh; st/ and mt/), the Pyodide files a page needs and micropip (fetched by
scripts/fetch_assets.sh), the page's own wheel (wheel.py) and THIRD_PARTY_NOTICES.txt, the notices of all
of these (notices.py). The sdist carries the bundle, so the wheel
built from it (as python -m build does) has it too, and an installed py_runner serves, runs and exports with
no emcc, npm or checkout."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # noqa: F401  (the PEP 517 hooks this backend re-exports unchanged)
    build_editable,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

from .reproducible import DEFAULT_EPOCH, normalize_sdist


def build_wheel(
    wheel_directory: str, config_settings: dict | None = None, metadata_directory: str | None = None
) -> str:
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(DEFAULT_EPOCH))
    stage_bundle()
    return _setuptools.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory: str, config_settings: dict | None = None) -> str:
    os.environ.setdefault("SOURCE_DATE_EPOCH", str(DEFAULT_EPOCH))
    stage_bundle()
    name = _setuptools.build_sdist(sdist_directory, config_settings)
    normalize_sdist(Path(sdist_directory) / name, int(os.environ["SOURCE_DATE_EPOCH"]))
    return name


def stage_bundle() -> None:
    """Fill py_runner/host/bundle/ from a checkout's builds and cache; outside a checkout (building from an
    unpacked sdist) the bundle must already be there."""
    from . import paths

    bundle = paths.BUNDLE_DIR
    if not paths.IN_CHECKOUT:
        if not (bundle / "engine").is_dir():
            raise RuntimeError(f"{bundle} is missing: build py_runner from a checkout (or its sdist)")
        return
    copies: dict[Path, Path] = {}
    build = paths.build_dir()
    for variant, names in paths.ENGINE_FILES.items():
        for name in names:
            copies[build / variant / name] = bundle / "engine" / variant / name
    for name in paths.PYODIDE_FILES:
        copies[paths.pyodide_dir() / name] = bundle / "pyodide" / name
    micropip = sorted(paths.wheels_dir().glob(f"micropip-{paths.MICROPIP_VERSION}-*.whl"))
    missing = [str(src) for src in copies if not src.is_file()] + ([] if micropip else ["the micropip wheel"])
    if missing:
        raise RuntimeError(
            "the wheel carries the engine and Pyodide, and these are missing: "
            + ", ".join(missing)
            + " (run `bash scripts/setup.sh`, or scripts/fetch_assets.sh and build_wasm.sh)"
        )
    copies[micropip[-1]] = bundle / "wheels" / micropip[-1].name
    shutil.rmtree(bundle, ignore_errors=True)
    for src, dest in copies.items():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
    from .notices import FILE_NAME, bundled_notices
    from .wheel import build_wheel as build_page_wheel

    (bundle / FILE_NAME).write_text(bundled_notices(), encoding="utf-8")  # what the bundle redistributes
    build_page_wheel(bundle / "wheels")
