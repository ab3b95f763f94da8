"""`python -m build` makes the sdist and the wheel with the standard backend, reproducibly; the wheel carries
web/ as package data, so that an installed (not editable) py_runner finds it. (End to end: the build stages
the engine builds and Pyodide into the wheel.)"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest

from conftest import _missing_builds
from py_runner.host.skips import skip_or_fail

# Not in README's Firefox pass: no browser at all: the sdist and wheels.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
WEB_FILES = sorted(
    p.relative_to(WEB).as_posix() for p in WEB.glob("*/*") if p.suffix in (".js", ".html", ".py")
)


def build(out: Path) -> dict[str, Path]:
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return {p.suffix: p for p in out.iterdir()}


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, Path]]:
    skip_or_fail(_missing_builds())
    return build(tmp_path_factory.mktemp("a")), build(tmp_path_factory.mktemp("b"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sdist_and_wheel_are_reproducible(dists) -> None:
    first, second = dists
    assert set(first) == {".whl", ".gz"}
    assert digest(first[".whl"]) == digest(second[".whl"])
    assert digest(first[".gz"]) == digest(second[".gz"])


def test_the_wheel_carries_the_library_the_host_tools_and_web(dists) -> None:
    with zipfile.ZipFile(dists[0][".whl"]) as wheel:
        names = set(wheel.namelist())
    assert {"py_runner/_runner.py", "py_runner/_transport/protocol.py", "py_runner/host/cli.py"} <= names
    assert {f"py_runner/host/web/{name}" for name in WEB_FILES} <= names
    with tarfile.open(dists[0][".gz"]) as sdist:
        assert any(n.endswith("/web/shared/protocol.js") for n in sdist.getnames())


def test_the_wheels_carry_the_license_and_the_notices_of_what_they_bundle(dists, tmp_path: Path) -> None:
    """LICENSE in the wheel's metadata (License-File) and the sdist; THIRD_PARTY_NOTICES.txt in the bundle and
    in the page's wheel, which carries the engine."""
    import io

    with zipfile.ZipFile(dists[0][".whl"]) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read("py_runner-0.1.0.dist-info/METADATA").decode()
        bundled = wheel.read("py_runner/host/bundle/THIRD_PARTY_NOTICES.txt").decode()
        page_name = next(n for n in names if n.startswith("py_runner/host/bundle/wheels/py_runner-"))
        page = zipfile.ZipFile(io.BytesIO(wheel.read(page_name)))
    assert "py_runner-0.1.0.dist-info/licenses/LICENSE" in names
    assert "License-Expression: MIT" in metadata and "License-File: LICENSE" in metadata
    for name in ("llama.cpp and ggml", "Pyodide", "micropip", "CPython"):
        assert f"\n{name} " in bundled
    page_names = set(page.namelist())
    assert "py_runner/_engine/THIRD_PARTY_NOTICES.txt" in page_names
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in page_names)
    assert page.read("py_runner/_engine/THIRD_PARTY_NOTICES.txt").decode() == bundled
    with tarfile.open(dists[0][".gz"]) as sdist:
        assert any(n.endswith("/LICENSE") for n in sdist.getnames())


def test_a_registry_accepts_the_metadata(dists) -> None:
    """`twine check --strict` (PyPI's own checks: the README renders, the metadata is complete) passes on both
    distributions; their version is py_runner.__version__, written nowhere else."""
    import py_runner

    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists[0][".whl"]), str(dists[0][".gz"])],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    with zipfile.ZipFile(dists[0][".whl"]) as wheel:
        metadata = wheel.read(f"py_runner-{py_runner.__version__}.dist-info/METADATA").decode()
    assert f"\nVersion: {py_runner.__version__}\n" in metadata
    assert "Classifier: Environment :: WebAssembly :: Emscripten" in metadata
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert py_runner.__version__ not in pyproject.split("[project.optional-dependencies]")[0]


def test_an_installed_package_finds_its_web_folder(dists, tmp_path: Path) -> None:
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(dists[0][".whl"])]
    subprocess.run(install, check=True, capture_output=True)
    probe = "from py_runner.host.build import paths; print(paths.IN_CHECKOUT, paths.WEB_DIR)"
    out = subprocess.run([str(python), "-c", probe], check=True, capture_output=True, text=True, cwd=tmp_path)
    in_checkout, web_dir = out.stdout.split()
    assert in_checkout == "False" and str(env) in web_dir
    shipped = sorted(
        p.relative_to(web_dir).as_posix()
        for p in Path(web_dir).glob("*/*")
        if p.is_file() and p.suffix in (".js", ".html", ".py")
    )
    assert shipped == WEB_FILES
    protocol = "shared/protocol.js"
    assert (Path(web_dir) / protocol).read_bytes() == (WEB / protocol).read_bytes()
