"""llama-cpp-python's LlamaGrammar and LlamaRAMCache in py_runner (py_runner/_llama_grammar.py,
_llama_cache.py), and Llama.set_cache against the scripted engine: which states are restored and stored around
a completion. (That a restored state continues exactly, in the real engine: tests/e2e/test_llama_api.py.)"""

import json

import pytest

from py_runner import (
    InvalidParameterError,
    Llama,
    LlamaCache,
    LlamaGrammar,
    LlamaRAMCache,
    LlamaRunner,
    LlamaState,
)
from py_runner._transport.mock import MockTransport

URL = "http://127.0.0.1:8000/tiny.gguf"


def state(tokens: list[int], size: int = 10) -> LlamaState:
    return LlamaState(list(tokens), None, len(tokens), b"x" * size, size, 0, {})


def test_grammar_from_string_file_and_json_schema(tmp_path) -> None:
    tree = 'root ::= node\nnode ::= leaf | "(" node node ")"\nleaf ::= "."\n'
    assert LlamaGrammar.from_string(tree)._grammar == tree
    (tmp_path / "g.gbnf").write_text(tree)
    assert LlamaGrammar.from_file(tmp_path / "g.gbnf")._grammar == tree
    schema = {"$defs": {"A": {"properties": {"a": {"type": "integer"}}, "required": ["a"], "type": "object"}},
              "properties": {"a": {"$ref": "#/$defs/A"}, "b": {"type": "integer"}}, "required": ["a", "b"],
              "type": "object"}  # fmt: skip  # llama-cpp-python's test_composed_pydantic_grammar
    grammar = LlamaGrammar.from_json_schema(json.dumps(schema))._grammar
    assert grammar.startswith("root ::= ") and '"\\"b\\""' in grammar
    for bad in ("", "   "):
        with pytest.raises(InvalidParameterError):
            LlamaGrammar.from_string(bad)
    with pytest.raises(ValueError):  # InvalidParameterError is one
        LlamaGrammar.from_json_schema("{not json")
    with pytest.raises(InvalidParameterError):
        LlamaGrammar.from_file(tmp_path / "missing.gbnf")


def test_ram_cache_finds_the_longest_shared_prefix_and_drops_the_least_recently_used() -> None:
    cache = LlamaRAMCache(capacity_bytes=25)
    assert LlamaCache is LlamaRAMCache
    cache[[1, 2, 3]] = state([1, 2, 3])
    cache[[1, 5]] = state([1, 5])
    assert cache[[1, 2, 3, 4]].input_ids == [1, 2, 3]  # shares 3 tokens, [1, 5] only 1
    assert [1, 5, 9] in cache and [7] not in cache
    with pytest.raises(KeyError):
        cache[[7, 8]]
    cache[[1, 2, 3]]  # used last: [1, 5] is now the least recently used
    cache[[9]] = state([9])  # 30 bytes > 25: one state goes
    assert list(cache.cache_state) == [(1, 2, 3), (9,)] and cache.cache_size == 20
    cache[[9]] = state([9], size=5)  # the same key replaced
    assert cache.cache_size == 15


def test_llama_with_a_cache_restores_the_state_that_shares_the_prompt_and_stores_each_completion() -> None:
    engine_holds: list[list[int]] = []  # what state_load put into the engine

    def save(request):  # the engine holds the last prompt's tokens and the generated ones
        prompt = transport.generate_calls[-1][0]
        return {"tokens": [1, *prompt.encode(), *generated], "state": b"kv", "model": {}}

    transport = MockTransport(
        handlers={
            "state_save": save,
            "state_load": lambda r: engine_holds.append(list(r.fields["tokens"])) or transport._state_load(r),
        }
    )
    generated = [tok for tok, _ in transport.pieces][:4]
    runner = LlamaRunner(transport=transport)
    llm = Llama(URL, runner=runner)
    with pytest.raises(InvalidParameterError):
        llm.set_cache({})  # type: ignore[arg-type]
    cache = LlamaRAMCache()
    llm.set_cache(cache)
    a = [1, *b"story A"]  # the mock tokenizer: BOS, then a token per byte
    llm.create_completion("story A", max_tokens=4)
    assert list(cache.cache_state) == [tuple(a + generated)] and engine_holds == []  # nothing cached yet
    llm.create_completion("tale B", max_tokens=4)
    assert engine_holds == []  # "tale B" shares only BOS with story A: nothing worth restoring
    llm.create_completion("story A", max_tokens=4)  # the engine holds B: story A's state is restored first
    assert engine_holds == [a + generated]
    llm.create_completion("story A", max_tokens=4)  # the engine holds it already: nothing to restore
    assert len(engine_holds) == 1 and len(cache.cache_state) == 2
    llm.set_cache(None)
    llm.create_completion("tale B", max_tokens=4)
    assert len(engine_holds) == 1 and len(cache.cache_state) == 2  # no cache: no lookups, no stores


def test_a_llama_grammar_is_taken_wherever_llama_takes_grammar() -> None:
    transport = MockTransport()
    llm = Llama(URL, runner=LlamaRunner(transport=transport))
    grammar = LlamaGrammar.from_string('root ::= "yes" | "no"')
    llm.create_completion("Answer:", grammar=grammar, max_tokens=2)
    llm.create_chat_completion([{"role": "user", "content": "Answer"}], grammar=grammar, max_tokens=2)
    assert [options["grammar"] for _, options in transport.generate_calls] == [grammar._grammar] * 2
