"""llama-cpp-python's grammar object (`llama_cpp.LlamaGrammar`), accepted wherever its `Llama` takes
`grammar=`.

As there, making one does not parse it: llama.cpp's grammar parser does, in the engine, when a generation uses
it (a grammar it refuses raises InvalidParameterError then). `from_json_schema` writes the grammar with
py_runner's JSON-schema translator (py_runner/_json_schema.py: compact JSON, every string and array bounded,
local $refs), so the documents it allows are JSON valid against the schema; a schema it cannot bound raises
InvalidParameterError (also a ValueError)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._errors import InvalidParameterError
from ._json_schema import schema_to_gbnf

LLAMA_GRAMMAR_DEFAULT_ROOT = "root"


class LlamaGrammar:
    """A GBNF grammar (start symbol `root`): `LlamaGrammar.from_string(text)`, `.from_file(path)`,
    `.from_json_schema(schema_json)`. Its text is `_grammar`, as in llama-cpp-python."""

    def __init__(self, *args: Any, _grammar: str, **kwargs: Any) -> None:
        if not isinstance(_grammar, str) or not _grammar.strip():
            raise InvalidParameterError("a grammar is a non-empty GBNF str")
        self._grammar = _grammar
        self._root = LLAMA_GRAMMAR_DEFAULT_ROOT

    @classmethod
    def from_string(cls, grammar: str, verbose: bool = True) -> LlamaGrammar:
        return cls(_grammar=grammar)

    @classmethod
    def from_file(cls, file: str | Path, verbose: bool = True) -> LlamaGrammar:
        try:
            grammar = Path(file).read_text(encoding="utf-8")
        except OSError as err:
            raise InvalidParameterError(f"from_file: error reading grammar file: {err}") from err
        if not grammar.strip():
            raise InvalidParameterError(f"from_file: {file} holds no grammar")
        return cls.from_string(grammar, verbose=verbose)

    @classmethod
    def from_json_schema(cls, json_schema: str, verbose: bool = True) -> LlamaGrammar:
        try:
            schema = json.loads(json_schema)
        except (TypeError, ValueError) as err:
            raise InvalidParameterError(f"from_json_schema takes a JSON text: {err}") from err
        return cls.from_string(schema_to_gbnf(schema), verbose=verbose)

    def __repr__(self) -> str:
        first = self._grammar.strip().splitlines()[0]
        return f"LlamaGrammar({first[:60]!r}{'...' if len(self._grammar) > 60 else ''})"
