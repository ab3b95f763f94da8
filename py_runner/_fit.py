"""Will a model fit the engine's heap? An estimate from the GGUF header alone, made before any download.

The engine is 32-bit WebAssembly: its heap grows to 4 GiB at most (build_wasm.sh: MAXIMUM_MEMORY=4GB), and it
must hold the weights (llama.cpp copies every tensor in: no mmap in wasm), the KV cache at the chosen context,
the compute buffers of one batch, and the runtime itself. A model past that fails with ModelTooLargeError
naming what it needs and what would fit, instead of after a download of gigabytes.

The estimate follows llama.cpp's own sizes: the KV cache is K and V rows of n_head_kv * head_dim per layer and
context cell (the context padded to 256) in the cache's types (f16 unless load_model's type_k/type_v say); the
compute buffer of the worst-case graph (one full batch, every token an output) holds a batch's logits,
attention scores and feed-forward activations in f32.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._errors import InvalidParameterError, ModelTooLargeError
from ._gguf import GGUFHeader, GiB, MiB

HEAP_LIMIT = 4 * GiB  # build_wasm.sh: -sMAXIMUM_MEMORY=4GB
# The runtime: the module's initial memory (code, static data, stacks), the vocabulary's structures, allocator
# slack between buffers.
RUNTIME_BYTES = 128 * MiB
CONTEXT_PADDING = 256  # llama.cpp pads n_ctx up to a multiple of this
# bytes per 32 values of each KV cache type (ggml's block sizes: q8_0 is 32 int8 and an f16 scale)
KV_BYTES_PER_32 = {
    "f32": 128, "f16": 64, "bf16": 64, "q8_0": 34,
    "q4_0": 18, "q4_1": 20, "q5_0": 22, "q5_1": 24, "iq4_nl": 18,
}  # fmt: skip
QUANTIZED_CACHE_TYPES = frozenset(t for t, size in KV_BYTES_PER_32.items() if size < 64)  # blocks of 32


@dataclass(frozen=True)
class HeapEstimate:
    weights: int
    kv_cache: int
    compute: int
    runtime: int = RUNTIME_BYTES

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.compute + self.runtime


def _int(metadata: dict[str, Any], key: str) -> int | None:
    value = metadata.get(key)
    if isinstance(value, list):  # per-layer values (e.g. head_count_kv of a hybrid model): the largest
        numbers = [v for v in value if isinstance(v, int) and not isinstance(v, bool)]
        return max(numbers) if numbers else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _head_dims(header: GGUFHeader) -> tuple[int, int]:
    """The K and V head sizes, as llama.cpp reads them (key_length / value_length, else n_embd / n_head)."""
    md, arch = header.metadata, header.architecture or ""
    n_embd = _int(md, f"{arch}.embedding_length") or 0
    n_head = _int(md, f"{arch}.attention.head_count") or 0
    head_dim = n_embd // n_head if n_head else 0
    return (
        _int(md, f"{arch}.attention.key_length") or head_dim,
        _int(md, f"{arch}.attention.value_length") or head_dim,
    )


def check_cache_types(header: GGUFHeader, type_k: str | None, type_v: str | None, label: str) -> None:
    """A quantized KV cache type stores rows in blocks of 32 values: llama.cpp refuses it (when it makes the
    context, after the download) for a head size that 32 does not divide. Refused here, from the header."""
    for name, chosen, dim in zip(("type_k", "type_v"), (type_k, type_v), _head_dims(header), strict=True):
        if chosen in QUANTIZED_CACHE_TYPES and dim % 32:
            raise InvalidParameterError(
                f'{name}="{chosen}" stores blocks of 32 values, which do not divide the head size of {label} '
                f'({dim}): use "f16" (the default), "bf16" or "f32"'
            )


def estimate(
    header: GGUFHeader,
    ctx_size: int,
    batch_size: int,
    weights: int | None = None,
    type_k: str | None = None,
    type_v: str | None = None,
) -> HeapEstimate:
    """What the heap must hold for this model at (ctx_size, batch_size). `weights`: the tensor bytes of all
    shards of a split model (the first shard's header describes its own tensors only); type_k, type_v: the KV
    cache's types (None: f16)."""
    md, arch = header.metadata, header.architecture or ""
    n_layer = _int(md, f"{arch}.block_count") or 0
    n_embd = _int(md, f"{arch}.embedding_length") or 0
    n_head = _int(md, f"{arch}.attention.head_count") or 0
    n_head_kv = _int(md, f"{arch}.attention.head_count_kv") or n_head
    n_ff = _int(md, f"{arch}.feed_forward_length") or 0
    k_dim, v_dim = _head_dims(header)
    tokens = md.get("tokenizer.ggml.tokens")
    n_vocab = _int(md, f"{arch}.vocab_size") or (len(tokens) if hasattr(tokens, "__len__") else 0)

    n_ctx = -(-ctx_size // CONTEXT_PADDING) * CONTEXT_PADDING
    k_bytes, v_bytes = KV_BYTES_PER_32[type_k or "f16"], KV_BYTES_PER_32[type_v or "f16"]
    kv = n_layer * n_ctx * n_head_kv * (k_dim * k_bytes + v_dim * v_bytes) // 32
    n_batch = min(batch_size, n_ctx)
    compute = n_batch * (n_vocab + n_head * n_ctx + 3 * n_ff + 8 * n_embd) * 4
    return HeapEstimate(weights if weights is not None else header.data_size, kv, compute)


def check_fits(
    header: GGUFHeader,
    ctx_size: int,
    batch_size: int,
    weights: int | None = None,
    label: str = "the model",
    type_k: str | None = None,
    type_v: str | None = None,
) -> HeapEstimate:
    """The estimate, or ModelTooLargeError when it is over HEAP_LIMIT: what it needs, and what would fit."""
    kv_types = {"type_k": type_k, "type_v": type_v}
    need = estimate(header, ctx_size, batch_size, weights, **kv_types)
    if need.total <= HEAP_LIMIT:
        return need
    parts = (
        f"{need.weights / GiB:.2f} GiB of weights + {need.kv_cache / GiB:.2f} GiB of KV cache at "
        f"ctx_size={ctx_size} + ~{need.compute / GiB:.2f} GiB of compute buffers + "
        f"~{need.runtime / GiB:.2f} GiB for the runtime"
    )
    advice = _what_fits(header, ctx_size, batch_size, weights, kv_types)
    raise ModelTooLargeError(
        f"{label} needs about {need.total / GiB:.2f} GiB of memory ({parts}), more than the "
        f"{HEAP_LIMIT / GiB:.0f} GiB a 32-bit WebAssembly engine can hold. {advice}",
        needed=need.total,
        limit=HEAP_LIMIT,
    )


def _what_fits(
    header: GGUFHeader, ctx_size: int, batch_size: int, weights: int | None, kv_types: dict[str, str | None]
) -> str:
    smaller = None
    for ctx in range(ctx_size - ctx_size % CONTEXT_PADDING, 0, -CONTEXT_PADDING):
        if ctx < ctx_size and estimate(header, ctx, batch_size, weights, **kv_types).total <= HEAP_LIMIT:
            smaller = ctx
            break
    if smaller is not None:
        quantized = estimate(header, ctx_size, batch_size, weights, type_k="q8_0", type_v="q8_0")
        q8_kv = (
            ' (or type_k="q8_0", type_v="q8_0": a KV cache half the size of f16)'
            if quantized.total <= HEAP_LIMIT and kv_types["type_k"] is None and kv_types["type_v"] is None
            else ""
        )
        return f"A smaller context fits: ctx_size={smaller} or less{q8_kv}."
    least = estimate(header, CONTEXT_PADDING, batch_size, weights, **kv_types)  # the smallest context
    room = HEAP_LIMIT - (least.total - least.weights)
    quant = (
        f"a model with at most ~{max(room, 0) / GiB:.2f} GiB of weights fits (a smaller or more quantized "
        "one: Q4_K_M holds ~0.6 GB per billion parameters)"
    )
    return f"No context fits: {quant}."
