"""How deeply nested input may be before it reaches the engine: checked in pure Python, with no recursion.

The engine's parsers (llama.cpp's GBNF parser, its JSON-schema-to-grammar converter, the tool-call parser) and
Python's own `json.dumps` recurse once per level of nesting. In a browser their stack is small: past a few
thousand levels a wasm stack overflow kills the engine, and Pyodide's C stack dies with the whole interpreter.
Input we can check is refused here, with a typed error naming the limit, long before either stack runs out.
"""

from __future__ import annotations

from typing import Any

from ._errors import ChatTemplateError, InvalidParameterError

# Real tool schemas and messages nest a handful of levels; llama.cpp's converters handle 64 with room to spare
# in every browser we test (tests/e2e/test_deep_input.py).
MAX_JSON_DEPTH = 64
# Parenthesised groups inside groups in a GBNF grammar: json_schema= grammars nest a few per schema level.
MAX_GRAMMAR_DEPTH = 256


def json_depth(value: Any) -> int:
    """Nesting of dicts and lists/tuples in `value` (a scalar is 0, `[]` is 1), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        deepest = max(deepest, depth)
        if depth > MAX_JSON_DEPTH:
            break  # already too deep: no need to walk the rest
        stack.extend((child, depth + 1) for child in children)
    return deepest


def check_json_depth(value: Any, what: str) -> None:
    depth = json_depth(value)
    if depth > MAX_JSON_DEPTH:
        raise InvalidParameterError(f"{what} nests more than {MAX_JSON_DEPTH} levels deep (the limit)")


def json_nesting(text: str) -> int:
    """The deepest nesting of JSON brackets ([ and {) in `text`, outside strings: JSON in a model's reply."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}" and depth > 0:
            depth -= 1
    return deepest


def grammar_nesting(grammar: str) -> int:
    """The deepest nesting of groups ( ... ) in a GBNF grammar, outside its strings ("..."), character classes
    ([...]) and comments (# to the end of the line)."""
    depth = deepest = 0
    closer = ""  # '"' in a string, "]" in a character class, "\n" in a comment
    escaped = False
    for ch in grammar:
        if closer:
            if escaped:
                escaped = False
            elif ch == "\\" and closer != "\n":
                escaped = True
            elif ch == closer:
                closer = ""
        elif ch in '"[#':
            closer = {'"': '"', "[": "]", "#": "\n"}[ch]
        elif ch == "(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch == ")" and depth > 0:
            depth -= 1
    return deepest


def check_grammar(grammar: str, what: str = "grammar") -> None:
    """A GBNF grammar llama.cpp can parse without overflowing its stack, and that a C string can carry."""
    if "\0" in grammar:
        raise InvalidParameterError(f"{what} holds a NUL character: llama.cpp's grammar parser stops there")
    depth = grammar_nesting(grammar)
    if depth > MAX_GRAMMAR_DEPTH:
        raise InvalidParameterError(f"{what} nests groups {depth} deep; the limit is {MAX_GRAMMAR_DEPTH}")


def check_reply_depth(text: str) -> None:
    """A model's reply that llama.cpp's tool-call parser can read without overflowing its stack: JSON that
    nests deeper than MAX_JSON_DEPTH (a prompt injection can ask a model for exactly that) is refused."""
    depth = json_nesting(text)
    if depth > MAX_JSON_DEPTH:
        raise ChatTemplateError(
            f"parsing the reply failed: it nests {depth} levels deep (JSON brackets); "
            f"the limit is {MAX_JSON_DEPTH}"
        )
