"""The pytest plugin's fault suite, CPython half (its browser half is tests/e2e/test_pytest_plugin.py): values
returned from the page keep their types (page_code.encode, in_page.decode, fuzzed with Hypothesis as
test_fuzz.py does), and an app's files are fetched by URLs that the server maps back to exactly those files,
whatever their names hold ("#", "?", "%", spaces, any Unicode)."""

from __future__ import annotations

import http.client
import json
import math
import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fuzz_figures import fuzz_settings
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from py_runner.host.browser.in_page import decode
from py_runner.host.browser.page_code import MAX_DEPTH, encode
from py_runner.host.pytest_plugin import _app_files
from py_runner.host.server import start_server, stop_server

EXAMPLES = int(os.environ.get("PY_RUNNER_FUZZ_EXAMPLES", "200"))
FUZZ = fuzz_settings(HealthCheck.function_scoped_fixture)


def _across(value: object) -> object:
    """`value` as the host gets it: encoded in the page, sent as JSON text, decoded."""
    return decode(json.loads(json.dumps(encode(value))))


def _same(a: object, b: object) -> bool:
    """Equal with the same types all the way down (NaN equal to NaN)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b  # sets and frozensets hold hashables: == compares them with their types


@pytest.mark.parametrize(
    "value",
    [
        {1, 2, 3},
        frozenset({"a", (1, 2)}),
        set(),
        (1, "two", [3.5, None]),
        (),
        {(1, 2): b"\x00\xff", 3: {"x"}, None: True, "list": [1]},  # a key that spells a tag is just a key
        {"set": [1]},
        b"\x00\x80\xff",
        2**80,
        -(2**64),
        float("inf"),
        [float("nan")],
        "é ✓ \U0001f600",
    ],
)
def test_a_value_arrives_with_its_types(value: object) -> None:
    assert _same(_across(value), value)


def test_bytearray_and_memoryview_arrive_as_bytes() -> None:
    assert _across(bytearray(b"ab")) == b"ab"
    assert _across(memoryview(b"cd")) == b"cd"


def test_a_value_without_a_faithful_form_is_refused_naming_its_type() -> None:
    class Widget:
        pass

    with pytest.raises(TypeError, match=r"Widget cannot be returned to the host"):
        encode([1, {"k": Widget()}])


def test_a_value_nested_too_deep_is_refused_not_a_crash() -> None:
    value: list = []
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(TypeError, match=f"nested more than {MAX_DEPTH} levels"):
        encode(value)


_hashable = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=3),
    max_leaves=8,
)
_value = st.recursive(
    _hashable | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner)
        | st.sets(_hashable, max_size=4)
        | st.dictionaries(_hashable, inner, max_size=4)
    ),
    max_leaves=20,
)


@FUZZ
@given(_value)
def test_fuzz_values_arrive_with_their_types(value: object) -> None:
    assert _same(_across(value), value)


# ---- app files ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files_server(tmp_path_factory: pytest.TempPathFactory):
    app = tmp_path_factory.mktemp("app")
    server, base_url = start_server("127.0.0.1", 0, files_dir=app)
    try:
        yield app, base_url
    finally:
        stop_server(server)


def _get(base_url: str, url_path: str) -> tuple[int, bytes]:
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", url_path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _served_exactly(app: Path, base_url: str) -> None:
    for rel, url, size, _sha256 in _app_files(app):
        status, body = _get(base_url, url)
        assert (status, body) == (200, (app / rel).read_bytes()), (rel, url)
        assert len(body) == size


def test_app_files_with_awkward_names_are_fetched_as_themselves(files_server: tuple[Path, str]) -> None:
    app, base_url = files_server
    names = [
        "notes#1.txt",
        "what?.txt",
        "a%41.txt",
        "aA.txt",
        "with space.txt",
        "ünï ✓.txt",
        "sub dir/x&y=1.txt",
    ]
    for i, name in enumerate(names):
        (app / name).parent.mkdir(exist_ok=True)
        (app / name).write_bytes(f"file {i}: {name}".encode())
    assert {rel for rel, *_ in _app_files(app)} >= set(names)
    _served_exactly(app, base_url)


_name = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="/\\\x00"), min_size=1, max_size=24
).filter(lambda n: not n.startswith(".") and len(n.encode()) < 200)


@FUZZ
@given(name=_name, data=st.binary(max_size=64))
def test_fuzz_app_file_names(files_server: tuple[Path, str], name: str, data: bytes) -> None:
    app, base_url = files_server
    path = app / "fuzz" / name
    path.parent.mkdir(exist_ok=True)
    try:
        path.write_bytes(data)
    except OSError:  # a name this file system refuses is no app's file
        return
    try:
        _served_exactly(app, base_url)
    finally:
        path.unlink()
