"""`py-runner export` never loses what a user wrote: the fault suite of the exporter, in CPython with stand-in
assets (no build, no browser). Paths (an output folder that is, holds or lies in the app), names (escaped into
index.html; one name for two models; a URL without a file name), links out of the app, re-exports (our marker,
not site.json; the user's own files kept, their edits never overwritten) and a fault injected at every copy of
an export: the earlier site survives byte for byte, and no temporary folder is left behind."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

import py_runner.host.export as export
from py_runner.host.build import notices, paths
from py_runner.host.cli import main
from py_runner.host.export import MARKER, ExportError, export_site


@pytest.fixture
def assets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Small stand-ins for the engine builds, Pyodide, micropip and the page's wheel."""
    root = tmp_path / "assets"
    for variant, names in paths.ENGINE_FILES.items():
        for name in names:
            (root / "build" / variant).mkdir(parents=True, exist_ok=True)
            (root / "build" / variant / name).write_text(f"{variant}/{name}")
    (root / "pyodide").mkdir()
    for name in paths.PYODIDE_FILES:
        (root / "pyodide" / name).write_text(name)
    lock = {"packages": {"micropip": {"file_name": "micropip-from-the-distribution.whl", "sha256": "0" * 64}}}
    (root / "pyodide" / "pyodide-lock.json").write_text(json.dumps(lock))
    (root / "wheels").mkdir()
    (root / "wheels" / f"micropip-{paths.MICROPIP_VERSION}-py3-none-any.whl").write_text("micropip")

    def build_wheel(out_dir: str | Path) -> Path:
        wheel = Path(out_dir) / "py_runner-0.1.0-py3-none-any.whl"
        wheel.write_text("wheel")
        return wheel

    monkeypatch.setattr(paths, "build_dir", lambda: root / "build")
    monkeypatch.setattr(paths, "pyodide_dir", lambda: root / "pyodide")
    monkeypatch.setattr(paths, "wheels_dir", lambda: root / "wheels")
    monkeypatch.setattr(export, "build_wheel", build_wheel)
    monkeypatch.setattr(notices, "bundled_notices", lambda: "the bundled notices\n")  # test_notices.py's


def make_app(folder: Path, **files: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text("print('hello')\n")
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def tree(folder: Path) -> dict[str, str]:
    """Every file and link under `folder` -> its sha256 (a link: where it points)."""
    found = {}
    for base, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if (Path(base) / d).is_symlink()]:
            path = Path(base) / name
            rel = path.relative_to(folder).as_posix()
            found[rel] = (
                os.readlink(path) if path.is_symlink() else hashlib.sha256(path.read_bytes()).hexdigest()
            )
    return found


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "py_runner-" in p.name)


# ---- what a site is and holds --------------------------------------------------------------------------


def test_an_export_is_marked_as_ours_and_lists_what_it_wrote(tmp_path: Path, assets) -> None:
    report = export_site(make_app(tmp_path / "app", **{"data.txt": "x"}), tmp_path / "site")
    marker = json.loads((tmp_path / "site" / MARKER).read_text())
    assert set(marker["files"]) == set(report.files) and "app/data.txt" in marker["files"]
    assert (
        marker["files"]["index.html"]
        == hashlib.sha256((tmp_path / "site/index.html").read_bytes()).hexdigest()
    )
    assert leftovers(tmp_path) == []


def test_names_written_into_index_html_are_escaped(tmp_path: Path, assets) -> None:
    hostile = "x--><img src=x onerror=alert(document.domain)>"
    (tmp_path / f"{hostile}.py").write_text("print(1)\n")
    export_site(tmp_path / f"{hostile}.py", tmp_path / "site")
    index = (tmp_path / "site" / "index.html").read_text()
    assert "<img" not in index and "-->" not in index.split("<!--", 1)[1].split("-->", 1)[1]
    assert "x--&gt;&lt;img src=x onerror=alert(document.domain)&gt;.py" in index
    config = json.loads((tmp_path / "site" / "site.json").read_text())
    assert config["app"]["main"] == f"{hostile}.py"  # the file itself keeps its name


def test_a_link_out_of_the_app_is_refused_and_nothing_is_written(tmp_path: Path, assets) -> None:
    (tmp_path / "secret.txt").write_text("ssh key")
    app = make_app(tmp_path / "app")
    (app / "notes.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(ExportError, match="outside the app"):
        export_site(app, tmp_path / "site")
    assert not (tmp_path / "site").exists() and leftovers(tmp_path) == []
    (app / "notes.txt").unlink()
    (app / "lib").symlink_to(tmp_path, target_is_directory=True)  # a folder link out: the same
    with pytest.raises(ExportError, match="outside the app"):
        export_site(app, tmp_path / "site")


def test_links_inside_the_app_are_followed_and_hidden_ones_skipped(tmp_path: Path, assets) -> None:
    app = make_app(tmp_path / "app", **{"data.txt": "inside"})
    (app / "alias.txt").symlink_to(app / "data.txt")
    (app / ".venv").symlink_to(tmp_path, target_is_directory=True)  # hidden: never exported, never followed
    (app / "sub").mkdir()
    (app / "sub" / "up").symlink_to(app, target_is_directory=True)  # a loop
    with pytest.raises(ExportError, match="loop"):
        export_site(app, tmp_path / "site")
    (app / "sub" / "up").unlink()
    export_site(app, tmp_path / "site")
    assert (tmp_path / "site/app/alias.txt").read_text() == "inside"
    assert not (tmp_path / "site/app/alias.txt").is_symlink() and not (tmp_path / "site/app/.venv").exists()


# ---- paths -------------------------------------------------------------------------------------------------


def test_an_output_folder_that_is_holds_or_lies_in_the_app_is_refused(tmp_path: Path, assets) -> None:
    app = make_app(tmp_path / "app", **{"site.json": '{"a data file": true}'})
    before = tree(app)
    for out in (app, app / "site", app / "deeper" / "site", tmp_path):
        with pytest.raises(ExportError, match="app"):
            export_site(app, out)
        assert tree(app) == before and not (app / "site").exists() and not (app / "deeper").exists()
    with pytest.raises(ExportError, match="holds the app"):
        export_site(app / "main.py", app)  # a single-file app inside the output folder
    assert tree(app) == before


def test_reexporting_an_exports_own_app_onto_it_keeps_the_edit(tmp_path: Path, assets) -> None:
    export_site(make_app(tmp_path / "app"), tmp_path / "site")
    (tmp_path / "site/app/main.py").write_text("print('edited in the site')\n")
    before = tree(tmp_path / "site")
    with pytest.raises(ExportError, match="holds the app"):
        export_site(tmp_path / "site" / "app", tmp_path / "site")
    assert tree(tmp_path / "site") == before


def test_a_folder_with_a_site_json_is_not_taken_for_an_export(tmp_path: Path, assets) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "site.json").write_text('{"my": "data"}')
    (mine / "thesis.tex").write_text("years of work")
    before = tree(mine)
    with pytest.raises(ExportError, match="not replacing it"):
        export_site(make_app(tmp_path / "app"), mine)
    assert tree(mine) == before and leftovers(tmp_path) == []


# ---- re-exports --------------------------------------------------------------------------------------------


def test_a_reexport_replaces_ours_and_keeps_what_the_user_added(tmp_path: Path, assets) -> None:
    app = make_app(tmp_path / "app", **{"old.py": ""})
    export_site(app, tmp_path / "site")
    (tmp_path / "site" / "my-page.html").write_text("<p>mine</p>")  # README: your own page beside index.html
    (tmp_path / "site" / "extra").mkdir()
    (tmp_path / "site" / "extra" / "notes.md").write_text("mine too")
    (app / "old.py").unlink()
    (app / "new.py").write_text("")
    export_site(app, tmp_path / "site")
    site = tmp_path / "site"
    assert (site / "my-page.html").read_text() == "<p>mine</p>" and (site / "extra/notes.md").is_file()
    assert (site / "app/new.py").is_file() and not (site / "app/old.py").exists()
    assert "my-page.html" not in json.loads((site / MARKER).read_text())["files"]
    assert leftovers(tmp_path) == []


def test_a_reexport_over_an_edited_file_of_ours_is_refused(tmp_path: Path, assets) -> None:
    app = make_app(tmp_path / "app")
    export_site(app, tmp_path / "site")
    (tmp_path / "site" / "index.html").write_text("<!doctype html><p>my edits</p>")
    before = tree(tmp_path / "site")
    with pytest.raises(ExportError, match="changed since the export"):
        export_site(app, tmp_path / "site")
    assert tree(tmp_path / "site") == before


# ---- models: every input checked before anything is written ------------------------------------------------


def test_a_missing_model_fails_before_the_earlier_site_is_touched(tmp_path: Path, assets) -> None:
    app = make_app(tmp_path / "app")
    export_site(app, tmp_path / "site")
    before = tree(tmp_path / "site")
    with pytest.raises(ExportError, match="model not found"):
        export_site(app, tmp_path / "site", models=[str(tmp_path / "typo.gguf")])
    assert tree(tmp_path / "site") == before and leftovers(tmp_path) == []


def test_two_models_with_one_name_are_refused(tmp_path: Path, assets) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "model.gguf").write_bytes(folder.encode())
    models = [str(tmp_path / "a/model.gguf"), str(tmp_path / "b/model.gguf")]
    with pytest.raises(ExportError, match="two models named 'model.gguf'"):
        export_site(make_app(tmp_path / "app"), tmp_path / "site", models=models)
    assert not (tmp_path / "site").exists()


@pytest.mark.parametrize(
    "url", ["https://example.com/models/..", "https://example.com/a/%2e%2e", "http://example.com/x%2F..%2Fy"]
)
def test_a_model_url_without_a_file_name_is_refused_before_any_download(
    tmp_path: Path, assets, monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    monkeypatch.setattr(export.urllib.request, "urlopen", lambda *a, **k: pytest.fail("downloaded"))
    app = make_app(tmp_path / "app")
    export_site(app, tmp_path / "site")
    before = tree(tmp_path / "site")
    with pytest.raises(ExportError, match="not a file name"):
        export_site(app, tmp_path / "site", models=[url])
    assert tree(tmp_path / "site") == before


def test_the_cli_says_what_is_wrong_in_one_line(tmp_path: Path, assets, capsys) -> None:
    app = make_app(tmp_path / "app")
    assert main(["export", str(app), str(app / "site")]) != 0
    err = capsys.readouterr().err
    assert "inside the app folder" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# ---- a fault at every copy ------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", [OSError("No space left on device"), RuntimeError("injected")])
def test_a_fault_at_any_copy_leaves_the_earlier_site_intact(
    tmp_path: Path, assets, monkeypatch: pytest.MonkeyPatch, fault: Exception
) -> None:
    (tmp_path / "model.gguf").write_bytes(b"GGUF" + bytes(1000))
    app = make_app(tmp_path / "app", **{"data.txt": "v1"})
    site = tmp_path / "site"
    export_site(app, site, models=[str(tmp_path / "model.gguf")])
    (site / "my-page.html").write_text("mine")
    before = tree(site)
    (app / "data.txt").write_text("v2")
    real_copy, copies = export._copy_file, []
    monkeypatch.setattr(export, "_copy_file", lambda src, dest: copies.append(dest) or real_copy(src, dest))
    export_site(app, tmp_path / "count", models=[str(tmp_path / "model.gguf")])
    n = len(copies)
    assert n > 15
    for k in range(n):
        calls = []

        def copy(src: Path, dest: Path, k: int = k, calls: list = calls) -> None:
            calls.append(dest)
            if len(calls) > k:
                raise fault
            real_copy(src, dest)

        monkeypatch.setattr(export, "_copy_file", copy)
        with pytest.raises(ExportError if isinstance(fault, OSError) else RuntimeError):
            export_site(app, site, models=[str(tmp_path / "model.gguf")])
        assert tree(site) == before, f"fault at copy {k + 1} of {n}"
        assert leftovers(tmp_path) == []
    monkeypatch.setattr(export, "_copy_file", real_copy)
    export_site(app, site, models=[str(tmp_path / "model.gguf")])  # and then it works
    assert (site / "app/data.txt").read_text() == "v2" and (site / "my-page.html").read_text() == "mine"
