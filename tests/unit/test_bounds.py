"""Bounds (issue 12): values that would wrap, overflow or blow up on their way to llama.cpp are typed errors
before anything runs, and the grammars made of JSON schemas stay small."""

from __future__ import annotations

import asyncio
import dataclasses
import math

import pytest

from py_runner import GenerateTextParams, InvalidParameterError, LlamaRunner, MockTransport
from py_runner._errors import ModelCompatibilityError
from py_runner._gguf import check_compatibility, parse_header
from py_runner._json_schema import MAX_GRAMMAR_BYTES, schema_to_gbnf
from py_runner._transport.mock import gguf_header


@pytest.mark.parametrize(
    "fields",
    [
        {"top_k": 2**32},
        {"n_predict": 2**31},
        {"repeat_last_n": 2**40},
        {"temp": math.inf},
        {"top_p": math.nan},
        {"presence_penalty": -math.inf},
        {"logit_bias": {2**32 + 5: -math.inf}},
        {"logit_bias": {5: math.inf}},
        {"logit_bias": {5: math.nan}},
        {"seed": 2**32},
    ],
)
def test_parameters_past_a_c_int_or_not_finite_are_refused(fields) -> None:
    with pytest.raises(InvalidParameterError):
        GenerateTextParams(**fields).validate()


def test_the_edges_that_are_fine_stay_fine() -> None:
    GenerateTextParams(seed=2**32 - 1, logit_bias={5: -math.inf, 6: 2.5}, top_k=2**31 - 1).validate()


def test_load_and_token_ids_are_checked() -> None:
    runner = LlamaRunner(transport=MockTransport())
    with pytest.raises(InvalidParameterError):
        asyncio.run(runner.load_model("models/m.gguf", ctx_size=2**32 + 16))
    asyncio.run(runner.load_model("models/m.gguf"))
    n_vocab = runner.load_details["n_vocab"]
    for bad in ([n_vocab], [-1], [True], [2**40]):
        with pytest.raises(InvalidParameterError):
            asyncio.run(runner.detokenize(bad))
    with pytest.raises(InvalidParameterError):
        asyncio.run(runner.logits("x", [n_vocab]))
    assert asyncio.run(runner.detokenize([72, 105])) == "Hi"


@pytest.mark.parametrize(("split_no", "split_count"), [(-1, 2), (2, 2), (0, 0), (None, 3)])
def test_inconsistent_split_keys_are_refused(split_no, split_count) -> None:
    header = dataclasses.replace(parse_header(gguf_header()), split_no=split_no, split_count=split_count)
    with pytest.raises(ModelCompatibilityError, match="split"):
        check_compatibility(header)


def nested_arrays(levels: int) -> dict:
    schema: dict = {"type": "integer"}
    for _ in range(levels):
        schema = {"type": "array", "items": schema, "maxItems": 8}
    return schema


@pytest.mark.parametrize(
    "schema",
    [
        nested_arrays(22),  # 635 bytes of schema were 247 MB of grammar
        {"type": "string", "maxLength": "abc"},
        {"type": "string", "maxLength": 5000},
        {"type": "string", "minLength": 10, "maxLength": 2},
        {"type": "array", "items": {"type": "string"}, "maxItems": 60},
        {"type": "array", "items": {"type": "string"}, "minItems": 5, "maxItems": 2},
        {"enum": 5},
        {"enum": []},
        {"const": math.nan},
        {"type": "object", "properties": [{"name": "x"}]},
        {"type": "object", "properties": {1: {"type": "integer"}}},
        {"type": "object", "properties": {"a": {"type": "integer"}}, "required": "a"},
        {"anyOf": []},
    ],
)
def test_schemas_that_would_break_llama_cpp_are_typed_errors(schema) -> None:
    with pytest.raises(InvalidParameterError):
        schema_to_gbnf(schema)
    with pytest.raises(InvalidParameterError):
        GenerateTextParams(json_schema=schema).validate()


def test_a_self_referential_schema_is_a_typed_error() -> None:
    schema: dict = {"type": "object", "properties": {}}
    schema["properties"]["self"] = schema
    with pytest.raises(InvalidParameterError):
        schema_to_gbnf(schema)


def test_grammars_stay_small() -> None:
    grammar = schema_to_gbnf(nested_arrays(8))  # the deepest allowed
    assert len(grammar) <= MAX_GRAMMAR_BYTES
