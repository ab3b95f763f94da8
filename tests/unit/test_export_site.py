"""`py-runner export`'s checks that need no browser and no build: sizes, what an app is, what may be replaced,
and the plain static host of --preview."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest

from py_runner.host.export import ExportError, _app_files, parse_size, preview_server


@pytest.mark.parametrize(
    ("text", "size"),
    [("95M", 95 << 20), ("95MiB", 95 << 20), ("2g", 2 << 30), ("1.5M", 3 << 19), ("2000000", 2_000_000)],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "M", "95X", "-1M", "100", "0.5M"])
def test_parse_size_refuses_nonsense_and_tiny_caps(text: str) -> None:
    with pytest.raises(ExportError):
        parse_size(text)


def test_an_app_is_a_py_file_or_a_folder_with_main(tmp_path: Path) -> None:
    (tmp_path / "one.py").write_text("print(1)\n")
    assert _app_files(tmp_path / "one.py") == ("one.py", ["one.py"])
    folder = tmp_path / "app"
    (folder / "pkg" / "__pycache__").mkdir(parents=True)
    (folder / "main.py").write_text("import pkg.mod\n")
    (folder / "pkg" / "mod.py").write_text("")
    (folder / "pkg" / "__pycache__" / "mod.cpython-311.pyc").write_bytes(b"")
    (folder / ".env").write_text("SECRET=1\n")
    (folder / "data.txt").write_text("x")
    assert _app_files(folder) == ("main.py", ["data.txt", "main.py", "pkg/mod.py"])  # no caches, no dotfiles
    (folder / "main.py").unlink()
    with pytest.raises(ExportError, match="needs a main.py"):
        _app_files(folder)
    (tmp_path / "notes.txt").write_text("")
    with pytest.raises(ExportError):
        _app_files(tmp_path / "notes.txt")


def test_preview_is_a_plain_static_host_under_a_subpath(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<!doctype html>")
    (site / "model.gguf").write_bytes(bytes(range(256)) * 4)
    server, url = preview_server(site, base="/user/repo/")
    try:
        assert url.endswith("/user/repo/")
        with urllib.request.urlopen(url) as response:
            assert response.read() == b"<!doctype html>"
            assert response.headers["Cross-Origin-Embedder-Policy"] is None  # no isolation headers
        request = urllib.request.Request(url + "model.gguf", headers={"Range": "bytes=10-19"})
        with urllib.request.urlopen(request) as response:  # no Range: the whole file, 200
            assert response.status == 200 and len(response.read()) == 1024
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url.replace("/user/repo/", "/") + "index.html")  # outside the base path
        assert server.requests[:2] == ["/user/repo/", "/user/repo/model.gguf"]
    finally:
        server.shutdown()
        server.server_close()
