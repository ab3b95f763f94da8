"""py_runner._gguf: the pure-Python GGUF header reader, checked against gguf.GGUFReader on real files.

gguf.GGUFReader takes 1-25 s per vocab file (118 s for all 19), so by default it checks the tiny fixture
models (which hold the llama SPM vocab) and a synthetic file with every value type; every vocab file is
parsed and must end exactly at the file's end, and those under 1 MB are compared value by value with
_fixtures.read_kvs (an independent numpy reader). PY_RUNNER_SLOW_GGUF=1 compares every vocab file with
GGUFReader (~2 min).
"""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path

import gguf
import numpy as np
import pytest

from py_runner import ModelCompatibilityError
from py_runner._gguf import (
    GGML_TYPE_SIZES,
    SUPPORTED_ARCHITECTURES,
    GGUFHeader,
    NeedMoreData,
    SkippedArray,
    check_compatibility,
    parse_header,
)
from py_runner.host.build.paths import models_dir
from py_runner.host.fixtures import fixture_model, llama_cpp_source_dir, read_kvs
from py_runner.host.skips import skip_or_fail

T = gguf.GGUFValueType
SLOW = os.environ.get("PY_RUNNER_SLOW_GGUF") == "1"
VOCAB_DIR = llama_cpp_source_dir() / "models"
VOCABS = sorted(VOCAB_DIR.glob("ggml-vocab-*.gguf"))


# ---------------------------------------------------------------------------------------------- helpers


def _reader_values(reader: gguf.GGUFReader) -> tuple[dict, dict]:
    """GGUFReader's fields as ({key: python value}, {key: (type, element type or None)})."""
    values, types = {}, {}
    for key, f in reader.fields.items():
        if key.startswith("GGUF."):
            continue
        if f.types[0] == T.ARRAY and f.types[1] == T.ARRAY:
            continue  # nested: contents() flattens them; checked against the written value instead
        values[key] = f.contents()
        types[key] = (int(f.types[0]), int(f.types[1]) if f.types[0] == T.ARRAY else None)
    return values, types


def _assert_same_as_reader(path: Path, h: GGUFHeader) -> gguf.GGUFReader:
    reader = gguf.GGUFReader(path)
    assert h.version == reader.fields["GGUF.version"].contents()
    assert h.tensor_count == reader.fields["GGUF.tensor_count"].contents() == len(reader.tensors)
    assert h.kv_count == reader.fields["GGUF.kv_count"].contents()
    values, types = _reader_values(reader)
    ours = {k: v for k, v in h.metadata.items() if h.metadata_types[k][1] != gguf.GGUFValueType.ARRAY}
    assert list(ours) == list(values)  # same keys, same order
    for key, value in values.items():
        assert h.metadata[key] == value, key
        assert type(h.metadata[key]) is type(value), key
        assert h.metadata_types[key] == types[key], key
    assert h.alignment == reader.alignment
    assert [(n, s, t, o) for n, s, t, o in h.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type), int(t.data_offset) - reader.data_offset)
        for t in reader.tensors
    ]
    assert h.header_size == reader.data_offset
    assert h.tensor_bytes == sum(int(t.n_bytes) for t in reader.tensors)
    return reader


def _s(text: str | bytes) -> bytes:
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(b)) + b


def _kv(key: str, vtype: int, payload: bytes) -> bytes:
    return _s(key) + struct.pack("<I", vtype) + payload


def _ti(name: str, dims: tuple[int, ...], ggml_type: int, offset: int, n_dims: int | None = None) -> bytes:
    n = len(dims) if n_dims is None else n_dims
    return _s(name) + struct.pack(f"<I{len(dims)}QIQ", n, *dims, ggml_type, offset)


def _gguf(kvs: list[bytes], tis: list[bytes], *, version: int = 3, n_kv=None, n_t=None) -> bytes:
    head = b"GGUF" + struct.pack(
        "<IQQ", version, len(tis) if n_t is None else n_t, len(kvs) if n_kv is None else n_kv
    )
    return head + b"".join(kvs) + b"".join(tis)


ARCH_KV = _kv("general.architecture", T.STRING, _s("llama"))


def _write_synthetic(path: Path, arch: str = "llama") -> None:
    """A small file with a key of every value type, arrays of several kinds, 2 tensors."""
    w = gguf.GGUFWriter(path, arch)
    w.add_uint8("t.u8", 250)
    w.add_int8("t.i8", -100)
    w.add_uint16("t.u16", 65000)
    w.add_int16("t.i16", -32000)
    w.add_uint32("t.u32", 4_000_000_000)
    w.add_int32("t.i32", -2_000_000_000)
    w.add_float32("t.f32", 0.1)
    w.add_uint64("t.u64", 2**64 - 1)
    w.add_int64("t.i64", -(2**63))
    w.add_float64("t.f64", 1e300)
    w.add_bool("t.bool", True)
    w.add_bool("t.false", False)
    w.add_string("t.str", "héllo ✓")
    w.add_string("t.empty", "")
    w.add_array("t.arr_i32", [1, -2, 3])
    w.add_array("t.arr_f32", [0.5, 1.5])
    w.add_array("t.arr_str", ["a", "", "ünï"])
    w.add_array("t.arr_bool", [True, False, True])
    w.add_array("t.arr_empty", [])
    w.add_key_value("t.arr_u8", [1, 2, 255], T.ARRAY, T.UINT8)
    w.add_key_value("t.arr_f64", [1.25, -2.5], T.ARRAY, T.FLOAT64)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tensor("a.weight", np.arange(6, dtype=np.float32).reshape(2, 3))
    w.add_tensor("b.weight", np.ones(4, dtype=np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "synthetic.gguf"
    _write_synthetic(path)
    return path


def _raises(data: bytes, *patterns: str, **limits: int) -> str:
    with pytest.raises(ModelCompatibilityError) as e:
        parse_header(data, **limits)
    msg = str(e.value)
    for p in patterns:
        assert re.search(p, msg), (p, msg)
    return msg


# ---------------------------------------------------------------------------------------------- real files


def test_synthetic_matches_reader(synthetic: Path) -> None:
    data = synthetic.read_bytes()
    h = parse_header(data)
    _assert_same_as_reader(synthetic, h)
    assert h.metadata["t.u64"] == 2**64 - 1 and h.metadata["t.i64"] == -(2**63)
    assert h.metadata["t.str"] == "héllo ✓" and h.metadata["t.arr_str"] == ["a", "", "ünï"]
    assert h.metadata["t.bool"] is True and h.metadata["t.false"] is False
    assert h.architecture == "llama" and h.file_type == 1
    assert [(n, s, t) for n, s, t, _ in h.tensors] == [("a.weight", (3, 2), 0), ("b.weight", (4,), 1)]
    assert h.data_size == 32 + 32  # 24 and 8 bytes, each padded to 32
    assert h.file_size_expected == len(data)
    assert h.split_no is None and h.split_count is None and h.split_tensors_count is None


@pytest.mark.parametrize("preset,qtype", [("tiny", "f16"), ("tiny", "q8_0")])
def test_fixture_models_match_reader(preset: str, qtype: str) -> None:
    try:
        path = fixture_model(preset, qtype)
    except FileNotFoundError as e:
        skip_or_fail(f"fixture model unavailable: {e}")
    data = path.read_bytes()
    h = parse_header(data, keep_arrays_up_to=2**32)
    _assert_same_as_reader(path, h)
    assert h.file_size_expected == len(data) == path.stat().st_size
    assert h.architecture == "llama"
    assert h.file_type == (1 if qtype == "f16" else 7)
    check_compatibility(h, supported_architectures=SUPPORTED_ARCHITECTURES)
    # Only the header is needed: the tensor data is not read.
    assert parse_header(data[: h.header_end]).tensors == h.tensors


@pytest.mark.parametrize("path", VOCABS, ids=[p.stem for p in VOCABS])
def test_vocab_files(path: Path) -> None:
    data = path.read_bytes()
    skimmed = parse_header(data)  # the default: the vocabulary's arrays are checked, not decoded
    tokens = skimmed.metadata["tokenizer.ggml.tokens"]
    assert isinstance(tokens, SkippedArray) and tokens.element_type == T.STRING
    check_compatibility(skimmed, supported_architectures=SUPPORTED_ARCHITECTURES)
    h = parse_header(data, keep_arrays_up_to=2**32)  # everything decoded, to compare with gguf-py
    assert h.tensor_count == 0 and h.tensors == [] and h.data_size == 0
    # Every byte is accounted for: a wrong length or type anywhere would not land exactly on the end.
    assert h.header_end == len(data) == h.file_size_expected  # tensor-less files end unpadded
    assert h.header_size == -(-len(data) // h.alignment) * h.alignment
    assert h.kv_count == len(h.metadata)
    assert skimmed.header_end == h.header_end and skimmed.metadata_types == h.metadata_types
    tokens = h.metadata["tokenizer.ggml.tokens"]
    assert all(isinstance(t, str) for t in tokens) and len(tokens) == len(
        skimmed.metadata["tokenizer.ggml.tokens"]
    )
    for key in ("tokenizer.ggml.scores", "tokenizer.ggml.token_type"):
        if key in h.metadata:
            assert len(h.metadata[key]) == len(tokens), key
    assert h.architecture in SUPPORTED_ARCHITECTURES
    check_compatibility(h, supported_architectures=SUPPORTED_ARCHITECTURES)
    if SLOW:
        _assert_same_as_reader(path, h)
    elif len(data) < 1_000_000:  # the reference readers take ~0.3 s/MB: the small files only by default
        kvs = read_kvs(path)
        assert [k for k, *_ in kvs] == list(h.metadata)
        for key, value, vtype, sub in kvs:
            assert h.metadata[key] == value, key
            assert h.metadata_types[key] == (int(vtype), None if sub is None else int(sub)), key


def test_cached_models_sizes() -> None:
    """Every model in the cache (quantized ones too: q8_0, q4_k_m mix several ggml types): the size the
    header predicts is the file's size. Only the header is read."""
    paths = sorted(models_dir().glob("*.gguf")) if models_dir().is_dir() else []
    if not paths:
        skip_or_fail(f"no cached models in {models_dir()}")
    for path in paths:
        length = 1024 * 1024
        while True:
            with path.open("rb") as f:
                head = f.read(length)
            try:
                h = parse_header(head)
                break
            except NeedMoreData as more:  # e.g. a 128k-token BPE vocabulary with its merges
                length = max(2 * length, more.needed_at_least)
        assert h.file_size_expected == path.stat().st_size, path.name


def test_long_arrays_are_checked_not_decoded() -> None:
    data = (VOCAB_DIR / "ggml-vocab-llama-spm.gguf").read_bytes()
    h = parse_header(memoryview(data))
    tokens, scores = h.metadata["tokenizer.ggml.tokens"], h.metadata["tokenizer.ggml.scores"]
    assert tokens == SkippedArray(T.STRING, 32000, tokens.offset) and len(scores) == 32000
    assert data[tokens.offset : tokens.offset + 8] == struct.pack(
        "<Q", len("<unk>")
    )  # the first token's length
    short = parse_header(data, keep_arrays_up_to=32000)
    assert short.metadata["tokenizer.ggml.tokens"][:3] == ["<unk>", "<s>", "</s>"]
    # A string array is still walked: a bad length in the middle of a skipped one is found.
    bad = bytearray(data)
    struct.pack_into("<Q", bad, tokens.offset, 2**40)
    with pytest.raises(ModelCompatibilityError, match=r"string 0 of array 'tokenizer.ggml.tokens'"):
        parse_header(bad)


def test_accepts_bytearray_and_memoryview(synthetic: Path) -> None:
    data = synthetic.read_bytes()
    a, b, c = parse_header(data), parse_header(bytearray(data)), parse_header(memoryview(data))
    assert a == b == c


# ---------------------------------------------------------------------------------------------- streaming


def test_every_prefix_needs_more_data(synthetic: Path) -> None:
    data = synthetic.read_bytes()
    full = parse_header(data)
    for n in range(full.header_end):
        try:
            parse_header(data[:n])
        except NeedMoreData as e:
            assert n < e.needed_at_least <= full.header_end, n
        else:
            raise AssertionError(f"prefix of {n} bytes parsed")
    assert parse_header(data[: full.header_end]) == full


def test_need_more_data_is_not_a_user_error() -> None:
    assert not issubclass(NeedMoreData, ModelCompatibilityError)
    with pytest.raises(NeedMoreData) as e:
        parse_header(b"")
    assert e.value.needed_at_least == 4


def test_string_array_lower_bound() -> None:
    """A truncated string array asks for at least the length fields of all its remaining strings."""
    kv = _kv("tokens", T.ARRAY, struct.pack("<IQ", T.STRING, 1000) + _s("x"))
    data = _gguf([kv], [])
    with pytest.raises(NeedMoreData) as e:
        parse_header(data)
    assert e.value.needed_at_least == len(data) + 999 * 8


# ---------------------------------------------------------------------------------------------- malformed


def test_wrong_magic() -> None:
    _raises(b"GGML" + bytes(20), r"not a GGUF file", r"bytes 0-3", r"GGML")
    _raises(b"<!DOCTYPE html>", r"HTML")


@pytest.mark.parametrize("version", [0, 4, 1000])
def test_bad_versions(version: int) -> None:
    _raises(_gguf([], [], version=version)[:8], rf"version {version}", r"byte 4")


def test_version_1_rejected() -> None:
    _raises(_gguf([], [], version=1), r"version 1", r"no longer supported")


def test_big_endian(tmp_path: Path) -> None:
    path = tmp_path / "be.gguf"
    w = gguf.GGUFWriter(path, "llama", endianess=gguf.GGUFEndian.BIG)
    w.add_uint32("x", 1)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    _raises(path.read_bytes()[:8], r"big-endian GGUF is not supported")


def test_absurd_counts_fail_from_the_first_bytes() -> None:
    _raises(_gguf([], [], n_t=2**40)[:16], r"tensor count 1099511627776", r"byte 8")
    _raises(_gguf([], [], n_kv=2**62)[:24], r"key/value count 4611686018427387904", r"byte 16")
    _raises(_gguf([], [], n_t=11)[:16], r"tensor count 11", max_tensor_count=10)


def test_huge_string_lengths() -> None:
    key = struct.pack("<Q", 2**40)  # first key's length
    _raises(_gguf([key], [])[: 24 + 8], r"key 0 at byte 24", r"length 1099511627776")
    value = _kv("general.name", T.STRING, struct.pack("<Q", 2**33))
    _raises(_gguf([value], []), r"'general.name'", r"length 8589934592")
    tokens = _kv("tok", T.ARRAY, struct.pack("<IQ", T.STRING, 3) + _s("a") + struct.pack("<Q", 2**50))
    _raises(_gguf([tokens], []), r"string 1 of array 'tok'", r"at byte \d+")
    _raises(_gguf([_kv("k", T.STRING, _s("x" * 20))], []), r"length 20", max_string=16)


def test_unknown_value_types() -> None:
    msg = _raises(_gguf([ARCH_KV, _kv("bad.key", 13, b"")], []), r"'bad.key'", r"unknown value type 13")
    assert f"value type 13 at byte {24 + len(ARCH_KV) + 8 + len('bad.key')}" in msg
    _raises(_gguf([_kv("arr", T.ARRAY, struct.pack("<IQ", 99, 1))], []), r"unknown element type 99")


def test_huge_arrays() -> None:
    kv = _kv("arr", T.ARRAY, struct.pack("<IQ", T.UINT8, 2**40))
    _raises(_gguf([kv], []), r"array 'arr' at byte \d+ has 1099511627776 elements")
    _raises(_gguf([_kv("a", T.ARRAY, struct.pack("<IQ", T.INT32, 11))], []), r"11 elements", max_array=10)


def test_bad_keys() -> None:
    _raises(_gguf([_kv("", T.UINT8, b"\x01")], []), r"key 0 at byte 24 is empty")
    _raises(_gguf([_kv("a", T.UINT8, b"\x01"), _kv("a", T.UINT8, b"\x02")], []), r"'a'.*duplicated")


def test_bad_alignment() -> None:
    _raises(_gguf([_kv("general.alignment", T.UINT32, struct.pack("<I", 48))], []), r"48 is not a power of 2")
    _raises(_gguf([_kv("general.alignment", T.UINT64, struct.pack("<Q", 64))], []), r"must be UINT32")
    h = parse_header(
        _gguf([_kv("general.alignment", T.UINT32, struct.pack("<I", 64))], [_ti("t", (64,), 0, 0)])
    )
    assert h.alignment == 64 and h.header_size % 64 == 0 and h.data_size == 256


def test_bad_tensor_infos() -> None:
    _raises(_gguf([ARCH_KV], [_ti("t", (1, 1, 1, 1, 1), 0, 0)]), r"'t' at byte \d+ has 5 dimensions")
    _raises(_gguf([ARCH_KV], [_ti("t", (32,), 99, 0)]), r"'t'", r"ggml type 99", r"unknown")
    _raises(_gguf([ARCH_KV], [_ti("t", (32,), 4, 0)]), r"ggml type 4", r"removed")
    _raises(_gguf([ARCH_KV], [_ti("t", (33,), 8, 0)]), r"Q8_0", r"33 elements", r"block size 32")
    _raises(_gguf([ARCH_KV], [_ti("t", (2**63,), 0, 0)]), r"negative or absurd dimension")
    _raises(_gguf([ARCH_KV], [_ti("t", (2**32, 2**32), 0, 0)]), r"too many elements")
    _raises(_gguf([ARCH_KV], [_ti("x" * 64, (1,), 0, 0)]), r"too long")
    _raises(_gguf([ARCH_KV], [_ti("t", (8,), 0, 0), _ti("t", (8,), 0, 32)]), r"duplicate tensor name 't'")
    _raises(_gguf([ARCH_KV], [_ti("a", (8,), 0, 0), _ti("b", (8,), 0, 64)]), r"'b'.*offset 64, expected 32")


def test_errors_come_before_the_data() -> None:
    """A bad tensor info is reported as soon as its bytes arrive, whatever follows."""
    data = _gguf([ARCH_KV], [_ti("t", (1, 1, 1, 1, 1), 0, 0)])
    _raises(data[: data.index(b"t\x05") + 5], r"5 dimensions")


def test_tensor_sizes_per_type() -> None:
    tis, offset = [], 0
    for t, (_, block, size) in sorted(GGML_TYPE_SIZES.items()):
        tis.append(_ti(f"t{t}", (block * 2, 3), t, offset))
        offset += -(-(6 * size) // 32) * 32
    h = parse_header(_gguf([ARCH_KV], tis))
    assert h.data_size == offset
    assert h.file_size_expected == h.header_size + offset
    assert h.tensor_bytes == sum(6 * size for _, _, size in GGML_TYPE_SIZES.values())


def test_type_table_matches_gguf_package() -> None:
    for qtype, (block, size) in gguf.GGML_QUANT_SIZES.items():
        assert GGML_TYPE_SIZES[int(qtype)] == (qtype.name, block, size)


def test_supported_architectures_match_source() -> None:
    src = llama_cpp_source_dir() / "src" / "llama-arch.cpp"
    if not src.is_file():
        skip_or_fail(f"llama.cpp source not unpacked: {src} is missing")
    block = re.search(r"LLM_ARCH_NAMES = \{(.*?)\n\};", src.read_text(), re.S)
    assert block
    names = set(re.findall(r'\{\s*LLM_ARCH_\w+,\s*"([^"]+)"\s*\}', block.group(1)))
    assert SUPPORTED_ARCHITECTURES == names - {"clip", "(unknown)"}


# ---------------------------------------------------------------------------------------------- compatibility


def _header(arch: str | None, *tis: bytes, extra: list[bytes] | None = None) -> GGUFHeader:
    kvs = ([] if arch is None else [_kv("general.architecture", T.STRING, _s(arch))]) + (extra or [])
    return parse_header(_gguf(kvs, list(tis)))


def test_check_compatibility_architecture() -> None:
    check_compatibility(_header("llama"), supported_architectures=SUPPORTED_ARCHITECTURES)
    check_compatibility(_header("my-new-arch"))  # no set given: any architecture
    with pytest.raises(ModelCompatibilityError, match=r"architecture 'my-new-arch' is not supported"):
        check_compatibility(_header("my-new-arch"), supported_architectures=SUPPORTED_ARCHITECTURES)
    with pytest.raises(ModelCompatibilityError, match=r"'clip'"):
        check_compatibility(_header("clip"), supported_architectures=SUPPORTED_ARCHITECTURES)
    with pytest.raises(ModelCompatibilityError, match=r"no general.architecture"):
        check_compatibility(_header(None))


def test_nested_arrays_are_refused_at_once(tmp_path: Path) -> None:
    """llama.cpp cannot read arrays of arrays: refused at the outer array's header, before any of its
    (possibly millions of) inner arrays is walked, so the bytes after it are never asked for."""
    path = tmp_path / "nested.gguf"
    w = gguf.GGUFWriter(path, "llama")
    w.add_key_value("t.nested", [[1, 2], [3]], T.ARRAY, T.ARRAY)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.close()
    data = path.read_bytes()
    outer = data.index(b"t.nested") + len(b"t.nested") + 4 + 4 + 8  # value type, element type, length
    with pytest.raises(ModelCompatibilityError, match=r"'t.nested' \(byte \d+\) holds nested arrays"):
        parse_header(data[:outer])


def test_split_shards() -> None:
    split = [
        _kv("split.no", T.UINT16, struct.pack("<H", 1)),
        _kv("split.count", T.UINT16, struct.pack("<H", 3)),
        _kv("split.tensors.count", T.INT32, struct.pack("<i", 200)),
    ]
    shard = _header(None, _ti("blk.9.w", (4096, 2**18), 0, 0), extra=split)
    assert (shard.split_no, shard.split_count, shard.split_tensors_count) == (1, 3, 200)
    check_compatibility(shard)  # later shards carry no architecture: not required
