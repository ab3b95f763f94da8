"""The load pipeline: check the GGUF header from the model's first bytes, name the shards of a split model,
ask the engine to load it, and turn its report into a ModelSpecification. LlamaRunner.load_model wraps it
with the busy check, progress stages and error reporting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ._errors import InvalidParameterError, ModelCompatibilityError, TruncatedModelError
from ._fit import check_cache_types, check_fits
from ._gguf import SUPPORTED_ARCHITECTURES, GGUFHeader, NeedMoreData, check_compatibility, parse_header
from ._progress import LoadingStage, ProgressReporter
from ._sources import check_url_schemes, describe, expand_split, first_part, in_shard_order
from ._spec import ModelSpecification
from ._transport import Transport
from ._transport.protocol import CACHE_TYPES, DEFAULTS, POOLING

HEADER_PROBE_BYTES = 256 * 1024  # most headers fit; a 32k-token vocabulary needs about 0.5 MB
HEADER_MAX_BYTES = 64 * 1024 * 1024

# The worker's progress stages (web/shared/protocol.js "stages") that a load reports to the user.
_WORKER_STAGES = {
    "cache": LoadingStage.CHECKING_CACHE,
    "downloading": LoadingStage.DOWNLOADING,
    "verifying": LoadingStage.VERIFYING,
    "loading": LoadingStage.LOADING_INTO_ENGINE,
}


@dataclass(frozen=True)
class LoadOptions:
    """load_model's keywords: fixed for as long as the model stays loaded."""

    ctx_size: int = DEFAULTS["n_ctx"]
    # prompt tokens per decode: 256 runs as fast as 512 in wasm, with a smaller compute buffer
    batch_size: int = DEFAULTS["n_batch"]
    cache: bool = True
    sha256: str | None = None
    pooling: str | None = None
    n_threads: int | None = None
    # the KV cache's types by ggml's names ("f16", "f32", "q8_0", ...); None: llama.cpp's default, F16
    type_k: str | None = None
    type_v: str | None = None
    vocab_only: bool = False  # the tokenizer alone (llama-cpp-python's vocab_only=True)

    def validate(self) -> None:
        def is_int(v: Any) -> bool:  # a C int in the engine: larger values would wrap in JS
            return isinstance(v, int) and not isinstance(v, bool) and v <= 2**31 - 1

        if not (is_int(self.ctx_size) and self.ctx_size >= 16):
            raise InvalidParameterError(f"ctx_size must be an int >= 16, got {self.ctx_size!r}")
        if not (is_int(self.batch_size) and self.batch_size >= 1):
            raise InvalidParameterError(f"batch_size must be an int >= 1, got {self.batch_size!r}")
        if self.pooling is not None and self.pooling not in POOLING:
            raise InvalidParameterError(
                f"pooling must be None or one of {sorted(POOLING)}, got {self.pooling!r}"
            )
        if not isinstance(self.vocab_only, bool):
            raise InvalidParameterError(f"vocab_only must be True or False, got {self.vocab_only!r}")
        for name in ("type_k", "type_v"):
            value = getattr(self, name)
            if value is not None and value not in CACHE_TYPES:
                raise InvalidParameterError(
                    f"{name} must be None or one of {sorted(CACHE_TYPES)}, got {value!r}"
                )

    def request_fields(self) -> dict[str, Any]:
        """The load request's fields (web/shared/protocol.js) that do not depend on the source."""
        fields: dict[str, Any] = {
            "n_ctx": self.ctx_size,
            "n_batch": self.batch_size,
            "cache": bool(self.cache),
        }
        if self.pooling is not None:
            fields["pooling"] = POOLING[self.pooling]
        if self.sha256 is not None:
            fields["sha256"] = self.sha256.strip().lower()
        if self.n_threads is not None:
            fields["n_threads"] = self.n_threads
        if self.type_k is not None:
            fields["type_k"] = CACHE_TYPES[self.type_k]
        if self.type_v is not None:
            fields["type_v"] = CACHE_TYPES[self.type_v]
        if self.vocab_only:
            fields["vocab_only"] = True
        return fields


@dataclass(frozen=True)
class LoadedModel:
    spec: ModelSpecification
    metadata: dict[str, Any]  # the engine's raw report (every GGUF key/value, threads, wasm heap size, ...)
    n_ctx: int  # the context the engine created (an embedding model's may be smaller than asked)
    n_batch: int  # the batch size the engine created the context with


async def load(
    transport: Transport,
    source: Any,
    options: LoadOptions,
    reporter: ProgressReporter,
    raise_if_cancelled: Callable[[], None],
) -> LoadedModel:
    """Run the pipeline on a started transport. raise_if_cancelled is called between steps."""
    check_url_schemes(source)  # before any request: javascript: would fail as a "CORS" error
    source = in_shard_order(transport.resolve_source(source))
    reporter.report(LoadingStage.PREPARING, 0, None, "checking the GGUF header")
    header = await check_header(transport, source, raise_if_cancelled)
    source = expand_split(source, header.split_no, header.split_count)
    fields = options.request_fields()
    weights = None  # the first shard's header describes its own tensors only
    if isinstance(source, list) and len(source) > 1:
        if options.sha256 is not None:
            raise InvalidParameterError("sha256 checks a single-file model, not a split GGUF")
        if isinstance(source[0], str):  # every shard's size (a missing shard fails here, early)
            fields["sizes"] = [(await transport.read_prefix(url, 1))[1] for url in source]
            raise_if_cancelled()
            sizes = fields["sizes"]
        else:
            sizes = [getattr(part, "size", None) for part in source]  # JS Files and Blobs know theirs
        if all(isinstance(n, int | float) for n in sizes):
            weights = int(sum(sizes))  # the files: the weights plus a few headers, near enough
    else:
        # A response without Content-Length that ends early must not pass for the whole file (and be cached).
        fields["min_size"] = header.file_size_expected
    check_cache_types(header, options.type_k, options.type_v, describe(source))
    check_fits(
        header,
        options.ctx_size,
        options.batch_size,
        weights,
        describe(source),
        type_k=options.type_k,
        type_v=options.type_v,
    )

    def on_progress(p: dict[str, Any]) -> None:
        stage = _WORKER_STAGES.get(str(p.get("stage")))
        if stage is not None:
            reporter.report(stage, p.get("loaded") or 0, p.get("total"))

    metadata = dict(await transport.load(source, fields, on_progress))
    raise_if_cancelled()
    spec = ModelSpecification.from_metadata(
        metadata,
        source_url=describe(source) if describe(source) != "the model file" else None,
        source_urls=tuple(source) if isinstance(source, list) and isinstance(source[0], str) else (),
        download_date=metadata.get("cached_at") or datetime.now(UTC).isoformat(),
    )
    spec.validate()
    n_ctx, n_batch = metadata.get("n_ctx"), metadata.get("n_batch")
    return LoadedModel(
        spec,
        metadata,
        int(n_ctx) if isinstance(n_ctx, int | float) else options.ctx_size,
        int(n_batch) if isinstance(n_batch, int | float) else options.batch_size,
    )


async def check_header(
    transport: Transport, source: Any, raise_if_cancelled: Callable[[], None]
) -> GGUFHeader:
    """Fail fast: parse the GGUF header from the model's first bytes, before any download, so a wrong or
    unsupported file costs a few hundred KB, not the whole model."""
    label = describe(source)
    length = HEADER_PROBE_BYTES
    while True:
        data, total = await transport.read_prefix(first_part(source), length)
        raise_if_cancelled()
        try:
            header = parse_header(data)
            break
        except NeedMoreData as more:
            if len(data) < length:
                raise TruncatedModelError(
                    f"{label} ends after {len(data)} bytes, inside its GGUF header"
                ) from None
            length = max(length * 4, more.needed_at_least)
            if length > HEADER_MAX_BYTES:
                raise ModelCompatibilityError(
                    f"{label}: the GGUF header is larger than {HEADER_MAX_BYTES >> 20} MiB"
                ) from None
        except ModelCompatibilityError as err:
            raise ModelCompatibilityError(f"{label}: {err}") from None
    try:
        check_compatibility(header, supported_architectures=SUPPORTED_ARCHITECTURES)
    except ModelCompatibilityError as err:
        raise ModelCompatibilityError(f"{label}: {err}") from None
    if total is not None and total < header.file_size_expected:
        raise TruncatedModelError(
            f"{label} has {total} bytes but its GGUF header describes {header.file_size_expected}"
        )
    return header
