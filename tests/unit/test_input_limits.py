"""Deep or NUL-holding input is refused before it reaches json.dumps or the engine, and an engine that dies
under a call is replaced: the next call loads the model again and answers (issue 22, items 3, 4 and 7)."""

import asyncio
import json

import pytest
from fuzz_figures import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from py_runner import (
    ChatTemplateError,
    EngineCrashedError,
    GenerateTextParams,
    InvalidParameterError,
    LlamaRunner,
    ModelNotLoadedError,
)
from py_runner._limits import (
    MAX_GRAMMAR_DEPTH,
    MAX_JSON_DEPTH,
    grammar_nesting,
    json_depth,
    json_nesting,
)
from py_runner._transport.mock import MockTransport, gguf_header

URL = "http://127.0.0.1:8000/tiny.gguf"


def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def schema_nested(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


def test_depths_are_measured_without_recursion():
    assert json_depth(1) == 0 and json_depth([]) == 1 and json_depth({"a": [[{}]]}) == 4
    assert json_depth(nested_list(100_000)) == MAX_JSON_DEPTH + 1  # stops walking once past the limit
    assert json_nesting('{"a": "[[[{{", "b": [[1], {"c": "\\"]"}]}') == 3
    assert json_nesting("[" * 100_000) == 100_000
    assert grammar_nesting('root ::= (("(" [)(\\]] x)) # (((((\nx ::= "\\")"') == 2


def test_a_grammar_nested_past_the_limit_is_refused_before_the_engine():
    def grammar(depth: int) -> str:
        return "root ::= " + "(" * depth + '"a"' + ")" * depth

    GenerateTextParams(grammar=grammar(MAX_GRAMMAR_DEPTH)).validate()
    with pytest.raises(InvalidParameterError, match=f"nests groups {MAX_GRAMMAR_DEPTH + 1} deep"):
        GenerateTextParams(grammar=grammar(MAX_GRAMMAR_DEPTH + 1)).validate()
    with pytest.raises(InvalidParameterError, match="NUL"):
        GenerateTextParams(grammar='root ::= "a"\0 "b"').validate()


async def loaded(transport: MockTransport, source=URL) -> LlamaRunner:
    runner = LlamaRunner(transport=transport)
    await runner.load_model(source)
    return runner


def test_tools_and_messages_nested_past_the_limit_never_reach_the_transport():
    async def scenario():
        t = MockTransport()
        runner = await loaded(t)
        tool = {"type": "function", "function": {"name": "f", "parameters": schema_nested(3000)}}
        with pytest.raises(InvalidParameterError, match=f"tools nests more than {MAX_JSON_DEPTH}"):
            await runner.apply_chat([{"role": "user", "content": "hi"}], tools=[tool])
        deep = [{"role": "user", "content": nested_list(5000)}]
        with pytest.raises(InvalidParameterError, match="messages nests"):
            await runner.apply_chat(deep)
        assert t.chat_apply_calls == []
        fine = {"type": "function", "function": {"name": "f", "parameters": schema_nested(20)}}
        await runner.apply_chat([{"role": "user", "content": "hi"}], tools=[fine])
        assert len(t.chat_apply_calls) == 1

    asyncio.run(scenario())


def test_a_reply_nested_past_the_limit_is_a_chat_template_error():
    async def scenario():
        runner = await loaded(MockTransport())
        applied = await runner.apply_chat([{"role": "user", "content": "hi"}])
        reply = '<tool_call>{"name": "f", "arguments": ' + "[" * 3000 + "]" * 3000 + "}</tool_call>"
        with pytest.raises(ChatTemplateError, match="nests 3001 levels deep"):
            await runner.parse_chat_reply(applied, reply)
        assert (await runner.parse_chat_reply(applied, "[[1]]"))["content"] == "[[1]]"

    asyncio.run(scenario())


def test_a_nul_cannot_reach_a_builtin_template():
    async def scenario():
        runner = await loaded(MockTransport())
        with pytest.raises(InvalidParameterError, match="NUL"):
            await runner.format_chat([{"role": "user", "content": "a\0b"}], template="chatml")

    asyncio.run(scenario())


@pytest.mark.parametrize("call", ["generate", "tokenize", "apply_chat"])
def test_after_the_engine_dies_the_next_call_reloads_the_model_and_answers(call):
    async def scenario():
        t = MockTransport()
        runner = await loaded(t)
        crash = EngineCrashedError("the engine aborted: Maximum call stack size exceeded")
        requests = {
            "generate": lambda: runner.generate_text("Hi", GenerateTextParams(temp=0)),
            "tokenize": lambda: runner.tokenize("Hi"),
            "apply_chat": lambda: runner.apply_chat([{"role": "user", "content": "Hi"}]),
        }
        expected = await requests[call]()
        failing = {"generate": "generate", "tokenize": "tokenize", "apply_chat": "chat_apply"}[call]
        original = getattr(t, failing)

        async def dies(*args, **kwargs):
            raise crash

        setattr(t, failing, dies)
        with pytest.raises(EngineCrashedError):
            await requests[call]()
        assert t.terminated == 1 and not runner.is_model_loaded
        setattr(t, failing, original)
        again = await requests[call]()  # a fresh engine, the same model (same source and options)
        assert runner.is_model_loaded and len(t.load_calls) == 2 and t.starts == 2
        assert t.load_calls[1][1] == t.load_calls[0][1]
        if call == "generate":
            assert again.text == expected.text
        else:
            assert again == expected

    asyncio.run(scenario())


def test_a_model_from_bytes_is_not_kept_for_a_reload_and_the_error_says_so():
    async def scenario():
        t = MockTransport()
        runner = await loaded(t, gguf_header() + bytes(64))
        t.gen_error = EngineCrashedError("the engine aborted: Maximum call stack size exceeded")
        with pytest.raises(EngineCrashedError):
            await runner.generate_text("Hi")
        t.gen_error = None
        with pytest.raises(ModelNotLoadedError, match="came as bytes: load it again"):
            await runner.generate_text("Hi")
        assert len(t.load_calls) == 1

    asyncio.run(scenario())


# ------------------------------------------------------------------- fuzzing: nesting of known depth, NULs

FUZZ = fuzz_settings()
# Strings that look like structure: brackets, quotes, escapes and NULs inside them must not count as nesting.
TRICKY_TEXT = st.text(alphabet='[]{}()"\\\0#xé', max_size=8)


@st.composite
def nested_values(draw) -> tuple[object, int]:
    """A JSON value and its depth by construction (lists and dicts, a tricky string at the bottom)."""
    depth = draw(st.integers(min_value=0, max_value=3 * MAX_JSON_DEPTH))
    value: object = draw(TRICKY_TEXT)
    for as_dict in draw(st.lists(st.booleans(), min_size=depth, max_size=depth)):
        value = {draw(TRICKY_TEXT): value} if as_dict else [draw(TRICKY_TEXT), value]
    return value, depth


@FUZZ
@given(nested_values())
def test_tools_and_messages_are_refused_exactly_past_the_limit_and_arrive_intact(case) -> None:
    value, depth = case

    async def scenario():
        t = MockTransport()
        runner = await loaded(t)
        messages = [{"role": "user", "content": "hi", "extra": value}]  # depth + 2: the list, the message
        tools = [{"type": "function", "function": {"name": "f", "parameters": value}}]  # depth + 3
        for kwargs, total in (({"messages": messages}, depth + 2), ({"tools": tools}, depth + 3)):
            kwargs.setdefault("messages", [{"role": "user", "content": "hi"}])
            if total > MAX_JSON_DEPTH:
                with pytest.raises(InvalidParameterError, match="nests more than"):
                    await runner.apply_chat(**kwargs)
            else:
                await runner.apply_chat(**kwargs)
                sent = t.chat_apply_calls[-1]
                assert sent["messages"] == kwargs["messages"] and sent.get("tools") == kwargs.get("tools")

    asyncio.run(scenario())


@FUZZ
@given(nested_values())
def test_a_replys_json_nesting_is_measured_exactly(case) -> None:
    value, depth = case
    text = "Sure: " + json.dumps(value, ensure_ascii=False) + " done"
    assert json_nesting(text) == depth


@FUZZ
@given(
    st.integers(min_value=0, max_value=2 * MAX_GRAMMAR_DEPTH), st.lists(TRICKY_TEXT, min_size=1, max_size=4)
)
def test_a_grammars_group_nesting_is_measured_exactly(depth: int, texts: list[str]) -> None:
    literal = (
        '"' + "".join(t.replace("\\", "\\\\").replace('"', '\\"').replace("\0", "") for t in texts) + '"'
    )
    char_class = (
        "[" + "".join(t.replace("\\", "\\\\").replace("]", "\\]").replace("\0", "") for t in texts) + "]"
    )
    comment = texts[0].replace("\0", "")  # a NUL is refused on its own (above)
    grammar = f"root ::= {'(' * depth}{literal} {char_class}{')' * depth} # ((( {comment}\nrest ::= {literal}"
    assert grammar_nesting(grammar) == depth
    if depth > MAX_GRAMMAR_DEPTH:
        with pytest.raises(InvalidParameterError, match="nests groups"):
            GenerateTextParams(grammar=grammar).validate()
    else:
        GenerateTextParams(grammar=grammar).validate()
