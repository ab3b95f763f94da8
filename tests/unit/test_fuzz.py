"""Property-based fuzzing (Hypothesis) of what takes untrusted input: the GGUF header reader, the JSON schema
translator (every grammar it emits is parsed by llama.cpp's own grammar parser, through pr_native), generation
parameters, stop strings and UTF-8 streaming.

Deterministic in CI: Hypothesis runs derandomized (a fixed seed) without its example database, and
PY_RUNNER_FUZZ_EXAMPLES (default 200) bounds the examples per property. The figures (inputs tried, the worst
memory per input byte) are printed at the end of the run (conftest.py).
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import tracemalloc

import fuzz_figures
import pytest
from fuzz_figures import fuzz_settings
from hypothesis import HealthCheck, given
from hypothesis import strategies as st

from py_runner import GenerateTextParams, InvalidParameterError, ModelCompatibilityError
from py_runner._gguf import GGUFHeader, NeedMoreData, SkippedArray, parse_header
from py_runner._json_schema import (
    JSON_GRAMMAR,
    MAX_DEPTH,
    MAX_GRAMMAR_BYTES,
    MAX_ITEMS,
    MAX_STRING,
    schema_to_gbnf,
)
from py_runner._stop import StopMatcher
from py_runner._utf8 import Utf8Stream
from py_runner.host.build.paths import native_binary
from py_runner.host.fixtures import fixture_model
from py_runner.host.skips import skip_or_fail

EXAMPLES = int(os.environ.get("PY_RUNNER_FUZZ_EXAMPLES", "200"))
FUZZ = fuzz_settings(HealthCheck.data_too_large, HealthCheck.large_base_example)
# The reader allocates at most this many bytes per input byte, plus a fixed allowance for the interpreter's
# own allocations. Arrays past KEEP_ARRAYS_UP_TO are not decoded at all (decoded, a u8 array cost 16x: the
# tuple struct makes, then the list); a kept i32 element costs ~11x (tuple and list slots, an int object). A
# key costs its string and two dict entries, ~18x for the smallest one, which the 65,536-key cap bounds.
MEMORY_PER_INPUT_BYTE = 12
MEMORY_ALLOWANCE = 64 * 1024


def _both_outcomes(prop, accepted: str, refused: str) -> None:
    """Runs a property and asserts that it saw both outcomes: a property whose every example is refused (or
    every one accepted) exercises one branch only, and would pass whatever the other branch does."""
    before = dict(fuzz_figures.COUNTS)
    prop()
    for name in (accepted, refused):
        assert fuzz_figures.COUNTS[name] > before.get(name, 0), f"no example was counted as {name!r}"


# ---------------------------------------------------------------------------------------------- GGUF reader

_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}


def _s(data: bytes) -> bytes:
    return struct.pack("<Q", len(data)) + data


@st.composite
def _kv(draw) -> bytes:
    key = draw(
        st.binary(min_size=1, max_size=12) | st.sampled_from([b"", b"general.architecture", b"split.no"])
    )
    kind = draw(st.sampled_from(["scalar", "string", "array", "nested", "bad type"]))
    if kind == "scalar":
        vtype = draw(st.sampled_from(sorted(_SCALARS)))
        size = struct.calcsize("<" + _SCALARS[vtype])
        return _s(key) + struct.pack("<I", vtype) + draw(st.binary(min_size=size, max_size=size))
    if kind == "string":
        return _s(key) + struct.pack("<I", 8) + _s(draw(st.binary(max_size=40) | st.just(b"llama")))
    if kind == "nested":
        inner = struct.pack("<IQ", 4, 0)
        n = draw(st.integers(0, 3))
        return _s(key) + struct.pack("<IIQ", 9, 9, n) + inner * n
    if kind == "bad type":
        return _s(key) + struct.pack("<I", draw(st.integers(13, 2**32 - 1))) + b"\0" * 8
    etype = draw(st.sampled_from([*sorted(_SCALARS), 8]))
    n = draw(st.integers(0, 3000))  # across KEEP_ARRAYS_UP_TO: kept and skipped arrays
    if etype == 8:
        body = b"".join(_s(b"t" * (i % 3)) for i in range(n))
    else:
        body = draw(st.binary(min_size=1, max_size=8)) * (struct.calcsize("<" + _SCALARS[etype]) * n)
        body = body[: struct.calcsize("<" + _SCALARS[etype]) * n]
    return _s(key) + struct.pack("<IIQ", 9, etype, n) + body


@st.composite
def _tensor_info(draw) -> bytes:
    name = draw(st.binary(min_size=0, max_size=70))
    dims = draw(st.lists(st.integers(0, 2**40) | st.integers(1, 512), min_size=0, max_size=5))
    ggml_type = draw(st.integers(0, 45))
    offset = draw(st.integers(0, 2**20) | st.just(0))
    return _s(name) + struct.pack(f"<I{len(dims)}qIQ", len(dims), *dims, ggml_type, offset)


@st.composite
def gguf_inputs(draw) -> bytes:
    kvs = draw(st.lists(_kv(), max_size=8))
    tensors = draw(st.just([]) | st.lists(_tensor_info(), max_size=5))
    exact = st.sampled_from([True, True, True, False])  # mostly the true counts: deeper into the header
    n_kv = len(kvs) if draw(exact) else draw(st.integers(0, 2**64 - 1))
    n_t = len(tensors) if draw(exact) else draw(st.integers(0, 2**64 - 1))
    version = draw(st.sampled_from([3, 3, 3, 2, 1, 0, 4, 0x03000000]))
    data = b"GGUF" + struct.pack("<IQQ", version, n_t, n_kv) + b"".join(kvs) + b"".join(tensors)
    mutation = draw(st.sampled_from(["none", "none", "truncate", "flip", "u64"]))
    if mutation != "none" and data:
        at = draw(st.integers(0, len(data) - 1))
        if mutation == "truncate":
            data = data[:at]
        elif mutation == "flip":
            data = data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1 :]
        else:
            data = data[:at] + struct.pack("<Q", draw(st.integers(0, 2**64 - 1))) + data[at + 8 :]
    return data


def _parse_measured(data: bytes) -> tuple[object, int]:
    """parse_header's outcome (a header or the exception) and the peak memory it allocated."""
    tracemalloc.start()
    try:
        try:
            outcome: object = parse_header(data)
        except (NeedMoreData, ModelCompatibilityError) as err:
            outcome = err
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_gguf_reader_answers_every_input_in_memory_bounded_by_it() -> None:
    _both_outcomes(
        _gguf_reader_property, "GGUF inputs parsed as headers", "GGUF inputs refused (typed error)"
    )


@FUZZ
@given(gguf_inputs())
def _gguf_reader_property(data: bytes) -> None:
    outcome, peak = _parse_measured(data)
    fuzz_figures.count("GGUF inputs fuzzed")
    assert isinstance(outcome, GGUFHeader | NeedMoreData | ModelCompatibilityError), outcome
    if isinstance(outcome, ModelCompatibilityError):
        fuzz_figures.count("GGUF inputs refused (typed error)")
    if isinstance(outcome, GGUFHeader):
        fuzz_figures.count("GGUF inputs parsed as headers")
        assert outcome.header_end <= len(data)
        for value in outcome.metadata.values():
            assert not isinstance(value, list) or len(value) <= 1024  # longer ones are SkippedArray
    if len(data) >= 4096:  # below that the fixed allowance dominates: a ratio would say nothing
        worst = "GGUF reader: worst bytes allocated per input byte (inputs >= 4 KiB)"
        fuzz_figures.peak(worst, peak / len(data))
    assert peak <= MEMORY_PER_INPUT_BYTE * len(data) + MEMORY_ALLOWANCE, (peak, len(data))


def test_gguf_amplifiers_from_the_probe_are_bounded() -> None:
    """The probe's cases: a 48 MB u8 array (was +726 MB), 5M empty nested arrays (was 3.4 s), 1M tensor infos
    (was 2.1 s). Now: a few KB, refused at the outer array, refused at the count."""
    head = b"GGUF" + struct.pack("<IQQ", 3, 0, 1)
    big = head + _s(b"big") + struct.pack("<IIQ", 9, 0, 48_000_000) + bytes(48_000_000)
    outcome, peak = _parse_measured(big)
    assert isinstance(outcome, GGUFHeader) and isinstance(outcome.metadata["big"], SkippedArray)
    assert peak < 64 * 1024, peak
    nested = head + _s(b"n") + struct.pack("<IIQ", 9, 9, 5_000_000)  # no inner array needs to be there
    with pytest.raises(ModelCompatibilityError, match="nested arrays"):
        parse_header(nested)
    tensors = b"GGUF" + struct.pack("<IQQ", 3, 1_000_000, 0)
    with pytest.raises(ModelCompatibilityError, match="tensor count 1000000"):
        parse_header(tensors)


# ---------------------------------------------------------------------------------------------- JSON schemas

_junk = st.sampled_from(["abc", -1, 2**31, 1.5, None, True, [], {}, float("nan")])
_sizes = st.integers(0, 40) | st.integers(0, 3000) | _junk
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=6,
)
_leaf_schemas = st.one_of(
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "integer", "number", "boolean", "null", "tuple"])},
        optional={"minLength": _sizes, "maxLength": _sizes, "title": st.text(max_size=5)},
    ),
    st.fixed_dictionaries({"enum": st.lists(_json_values, max_size=4) | _junk}),
    st.fixed_dictionaries({"const": _json_values}),
    st.fixed_dictionaries(
        {"type": st.lists(st.sampled_from(["string", "null", "boolean", "x"]), max_size=3)}
    ),
    _junk,
)


def _composite_schemas(children):
    return st.one_of(
        st.fixed_dictionaries(
            {"type": st.just("array"), "items": children},
            optional={"minItems": _sizes, "maxItems": _sizes},
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("object"),
                "properties": st.dictionaries(st.text(max_size=4), children, max_size=4),
            },
            optional={"required": st.lists(st.text(max_size=4), max_size=3) | _junk},
        ),
        st.fixed_dictionaries({"anyOf": st.lists(children, min_size=0, max_size=3) | _junk}),
        st.fixed_dictionaries({"oneOf": st.lists(children, min_size=1, max_size=3)}),
    )


schemas = st.recursive(_leaf_schemas, _composite_schemas, max_leaves=14)


def _translate(schema) -> str | None:
    """The grammar, or None when the schema is refused with the typed error (any other exception fails)."""
    try:
        grammar = schema_to_gbnf(schema)
    except InvalidParameterError:
        fuzz_figures.count("JSON schemas refused (typed error)")
        return None
    fuzz_figures.count("JSON schemas translated")
    assert len(grammar) <= MAX_GRAMMAR_BYTES
    return grammar


def _native_grammar_check(grammars: list[str]) -> list[dict]:
    binary = native_binary()
    if not binary.is_file():
        skip_or_fail(f"{binary} is missing (run build_wasm.sh)")
    path = fixture_model("tiny", "f16").parent / "fuzz-grammars.bin"
    path.write_bytes(b"\0".join(g.encode() for g in grammars))
    try:
        proc = subprocess.run(
            [str(binary), "grammar", "--model", str(fixture_model("tiny", "f16")), "--file", str(path)],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        path.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)["results"]


def test_every_emitted_grammar_parses_in_llama_cpp() -> None:
    """Every grammar the translator emits for the fuzzed schemas, and JSON mode's, is accepted by llama.cpp's
    own GBNF parser; a broken grammar is not (the check can fail)."""
    emitted: list[str] = []

    @FUZZ
    @given(schemas)
    def translate(schema) -> None:
        grammar = _translate(schema)
        if grammar is not None:
            emitted.append(grammar)

    _both_outcomes(translate, "JSON schemas translated", "JSON schemas refused (typed error)")
    assert emitted, "no schema was translated: the strategy is broken"
    broken = 'root ::= ("a" | '
    results = _native_grammar_check([JSON_GRAMMAR, *emitted, broken])
    fuzz_figures.count("grammars checked by llama.cpp's parser", len(results))
    assert len(results) == len(emitted) + 2
    assert not results[-1]["ok"]
    bad = [
        (g[:300], r["error"]) for g, r in zip([JSON_GRAMMAR, *emitted], results, strict=False) if not r["ok"]
    ]
    assert not bad, bad


def _nested(levels: int, item: dict, kind: str) -> dict:
    schema = item
    for i in range(levels):
        if kind == "array":
            schema = {"type": "array", "items": schema, "minItems": 1, "maxItems": MAX_ITEMS}
        else:
            schema = {"type": "object", "properties": {f"k{i}": schema, "n": {"type": "number"}}}
    return schema


def test_schemas_nested_to_the_documented_depth_parse_in_llama_cpp() -> None:
    """Arrays and objects nested 1..MAX_DEPTH deep around the largest items: each grammar is accepted by
    llama.cpp's parser (inlined array items failed from 4 levels: its limit on a repeated group's rules)."""
    items = [{"type": "integer"}, {"type": "string", "maxLength": MAX_STRING}, {"enum": ["a", 1, None]}]
    grammars = [
        schema_to_gbnf(_nested(levels, item, kind))
        for levels in range(1, MAX_DEPTH + 1)
        for item in items
        for kind in ("array", "object")
    ]
    results = _native_grammar_check(grammars)
    bad = [(g[:300], r["error"]) for g, r in zip(grammars, results, strict=True) if not r["ok"]]
    assert not bad, bad


# ---------------------------------------------------------------------------------------------- parameters

_I32 = 2**31 - 1
_any_number = st.one_of(
    st.integers(0, 64),  # plausible values, so that some whole sets are accepted and mapped
    st.floats(0.01, 1.0),
    st.integers(-(2**40), 2**40),
    st.integers(-3, 100),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.text(max_size=2),
)
_param_fields = st.fixed_dictionaries(
    {},
    optional={
        name: _any_number
        for name in (
            "n_predict temp top_k top_p min_p typical_p repeat_penalty repeat_last_n presence_penalty "
            "frequency_penalty seed ctx_size batch_size n_threads"
        ).split()
    }
    | {
        "logit_bias": st.dictionaries(_any_number, _any_number, max_size=3),
        "stop": st.lists(st.text(max_size=3) | st.integers(), max_size=3) | _junk,
    },
)


def test_parameters_are_refused_or_reach_the_engine_in_range() -> None:
    _both_outcomes(_parameters_property, "parameter sets accepted", "parameter sets refused (typed error)")


@FUZZ
@given(_param_fields)
def _parameters_property(fields: dict) -> None:
    params = GenerateTextParams(**fields)
    try:
        params.validate()
    except InvalidParameterError:
        fuzz_figures.count("parameter sets refused (typed error)")
        return
    fuzz_figures.count("parameter sets accepted")
    options = params.to_bridge_options()
    for name, value in options.items():
        if isinstance(value, bool) or name in ("logit_bias", "grammar", "grammar_triggers"):
            continue
        if isinstance(value, int):
            limit = 2**32 - 1 if name == "seed" else _I32
            assert -_I32 <= value <= limit, (name, value)  # nothing wraps on its way to a C int
        else:
            assert isinstance(value, float) and math.isfinite(value), (name, value)
    for token, bias in options.get("logit_bias", []):
        assert 0 <= token <= _I32 and (math.isfinite(bias) or bias == float("-inf")), (token, bias)


# ------------------------------------------------------------------------------------------ Llama's arguments

_U32 = 2**32 - 1
_values = st.one_of(
    st.none(),
    st.integers(-3, 100),
    st.integers(-(2**40), 2**40),
    st.integers(-3, 100).map(float),  # whole floats: counts take them (3.0 is 3)
    st.floats(-2, 2),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["3", "", "abc", "0.5"]),
    st.lists(st.integers(0, 3), max_size=2),
)


def _whole(v, low: int | None = None, optional: bool = True) -> bool:
    """The oracle for a count, written from llama-cpp-python's types: an int or a whole float, not a bool."""
    if v is None:
        return optional
    if isinstance(v, bool) or not isinstance(v, int | float) or (isinstance(v, float) and not v.is_integer()):
        return False
    return low is None or int(v) >= low


def _num(v, ok=lambda x: True) -> bool:
    """None (the default) or a finite number, not a bool, in range."""
    if v is None:
        return True
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and ok(v)


def _token_key(k) -> bool:
    if isinstance(k, str):
        try:
            k = int(k)
        except ValueError:
            return False
    return isinstance(k, int) and not isinstance(k, bool) and 0 <= k < 512  # the scripted model's n_vocab


_GOOD = {
    "max_tokens": _whole,
    "logprobs": lambda v: _whole(v, 0),
    "temperature": lambda v: _num(v, lambda x: x >= 0),
    "top_p": lambda v: _num(v, lambda x: 0 < x <= 1),
    "min_p": lambda v: _num(v, lambda x: 0 <= x <= 1),
    "typical_p": lambda v: _num(v, lambda x: 0 < x <= 1),
    "repeat_penalty": lambda v: _num(v, lambda x: x > 0),
    "presence_penalty": _num,
    "frequency_penalty": _num,
    "top_k": lambda v: _whole(v) and (v is None or int(v) <= _I32),  # <= 0: off
    "seed": lambda v: _whole(v, -1) and (v is None or int(v) <= _U32),  # -1: random
    "echo": lambda v: isinstance(v, bool),
    "stop": lambda v: (
        v is None
        or (isinstance(v, str) and v != "")
        or (isinstance(v, list) and all(isinstance(s, str) and s for s in v))
    ),
    "logit_bias": lambda v: (
        v is None
        or (
            isinstance(v, dict)
            and all(_token_key(k) and (_num(b) and b is not None or b == -math.inf) for k, b in v.items())
        )
    ),
}
_plausible = st.sampled_from([None, 0, 1, 2, 0.5, 1.0])  # half the draws: so that whole sets are accepted
_completion_args = st.fixed_dictionaries(
    {},
    optional={name: _plausible | _values for name in _GOOD}
    | {
        "stop": _values | st.text(max_size=2) | st.lists(st.text(max_size=2) | st.integers(), max_size=2),
        "logit_bias": _values
        | st.dictionaries(
            st.integers(-2, 600) | st.text("1٥x -", max_size=3) | st.booleans() | st.floats(0, 3),
            _values | st.just(-math.inf),
            max_size=3,
        ),
    },
)
_chat_args = st.fixed_dictionaries(
    {},
    optional={
        "max_tokens": _values,
        "logprobs": _values,
        "top_logprobs": _values,
        "response_format": _values
        | st.sampled_from(["json", {"type": "json_object"}, {"type": "xml"}, {"type": "text"}]),
        "tool_choice": _values | st.sampled_from(["auto", "none", "required", "sometimes"]),
        "stream": _values,
    },
)
_CHAT_GOOD = {
    "max_tokens": _whole,
    "logprobs": lambda v: v is None or isinstance(v, bool),
    "top_logprobs": lambda v: _whole(v, 0),
    "response_format": lambda v: (
        v is None or (isinstance(v, dict) and v.get("type") in ("json_object", "text"))
    ),
    "tool_choice": lambda v: v in (None, "auto", "none", "required"),
    "stream": lambda v: isinstance(v, bool),
}


def _facade():
    from py_runner import Llama, LlamaRunner, MockTransport
    from py_runner._transport.mock import METADATA

    meta = {**METADATA, "meta": {**METADATA["meta"], "tokenizer.chat_template": "{{ messages }}"}}
    transport = MockTransport(pieces=[(72, b"Hel"), (108, b"lo")], metadata=meta)
    return Llama("models/model.gguf", runner=LlamaRunner(transport=transport)), transport


def test_completion_arguments_are_refused_by_name_or_accepted() -> None:
    """Every bad value of create_completion's arguments (as llama-cpp-python types them) is an
    InvalidParameterError naming the argument; every good one is accepted and reaches the engine in range."""
    accepted, refused = "Llama argument sets accepted", "Llama argument sets refused (typed error)"
    _both_outcomes(_completion_arguments_property, accepted, refused)


@FUZZ
@given(_completion_args)
def _completion_arguments_property(kwargs: dict) -> None:
    llm, transport = _facade()
    bad = [name for name, value in kwargs.items() if not _GOOD[name](value)]
    try:
        out = llm.create_completion("x", **kwargs)
    except InvalidParameterError as err:
        fuzz_figures.count("Llama argument sets refused (typed error)")
        assert bad, (kwargs, err)  # no good set is refused
        assert any(name in str(err) for name in bad), (bad, str(err))
        assert transport.generate_calls == []
        return
    fuzz_figures.count("Llama argument sets accepted")
    assert not bad, (bad, kwargs)
    options = transport.generate_calls[-1][1]
    assert 1 <= options["n_predict"] <= llm.n_ctx()
    if kwargs.get("max_tokens") is not None and int(kwargs["max_tokens"]) > 0:
        assert options["n_predict"] == min(int(kwargs["max_tokens"]), llm.n_ctx())
    logprobs = out["choices"][0]["logprobs"]
    assert (logprobs is None) == (kwargs.get("logprobs") is None)
    if logprobs is not None:
        assert all(len(top) <= int(kwargs["logprobs"]) + 1 for top in logprobs["top_logprobs"])


def test_chat_arguments_are_refused_by_name_or_accepted() -> None:
    accepted, refused = "Llama chat argument sets accepted", "Llama chat argument sets refused (typed error)"
    _both_outcomes(_chat_arguments_property, accepted, refused)


@FUZZ
@given(_chat_args)
def _chat_arguments_property(kwargs: dict) -> None:
    llm, transport = _facade()
    bad = [name for name, value in kwargs.items() if not _CHAT_GOOD[name](value)]
    if kwargs.get("stream") is True and kwargs.get("logprobs") is True:
        bad.append("logprobs")  # not with stream=True (refused when the stream starts, as the rest is)
    try:
        out = llm.create_chat_completion([{"role": "user", "content": "Hi"}], **kwargs)
        if kwargs.get("stream") is True:
            chunks = list(out)
            assert chunks[-1]["choices"][0]["finish_reason"] is not None
            out = {"choices": [{"logprobs": None}]}
    except InvalidParameterError as err:
        fuzz_figures.count("Llama chat argument sets refused (typed error)")
        assert bad, (kwargs, err)
        assert any(name in str(err) for name in bad), (bad, str(err))
        assert transport.generate_calls == []
        return
    fuzz_figures.count("Llama chat argument sets accepted")
    assert not bad, (bad, kwargs)
    content = (out["choices"][0]["logprobs"] or {}).get("content") or []
    top = kwargs.get("top_logprobs")
    assert all(len(c["top_logprobs"]) == min(int(top or 0), 512) for c in content)


# ---------------------------------------------------------------------------------------------- stop, UTF-8


@st.composite
def _chunked(draw, items: st.SearchStrategy) -> tuple:
    whole = draw(items)
    cuts = sorted(draw(st.lists(st.integers(0, len(whole)), max_size=8)))
    return whole, [whole[a:b] for a, b in zip([0, *cuts], [*cuts, len(whole)], strict=True)]


_alphabet = st.sampled_from(list("ab<|>é😀 \n"))


@FUZZ
@given(
    _chunked(st.text(_alphabet, max_size=40)),
    st.lists(st.text(_alphabet, min_size=1, max_size=4), max_size=3),
)
def test_stop_strings_end_generation_as_llama_cpp_python_does(chunked, stops) -> None:
    """Generation stops at the first token (chunk) after which a stop string is in the text, and the text is
    cut where the earliest one starts; a longer stop string that would have started earlier never completes
    (as in llama-cpp-python, which checks the whole text after each token). No part of a stop string shows."""
    _, chunks = chunked
    expected, so_far = None, ""
    for chunk in chunks:
        so_far += chunk
        found = [i for i in (so_far.find(s) for s in stops) if i >= 0]
        if found:
            expected = so_far[: min(found)]
            break
    matcher = StopMatcher(stops)
    shown = "".join(matcher.feed(c) for c in chunks) + matcher.flush()
    fuzz_figures.count("stop-string cases")
    assert shown == (so_far if expected is None else expected)
    assert matcher.stopped == (expected is not None)


@FUZZ
@given(_chunked(st.binary(max_size=40) | st.text(max_size=12).map(str.encode)))
def test_utf8_stream_decodes_any_split_as_the_whole(chunked) -> None:
    whole, chunks = chunked
    stream = Utf8Stream()
    text = "".join(stream.feed(c) for c in chunks) + stream.flush()
    fuzz_figures.count("UTF-8 streaming cases")
    assert text == whole.decode("utf-8", "replace")
