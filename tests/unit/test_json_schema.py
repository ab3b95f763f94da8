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
    assert grammar.startswith('root ::= ("{" "\\"name\\"" ":" ("\\"" ')
    assert '{0,8} "\\""' in grammar  # bounded strings
    assert '"\\"b\\\\\\"c\\""' in grammar  # JSON escapes survive inside GBNF literals
    assert '("true" | "false") | "null"' in grammar


def test_params_turn_a_schema_into_a_grammar() -> None:
    params = GenerateTextParams(json_schema=SCHEMA, seed=0)
    params.validate()
    assert params.to_bridge_options()["grammar"] == schema_to_gbnf(SCHEMA)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {}}},  # unbounded value
        {"type": "string", "pattern": "^a$"},  # unsupported keyword
        {"$ref": "#/defs/x"},
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
