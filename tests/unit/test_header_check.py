"""load_model() checks the GGUF header from the first bytes and fails before any download."""

import asyncio
import struct

import pytest

from py_runner import (
    LlamaRunner,
    LoadingStage,
    ModelCompatibilityError,
    ModelNotFoundError,
    TruncatedModelError,
)
from py_runner._transport.mock import MockTransport, gguf_header

URL = "http://127.0.0.1:8000/model.gguf"


def load(transport: MockTransport, events: list | None = None):
    runner = LlamaRunner(transport=transport)
    return asyncio.run(runner.load_model(URL, progress_callback=None if events is None else events.append))


@pytest.mark.parametrize(
    "model_bytes, error, text",
    [
        (b"<!doctype html><html>" + bytes(100), ModelCompatibilityError, "not a GGUF file"),
        (gguf_header(version=4), ModelCompatibilityError, "version 4"),
        (gguf_header("not-an-arch"), ModelCompatibilityError, "not-an-arch"),
        (gguf_header()[:30], TruncatedModelError, "inside its GGUF header"),
    ],
)
def test_bad_files_fail_before_the_download(model_bytes: bytes, error: type, text: str) -> None:
    transport = MockTransport(model_bytes=model_bytes)
    events: list = []
    with pytest.raises(error, match=text) as info:
        load(transport, events)
    assert URL in str(info.value)
    assert transport.load_calls == []  # the worker never started downloading
    assert events[-1].stage is LoadingStage.ERROR


def test_http_error_of_the_header_read_is_typed() -> None:
    transport = MockTransport(prefix_error=ModelNotFoundError(f"fetching {URL} failed: HTTP 404", status=404))
    with pytest.raises(ModelNotFoundError):
        load(transport)
    assert transport.load_calls == []


def test_a_large_header_is_read_in_growing_prefixes() -> None:
    big = "x" * 600_000  # a chat template / vocabulary larger than the first probe
    key = b"general.description"
    extra = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(big)) + big.encode()
    header = bytearray(gguf_header())
    header[16:24] = struct.pack("<Q", 2)  # kv_count 1 -> 2
    transport = MockTransport(model_bytes=bytes(header) + extra)
    spec = load(transport)
    assert spec.architecture == "llama"
    assert len(transport.prefix_reads) == 2 and transport.prefix_reads[1] > 600_000
    assert len(transport.load_calls) == 1


def test_a_file_shorter_than_its_header_says_is_truncated() -> None:
    # One F32 tensor of 1024 floats: the header promises 4 KiB of data that are not there.
    name = b"token_embd.weight"
    tensor = struct.pack("<Q", len(name)) + name + struct.pack("<IQIQ", 1, 1024, 0, 0)
    header = bytearray(gguf_header())
    header[8:16] = struct.pack("<Q", 1)  # tensor_count 0 -> 1
    transport = MockTransport(model_bytes=bytes(header) + tensor + bytes(64))
    with pytest.raises(TruncatedModelError, match="describes"):
        load(transport)
    assert transport.load_calls == []


def _split_header(no: int, count: int) -> bytes:
    def kv_u16(key: bytes, value: int) -> bytes:
        return struct.pack("<Q", len(key)) + key + struct.pack("<IH", 2, value)  # 2 = UINT16

    header = bytearray(gguf_header())
    header[16:24] = struct.pack("<Q", 3)  # kv_count 1 -> 3
    return bytes(header) + kv_u16(b"split.no", no) + kv_u16(b"split.count", count)


def test_split_gguf_first_shard_url_loads_all_shards() -> None:
    transport = MockTransport(model_bytes=_split_header(0, 3))
    runner = LlamaRunner(transport=transport)
    spec = asyncio.run(runner.load_model("/m/x-00001-of-00003.gguf"))
    source, options = transport.load_calls[0]
    assert source == [f"/m/x-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    assert (
        options["sizes"] == [len(transport.model_bytes)] * 3
    )  # every shard's size, asked before the download
    assert spec.source_urls == tuple(source)


def test_a_later_shard_alone_is_refused() -> None:
    transport = MockTransport(model_bytes=_split_header(1, 3))
    with pytest.raises(ModelCompatibilityError, match="shard 2 of 3"):
        asyncio.run(LlamaRunner(transport=transport).load_model("/m/x-00002-of-00003.gguf"))
    assert transport.load_calls == []
