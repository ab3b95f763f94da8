"""JSON Schema → GBNF, for `GenerateTextParams(json_schema=...)`: output that parses as JSON and validates.

A practical subset: object (properties, required), array (items, minItems, maxItems), string (enum,
const, minLength, maxLength), integer, number, boolean, null, enum/const of any JSON value, anyOf/oneOf.
The JSON is compact (no optional whitespace) and every string, number and array is bounded, so constrained
generation always ends. Optional properties are always written (valid: the schema allows them); other
keywords raise InvalidParameterError rather than being silently ignored.
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import InvalidParameterError

DEFAULT_MAX_STRING = 32
DEFAULT_MAX_ITEMS = 8

_CHAR = r'[^"\\\x7F\x00-\x1F]'
_PRIMITIVES = {
    "boolean": '("true" | "false")',
    "null": '"null"',
    "integer": '("-"? ([0-9] | [1-9] [0-9]{1,14}))',
    "number": '("-"? ([0-9] | [1-9] [0-9]{1,14}) ("." [0-9]{1,8})?)',
}
# Any JSON object (OpenAI's response_format json_object): compact like the schema grammars, nesting unbounded
# (max_tokens ends a runaway), strings with JSON's escapes.
JSON_GRAMMAR = r"""root ::= object
value ::= object | array | string | number | "true" | "false" | "null"
object ::= "{" ( string ":" value ( "," string ":" value )* )? "}"
array ::= "[" ( value ( "," value )* )? "]"
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} ) )* "\""
number ::= "-"? ( [0-9] | [1-9] [0-9]{1,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?
"""

_IGNORED = {"$schema", "$id", "title", "description", "examples", "default", "additionalProperties"}


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    """A GBNF grammar (start symbol `root`) for JSON documents valid against `schema`."""
    if not isinstance(schema, dict):
        raise InvalidParameterError("json_schema must be a dict")
    return f"root ::= {_rule(schema, 'json_schema')}\n"


def _literal(value: Any) -> str:
    """A GBNF string literal matching exactly the compact JSON text of `value`."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _rule(schema: Any, where: str) -> str:
    if schema is True or schema == {}:
        raise InvalidParameterError(f"{where}: an unconstrained value cannot be bounded; give it a type")
    if not isinstance(schema, dict):
        raise InvalidParameterError(f"{where}: a schema must be an object")
    unknown = set(schema) - _IGNORED - {
        "type", "properties", "required", "items", "minItems", "maxItems", "enum", "const", "anyOf", "oneOf",
        "minLength", "maxLength",
    }  # fmt: skip
    if unknown:
        raise InvalidParameterError(f"{where}: unsupported keyword(s) {sorted(unknown)}")
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return "(" + " | ".join(_literal(v) for v in schema["enum"]) + ")"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return "(" + " | ".join(_rule(s, f"{where}.{key}[{i}]") for i, s in enumerate(schema[key])) + ")"
    kind = schema.get("type")
    if isinstance(kind, list):
        return "(" + " | ".join(_rule({**schema, "type": k}, where) for k in kind) + ")"
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "string":
        low = int(schema.get("minLength", 0))
        high = int(schema.get("maxLength", max(low, DEFAULT_MAX_STRING)))
        return f'("\\"" {_CHAR}{{{low},{high}}} "\\"")'
    if kind == "array":
        item = _rule(schema.get("items", {}), f"{where}.items")
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", max(low, DEFAULT_MAX_ITEMS)))
        if high == 0:
            return '"[]"'
        rest = f'("," {item}){{{max(low - 1, 0)},{high - 1}}}'
        body = f"{item} {rest}"
        return f'("[" {body} "]")' if low > 0 else f'("[" ({body})? "]")'
    if kind == "object":
        properties = schema.get("properties", {})
        missing = set(schema.get("required", [])) - set(properties)
        if missing:
            raise InvalidParameterError(f"{where}: required properties without a schema: {sorted(missing)}")
        if not properties:
            return '"{}"'
        members = [f'{_literal(name)} ":" {_rule(s, f"{where}.{name}")}' for name, s in properties.items()]
        return '("{" ' + ' "," '.join(members) + ' "}")'
    raise InvalidParameterError(f"{where}: unsupported or missing type {kind!r}")
