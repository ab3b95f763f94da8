"""Pure-Python GGUF header reader: rejects files we cannot run from the first bytes of a download.

No numpy, no gguf package: this runs in Pyodide. The rules follow the vendored llama.cpp's GGUF reader
(ggml/src/gguf.cpp, llama-cpp-python 0.3.36 / llama.cpp 0.5.0-dev), so a file that passes here is one that
llama.cpp's own header checks accept.

Streaming use::

    buf = bytearray()
    async for chunk in response:
        buf += chunk
        try:
            header = parse_header(buf)
        except NeedMoreData:
            continue                  # not enough bytes yet: keep downloading
        check_compatibility(header, supported_architectures=SUPPORTED_ARCHITECTURES)
        break

A ModelCompatibilityError from either call means the file is broken or not for us: abort the download.
parse_header reparses from the start each time; headers are a few MB at most. If the download ends while
parse_header still raises NeedMoreData, the file is truncated (that is for the caller to report).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ._errors import ModelCompatibilityError
from ._spec import MAX_SUPPORTED_GGUF_VERSION, MIN_SUPPORTED_GGUF_VERSION

__all__ = [
    "GGML_TYPE_SIZES",
    "GGUF_VALUE_TYPE_NAMES",
    "SUPPORTED_ARCHITECTURES",
    "GGUFHeader",
    "NeedMoreData",
    "SkippedArray",
    "check_compatibility",
    "parse_header",
]

MiB = 1024 * 1024
GiB = 1024 * MiB

GGUF_MAGIC = b"GGUF"
GGUF_DEFAULT_ALIGNMENT = 32
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64  # tensor names must be shorter than this (the name buffer includes the NUL)
_COPY_LIMIT = 64 * 1024 * 1024  # bytearray/memoryview inputs up to this size are copied to bytes once
# Arrays with more elements than this are checked but not decoded (a SkippedArray stands in the metadata):
# nothing here needs a vocabulary's 32k-256k tokens as Python strings, and a u8 array decoded into a list
# costs ~36 bytes per input byte. Together with the count caps below, the reader's memory stays a small
# multiple of its input and its time linear in it (tests/unit/test_fuzz.py measures both).
KEEP_ARRAYS_UP_TO = 1024


# GGUF value types (gguf.GGUFValueType).
UINT8, INT8, UINT16, INT16, UINT32, INT32, FLOAT32, BOOL, STRING, ARRAY, UINT64, INT64, FLOAT64 = range(13)
GGUF_VALUE_TYPE_NAMES: dict[int, str] = {
    UINT8: "UINT8",
    INT8: "INT8",
    UINT16: "UINT16",
    INT16: "INT16",
    UINT32: "UINT32",
    INT32: "INT32",
    FLOAT32: "FLOAT32",
    BOOL: "BOOL",
    STRING: "STRING",
    ARRAY: "ARRAY",
    UINT64: "UINT64",
    INT64: "INT64",
    FLOAT64: "FLOAT64",
}
# struct format letter and size of each fixed-size value type.
_SCALAR: dict[int, tuple[str, int]] = {
    UINT8: ("B", 1),
    INT8: ("b", 1),
    UINT16: ("H", 2),
    INT16: ("h", 2),
    UINT32: ("I", 4),
    INT32: ("i", 4),
    FLOAT32: ("f", 4),
    BOOL: ("?", 1),
    UINT64: ("Q", 8),
    INT64: ("q", 8),
    FLOAT64: ("d", 8),
}

# ggml type id -> (name, elements per block, bytes per block). The numbers of gguf 0.19.0's
# GGML_QUANT_SIZES, plus Q2_0 (42), which the vendored llama.cpp (ggml.h) has and gguf 0.19.0 does not.
# Ids 4, 5, 31-33 and 36-38 were removed from ggml: llama.cpp rejects them (block size 0), and so do we.
GGML_TYPE_SIZES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36),
    41: ("Q1_0", 128, 18),
    42: ("Q2_0", 64, 18),
}
_GGML_TYPE_COUNT = 43

# LLM_ARCH_NAMES of the vendored llama.cpp (llama-cpp-python 0.3.36 -> llama.cpp 0.5.0-dev,
# src/llama-arch.cpp), minus "clip" (a dummy for llama-quantize: "CLIP cannot be used as main model")
# and "(unknown)".
SUPPORTED_ARCHITECTURES: frozenset[str] = frozenset(
    """
    llama llama4 deci falcon grok gpt2 gptj gptneox mpt baichuan starcoder refact bert modern-bert
    nomic-bert nomic-bert-moe neo-bert jina-bert-v2 jina-bert-v3 eurobert bloom stablelm qwen qwen2
    qwen2moe qwen2vl qwen3 qwen3moe qwen3next qwen3vl qwen3vlmoe qwen35 qwen35moe qwen4exp phi2 phi3
    phimoe plamo plamo2 plamo3 codeshell orion internlm2 minicpm minicpm3 gemma gemma2 gemma3 gemma3n
    gemma4 gemma4-assistant gemma-embedding starcoder2 mamba mamba2 maple jamba falcon-h1 xverse
    command-r cohere2 cohere2moe dbrx olmo olmo2 olmoe muse-glimmer openelm arctic deepseek deepseek2
    deepseek2-ocr deepseek32 deepseek4 chatglm glm4 glm4moe glm-dsa bitnet t5 t5encoder jais jais2
    nemotron nemotron_h nemotron_h_moe exaone exaone4 exaone-moe rwkv6 rwkv6qwen2 rwkv7 arwkv7 granite
    granitemoe granitehybrid graniteswitch granite_swa chameleon wavtokenizer-dec plm bailingmoe
    bailingmoe2 bailingmoe3 dots1 dots3note arcee afmoe laguna ernie4_5 ernie4_5-moe hunyuan-moe
    hunyuan-dense hunyuan_vl hy_v3 hy_v4 smollm3 gpt-oss lfm2 lfm2moe dream smallthinker llada
    llada-moe seed_oss grovemoe apertus minimax-01 hrm_text minimax-m2 minimax-m3 cogvlm rnd1
    pangu-embedded mistral3 eagle3 dflash mistral4 paddleocr mimo2 step35 spark2_5 llama-embed
    maincoder kimi-linear kimi-k3 glm5-next talkie mellum nanbeige qwen3tts pockettts
    """.split()
)


class NeedMoreData(Exception):  # noqa: N818 - a signal to feed more bytes, not an error
    """The buffer ends before the header does: feed at least `needed_at_least` bytes and parse again.

    Not a LocalWebAIError: it is flow control for the downloader, never shown to users."""

    def __init__(self, needed_at_least: int) -> None:
        super().__init__(f"GGUF header needs at least {needed_at_least} bytes")
        self.needed_at_least = needed_at_least


@dataclass(frozen=True)
class SkippedArray:
    """An array value longer than `KEEP_ARRAYS_UP_TO`: its bytes were checked (lengths, bounds), not
    decoded. `offset` is the byte where its elements start."""

    element_type: int
    length: int
    offset: int

    def __len__(self) -> int:
        return self.length


@dataclass
class GGUFHeader:
    version: int
    tensor_count: int
    kv_count: int
    # key -> Python value (ints, floats, bools, str; arrays as lists, or SkippedArray when longer than
    # KEEP_ARRAYS_UP_TO). Strings that are not valid UTF-8 are decoded with U+FFFD replacements (llama.cpp
    # itself does not require UTF-8).
    metadata: dict[str, Any]
    # key -> GGUF value type (see GGUF_VALUE_TYPE_NAMES); arrays: (ARRAY, element type), else (type, None)
    metadata_types: dict[str, tuple[int, int | None]]
    # (name, shape, ggml type, offset): shape in GGUF order (ne[0] first, the row length), the offset
    # relative to the start of the data section (header_size).
    tensors: list[tuple[str, tuple[int, ...], int, int]]
    alignment: int
    # Bytes the header (magic .. last tensor info) really occupies: what parsing needs.
    header_end: int
    # header_end padded to `alignment`: where tensor data starts (gguf.GGUFReader.data_offset).
    header_size: int
    # Size of the data section: each tensor's bytes padded to `alignment` (llama.cpp's gguf ctx->size).
    data_size: int
    # The size a complete file has: header_size + data_size, or header_end when there are no tensors
    # (llama.cpp and gguf-py write no padding after the header of a tensor-less file, e.g. a vocab file).
    file_size_expected: int
    architecture: str | None = None
    file_type: int | None = None
    split_no: int | None = None
    split_count: int | None = None
    split_tensors_count: int | None = None

    @property
    def tensor_bytes(self) -> int:
        """Sum of the tensors' sizes without alignment padding."""
        return sum(_tensor_nbytes(shape, t) for _, shape, t, _ in self.tensors)


def _tensor_nbytes(shape: tuple[int, ...], ggml_type: int) -> int:
    _, block, size = GGML_TYPE_SIZES[ggml_type]
    n = 1
    for d in shape:
        n *= d
    return n // block * size


_U64 = struct.Struct("<Q")


class _Reader:
    __slots__ = ("buf", "end", "limits", "pos")

    def __init__(self, buf: bytes | memoryview, limits: dict[str, int]) -> None:
        self.buf = buf
        self.end = len(buf)
        self.pos = 0
        self.limits = limits

    def need(self, n: int) -> None:
        if self.pos + n > self.end:
            raise NeedMoreData(self.pos + n)

    def scalar(self, fmt: str, size: int) -> Any:
        pos = self.pos
        if pos + size > self.end:
            raise NeedMoreData(pos + size)
        self.pos = pos + size
        return struct.unpack_from(fmt, self.buf, pos)[0]

    def u32(self) -> int:
        return self.scalar("<I", 4)

    def u64(self) -> int:
        return self.scalar("<Q", 8)

    def string(self, what: str) -> str:
        at = self.pos
        n = self.u64()
        if n > self.limits["max_string"]:
            raise ModelCompatibilityError(
                f"GGUF {what} at byte {at} has length {n}, over the limit of {self.limits['max_string']} "
                "bytes: the file is corrupt or not a GGUF model"
            )
        start = self.pos
        if start + n > self.end:
            raise NeedMoreData(start + n)
        self.pos = start + n
        return str(self.buf[start : start + n], "utf-8", "replace")

    def value(self, vtype: int, key: str, at: int) -> Any:
        if vtype in _SCALAR:
            fmt, size = _SCALAR[vtype]
            return self.scalar("<" + fmt, size)
        if vtype == STRING:
            return self.string(f"string value of key {key!r}")
        if vtype == ARRAY:
            return self.array(key)
        raise ModelCompatibilityError(
            f"GGUF key {key!r} has unknown value type {vtype} at byte {at} "
            f"(known: 0..{len(GGUF_VALUE_TYPE_NAMES) - 1}): the file is corrupt or from a newer GGUF writer"
        )

    def array(self, key: str) -> list[Any] | SkippedArray:
        at = self.pos
        etype = self.u32()
        n = self.u64()
        if etype == ARRAY:
            # Valid GGUF, but llama.cpp's reader refuses arrays of arrays (gguf.cpp): so do we, at once,
            # instead of walking millions of empty inner arrays first.
            raise ModelCompatibilityError(
                f"GGUF key {key!r} (byte {at}) holds nested arrays, which llama.cpp cannot read"
            )
        if n > self.limits["max_array"]:
            raise ModelCompatibilityError(
                f"GGUF array {key!r} at byte {at} has {n} elements, over the limit of "
                f"{self.limits['max_array']}: the file is corrupt"
            )
        keep = n <= self.limits["keep_arrays_up_to"]
        if etype in _SCALAR:
            fmt, size = _SCALAR[etype]
            start = self.pos
            if start + n * size > self.end:
                raise NeedMoreData(start + n * size)
            self.pos = start + n * size
            if not keep:
                return SkippedArray(etype, n, start)
            return list(struct.unpack_from(f"<{n}{fmt}", self.buf, start))
        if etype == STRING:
            start = self.pos
            strings = self._string_array(key, n, decode=keep)
            return strings if keep else SkippedArray(etype, n, start)
        raise ModelCompatibilityError(
            f"GGUF array {key!r} has unknown element type {etype} at byte {at} "
            f"(known: 0..{len(GGUF_VALUE_TYPE_NAMES) - 1}): the file is corrupt or from a newer GGUF writer"
        )

    def _string_array(self, key: str, n: int, *, decode: bool) -> list[str]:
        buf, end, pos = self.buf, self.end, self.pos
        max_string = self.limits["max_string"]
        unpack = _U64.unpack_from
        out: list[str] = []
        append = out.append
        last_len = end - 8  # the last position a length field can start at
        for i in range(n):
            if pos > last_len:
                raise NeedMoreData(pos + 8 * (n - i))  # every remaining string has at least its length
            length = unpack(buf, pos)[0]
            start = pos + 8
            pos = start + length
            if pos > end or length > max_string:
                if length > max_string:
                    raise ModelCompatibilityError(
                        f"GGUF string {i} of array {key!r} at byte {start - 8} has length {length}, over "
                        f"the limit of {max_string} bytes: the file is corrupt"
                    )
                raise NeedMoreData(pos + 8 * (n - i - 1))
            if decode:
                append(str(buf[start:pos], "utf-8", "replace"))
        self.pos = pos
        return out


def _pad(n: int, alignment: int) -> int:
    return (n + alignment - 1) // alignment * alignment


def parse_header(
    data: bytes | bytearray | memoryview,
    *,
    max_tensor_count: int = 65_536,
    max_kv_count: int = 65_536,
    max_string: int = 16 * MiB,
    max_array: int = 50_000_000,
    keep_arrays_up_to: int = KEEP_ARRAYS_UP_TO,
) -> GGUFHeader:
    """Parse the GGUF header at the start of `data` (the file's first bytes; more is fine).

    Raises NeedMoreData when `data` ends before the header does (append bytes and call again), and
    ModelCompatibilityError (saying what is wrong and at which byte) when the bytes cannot be a GGUF file
    llama.cpp loads: bad magic, big-endian, unsupported version, absurd counts or lengths, unknown value or
    tensor types, bad shapes, bad alignment, duplicate keys or tensor names, inconsistent tensor offsets,
    nested arrays. Only the header bytes (`header_end`) are needed, not the padding after them.

    The caps bound time and memory to the input: real models have hundreds of keys and at most a few
    thousand tensors (a 671B MoE: ~1,100), so 65,536 of each is generous; arrays longer than
    `keep_arrays_up_to` are checked but stand in the metadata as `SkippedArray`.
    """
    buf: bytes | memoryview
    if isinstance(data, bytes):
        buf = data
    else:
        buf = memoryview(data)
        if buf.format != "B" or buf.ndim != 1:
            buf = buf.cast("B")
        if len(buf) <= _COPY_LIMIT:  # slicing bytes is ~2x faster than memoryview for the token strings
            buf = bytes(buf)
    r = _Reader(
        buf, {"max_string": max_string, "max_array": max_array, "keep_arrays_up_to": keep_arrays_up_to}
    )

    r.need(4)
    magic = bytes(buf[:4])
    if magic != GGUF_MAGIC:
        raise ModelCompatibilityError(
            f"not a GGUF file: bytes 0-3 are {magic!r}, expected {GGUF_MAGIC!r}"
            + (" (this looks like an HTML page, not a model)" if magic[:1] == b"<" else "")
        )
    r.pos = 4
    version = r.u32()
    if version == 0:
        raise ModelCompatibilityError("bad GGUF version 0 at byte 4: the file is corrupt")
    if version & 0xFFFF == 0:  # e.g. version 3 written big-endian reads as 0x03000000
        raise ModelCompatibilityError(
            f"big-endian GGUF is not supported (version at byte 4 reads as {version:#x} little-endian); "
            "use a little-endian GGUF file"
        )
    if version == 1:  # v1 has 32-bit counts and lengths; the vendored llama.cpp refuses it
        raise ModelCompatibilityError(
            "GGUF version 1 (byte 4) is no longer supported by llama.cpp; convert the model again"
        )
    if not MIN_SUPPORTED_GGUF_VERSION <= version <= MAX_SUPPORTED_GGUF_VERSION:
        raise ModelCompatibilityError(
            f"GGUF version {version} (byte 4) is not supported (supported: "
            f"{MIN_SUPPORTED_GGUF_VERSION}..{MAX_SUPPORTED_GGUF_VERSION})"
        )

    tensor_count = r.u64()
    if tensor_count > max_tensor_count:
        raise ModelCompatibilityError(
            f"GGUF tensor count {tensor_count} (byte 8) is over the limit of {max_tensor_count}: "
            "the file is corrupt"
        )
    kv_count = r.u64()
    if kv_count > max_kv_count:
        raise ModelCompatibilityError(
            f"GGUF key/value count {kv_count} (byte 16) is over the limit of {max_kv_count}: "
            "the file is corrupt"
        )

    metadata: dict[str, Any] = {}
    types: dict[str, tuple[int, int | None]] = {}
    for i in range(kv_count):
        at = r.pos
        key = r.string(f"key {i}")
        if not key:
            raise ModelCompatibilityError(f"GGUF key {i} at byte {at} is empty")
        if key in metadata:
            raise ModelCompatibilityError(f"GGUF key {key!r} at byte {at} is duplicated")
        vat = r.pos
        vtype = r.u32()
        if vtype == ARRAY:
            etype = r.u32()
            r.pos -= 4  # array() reads the element type and the length itself
            metadata[key] = r.value(ARRAY, key, vat)
            types[key] = (ARRAY, etype)
        else:
            metadata[key] = r.value(vtype, key, vat)
            types[key] = (vtype, None)

    alignment = GGUF_DEFAULT_ALIGNMENT
    if "general.alignment" in metadata:
        if types["general.alignment"] != (UINT32, None):
            raise ModelCompatibilityError(
                "GGUF key 'general.alignment' must be UINT32, not "
                f"{GGUF_VALUE_TYPE_NAMES[types['general.alignment'][0]]}"
            )
        alignment = metadata["general.alignment"]
        if alignment == 0 or alignment & (alignment - 1):
            raise ModelCompatibilityError(f"GGUF alignment {alignment} is not a power of 2")

    tensors: list[tuple[str, tuple[int, ...], int, int]] = []
    names: dict[str, int] = {}
    data_size = 0
    for i in range(tensor_count):
        at = r.pos
        name = r.string(f"name of tensor {i}")
        if r.pos - at - 8 >= GGML_MAX_NAME:
            raise ModelCompatibilityError(
                f"GGUF tensor {i} at byte {at}: name {name[:80]!r} is too long "
                f"({r.pos - at - 8} bytes, at most {GGML_MAX_NAME - 1})"
            )
        if name in names:
            raise ModelCompatibilityError(f"GGUF tensor {i} at byte {at}: duplicate tensor name {name!r}")
        names[name] = i
        dat = r.pos
        n_dims = r.u32()
        if n_dims > GGML_MAX_DIMS:
            raise ModelCompatibilityError(
                f"GGUF tensor {name!r} at byte {dat} has {n_dims} dimensions (at most {GGML_MAX_DIMS})"
            )
        r.need(8 * n_dims)
        shape = struct.unpack_from(f"<{n_dims}q", buf, r.pos)
        r.pos += 8 * n_dims
        n_elements = 1
        for d in shape:
            if d < 0:
                raise ModelCompatibilityError(
                    f"GGUF tensor {name!r} at byte {dat} has a negative or absurd dimension {d % 2**64}"
                )
            n_elements *= d
        if n_elements >= 2**63:
            raise ModelCompatibilityError(
                f"GGUF tensor {name!r} at byte {dat} has shape {shape}: too many elements"
            )
        tat = r.pos
        ggml_type = r.u32()
        if ggml_type not in GGML_TYPE_SIZES:
            why = "was removed from ggml" if ggml_type < _GGML_TYPE_COUNT else "is unknown to this llama.cpp"
            raise ModelCompatibilityError(
                f"GGUF tensor {name!r} at byte {tat} has ggml type {ggml_type}, which {why}"
            )
        type_name, block, _ = GGML_TYPE_SIZES[ggml_type]
        row = shape[0] if shape else 1
        if row % block:
            raise ModelCompatibilityError(
                f"GGUF tensor {name!r} of type {type_name} has rows of {row} elements, "
                f"not a multiple of its block size {block}"
            )
        oat = r.pos
        offset = r.u64()
        if offset != data_size:
            raise ModelCompatibilityError(
                f"GGUF tensor {name!r} (offset at byte {oat}) has data offset {offset}, expected {data_size}"
            )
        data_size += _pad(_tensor_nbytes(shape, ggml_type), alignment)
        tensors.append((name, shape, ggml_type, offset))

    header_end = r.pos
    header_size = _pad(header_end, alignment)

    def opt_int(key: str) -> int | None:
        v = metadata.get(key)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    arch = metadata.get("general.architecture")
    return GGUFHeader(
        version=version,
        tensor_count=tensor_count,
        kv_count=kv_count,
        metadata=metadata,
        metadata_types=types,
        tensors=tensors,
        alignment=alignment,
        header_end=header_end,
        header_size=header_size,
        data_size=data_size,
        file_size_expected=header_size + data_size if tensors else header_end,
        architecture=arch if isinstance(arch, str) else None,
        file_type=opt_int("general.file_type"),
        split_no=opt_int("split.no"),
        split_count=opt_int("split.count"),
        split_tensors_count=opt_int("split.tensors.count"),
    )


def check_compatibility(
    header: GGUFHeader,
    *,
    supported_architectures: set[str] | frozenset[str] | None = None,
) -> None:
    """Raise ModelCompatibilityError if the parsed file cannot run here.

    - `general.architecture` missing (not checked for shards after the first of a split model, which
      carry only the split.* keys), or not in `supported_architectures` when a set is given (pass
      SUPPORTED_ARCHITECTURES for what the vendored llama.cpp knows).

    Whether the model fits the engine's memory is _fit.check_fits's question (it needs the context size).
    """
    if header.split_no is not None or header.split_count is not None:
        count = header.split_count if header.split_count is not None else 1
        if not (1 <= count <= 99999) or header.split_no is None or not (0 <= header.split_no < count):
            keys = f"split.no={header.split_no}, split.count={header.split_count}"
            raise ModelCompatibilityError(f"GGUF split keys are inconsistent: {keys}")
    first_shard = not header.split_no
    if first_shard:
        if header.architecture is None:
            raise ModelCompatibilityError(
                "GGUF file has no general.architecture key: llama.cpp cannot tell what model it is"
            )
        if supported_architectures is not None and header.architecture not in supported_architectures:
            raise ModelCompatibilityError(
                f"model architecture {header.architecture!r} is not supported by this llama.cpp build"
            )
