"""ModelSpecification: what a loaded model is (from llama.cpp's metadata) and where it came from."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ._errors import ModelCompatibilityError
from ._transport.protocol import POOLING

MIN_SUPPORTED_GGUF_VERSION = 2  # the vendored llama.cpp refuses GGUF v1
MAX_SUPPORTED_GGUF_VERSION = 3

# llama.cpp's llama_ftype (general.file_type), "MOSTLY_" stripped.
_FILE_TYPES: dict[int, str] = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    19: "IQ2_XXS",
    20: "IQ2_XS",
    21: "Q2_K_S",
    22: "IQ3_XS",
    23: "IQ3_XXS",
    24: "IQ1_S",
    25: "IQ4_NL",
    26: "IQ3_S",
    27: "IQ3_M",
    28: "IQ2_S",
    29: "IQ2_M",
    30: "IQ4_XS",
    31: "IQ1_M",
    32: "BF16",
    36: "TQ1_0",
    37: "TQ2_0",
    38: "MXFP4_MOE",
}


# llama.cpp's enum llama_pooling_type (the load choices of web/shared/protocol.js, and rank, which a reranker
# declares); 0 (none) is a generative model's.
POOLING_NAMES: dict[int, str] = {value: name for name, value in POOLING.items()} | {4: "rank"}


def quantization_name(file_type: int) -> str:
    return _FILE_TYPES.get(file_type, f"UNKNOWN_{file_type}")


def _int(value: Any) -> int | None:
    """Numbers arrive as JSON numbers or as llama.cpp's meta strings ("2048", "1e+04")."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return None


def _float(value: Any) -> float | None:
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True)
class ModelSpecification:
    architecture: str | None = None
    quantization: str | None = None
    layer_count: int | None = None
    embedding_length: int | None = None
    context_length: int | None = None
    vocab_size: int | None = None
    head_count: int | None = None
    head_count_kv: int | None = None
    rope_frequency_base: float | None = None
    rope_frequency_scale: float = 1.0
    model_name: str | None = None
    gguf_version: int | None = None
    tensor_count: int | None = None
    parameter_count: int | None = None
    size_bytes: int | None = None
    description: str | None = None
    # embeddings: the context's pooling ("mean", "cls", "last", "rank"; None when it pools nothing) and
    # whether the model is an embedding model (it declares a pooling type: embed() only, no generation)
    pooling_type: str | None = None
    embedding_model: bool = False
    # the context's KV cache types, by ggml's names ("f16", "q8_0", ...): load_model(type_k=, type_v=)
    type_k: str | None = None
    type_v: str | None = None
    # load_model(vocab_only=True): the tokenizer alone was loaded (no weights, no context)
    vocab_only: bool = False
    # provenance
    source_url: str | None = None
    file_name: str | None = None
    file_size: int | None = None  # all shards together for a split GGUF
    download_date: str | None = None
    sha256: str | None = None
    cache_hit: bool = False
    source_urls: tuple[str, ...] = ()  # every shard's URL for a split GGUF loaded from URLs
    file_names: tuple[str, ...] = ()  # every shard's file name

    @classmethod
    def from_metadata(
        cls,
        metadata: dict[str, Any],
        *,
        source_url: str | None = None,
        file_name: str | None = None,
        file_size: int | None = None,
        download_date: str | None = None,
        source_urls: tuple[str, ...] = (),
    ) -> ModelSpecification:
        """Build from the worker's load result (pr_metadata_json + file_name/file_size/gguf_version/
        tensor_count). Top-level numbers win over the GGUF keys; the keys are the fallback."""
        meta: dict[str, str] = dict(metadata.get("meta") or {})
        arch = meta.get("general.architecture") or None

        def key(suffix: str) -> Any:
            return meta.get(f"{arch}.{suffix}") if arch else None

        def first(*values: Any) -> int | None:
            for v in values:
                if (n := _int(v)) is not None:
                    return n
            return None

        file_type = _int(meta.get("general.file_type"))
        desc = metadata.get("desc") or None
        if file_type is not None:
            quant = quantization_name(file_type)
        elif desc and len(desc.split()) >= 3:  # llama_model_desc: "<arch> <size> <ftype name>"
            quant = desc.split()[-1]
        else:
            quant = None
        scale = _float(key("rope.scaling.factor"))
        pooling = first(metadata.get("pooling"), key("pooling_type"))
        embedding_model = metadata.get("embedding_model")
        if embedding_model is None:  # an older engine report: the GGUF key says it
            embedding_model = (_int(key("pooling_type")) or 0) > 0
        return cls(
            architecture=arch,
            quantization=quant,
            layer_count=first(metadata.get("n_layer"), key("block_count")),
            embedding_length=first(metadata.get("n_embd"), key("embedding_length")),
            context_length=first(metadata.get("n_ctx_train"), key("context_length")),
            vocab_size=first(metadata.get("n_vocab"), key("vocab_size")),
            head_count=first(metadata.get("n_head"), key("attention.head_count")),
            head_count_kv=first(metadata.get("n_head_kv"), key("attention.head_count_kv")),
            rope_frequency_base=_float(key("rope.freq_base")),
            rope_frequency_scale=scale if scale else 1.0,
            model_name=meta.get("general.name") or None,
            gguf_version=_int(metadata.get("gguf_version")),
            tensor_count=_int(metadata.get("tensor_count")),
            parameter_count=_int(metadata.get("n_params")),
            size_bytes=_int(metadata.get("size")),
            description=desc,
            pooling_type=POOLING_NAMES.get(pooling) if pooling is not None else None,
            embedding_model=bool(embedding_model),
            type_k=metadata.get("type_k") or None,
            type_v=metadata.get("type_v") or None,
            vocab_only=bool(metadata.get("vocab_only")),
            source_url=source_url,
            file_name=file_name if file_name is not None else metadata.get("file_name"),
            file_size=file_size if file_size is not None else _int(metadata.get("file_size")),
            download_date=download_date,
            sha256=metadata.get("sha256") or None,
            cache_hit=bool(metadata.get("cache_hit")),
            source_urls=tuple(source_urls) or ((source_url,) if source_url else ()),
            file_names=tuple(metadata.get("file_names") or ([n] if (n := metadata.get("file_name")) else [])),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (JSON-serializable) with the snake_case field names."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def validate(self) -> None:
        """Raise ModelCompatibilityError if the GGUF version is outside what we support.
        An unknown version (None) is not rejected: llama.cpp already parsed the file."""
        v = self.gguf_version
        if v is not None and not MIN_SUPPORTED_GGUF_VERSION <= v <= MAX_SUPPORTED_GGUF_VERSION:
            raise ModelCompatibilityError(
                f"GGUF version {v} is not supported (supported: "
                f"{MIN_SUPPORTED_GGUF_VERSION}..{MAX_SUPPORTED_GGUF_VERSION})"
            )
