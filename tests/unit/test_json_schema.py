import re

import pytest

from py_runner import GenerateTextParams, InvalidParameterError
from py_runner._json_schema import schema_to_gbnf

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 8},
        "age": {"type": "integer"},
        "tags": {"type": "array", "items": {"enum": ["a", 'b"c']}, "maxItems": 2},
        "ok": {"type": ["boolean", "null"]},
    },
    "required": ["name", "age"],
}


def test_object_grammar() -> None:
    grammar = schema_to_gbnf(SCHEMA)
    rules = dict(line.split(" ::= ", 1) for line in grammar.splitlines())
    root = rules[rules["root"]]
    assert root.startswith('"{" "\\"name\\"" ":" string-')  # each value a named rule
    assert rules[root.split()[3]].endswith('{0,8} "\\""')  # bounded strings
    assert '"\\"b\\\\\\"c\\""' in grammar  # JSON escapes survive inside GBNF literals
    assert '("true" | "false")' in grammar and '"null"' in grammar


def test_params_turn_a_schema_into_a_grammar() -> None:
    params = GenerateTextParams(json_schema=SCHEMA, seed=0)
    params.validate()
    assert params.to_bridge_options()["grammar"] == schema_to_gbnf(SCHEMA)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {}}},  # unbounded value
        {"type": "string", "pattern": "^a$"},  # unsupported keyword
        {"$ref": "#/defs/x"},  # not a local definition
        {"$defs": {"x": {"type": "string"}}, "$ref": "#/$defs/y"},
        {"$defs": {"n": {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}}}, "$ref": "#/$defs/n"},
        {"$defs": {"x": {"type": "string"}}, "$ref": "#/$defs/x", "type": "string"},  # a keyword beside it
        {"type": "object", "properties": {}, "required": ["x"]},
        {"type": "tuple"},
    ],
)
def test_unsupported_schemas_are_refused_early(schema) -> None:
    with pytest.raises(InvalidParameterError):
        GenerateTextParams(json_schema=schema).validate()


def test_grammar_and_schema_are_exclusive() -> None:
    with pytest.raises(InvalidParameterError, match="not both"):
        GenerateTextParams(grammar='root ::= "x"', json_schema={"type": "null"}).validate()


def nested_arrays(levels: int, item: dict, **bounds) -> dict:
    schema = item
    for _ in range(levels):
        schema = {"type": "array", "items": schema, **bounds}
    return schema


@pytest.mark.parametrize("levels", [4, 8])
@pytest.mark.parametrize("item", [{"type": "integer"}, {"type": "string", "maxLength": 2000}])
def test_nested_arrays_repeat_rule_names_not_groups(levels, item) -> None:
    """llama.cpp's parser refuses `(group){m,n}` once n times the rules made inside the group exceed 2,000
    (MAX_REPETITION_THRESHOLD): inlined items of arrays nested 4 deep failed with "failed to parse grammar".
    Each repeated group here holds only names and literals (no group of its own: no rule inside it), so a
    repetition counts n; and the grammar grows by a rule per level, not twice the text per level."""
    grammar = schema_to_gbnf(nested_arrays(levels, item, maxItems=32, minItems=1))
    for repeated in re.finditer(r"\)\{\d+,\d+\}", grammar):
        group = grammar[grammar.rindex("(", 0, repeated.start()) : repeated.start() + 1]
        assert not re.search(r"[?*+{]", group.replace('"', " ")), group  # nothing that makes a rule inside
    assert len(grammar.splitlines()) == levels + 2 and len(grammar) < 1000


def test_local_references_are_rules_of_their_own() -> None:
    """pydantic's nested models: $defs (and draft 7's definitions) referred to by $ref, each one rule used
    wherever it is referred to."""
    schema = {
        "$defs": {"A": {"properties": {"a": {"type": "integer"}}, "required": ["a"], "type": "object"}},
        "definitions": {"U": {"enum": ["c", "f"]}},
        "properties": {
            "x": {"$ref": "#/$defs/A"},
            "y": {"$ref": "#/$defs/A"},
            "u": {"$ref": "#/definitions/U"},
        },
        "required": ["x", "y", "u"],
        "type": "object",
    }
    grammar = schema_to_gbnf(schema)
    assert grammar.count('"{" "\\"a\\"" ":" integer-1 "}"') == 1, grammar  # A's rule, once
    root = grammar.splitlines()[-1]
    assert root.count("object-2") == 2 and "enum-3" in root, grammar
