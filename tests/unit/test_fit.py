"""Will a model fit the engine's 4 GiB heap: the estimate from the GGUF header (py_runner/_fit.py) and the
ModelTooLargeError that names what the model needs and what would fit, raised before any download."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from py_runner import (
    InvalidParameterError,
    LlamaRunner,
    MockTransport,
    ModelCompatibilityError,
    ModelTooLargeError,
)
from py_runner._fit import HEAP_LIMIT, check_cache_types, check_fits, estimate
from py_runner._gguf import GiB, parse_header
from py_runner.host.fixtures import claimed_model

GB = 1e9


def header_of(tmp_path: Path, preset: str, n_layer: int | None = None):
    path = claimed_model(tmp_path / f"{preset}-{n_layer}.gguf", preset, n_layer)
    with open(path, "rb") as f:
        return parse_header(f.read(4 << 20)), path


def test_the_big_presets_fit_at_the_default_context(tmp_path: Path) -> None:
    for preset, size in (("big-2.6g", 2.57), ("big-3.3g", 3.30)):
        header, _ = header_of(tmp_path, preset)
        assert header.data_size / GB == pytest.approx(size, abs=0.01)
        need = check_fits(header, 2048, 256)
        assert need.weights == header.data_size
        # KV: 8 heads x 64 dims, K and V, f16, per layer and cell
        n_layer = header.metadata["llama.block_count"]
        assert need.kv_cache == n_layer * 2048 * 8 * (64 + 64) * 2
        assert 0 < need.compute < 0.25 * GiB and need.total < HEAP_LIMIT


def test_a_6_gb_header_is_too_large_at_any_context(tmp_path: Path) -> None:
    header, _ = header_of(tmp_path, "big-2.6g", 47)
    assert header.data_size / GB == pytest.approx(5.98, abs=0.01)
    with pytest.raises(ModelTooLargeError) as caught:
        check_fits(header, 2048, 256, label="/models/six.gguf")
    err = caught.value
    assert isinstance(err, ModelCompatibilityError)  # caught by what already catches a model that cannot run
    assert err.limit == HEAP_LIMIT and err.needed > 5.98 * GB
    message = str(err)
    assert message.startswith("/models/six.gguf needs about 6.01 GiB of memory (")
    assert "5.57 GiB of weights" in message and "ctx_size=2048" in message
    assert "No context fits" in message and "more quantized" in message


def test_just_past_the_limit_a_smaller_context_is_named_and_fits(tmp_path: Path) -> None:
    header, _ = header_of(tmp_path, "big-2.6g", 30)
    over = estimate(header, 2048, 256)
    assert HEAP_LIMIT < over.total < HEAP_LIMIT + 0.1 * GiB  # just past, at the default context
    with pytest.raises(ModelTooLargeError, match=r"A smaller context fits: ctx_size=(\d+) or less") as caught:
        check_fits(header, 2048, 256)
    named = int(re.search(r"ctx_size=(\d+) or less", str(caught.value)).group(1))
    assert named % 256 == 0 and named < 2048
    check_fits(header, named, 256)  # the advice holds
    with pytest.raises(ModelTooLargeError):
        check_fits(header, named + 256, 256)  # and is the largest that does


def test_split_weights_count_every_shard(tmp_path: Path) -> None:
    header, _ = header_of(tmp_path, "big-2.6g")
    check_fits(header, 2048, 256)
    with pytest.raises(ModelTooLargeError, match=r"6.00 GiB of weights"):
        check_fits(header, 2048, 256, weights=6 * GiB)  # the shards' files, added up


def test_load_model_refuses_before_any_download(tmp_path: Path) -> None:
    """Through LlamaRunner: the header check reads the first bytes only, and the load never starts."""
    _, path = header_of(tmp_path, "big-2.6g", 47)
    with open(path, "rb") as f:
        prefix = f.read(4 << 20)
    size = path.stat().st_size

    transport = MockTransport(model_bytes=prefix, model_size=size)
    runner = LlamaRunner(transport=transport)
    with pytest.raises(ModelTooLargeError, match=r"^/six.gguf needs about"):
        asyncio.run(runner.load_model("/six.gguf"))
    assert transport.load_calls == [] and sum(transport.prefix_reads) < 4 << 20


def test_the_kv_cache_types_size_the_cache_and_a_q8_0_cache_is_offered(tmp_path: Path) -> None:
    header, _ = header_of(tmp_path, "big-2.6g", 30)
    f16 = estimate(header, 2048, 256)
    assert estimate(header, 2048, 256, type_k="f32", type_v="f32").kv_cache == 2 * f16.kv_cache
    assert estimate(header, 2048, 256, type_k="q8_0", type_v="q8_0").kv_cache == f16.kv_cache * 34 // 64
    mixed = estimate(header, 2048, 256, type_k="q8_0")  # K in q8_0, V in f16
    assert mixed.kv_cache == f16.kv_cache // 2 + f16.kv_cache * 34 // 128
    # just past the limit at f16: the advice names a q8_0 cache too, and it does fit
    with pytest.raises(ModelTooLargeError, match='type_k="q8_0", type_v="q8_0"'):
        check_fits(header, 2048, 256)
    check_fits(header, 2048, 256, type_k="q8_0", type_v="q8_0")
    with pytest.raises(ModelTooLargeError, match="A smaller context fits") as caught:
        check_fits(header, 2048, 256, type_k="f32", type_v="f32")
    assert "q8_0" not in str(caught.value)  # the caller chose the types: only the context is advised


def test_a_quantized_kv_cache_is_refused_where_32_does_not_divide_the_head_size(tmp_path: Path) -> None:
    tiny, _ = header_of(tmp_path, "tiny")  # 64 / 4 heads: a head size of 16
    check_cache_types(tiny, "f32", "bf16", "tiny.gguf")
    with pytest.raises(
        InvalidParameterError, match=r'type_v="q8_0" stores blocks of 32 .* head size of tiny.gguf \(16\)'
    ):
        check_cache_types(tiny, None, "q8_0", "tiny.gguf")
    big, _ = header_of(tmp_path, "big-2.6g")  # a head size of 64
    check_cache_types(big, "q8_0", "q4_0", "big.gguf")


def test_load_model_refuses_a_quantized_kv_cache_for_small_heads_before_any_download(tmp_path: Path) -> None:
    _, path = header_of(tmp_path, "tiny")
    data = path.read_bytes()
    transport = MockTransport(model_bytes=data[: 4 << 20], model_size=len(data))
    runner = LlamaRunner(transport=transport)
    with pytest.raises(InvalidParameterError, match=r'type_k="q4_0" stores blocks of 32'):
        asyncio.run(runner.load_model("/tiny.gguf", type_k="q4_0"))
    assert transport.load_calls == []
    asyncio.run(runner.load_model("/tiny.gguf", type_k="f32"))  # a cache type any head size takes
    assert transport.load_calls[-1][1]["type_k"] == 0
