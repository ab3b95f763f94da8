"""The dev server under attack (issue 12): what a page on another site, a crafted request or a careless folder
could do, and what the server does instead."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_server import request, server, tree  # noqa: F401  (the same served tree and server)

from py_runner.host import server as _server
from py_runner.host.server import exposure_warning


def test_a_symlink_out_of_a_served_folder_is_not_followed(server: str, tree: dict[str, Path]) -> None:  # noqa: F811
    secrets = tree["root"] / "secrets"
    secrets.mkdir(exist_ok=True)
    (secrets / "key.txt").write_text("private")
    (secrets / "other.gguf").write_bytes(b"GGUF")
    (tree["models"] / "link").symlink_to(secrets, target_is_directory=True)
    (tree["models"] / "escape.gguf").symlink_to(secrets / "other.gguf")
    try:
        assert request(server, "/models/link/key.txt")[0] == 404
        assert request(server, "/models/escape.gguf")[0] == 404
        models = json.loads(request(server, "/config.json")[2])["models"]
        assert "escape.gguf" not in models and "m.gguf" in models
    finally:
        (tree["models"] / "link").unlink()
        (tree["models"] / "escape.gguf").unlink()


def test_only_its_own_host_names_are_served(server: str) -> None:  # noqa: F811
    port = urlsplit(server).port
    assert request(server, "/config.json", headers={"Host": f"attacker.example:{port}"})[0] == 421
    assert request(server, "/config.json", headers={"Host": "127.0.0.1:1"})[0] == 421  # another port
    for name in ("127.0.0.1", "localhost", "[::1]"):
        assert request(server, "/config.json", headers={"Host": f"{name}:{port}"})[0] == 200, name


def test_crafted_paths_and_ranges_get_an_answer(server: str) -> None:  # noqa: F811
    assert request(server, "/models/" + "a" * 300 + ".gguf")[0] == 404  # a name longer than the OS allows
    status, headers, _ = request(server, "/models/m.gguf", headers={"Range": "bytes=" + "9" * 5000 + "-"})
    assert status == 416 and headers["Content-Range"].startswith("bytes */")


def test_if_range_and_etag_protect_a_resume(server: str, tree: dict[str, Path]) -> None:  # noqa: F811
    status, headers, body = request(server, "/models/m.gguf")
    etag, last_modified = headers["ETag"], headers["Last-Modified"]
    assert status == 200 and etag
    status, _, part = request(server, "/models/m.gguf", headers={"Range": "bytes=4-", "If-Range": etag})
    assert status == 206 and part == body[4:]
    stale = {"Range": "bytes=4-", "If-Range": '"0-0"'}  # the copy the client resumes is of another file
    status, _, whole = request(server, "/models/m.gguf", headers=stale)
    assert status == 200 and whole == body
    assert request(server, "/models/m.gguf", headers={"If-None-Match": etag})[0] == 304
    status, _, part = request(
        server, "/models/m.gguf", headers={"Range": "bytes=4-", "If-Range": last_modified}
    )
    assert status == 206


def test_a_half_sent_request_is_closed(server: str, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setattr(_server._Handler, "timeout", 0.5)
    u = urlsplit(server)
    with socket.create_connection((u.hostname, u.port), timeout=5) as s:
        s.sendall(b"GET /config.json HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # never ends its headers
        started = time.monotonic()
        assert s.recv(100) == b""  # the server closed the connection
        assert time.monotonic() - started < 4


def test_listening_beyond_this_machine_is_said() -> None:
    assert exposure_warning("127.0.0.1") is None and exposure_warning("localhost") is None
    assert "every network interface" in exposure_warning("0.0.0.0")
    assert "192.168.1.5" in exposure_warning("192.168.1.5")
