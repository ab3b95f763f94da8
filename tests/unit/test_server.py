"""The dev/harness server: headers, MIME types, Range, HEAD, traversal, wheel, /config.json."""

from __future__ import annotations

import email
import http.client
import io
import json
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from py_runner import __version__
from py_runner.host.build.wheel import build_wheel
from py_runner.host.server import start_server, stop_server

ISOLATION = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}

MODEL_BYTES = bytes(range(256)) * 40  # 10240 bytes


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("srv")
    cache = root / "cache"
    pyodide = cache / "pyodide" / "314.0.7"
    wheels = cache / "wheels"
    models = root / "models"
    files = root / "files"
    web = root / "web"
    for d in (pyodide, wheels, models, files / "sub", web):
        d.mkdir(parents=True)
    (pyodide / "pyodide.mjs").write_text("export const x = 1;\n")
    (pyodide / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0")
    (pyodide / "pyodide-lock.json").write_text("{}")
    (pyodide / "python_stdlib.zip").write_bytes(b"PK\5\6" + b"\0" * 18)
    (wheels / "micropip-0.11.1-py3-none-any.whl").write_bytes(b"not really a wheel")
    (models / "m.gguf").write_bytes(MODEL_BYTES)
    (models / "empty.gguf").write_bytes(b"")
    (models / ".hidden").write_text("secret")
    (files / "app.py").write_text("print('hi')\n")
    (files / "sub" / "index.html").write_text("<p>sub</p>")
    for folder in ("apps", "site"):
        (web / folder).mkdir()
    (web / "apps" / "index.html").write_text("<!doctype html><title>t</title>")
    (web / "site" / "harness.js").write_text("export {};\n")
    (root / "outside.txt").write_text("outside")
    single = root / "elsewhere" / "local.gguf"
    single.parent.mkdir()
    single.write_bytes(b"GGUF" + b"\1" * 60)
    default = root / "elsewhere" / "zz-default.gguf"  # sorts last: it must still come first
    default.write_bytes(b"GGUF" + b"\2" * 60)
    return {
        "default": default,
        "root": root,
        "cache": cache,
        "models": models,
        "files": files,
        "web": web,
        "single": single,
    }


@pytest.fixture(scope="module")
def server(tree: dict[str, Path]):
    mp = pytest.MonkeyPatch()
    mp.setenv("PY_RUNNER_CACHE", str(tree["cache"]))
    mp.setenv("PY_RUNNER_BUILD_DIR", str(tree["root"] / "builds"))
    (tree["root"] / "builds" / "st").mkdir(parents=True)
    (tree["root"] / "builds" / "st" / "pr_glue.js").write_text("var Module;\n")
    (tree["root"] / "builds" / "mt").mkdir(parents=True)
    (tree["root"] / "builds" / "mt" / "pr_glue.wasm").write_bytes(b"\0asm\1\0\0\0")
    from py_runner.host.build import paths as _paths

    _paths.build_dir.cache_clear()
    srv, base = start_server(
        "127.0.0.1",
        0,
        models_dir=tree["models"],
        files_dir=tree["files"],
        web_dir=tree["web"],
        extra_files={"/local-model/local.gguf": tree["single"]},
        default_model=tree["default"],
    )
    try:
        yield base
    finally:
        stop_server(srv)
        _paths.build_dir.cache_clear()
        mp.undo()


def request(base: str, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    """Raw request (no client-side path normalisation): returns (status, headers, body)."""
    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        body = resp.read()
        return resp.status, resp.headers, body
    finally:
        conn.close()


def assert_common_headers(headers: email.message.Message) -> None:
    for name, value in ISOLATION.items():
        assert headers[name] == value, name
    assert headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "path",
    [
        "/web/apps/index.html",
        "/nope",
        "/web/missing.html",
        "/config.json",
        "/",
        "/pyodide/pyodide.mjs",
        "/models/m.gguf",
        "/models/../outside.txt",
    ],
)
def test_headers_on_every_response(server: str, path: str) -> None:
    status, headers, _ = request(server, path)
    assert status in (200, 302, 404)
    assert_common_headers(headers)


def test_404_has_headers_and_length(server: str) -> None:
    status, headers, body = request(server, "/web/missing.html")
    assert status == 404
    assert_common_headers(headers)
    assert int(headers["Content-Length"]) == len(body)


def test_root_redirects_to_the_chat_page(server: str) -> None:
    status, headers, _ = request(server, "/")
    assert status == 302
    assert headers["Location"] == "/web/apps/chat.html"


@pytest.mark.parametrize(
    ("path", "mime"),
    [
        ("/web/apps/index.html", "text/html"),
        ("/web/site/harness.js", "text/javascript"),
        ("/pyodide/pyodide.mjs", "text/javascript"),
        ("/pyodide/pyodide.asm.wasm", "application/wasm"),
        ("/pyodide/pyodide-lock.json", "application/json"),
        ("/pyodide/python_stdlib.zip", "application/zip"),
        ("/wheels/micropip-0.11.1-py3-none-any.whl", "application/octet-stream"),
        ("/models/m.gguf", "application/octet-stream"),
        ("/config.json", "application/json"),
        ("/build/st/pr_glue.js", "text/javascript"),
        ("/build/mt/pr_glue.wasm", "application/wasm"),
    ],
)
def test_mime_types(server: str, path: str, mime: str) -> None:
    status, headers, _ = request(server, path)
    assert status == 200, path
    assert headers["Content-Type"].split(";")[0] == mime


def test_full_get(server: str) -> None:
    status, headers, body = request(server, "/models/m.gguf")
    assert status == 200
    assert body == MODEL_BYTES
    assert headers["Content-Length"] == str(len(MODEL_BYTES))
    assert headers["Accept-Ranges"] == "bytes"


def test_head(server: str) -> None:
    status, headers, body = request(server, "/models/m.gguf", method="HEAD")
    assert status == 200
    assert body == b""
    assert headers["Content-Length"] == str(len(MODEL_BYTES))
    assert headers["Accept-Ranges"] == "bytes"
    assert_common_headers(headers)


@pytest.mark.parametrize(
    ("range_header", "start", "end"),
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len(MODEL_BYTES) - 1),
        ("bytes=-16", len(MODEL_BYTES) - 16, len(MODEL_BYTES) - 1),
        ("bytes=10000-999999", 10000, len(MODEL_BYTES) - 1),
        ("bytes=5-5", 5, 5),
    ],
)
def test_range(server: str, range_header: str, start: int, end: int) -> None:
    status, headers, body = request(server, "/models/m.gguf", headers={"Range": range_header})
    assert status == 206
    assert body == MODEL_BYTES[start : end + 1]
    assert headers["Content-Length"] == str(end - start + 1)
    assert headers["Content-Range"] == f"bytes {start}-{end}/{len(MODEL_BYTES)}"
    assert headers["Accept-Ranges"] == "bytes"
    assert_common_headers(headers)


def test_range_head(server: str) -> None:
    status, headers, body = request(server, "/models/m.gguf", method="HEAD", headers={"Range": "bytes=0-9"})
    assert status == 206
    assert body == b""
    assert headers["Content-Length"] == "10"


@pytest.mark.parametrize("range_header", ["bytes=10240-", "bytes=99999-100000", "bytes=-0"])
def test_range_unsatisfiable(server: str, range_header: str) -> None:
    status, headers, _ = request(server, "/models/m.gguf", headers={"Range": range_header})
    assert status == 416
    assert headers["Content-Range"] == f"bytes */{len(MODEL_BYTES)}"
    assert_common_headers(headers)


def test_range_on_empty_file_is_unsatisfiable(server: str) -> None:
    status, headers, _ = request(server, "/models/empty.gguf", headers={"Range": "bytes=0-"})
    assert status == 416
    assert headers["Content-Range"] == "bytes */0"


@pytest.mark.parametrize("range_header", ["bytes=0-1,5-6", "items=0-1", "bytes=9-3", "bytes=abc"])
def test_unsupported_range_serves_whole_file(server: str, range_header: str) -> None:
    status, _, body = request(server, "/models/m.gguf", headers={"Range": range_header})
    assert status == 200
    assert body == MODEL_BYTES


@pytest.mark.parametrize(
    "path",
    [
        "/models/../outside.txt",
        "/models/%2e%2e/outside.txt",
        "/models/..%2foutside.txt",
        "/models/%2e%2e%2foutside.txt",
        "/files/sub/../../outside.txt",
        "/web/..%5c..%5coutside.txt",
        "/models//etc/passwd",
        "/models/.hidden",
        "/models/%00",
        "/pyodide/../../../../../../etc/passwd",
    ],
)
def test_traversal_blocked(server: str, path: str) -> None:
    status, headers, body = request(server, path)
    assert status == 404
    assert b"outside" not in body and b"root:" not in body and b"secret" not in body
    assert_common_headers(headers)


def test_no_directory_listing(server: str) -> None:
    status, _, _ = request(server, "/models/")
    assert status == 404
    status, _, _ = request(server, "/pyodide/")
    assert status == 404
    # A folder with an index.html serves that page, never a listing.
    status, _, body = request(server, "/files/sub/")
    assert status == 200 and body == b"<p>sub</p>"


def test_files_and_single_file_mounts(server: str, tree: dict[str, Path]) -> None:
    status, _, body = request(server, "/files/app.py")
    assert status == 200 and body == b"print('hi')\n"
    status, headers, body = request(server, "/local-model/local.gguf")
    assert status == 200 and body == tree["single"].read_bytes()
    assert headers["Content-Type"] == "application/octet-stream"
    status, _, _ = request(server, "/local-model/other.gguf")
    assert status == 404


def test_config_json(server: str) -> None:
    status, _, body = request(server, "/config.json")
    assert status == 200
    config = json.loads(body)
    assert config["pyodide"] == "/pyodide/"
    assert config["micropip_wheel"] == "/wheels/micropip-0.11.1-py3-none-any.whl"
    assert config["py_runner_wheel"] == f"/wheels/py_runner-{__version__}-py3-none-any.whl"
    assert config["models"] == ["zz-default.gguf", "empty.gguf", "m.gguf"]  # the default model first


def test_default_model_is_served_under_models(server: str, tree: dict[str, Path]) -> None:
    status, _, body = request(server, "/models/zz-default.gguf")
    assert status == 200 and body == tree["default"].read_bytes()


def test_wheel_is_served_and_valid(server: str) -> None:
    config = json.loads(request(server, "/config.json")[2])
    status, headers, body = request(server, config["py_runner_wheel"])
    assert status == 200
    assert_common_headers(headers)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        dist_info = f"py_runner-{__version__}.dist-info"
        assert "py_runner/__init__.py" in names
        assert "py_runner/_runner.py" in names
        metadata = zf.read(f"{dist_info}/METADATA").decode()
        assert "Name: py_runner" in metadata
        assert f"Version: {__version__}" in metadata
        assert "Tag: py3-none-any" in zf.read(f"{dist_info}/WHEEL").decode()
        record = zf.read(f"{dist_info}/RECORD").decode().splitlines()
        recorded = {line.split(",")[0] for line in record}
        assert recorded == set(names)
        for line in record:
            name, digest, size = line.split(",")
            if name.endswith("RECORD"):
                continue
            assert digest.startswith("sha256=") and int(size) == len(zf.read(name))


def test_wheel_is_deterministic(tmp_path: Path) -> None:
    a = build_wheel(tmp_path / "a", use_cache=False)  # two real builds, not one build and its cached copy
    b = build_wheel(tmp_path / "b", use_cache=False)
    assert a.name == b.name == f"py_runner-{__version__}-py3-none-any.whl"
    assert a.read_bytes() == b.read_bytes()


def test_large_file_streams_in_chunks(server: str, tree: dict[str, Path]) -> None:
    big = tree["models"] / "big.gguf"
    size = 5 * 1024 * 1024 + 123
    with open(big, "wb") as f:
        f.truncate(size)
    status, headers, body = request(server, "/models/big.gguf")
    assert status == 200 and len(body) == size and headers["Content-Length"] == str(size)
    status, _, body = request(server, "/models/big.gguf", headers={"Range": f"bytes={size - 10}-"})
    assert status == 206 and len(body) == 10


def test_build_mount_missing_is_404(server: str) -> None:
    status, headers, _ = request(server, "/build/st/nothing.js")
    assert status == 404
    assert_common_headers(headers)


def test_non_isolated_server_leaves_out_isolation_headers(tree: dict[str, Path]) -> None:
    srv, base = start_server(web_dir=tree["web"], isolate=False)
    try:
        status, headers, _ = request(base, "/web/apps/index.html")
    finally:
        stop_server(srv)
    assert status == 200
    assert headers["Cross-Origin-Embedder-Policy"] is None
    assert headers["Cache-Control"] == "no-cache"
