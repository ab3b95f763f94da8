"""Deterministic random-weight llama models for tests and the headless runner (CPython host side only).

The models have real llama.cpp structure and the real llama SPM vocabulary, but random weights: they load,
tokenize and generate exactly like a trained model of the same shape, at no download cost.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import mmap
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np

from .build.paths import cache_root, models_dir, native_binary
from .build.pins import LLAMA_CPP_PYTHON

ARCH = "llama"
QTYPES = ("f16", "q8_0", "q4_k_m")

# Residual-branch outputs are shrunk so the residual stream keeps the token's identity: with full-scale
# random branches every position drifts to the same state and greedy decoding repeats one token.
RESIDUAL_SCALE = 0.3


@dataclass(frozen=True)
class Preset:
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    n_ctx: int
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5


PRESETS: dict[str, Preset] = {
    "tiny": Preset(n_embd=64, n_layer=2, n_head=4, n_head_kv=2, n_ff=128, n_ctx=512),
    # SmolLM2-135M's shape (its own vocabulary is replaced by llama SPM's 32000 tokens).
    "s135": Preset(
        n_embd=576,
        n_layer=30,
        n_head=9,
        n_head_kv=3,
        n_ff=1536,
        n_ctx=2048,
        rope_theta=100000.0,
        rms_eps=1e-5,
    ),
    # Big models for the wasm32 heap's limits, shaped like Llama-3.2-1B/3B's layers (hidden 2048, ffn 8192,
    # 32 heads, 8 KV heads); only the depth differs. F16: 2.57 GB (past 2 GiB, where signed 32-bit offsets and
    # pointers break) and 3.30 GB (past 3 GiB, near the 4 GiB ceiling with a KV cache and compute buffers).
    "big-2.6g": Preset(n_embd=2048, n_layer=19, n_head=32, n_head_kv=8, n_ff=8192, n_ctx=4096),
    "big-3.3g": Preset(n_embd=2048, n_layer=25, n_head=32, n_head_kv=8, n_ff=8192, n_ctx=4096),
}


def llama_cpp_source_dir() -> Path:
    """The llama.cpp tree vendored in the pinned llama-cpp-python sdist (unpacked by host.build.assets)."""
    override = os.environ.get("PY_RUNNER_LLAMA_SRC")
    if override:
        return Path(override)
    return cache_root() / "src" / f"llama-cpp-python-{LLAMA_CPP_PYTHON.version}" / "vendor" / "llama.cpp"


def vocab_file(vocab: str = "llama-spm") -> Path:
    """llama.cpp's `models/ggml-vocab-<vocab>.gguf` (e.g. llama-spm: SentencePiece, llama-bpe: BPE)."""
    path = llama_cpp_source_dir() / "models" / f"ggml-vocab-{vocab}.gguf"
    if not path.is_file():
        raise FileNotFoundError(
            f"vocabulary {vocab!r} not found at {path}; run scripts/fetch_assets.sh to unpack the llama.cpp "
            "source (or set PY_RUNNER_LLAMA_SRC to a llama.cpp tree)"
        )
    return path


def template_file(name: str) -> Path:
    """A real model's chat template from llama.cpp's `models/templates/<name>.jinja`."""
    return llama_cpp_source_dir() / "models" / "templates" / f"{name}.jinja"


def quantizer_binary() -> Path:
    """The native reference binary (`pr_native quantize IN OUT TYPE`); FileNotFoundError says why not."""
    try:
        path = native_binary()
    except (OSError, subprocess.CalledProcessError) as e:
        raise FileNotFoundError(
            f"cannot locate the native build (bash build_wasm.sh --print-dir failed: {e})"
        ) from e
    if not path.is_file():
        raise FileNotFoundError(
            f"native binary {path} not built; run build_wasm.sh to quantize fixture models"
        )
    return path


_KV = tuple[str, object, gguf.GGUFValueType, gguf.GGUFValueType | None]
_SCALAR_DTYPES = {
    gguf.GGUFValueType.UINT8: "<u1",
    gguf.GGUFValueType.INT8: "<i1",
    gguf.GGUFValueType.UINT16: "<u2",
    gguf.GGUFValueType.INT16: "<i2",
    gguf.GGUFValueType.UINT32: "<u4",
    gguf.GGUFValueType.INT32: "<i4",
    gguf.GGUFValueType.UINT64: "<u8",
    gguf.GGUFValueType.INT64: "<i8",
    gguf.GGUFValueType.FLOAT32: "<f4",
    gguf.GGUFValueType.FLOAT64: "<f8",
    gguf.GGUFValueType.BOOL: "?",
}


def read_kvs(path: Path) -> list[_KV]:
    """All key/values of a little-endian GGUF file as (key, value, type, array element type), in file order.

    gguf.GGUFReader parses the same data but builds a memmap view per string (~3 s for a 32000-token vocab);
    this reads the metadata block only, in ~50 ms, so tests stay fast. The file is mapped, not read: only the
    pages of the metadata are touched, whatever the model's size.
    """
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        return _parse_kvs(path, mapped)


def _parse_kvs(path: Path, data: mmap.mmap) -> list[_KV]:
    if data[:4] != b"GGUF":
        raise ValueError(f"{path} is not a GGUF file")
    pos = 4 + 4 + 8  # magic, version, tensor count
    T = gguf.GGUFValueType

    def take(dtype: str, n: int = 1) -> np.ndarray:
        nonlocal pos
        arr = np.frombuffer(data, dtype=np.dtype(dtype), count=n, offset=pos)
        pos += arr.nbytes
        return arr

    def take_str() -> str:
        nonlocal pos
        n = int(take("<u8")[0])
        pos += n
        return data[pos - n : pos].decode("utf-8")

    out: list[_KV] = []
    for _ in range(int(take("<u8")[0])):
        key = take_str()
        vtype = T(int(take("<u4")[0]))
        if vtype == T.ARRAY:
            sub = T(int(take("<u4")[0]))
            n = int(take("<u8")[0])
            if sub == T.STRING:
                value: object = [take_str() for _ in range(n)]
            elif sub in _SCALAR_DTYPES:
                value = take(_SCALAR_DTYPES[sub], n).tolist()
            else:
                raise ValueError(f"{path}: unsupported array element type {sub.name} for {key}")
            out.append((key, value, vtype, sub))
        elif vtype == T.STRING:
            out.append((key, take_str(), vtype, None))
        else:
            out.append((key, take(_SCALAR_DTYPES[vtype])[0].item(), vtype, None))
    return out


def _tokenizer_kvs(vocab: Path) -> list[_KV]:
    """Every tokenizer.* key of the vocab file, with its exact GGUF types, to be written back verbatim."""
    return [kv for kv in read_kvs(vocab) if kv[0].startswith("tokenizer.")]


def _tensor_specs(p: Preset, n_vocab: int) -> list[tuple[str, tuple[int, ...], float]]:
    """(name, numpy shape, std) in file order; std 0 marks a norm (all ones, F32).

    numpy shapes are (out, in): GGUF stores dimensions reversed, giving llama.cpp's {in, out}.
    """
    head_dim = p.n_embd // p.n_head
    q_dim, kv_dim = head_dim * p.n_head, head_dim * p.n_head_kv
    specs: list[tuple[str, tuple[int, ...], float]] = [
        # Embedding rows are looked up, not multiplied: unit std keeps the residual stream at scale ~1.
        ("token_embd.weight", (n_vocab, p.n_embd), 1.0),
    ]
    for i in range(p.n_layer):
        b = f"blk.{i}."
        specs += [
            (b + "attn_norm.weight", (p.n_embd,), 0.0),
            (b + "attn_q.weight", (q_dim, p.n_embd), p.n_embd**-0.5),
            (b + "attn_k.weight", (kv_dim, p.n_embd), p.n_embd**-0.5),
            (b + "attn_v.weight", (kv_dim, p.n_embd), p.n_embd**-0.5),
            (b + "attn_output.weight", (p.n_embd, q_dim), RESIDUAL_SCALE * q_dim**-0.5),
            (b + "ffn_norm.weight", (p.n_embd,), 0.0),
            (b + "ffn_gate.weight", (p.n_ff, p.n_embd), p.n_embd**-0.5),
            (b + "ffn_up.weight", (p.n_ff, p.n_embd), p.n_embd**-0.5),
            (b + "ffn_down.weight", (p.n_embd, p.n_ff), RESIDUAL_SCALE * p.n_ff**-0.5),
        ]
    specs += [
        ("output_norm.weight", (p.n_embd,), 0.0),
        ("output.weight", (n_vocab, p.n_embd), p.n_embd**-0.5),
    ]
    return specs


def _tensor_data(name: str, shape: tuple[int, ...], std: float, seed: int) -> np.ndarray:
    if std == 0.0:
        return np.ones(shape, dtype=np.float32)
    # One generator per tensor, keyed by name: a tensor's values do not depend on the others or their order.
    name_key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    rng = np.random.default_rng([seed, name_key])
    w = rng.standard_normal(shape, dtype=np.float32)
    w *= np.float32(std)
    return w.astype(np.float16)


def _start_writer(
    out: Path, arch: str, name: str, vocab: str, p: Preset | BertPreset
) -> tuple[gguf.GGUFWriter, int]:
    """A GGUF writer holding what every fixture declares: name, F16 file type, the shape shared by both
    architectures, and the vocab file's tokenizer keys verbatim. Returns it and the vocabulary size."""
    tok_kvs = _tokenizer_kvs(vocab_file(vocab))
    n_vocab = next(len(v) for k, v, _, _ in tok_kvs if k == "tokenizer.ggml.tokens")  # type: ignore[arg-type]
    w = gguf.GGUFWriter(Path(out), arch)
    w.add_name(name)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_context_length(p.n_ctx)
    w.add_embedding_length(p.n_embd)
    w.add_block_count(p.n_layer)
    w.add_feed_forward_length(p.n_ff)
    w.add_head_count(p.n_head)
    for key, value, vtype, sub_type in tok_kvs:
        w.add_key_value(key, value, vtype, sub_type)
    return w, n_vocab


def _write_and_close(w: gguf.GGUFWriter) -> None:
    """Write a writer's header, key/values and the tensors given to add_tensor, then close its file(s)."""
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    finally:
        w.close()


def _write_f16(out: Path, preset: str, seed: int, vocab: str, chat_template: str | None) -> None:
    p = PRESETS[preset]
    w, n_vocab = _start_writer(out, ARCH, f"py_runner-{preset}", vocab, p)
    w.add_head_count_kv(p.n_head_kv)
    w.add_rope_dimension_count(p.n_embd // p.n_head)
    w.add_rope_freq_base(p.rope_theta)
    w.add_layer_norm_rms_eps(p.rms_eps)
    w.add_vocab_size(n_vocab)
    if chat_template is not None:
        w.add_chat_template(template_file(chat_template).read_text(encoding="utf-8"))

    # Stream tensors one by one (info first, then data) so the s135 preset never sits whole in memory.
    specs = _tensor_specs(p, n_vocab)
    for name, shape, std in specs:
        dtype = np.float32 if std == 0.0 else np.float16
        w.add_tensor_info(name, shape, np.dtype(dtype), int(np.prod(shape)) * np.dtype(dtype).itemsize)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
        for name, shape, std in specs:
            w.write_tensor_data(_tensor_data(name, shape, std, seed))
    finally:
        w.close()


def claimed_model(out: Path, preset: str, n_layer: int | None = None) -> Path:
    """A GGUF file whose header describes `preset` (with `n_layer` layers if given) in F16, and whose data
    section is a hole: the file has the size its header implies but no weights on disk (a sparse file). For
    what must fail from the header alone, before any download (a 6 GB model costs nothing to make)."""
    p = PRESETS[preset]
    if n_layer is not None:
        p = dataclasses.replace(p, n_layer=n_layer)
    w, n_vocab = _start_writer(out, ARCH, f"py_runner-{preset}-claimed", "llama-spm", p)
    w.add_head_count_kv(p.n_head_kv)
    w.add_rope_dimension_count(p.n_embd // p.n_head)
    w.add_vocab_size(n_vocab)
    for name, shape, std in _tensor_specs(p, n_vocab):
        dtype = np.dtype(np.float32 if std == 0.0 else np.float16)
        w.add_tensor_info(name, shape, dtype, int(np.prod(shape)) * dtype.itemsize)
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_ti_data_to_file()
    finally:
        w.close()
    from py_runner._gguf import parse_header

    with open(out, "r+b") as f:
        f.truncate(parse_header(f.read()).file_size_expected)  # the header, padded, then a hole for the data
    return Path(out)


def make_model(
    out: Path,
    preset: str,
    qtype: str = "f16",
    seed: int = 0,
    *,
    vocab: str = "llama-spm",
    chat_template: str | None = None,
) -> Path:
    """Write a random-weight llama model of `preset` to `out` with the tokenizer of llama.cpp's
    `ggml-vocab-<vocab>.gguf` and, if given, the chat template `models/templates/<chat_template>.jinja`;
    the same arguments give a byte-identical file."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    if qtype not in QTYPES:
        raise ValueError(f"unknown qtype {qtype!r}; choose one of {QTYPES}")
    out = Path(out)
    if qtype == "f16":
        _write_f16(out, preset, seed, vocab, chat_template)
        return out

    # llama.cpp's own quantizer, so the quantized layout is exactly what the runtime expects.
    binary = quantizer_binary()
    f16 = out.with_name(out.name + ".f16.tmp")
    try:
        _write_f16(f16, preset, seed, vocab, chat_template)
        proc = subprocess.run(
            [str(binary), "quantize", str(f16), str(out), qtype], capture_output=True, text=True
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{binary} quantize {qtype} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}"
            )
    finally:
        f16.unlink(missing_ok=True)
    return out


def _cache_key(preset: str, qtype: str, seed: int, vocab: str, chat_template: str | None) -> str:
    h = hashlib.sha256()
    h.update(Path(__file__).read_bytes())
    h.update(hashlib.sha256(vocab_file(vocab).read_bytes()).hexdigest().encode())
    if chat_template is not None:
        h.update(template_file(chat_template).read_bytes())
    h.update(f"\0{preset}\0{qtype}\0{seed}\0{vocab}\0{chat_template}".encode())
    return h.hexdigest()[:12]


def fixture_model(
    preset: str, qtype: str, seed: int = 0, *, vocab: str = "llama-spm", chat_template: str | None = None
) -> Path:
    """The cached model for (generator source, vocab, template, preset, qtype, seed), built on first use."""
    key = _cache_key(preset, qtype, seed, vocab, chat_template)
    variant = "" if vocab == "llama-spm" and chat_template is None else f"-{vocab}"
    target = models_dir() / f"{preset}-{qtype}{variant}-{key}.gguf"
    return _cached(
        target, lambda tmp: make_model(tmp, preset, qtype, seed, vocab=vocab, chat_template=chat_template)
    )


def _cached(target: Path, make: Callable[[Path], object]) -> Path:
    """`target`, written by make(path) on first use."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: readers never see a partial file, concurrent builders both succeed.
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.stem + ".", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        make(tmp)
        tmp.chmod(0o644)  # mkstemp makes 0600; the cache is shared like any other download
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def split_model(
    src: Path, out: Path, n_shards: int | None = None, *, max_bytes: int | None = None
) -> list[Path]:
    """Split `src` into files named like llama.cpp's gguf-split (`<stem>-00001-of-0000N.gguf` beside `out`):
    `n_shards` of them, or as many as keep every file within `max_bytes`. The writer is gguf-py's (llama.cpp's
    own Python package, the split code its converters use): it adds the `split.*` keys llama.cpp reads, and
    the shards load in llama.cpp from the first one. Returns the shard paths."""
    kvs = read_kvs(src)
    reader = gguf.GGUFReader(src)
    arch = next(str(v) for k, v, *_ in kvs if k == "general.architecture")
    if n_shards is not None:
        w = gguf.GGUFWriter(out, arch, split_max_tensors=-(-len(reader.tensors) // n_shards))
    elif max_bytes is not None:
        # The first shard also holds every key/value (a vocabulary is MBs) and each shard its tensor infos:
        # keep that much, and a margin for alignment, out of the tensor bytes a shard may hold.
        overhead = reader.data_offset + 64 * 1024
        if max_bytes <= overhead + max(t.n_bytes for t in reader.tensors):
            raise ValueError(
                f"{src.name}: a {max_bytes}-byte file cannot hold the metadata and the largest tensor"
            )
        w = gguf.GGUFWriter(out, arch, split_max_size=max_bytes - overhead)
    else:
        raise ValueError("give n_shards or max_bytes")
    _copy_into(w, kvs, reader)
    shards = sorted(
        out.parent.glob(
            f"{glob.escape(out.stem)}-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9].gguf"
        )
    )
    count = len(shards)
    expected = [out.with_name(f"{out.stem}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)]
    if not shards or shards != expected or (n_shards is not None and count != n_shards):
        raise RuntimeError(f"gguf wrote unexpected shards: {[p.name for p in shards]}")
    too_big = [p for p in shards if max_bytes is not None and p.stat().st_size > max_bytes]
    if too_big:
        raise RuntimeError(f"{too_big[0].name} has {too_big[0].stat().st_size} bytes, over {max_bytes}")
    return shards


def _copy_into(w: gguf.GGUFWriter, kvs: list[_KV], reader: gguf.GGUFReader) -> None:
    """Write `kvs` and every tensor of `reader` through `w`, and close it."""
    for key, value, vtype, sub_type in kvs:
        if key != "general.architecture":  # the writer adds it itself
            w.add_key_value(key, value, vtype, sub_type)
    for t in reader.tensors:
        # the reader's array shape: the numpy shape of a plain tensor, the byte shape of a quantized one (rows
        # of blocks), which is what the writer expects of each
        w.add_tensor(t.name, t.data, raw_shape=[int(x) for x in t.data.shape], raw_dtype=t.tensor_type)
    _write_and_close(w)


def with_chat_template(src: Path, chat_template: str) -> Path:
    """A cached copy of `src` (e.g. the default real model) whose `tokenizer.chat_template` is llama.cpp's
    `models/templates/<chat_template>.jinja`: the same weights and tokens under a template that, say, takes
    tools (SmolLM2's own ignores them)."""
    text = template_file(chat_template).read_text(encoding="utf-8")
    key = hashlib.sha256(f"{src.name}\0{src.stat().st_size}\0{text}".encode()).hexdigest()[:12]
    target = models_dir() / f"{src.stem}-{chat_template}-{key}.gguf"

    def make(out: Path) -> None:
        kvs = [
            (k, text, v_type, sub) if k == "tokenizer.chat_template" else (k, v, v_type, sub)
            for k, v, v_type, sub in read_kvs(src)
        ]
        if not any(k == "tokenizer.chat_template" for k, *_ in kvs):
            kvs.append(("tokenizer.chat_template", text, gguf.GGUFValueType.STRING, None))
        arch = next(str(v) for k, v, *_ in kvs if k == "general.architecture")
        _copy_into(gguf.GGUFWriter(out, arch), kvs, gguf.GGUFReader(src))

    return _cached(target, make)


def split_fixture_model(preset: str, qtype: str, n_shards: int = 3) -> list[Path]:
    """The cached `n_shards`-way split of fixture_model(preset, qtype), in a folder of its own."""
    single = fixture_model(preset, qtype)
    folder = models_dir() / f"split-{single.stem}-{n_shards}"
    stem = f"{preset}-{qtype}"
    shards = [folder / f"{stem}-{i:05d}-of-{n_shards:05d}.gguf" for i in range(1, n_shards + 1)]
    if all(p.is_file() for p in shards):
        return shards
    tmp = Path(tempfile.mkdtemp(dir=models_dir(), prefix=".split-"))
    try:
        split_model(single, tmp / f"{stem}.gguf", n_shards)
        for p in tmp.iterdir():
            p.chmod(0o644)
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return shards


# --- embedding models ---------------------------------------------------------------------------------------

POOLING_TYPES = {"mean": 1, "cls": 2, "last": 3, "rank": 4}  # llama.cpp's enum llama_pooling_type


@dataclass(frozen=True)
class BertPreset:
    n_embd: int
    n_layer: int
    n_head: int
    n_ff: int
    n_ctx: int
    norm_eps: float = 1e-12


# A BERT encoder (the architecture of all-MiniLM, bge, e5) small enough to build in a second.
BERT_PRESETS: dict[str, BertPreset] = {
    "bert-tiny": BertPreset(n_embd=128, n_layer=2, n_head=4, n_ff=512, n_ctx=512),
}


def _bert_tensor_specs(p: BertPreset, n_vocab: int) -> list[tuple[str, tuple[int, ...], str]]:
    """(name, numpy shape (out, in), kind) in file order. kind: "weight" (F16), "table" (F16 lookup),
    "norm" (F32, about 1), "bias" (F32, small), "f32" (F32 lookup)."""
    specs: list[tuple[str, tuple[int, ...], str]] = [
        ("token_embd.weight", (n_vocab, p.n_embd), "table"),
        ("token_types.weight", (2, p.n_embd), "f32"),
        ("position_embd.weight", (p.n_ctx, p.n_embd), "table"),
        ("token_embd_norm.weight", (p.n_embd,), "norm"),
        ("token_embd_norm.bias", (p.n_embd,), "bias"),
    ]
    for i in range(p.n_layer):
        b = f"blk.{i}."
        for proj in ("attn_q", "attn_k", "attn_v", "attn_output"):
            specs += [
                (b + proj + ".weight", (p.n_embd, p.n_embd), "weight"),
                (b + proj + ".bias", (p.n_embd,), "bias"),
            ]
        specs += [
            (b + "attn_output_norm.weight", (p.n_embd,), "norm"),
            (b + "attn_output_norm.bias", (p.n_embd,), "bias"),
            (b + "ffn_up.weight", (p.n_ff, p.n_embd), "weight"),
            (b + "ffn_up.bias", (p.n_ff,), "bias"),
            (b + "ffn_down.weight", (p.n_embd, p.n_ff), "weight"),
            (b + "ffn_down.bias", (p.n_embd,), "bias"),
            (b + "layer_output_norm.weight", (p.n_embd,), "norm"),
            (b + "layer_output_norm.bias", (p.n_embd,), "bias"),
        ]
    return specs


def _rerank_head_specs(p: BertPreset) -> list[tuple[str, tuple[int, ...], str]]:
    """A reranker's classification head (bge-reranker's shape, llama.cpp's LLM_TENSOR_CLS / CLS_OUT): the
    [CLS] state through a dense tanh layer, then one output, the relevance score."""
    return [
        ("cls.weight", (p.n_embd, p.n_embd), "weight"),
        ("cls.bias", (p.n_embd,), "bias"),
        ("cls.output.weight", (1, p.n_embd), "weight"),
        ("cls.output.bias", (1,), "bias"),
    ]


def _bert_tensor_data(
    name: str, shape: tuple[int, ...], kind: str, seed: int, f32: bool = False
) -> np.ndarray:
    name_key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "little")
    w = np.random.default_rng([seed, name_key]).standard_normal(shape, dtype=np.float32)
    if kind == "norm":  # random gains and biases, so a reference that skips one of them cannot match
        return (1.0 + 0.1 * w).astype(np.float32)
    if kind == "bias":
        return (0.1 * w).astype(np.float32)
    if kind == "f32":
        return w
    if kind == "weight":
        w *= np.float32(shape[1] ** -0.5)
    return w if f32 and kind == "weight" else w.astype(np.float16)


def make_embedding_model(out: Path, preset: str = "bert-tiny", pooling: str = "mean", seed: int = 0) -> Path:
    """Write a random-weight BERT embedding model with llama.cpp's bert-bge WordPiece vocabulary; it declares
    `pooling` (mean, cls or last) as its pooling type, as converted sentence-embedding models do; "rank"
    makes a reranker (a cross-encoder with a classification head, as bge-reranker converts)."""
    if preset not in BERT_PRESETS:
        raise ValueError(f"unknown embedding preset {preset!r}; choose one of {sorted(BERT_PRESETS)}")
    if pooling not in POOLING_TYPES:
        raise ValueError(f"unknown pooling {pooling!r}; choose one of {sorted(POOLING_TYPES)}")
    p = BERT_PRESETS[preset]
    w, n_vocab = _start_writer(out, "bert", f"py_runner-{preset}-{pooling}", "bert-bge", p)
    w.add_layer_norm_eps(p.norm_eps)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType(POOLING_TYPES[pooling]))
    rank = pooling == "rank"
    specs = _bert_tensor_specs(p, n_vocab) + (_rerank_head_specs(p) if rank else [])
    for name, shape, kind in specs:
        # A reranker's score is one raw number: its matrices are F32, since F16 ones round the activations to
        # F16 before each product, and a last-bit difference between engines then moves a score by ~1e-4.
        w.add_tensor(name, _bert_tensor_data(name, shape, kind, seed, f32=rank))
    _write_and_close(w)
    return Path(out)


def embedding_fixture_model(pooling: str = "mean", preset: str = "bert-tiny", seed: int = 0) -> Path:
    """The cached embedding model for (generator source, preset, pooling, seed), built on first use."""
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(hashlib.sha256(vocab_file("bert-bge").read_bytes()).digest())
    h.update(f"\0{preset}\0{pooling}\0{seed}".encode())
    target = models_dir() / f"{preset}-{pooling}-{h.hexdigest()[:12]}.gguf"
    return _cached(target, lambda tmp: make_embedding_model(tmp, preset, pooling, seed))
