"""llama_cpp.llama_grammar: LlamaGrammar, and json_schema_to_gbnf (py_runner's JSON-schema translator)."""

import json

from py_runner import LlamaGrammar
from py_runner._json_schema import schema_to_gbnf

LLAMA_GRAMMAR_DEFAULT_ROOT = "root"


def json_schema_to_gbnf(schema: str, prop_order: list[str] | None = None) -> str:
    """A GBNF grammar for JSON valid against `schema` (a JSON text); properties keep the schema's order."""
    return schema_to_gbnf(json.loads(schema))


__all__ = ["LLAMA_GRAMMAR_DEFAULT_ROOT", "LlamaGrammar", "json_schema_to_gbnf"]
