"""JSON Schema → GBNF, for `GenerateTextParams(json_schema=...)`: output that parses as JSON and validates.

A practical subset: object (properties, required), array (items, minItems, maxItems), string (enum,
const, minLength, maxLength), integer, number, boolean, null, enum/const of any JSON value, anyOf/oneOf, and
local references (`$ref` to `#/$defs/<name>` or `#/definitions/<name>`, as pydantic writes nested models): a
referred schema is one rule, used wherever it is referred to; one that refers to itself, however indirectly,
raises InvalidParameterError (its documents would have no bound).
The JSON is compact (no optional whitespace) and every string, number and array is bounded, so constrained
generation always ends. Optional properties are always written (valid: the schema allows them); other
keywords raise InvalidParameterError rather than being silently ignored.

Every string, array, object and union is a rule of its own, referred to by name (identical ones shared), never
inlined: llama.cpp's GBNF parser refuses a repeated group `(...){m,n}` once the rules made inside the group
times n exceed 2,000 (MAX_REPETITION_THRESHOLD), so inlined items of arrays nested 4 deep already failed with
"failed to parse grammar", and inlining doubled the grammar's text per level. A name repeats as one rule.
"""

from __future__ import annotations

import json
from typing import Any

from ._errors import InvalidParameterError

DEFAULT_MAX_STRING = 32
DEFAULT_MAX_ITEMS = 8
MAX_STRING = 2000  # llama.cpp's grammar repeats a {m,n} element n times: a bound keeps the grammar small
MAX_ITEMS = 32
MAX_DEPTH = 8  # nested arrays and objects: each level repeats the one below
MAX_GRAMMAR_BYTES = 256 * 1024

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
_DEFINITIONS = ("$defs", "definitions")  # where a local $ref may point (JSON Schema 2019+, and draft 7)


def schema_to_gbnf(schema: dict[str, Any]) -> str:
    """A GBNF grammar (start symbol `root`) for JSON documents valid against `schema`."""
    if not isinstance(schema, dict):
        raise InvalidParameterError("json_schema must be a dict")
    definitions: dict[str, Any] = {}
    for key in _DEFINITIONS:
        found = schema.get(key, {})
        if not isinstance(found, dict):
            raise InvalidParameterError(f"json_schema: {key} must map names to schemas")
        definitions.update({f"#/{key}/{name}": body for name, body in found.items()})
    rules = _Rules(definitions)
    try:
        root = rules.expr(schema, "json_schema", 0)
    except RecursionError:
        raise InvalidParameterError("json_schema nests too deeply (or refers to itself)") from None
    grammar = f"root ::= {root}\n" + "".join(f"{name} ::= {body}\n" for body, name in rules.names.items())
    if len(grammar) > MAX_GRAMMAR_BYTES:
        raise InvalidParameterError(
            f"json_schema makes a {len(grammar)}-byte grammar (at most {MAX_GRAMMAR_BYTES}): bound it more"
        )
    return grammar


def _bound(schema: dict[str, Any], key: str, default: int, limit: int, where: str) -> int:
    value = schema.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise InvalidParameterError(f"{where}: {key} must be an int in 0..{limit}, got {value!r}")
    return value


def _literal(value: Any) -> str:
    """A GBNF string literal matching exactly the compact JSON text of `value`."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:  # NaN, infinities, non-string keys, objects JSON cannot write
        raise InvalidParameterError(f"json_schema: {value!r} is not a JSON value: {err}") from None
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Rules:
    """The named rules of one grammar, each body once (body -> name, in the order made)."""

    def __init__(self, definitions: dict[str, Any] | None = None) -> None:
        self.names: dict[str, str] = {}
        self.definitions = definitions or {}  # "#/$defs/<name>" -> its schema
        self.resolving: list[str] = []  # the references being expanded, outermost first

    def name(self, kind: str, body: str) -> str:
        """The rule name for `body` (GBNF names are letters, digits and '-'): the same body, the same name."""
        if body not in self.names:
            self.names[body] = f"{kind}-{len(self.names) + 1}"
        return self.names[body]

    def expr(self, schema: Any, where: str, depth: int) -> str:
        """A GBNF expression for the JSON texts valid against `schema`: a literal, an alternation of
        literals, or a rule name (never a group holding rules of its own, which llama.cpp would count)."""
        if depth > MAX_DEPTH:
            raise InvalidParameterError(f"{where}: nested more than {MAX_DEPTH} levels deep")
        if schema is True or schema == {}:
            raise InvalidParameterError(f"{where}: an unconstrained value cannot be bounded; give it a type")
        if not isinstance(schema, dict):
            raise InvalidParameterError(f"{where}: a schema must be an object")
        if "$ref" in schema:
            return self.reference(schema, where, depth)
        unknown = set(schema) - _IGNORED - set(_DEFINITIONS) - {
            "type", "properties", "required", "items", "minItems", "maxItems", "enum", "const", "anyOf",
            "oneOf", "minLength", "maxLength",
        }  # fmt: skip
        if unknown:
            raise InvalidParameterError(f"{where}: unsupported keyword(s) {sorted(unknown)}")
        if "const" in schema:
            return _literal(schema["const"])
        if "enum" in schema:
            if not isinstance(schema["enum"], list) or not schema["enum"]:
                raise InvalidParameterError(f"{where}: enum must be a non-empty list")
            return self.name("enum", " | ".join(_literal(v) for v in schema["enum"]))
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = schema[key]
                if not isinstance(options, list) or not options:
                    raise InvalidParameterError(f"{where}: {key} must be a non-empty list of schemas")
                alternatives = [self.expr(s, f"{where}.{key}[{i}]", depth + 1) for i, s in enumerate(options)]
                return self.name("any", " | ".join(alternatives))
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:  # no type allows no value: no grammar rule can say that
                raise InvalidParameterError(f"{where}: type must be a type name or a non-empty list of them")
            return self.name("any", " | ".join(self.expr({**schema, "type": k}, where, depth) for k in kind))
        if kind in _PRIMITIVES:
            return self.name(kind, _PRIMITIVES[kind])
        if kind == "string":
            low = _bound(schema, "minLength", 0, MAX_STRING, where)
            high = _bound(schema, "maxLength", max(low, DEFAULT_MAX_STRING), MAX_STRING, where)
            if low > high:
                raise InvalidParameterError(f"{where}: minLength {low} is more than maxLength {high}")
            return self.name("string", f'"\\"" {_CHAR}{{{low},{high}}} "\\""')
        if kind == "array":
            item = self.expr(schema.get("items", {}), f"{where}.items", depth + 1)
            low = _bound(schema, "minItems", 0, MAX_ITEMS, where)
            high = _bound(schema, "maxItems", max(low, DEFAULT_MAX_ITEMS), MAX_ITEMS, where)
            if low > high:
                raise InvalidParameterError(f"{where}: minItems {low} is more than maxItems {high}")
            if high == 0:
                return '"[]"'
            body = f'{item} ("," {item}){{{max(low - 1, 0)},{high - 1}}}'
            return self.name("array", f'"[" {body} "]"' if low > 0 else f'"[" ({body})? "]"')
        if kind == "object":
            properties = schema.get("properties", {})
            required = schema.get("required", [])
            if not isinstance(properties, dict) or not all(isinstance(k, str) for k in properties):
                raise InvalidParameterError(f"{where}: properties must map names (str) to schemas")
            if not isinstance(required, list) or not all(isinstance(k, str) for k in required):
                raise InvalidParameterError(f"{where}: required must be a list of names")
            missing = set(required) - set(properties)
            if missing:
                raise InvalidParameterError(
                    f"{where}: required properties without a schema: {sorted(missing)}"
                )
            if not properties:
                return '"{}"'
            members = [
                f'{_literal(name)} ":" {self.expr(s, f"{where}.{name}", depth + 1)}'
                for name, s in properties.items()
            ]
            return self.name("object", '"{" ' + ' "," '.join(members) + ' "}"')
        raise InvalidParameterError(f"{where}: unsupported or missing type {kind!r}")

    def reference(self, schema: dict[str, Any], where: str, depth: int) -> str:
        """The expression of a local `$ref` (its siblings other than annotations are refused)."""
        ref = schema["$ref"]
        extra = set(schema) - _IGNORED - set(_DEFINITIONS) - {"$ref"}
        if extra:
            raise InvalidParameterError(f"{where}: keywords beside $ref are not supported: {sorted(extra)}")
        if not isinstance(ref, str) or ref not in self.definitions:
            raise InvalidParameterError(
                f"{where}: $ref {ref!r} is not one of this schema's own $defs or definitions"
            )
        if ref in self.resolving:
            chain = " -> ".join([*self.resolving[self.resolving.index(ref) :], ref])
            raise InvalidParameterError(f"{where}: $ref refers to itself ({chain}): unbounded documents")
        self.resolving.append(ref)
        try:
            return self.expr(self.definitions[ref], f"{where}({ref})", depth)
        finally:
            self.resolving.pop()
