from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import pytest

from py_runner.host import fixtures as fx
from py_runner.host.skips import skip_or_fail


@pytest.fixture(scope="module")
def vocab() -> Path:
    try:
        return fx.vocab_file()
    except FileNotFoundError as e:
        skip_or_fail(str(e))


@pytest.fixture(scope="module")
def tiny(vocab: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fx.make_model(tmp_path_factory.mktemp("tiny") / "tiny-f16.gguf", "tiny")


@pytest.fixture(scope="module")
def reader(tiny: Path) -> gguf.GGUFReader:
    # Parsing 32000 tokens with GGUFReader takes seconds: do it once for the module.
    return gguf.GGUFReader(tiny)


def _value(reader: gguf.GGUFReader, key: str) -> object:
    return reader.fields[key].contents()


def test_metadata(reader: gguf.GGUFReader) -> None:
    p = fx.PRESETS["tiny"]
    expected = {
        "general.architecture": "llama",
        "general.name": "py_runner-tiny",
        "general.file_type": int(gguf.LlamaFileType.MOSTLY_F16),
        "llama.context_length": p.n_ctx,
        "llama.embedding_length": p.n_embd,
        "llama.block_count": p.n_layer,
        "llama.feed_forward_length": p.n_ff,
        "llama.attention.head_count": p.n_head,
        "llama.attention.head_count_kv": p.n_head_kv,
        "llama.rope.dimension_count": p.n_embd // p.n_head,
        "llama.vocab_size": 32000,
    }
    for key, value in expected.items():
        assert _value(reader, key) == value, key
    assert _value(reader, "llama.rope.freq_base") == pytest.approx(p.rope_theta)
    assert _value(reader, "llama.attention.layer_norm_rms_epsilon") == pytest.approx(p.rms_eps)


def test_tokenizer_copied_verbatim(reader: gguf.GGUFReader, vocab: Path) -> None:
    source = [kv for kv in fx.read_kvs(vocab) if kv[0].startswith("tokenizer.")]
    assert {k for k, *_ in source} >= {
        "tokenizer.ggml.model", "tokenizer.ggml.tokens", "tokenizer.ggml.scores", "tokenizer.ggml.token_type",
        "tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.add_bos_token",
    }  # fmt: skip
    written = {k for k in reader.fields if k.startswith("tokenizer.")}
    assert written == {k for k, *_ in source}
    for key, value, vtype, sub_type in source:
        field = reader.fields[key]
        assert field.types[0] == vtype, key
        if sub_type is not None:
            assert field.types[-1] == sub_type, key
        assert field.contents() == value, key
    assert len(_value(reader, "tokenizer.ggml.tokens")) == 32000  # type: ignore[arg-type]


def test_tensors(reader: gguf.GGUFReader) -> None:
    p = fx.PRESETS["tiny"]
    hd = p.n_embd // p.n_head
    # GGUF (ggml) order: {in, out}, as llama.cpp's create_tensor calls spell them.
    expected = {
        "token_embd.weight": (p.n_embd, 32000),
        "output_norm.weight": (p.n_embd,),
        "output.weight": (p.n_embd, 32000),
    }
    for i in range(p.n_layer):
        expected |= {
            f"blk.{i}.attn_norm.weight": (p.n_embd,),
            f"blk.{i}.attn_q.weight": (p.n_embd, hd * p.n_head),
            f"blk.{i}.attn_k.weight": (p.n_embd, hd * p.n_head_kv),
            f"blk.{i}.attn_v.weight": (p.n_embd, hd * p.n_head_kv),
            f"blk.{i}.attn_output.weight": (hd * p.n_head, p.n_embd),
            f"blk.{i}.ffn_norm.weight": (p.n_embd,),
            f"blk.{i}.ffn_gate.weight": (p.n_embd, p.n_ff),
            f"blk.{i}.ffn_up.weight": (p.n_embd, p.n_ff),
            f"blk.{i}.ffn_down.weight": (p.n_ff, p.n_embd),
        }
    got = {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors}
    assert got == expected
    for t in reader.tensors:
        want = gguf.GGMLQuantizationType.F32 if len(t.shape) == 1 else gguf.GGMLQuantizationType.F16
        assert t.tensor_type == want, t.name
        if len(t.shape) == 1:
            assert np.all(t.data == 1.0), t.name
        else:
            assert np.all(np.isfinite(t.data)) and float(np.std(t.data.astype(np.float32))) > 0, t.name


def test_output_not_tied(reader: gguf.GGUFReader) -> None:
    tensors = {t.name: t for t in reader.tensors}
    out, emb = tensors["output.weight"].data, tensors["token_embd.weight"].data
    assert out.shape == emb.shape
    assert not np.array_equal(out, emb)


def test_deterministic(tiny: Path, tmp_path: Path) -> None:
    again = fx.make_model(tmp_path / "again.gguf", "tiny")
    assert again.read_bytes() == tiny.read_bytes()
    other_seed = fx.make_model(tmp_path / "seed1.gguf", "tiny", seed=1)
    assert other_seed.read_bytes() != tiny.read_bytes()


def test_rejects_unknown_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="preset"):
        fx.make_model(tmp_path / "x.gguf", "huge")
    with pytest.raises(ValueError, match="qtype"):
        fx.make_model(tmp_path / "x.gguf", "tiny", "q2_k")


@pytest.mark.parametrize(
    ("qtype", "file_type"),
    [("q8_0", gguf.LlamaFileType.MOSTLY_Q8_0), ("q4_k_m", gguf.LlamaFileType.MOSTLY_Q4_K_M)],
)
def test_quantized(vocab: Path, tmp_path: Path, qtype: str, file_type: gguf.LlamaFileType) -> None:
    try:
        fx.quantizer_binary()
    except FileNotFoundError as e:
        skip_or_fail(f"native quantizer unavailable: {e}")
    out = fx.make_model(tmp_path / f"tiny-{qtype}.gguf", "tiny", qtype)
    assert not list(tmp_path.glob("*.tmp"))
    kvs = {k: v for k, v, *_ in fx.read_kvs(out)}
    assert kvs["general.file_type"] == int(file_type)
    source = {k: v for k, v, *_ in fx.read_kvs(vocab)}
    assert kvs["tokenizer.ggml.tokens"] == source["tokenizer.ggml.tokens"]
    assert fx.make_model(tmp_path / "again.gguf", "tiny", qtype).read_bytes() == out.read_bytes()


def test_fixture_model_caches(vocab: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PY_RUNNER_LLAMA_SRC", str(fx.llama_cpp_source_dir()))  # the vocab stays where it is
    monkeypatch.setenv("PY_RUNNER_CACHE", str(tmp_path))
    first = fx.fixture_model("tiny", "f16")
    assert first.parent == tmp_path / "models"
    assert first.name.startswith("tiny-f16-") and len(first.stem.rsplit("-", 1)[1]) == 12
    mtime = first.stat().st_mtime_ns
    assert fx.fixture_model("tiny", "f16") == first
    assert first.stat().st_mtime_ns == mtime
    assert [p.name for p in (tmp_path / "models").iterdir()] == [first.name]


def test_embedding_model_is_a_bert_that_declares_its_pooling(vocab: Path, tmp_path: Path) -> None:
    from py_runner._gguf import parse_header

    path = fx.make_embedding_model(tmp_path / "bert.gguf", "bert-tiny", "cls")
    r = gguf.GGUFReader(path)
    assert _value(r, "general.architecture") == "bert"
    assert _value(r, "bert.pooling_type") == 2 and _value(r, "bert.attention.causal") is False
    assert _value(r, "tokenizer.ggml.model") == "bert"  # WordPiece, from ggml-vocab-bert-bge.gguf
    names = {t.name for t in r.tensors}
    assert {"token_types.weight", "position_embd.weight", "blk.1.layer_output_norm.bias"} <= names
    assert "output.weight" not in names  # no language-model head: it embeds, it does not generate
    header = parse_header(path.read_bytes()[: 4 << 20])
    assert header.architecture == "bert"
    again = fx.make_embedding_model(tmp_path / "again.gguf", "bert-tiny", "cls")
    assert again.read_bytes() == path.read_bytes()
    with pytest.raises(ValueError, match="pooling"):
        fx.make_embedding_model(tmp_path / "x.gguf", "bert-tiny", "max")
