"""`py-runner export --jupyterlite`, in CPython with stand-in assets and a stand-in `jupyter lite build` (the
real build runs in tests/e2e/test_jupyterlite.py): what the source folder gives JupyterLite (Pyodide with the
kernel's wheels and a lock naming them, piplite's index, no PyPI fallback), what the site gets besides, the
error without JupyterLite's tools, a failed build leaving the earlier site as it was, and the kernel's pins
matching the pinned Pyodide's lock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import py_runner.host.export as export
import py_runner.host.export_lite as export_lite
from py_runner.host.build import paths, pins
from py_runner.host.cli import main
from py_runner.host.export import MARKER, ExportError
from py_runner.host.export_lite import KERNEL_PLUGIN, export_jupyterlite
from py_runner.host.skips import skip_or_fail

KERNEL_WHEELS = ["ipython-9.12.0-py3-none-any.whl", "prompt_toolkit-3.0.52-py3-none-any.whl"]
COMM = "comm-0.2.3-py3-none-any.whl"


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Stand-ins for Pyodide (a lock of three packages), micropip, the kernel's wheels and the page's wheel;
    `jupyter lite build` stands in by copying its source folder, as the real one copies static/ and pypi/.
    Returns where the stand-in build saw its source folder ("lite")."""
    root = tmp_path / "assets"
    (root / "pyodide").mkdir(parents=True)
    for name in paths.PYODIDE_FILES:
        (root / "pyodide" / name).write_text(name)
    lock = {
        "packages": {
            name: {"version": "x", "file_name": f"{name}-from-the-distribution.whl", "sha256": "0" * 64}
            for name in ("micropip", "ipython", "prompt-toolkit")
        }
    }
    (root / "pyodide" / "pyodide-lock.json").write_text(json.dumps(lock))
    (root / "wheels" / "jupyterlite").mkdir(parents=True)
    (root / "wheels" / f"micropip-{paths.MICROPIP_VERSION}-py3-none-any.whl").write_text("micropip")
    for name in [*KERNEL_WHEELS, COMM]:
        (root / "wheels" / "jupyterlite" / name).write_text(name)
    seen: dict[str, Path] = {}

    def build_wheel(out_dir: str | Path) -> Path:
        wheel = Path(out_dir) / "py_runner-0.1.0-py3-none-any.whl"
        wheel.write_text("wheel")
        return wheel

    def jupyter_lite_build(lite: Path, output: Path) -> None:
        import shutil

        seen["lite"] = tmp_path / "seen"
        shutil.copytree(lite, seen["lite"])
        output.mkdir()
        (output / "index.html").write_text("JupyterLite")
        shutil.copytree(lite / "static", output / "static")

    monkeypatch.setattr(paths, "pyodide_dir", lambda: root / "pyodide")
    monkeypatch.setattr(paths, "wheels_dir", lambda: root / "wheels")
    monkeypatch.setattr(export_lite, "build_wheel", build_wheel)
    monkeypatch.setattr(export_lite, "_jupyter_lite_build", jupyter_lite_build)
    # the notices' real inputs are test_notices.py's: here, a stand-in for them
    monkeypatch.setattr(export_lite, "site_notices", lambda models, wheels: "the site's notices\n")
    monkeypatch.setattr(
        export_lite,
        "jupyterlite_kernel_wheels",
        lambda: [root / "wheels" / "jupyterlite" / n for n in [*KERNEL_WHEELS, COMM]],
    )
    return seen


def test_the_source_folder_serves_the_kernel_everything_from_the_site(tmp_path: Path, assets) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    report = export_jupyterlite(tmp_path / "lite", models=[str(model)])
    source = assets["lite"]
    pyodide = source / "static" / "pyodide"
    lock = json.loads((pyodide / "pyodide-lock.json").read_text())["packages"]
    micropip = f"micropip-{paths.MICROPIP_VERSION}-py3-none-any.whl"
    # the lock names the wheels served beside it (its keys normalized: prompt_toolkit -> prompt-toolkit)
    for key, wheel in {
        "micropip": micropip,
        "ipython": KERNEL_WHEELS[0],
        "prompt-toolkit": KERNEL_WHEELS[1],
    }.items():
        assert lock[key]["file_name"] == wheel and (pyodide / wheel).is_file()
        assert lock[key]["sha256"] == export._sha256(pyodide / wheel)
    assert sorted(p.name for p in (source / "pypi").iterdir()) == [COMM, "py_runner-0.1.0-py3-none-any.whl"]
    settings = json.loads((source / "jupyter-lite.json").read_text())["jupyter-config-data"]
    assert settings["litePluginSettings"][KERNEL_PLUGIN] == {"disablePyPIFallback": True}
    # the site: the build's output, the models, the headers, our marker listing all of it
    site = report.out
    assert (site / "models" / "m.gguf").read_bytes() == b"GGUF" and report.models == {
        "models/m.gguf": ["models/m.gguf"]
    }
    assert "Cross-Origin-Embedder-Policy: require-corp" in (site / "_headers").read_text()
    marked = json.loads((site / MARKER).read_text())["files"]
    assert {"index.html", "models/m.gguf", "_headers", f"static/pyodide/{micropip}"} <= set(marked)


def test_without_jupyterlites_tools_the_error_names_the_extra(
    tmp_path: Path, assets, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(export_lite.importlib.util, "find_spec", lambda name: None)
    assert main(["export", "--jupyterlite", str(tmp_path / "lite")]) != 0
    err = capsys.readouterr().err
    assert "py_runner[jupyterlite]" in err and "Traceback" not in err
    assert not (tmp_path / "lite").exists()


def test_a_failed_build_leaves_the_earlier_site_as_it_was(
    tmp_path: Path, assets, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "lite"
    export_jupyterlite(out)
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    (out / "mine.ipynb").write_text("{}")  # the user's, carried by a re-export

    def failing_build(lite: Path, output: Path) -> None:
        raise ExportError("`jupyter lite build` failed with status 1:\nboom")

    monkeypatch.setattr(export_lite, "_jupyter_lite_build", failing_build)
    with pytest.raises(ExportError, match="boom"):
        export_jupyterlite(out)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == sorted([*before, "mine.ipynb"])
    assert not [p for p in tmp_path.iterdir() if "py_runner-" in p.name]


def test_the_kernels_wheels_are_the_versions_the_pinned_pyodides_lock_names() -> None:
    """A Pyodide bump must bring these pins along: the kernel asks the lock, which names these versions."""
    lock_file = paths.pyodide_dir() / "pyodide-lock.json"
    skip_or_fail(None if lock_file.is_file() else f"{lock_file} is missing (run scripts/fetch_assets.sh)")
    lock = json.loads(lock_file.read_text(encoding="utf-8"))["packages"]
    for pin in pins.JUPYTERLITE_KERNEL_WHEELS:
        if pin.name in export_lite.OUTSIDE_THE_LOCK:
            assert pin.name not in lock
        else:
            assert lock[pin.name]["version"] == pin.version, pin.name
