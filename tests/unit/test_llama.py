"""Llama, llama-cpp-python's API over LlamaRunner, against the scripted engine: shapes, arguments, sync and
async twins, streams, logprobs, embeddings, and typed errors for what would silently differ."""

from __future__ import annotations

import asyncio
import math

import pytest

from py_runner import InvalidParameterError, Llama, LlamaRunner, MockTransport, SyncCallError
from py_runner._transport.mock import METADATA

MODEL = "models/model.gguf"
WITH_TEMPLATE = {**METADATA, "meta": {**METADATA["meta"], "tokenizer.chat_template": "{{ messages }}"}}


def make(**kwargs) -> tuple[Llama, MockTransport]:
    transport = MockTransport(pieces=[(72, b"Hel"), (108, b"lo"), (33, b"!")], metadata=WITH_TEMPLATE)
    llm = Llama(MODEL, runner=LlamaRunner(transport=transport), **kwargs)
    return llm, transport


def test_sync_load_and_completion_shape() -> None:
    llm, transport = make(n_ctx=1024, n_gpu_layers=99, use_mmap=False)  # GPU and mmap settings: ignored
    out = llm.create_completion("Say hi", max_tokens=8, temperature=0)
    assert set(out) == {"id", "object", "created", "model", "choices", "usage"}
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-") and out["model"] == MODEL
    assert out["choices"] == [{"text": "Hello!", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert out["usage"] == {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    prompt, options = transport.generate_calls[-1]
    assert prompt == "Say hi" and options["n_predict"] == 8 and options["temp"] == 0
    assert transport.load_calls[0][1]["n_ctx"] == 1024
    assert llm("Say hi", max_tokens=2)["choices"][0]["finish_reason"] == "length"  # __call__
    assert llm.create_completion("x", echo=True)["choices"][0]["text"] == "xHello!"


def test_chat_completion_uses_the_template_and_openai_shapes() -> None:
    llm, transport = make()
    messages = [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
    ]
    out = llm.create_chat_completion(messages, max_tokens=16, stop=["\n"], seed=7, top_k=5)
    assert out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-")
    assert out["choices"][0]["message"] == {"role": "assistant", "content": "Hello!"}
    assert out["choices"][0]["finish_reason"] == "stop" and out["usage"]["completion_tokens"] == 3
    prompt, options = transport.generate_calls[-1]
    assert prompt == "<system>Be kind.</system><user>Hi</user><assistant>"
    assert (
        options["temp"] == 0.2 and options["seed"] == 7 and options["top_k"] == 5
    )  # llama-cpp-python's defaults
    chunks = list(llm.create_chat_completion(messages, stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "Hello!"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and chunks[-1]["choices"][0]["delta"] == {}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"} and len({c["id"] for c in chunks}) == 1


def test_completion_stream_joins_to_the_text() -> None:
    llm, _ = make()
    chunks = list(llm.create_completion("Say hi", stream=True))
    assert "".join(c["choices"][0]["text"] for c in chunks) == "Hello!"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_logprobs_follow_the_raw_logits() -> None:
    llm, transport = make()
    n_vocab = transport.metadata["n_vocab"]
    out = llm.create_completion("Say hi", logprobs=2, temperature=0)
    lp = out["choices"][0]["logprobs"]
    # the scripted engine's row i holds 1 + i at the generated token and 0 elsewhere
    expected = [(1 + i) - math.log(n_vocab - 1 + math.exp(1 + i)) for i in range(3)]
    # the scripted tokenizer is a byte per token: token 72 reads "H"
    assert lp["tokens"] == ["H", "l", "!"] and lp["text_offset"] == [0, 1, 2]
    assert lp["token_logprobs"] == pytest.approx(expected, abs=1e-9)
    assert [list(t.values())[0] for t in lp["top_logprobs"]] == pytest.approx(expected, abs=1e-9)
    assert transport.logits_calls[-1] == ("Say hi", [72, 108, 33])
    chat = llm.create_chat_completion([{"role": "user", "content": "Hi"}], logprobs=True, top_logprobs=1)
    content = chat["choices"][0]["logprobs"]["content"]
    assert [c["token"] for c in content] == ["H", "l", "!"] and content[0]["bytes"] == list(b"H")
    assert content[2]["logprob"] == pytest.approx(expected[2]) and len(content[2]["top_logprobs"]) == 1


def test_logprobs_take_two_requests_whatever_the_length() -> None:
    """One logits request and one token_pieces request (each distinct token, chosen and alternatives together,
    once), however many tokens: no round trip per token."""
    llm, transport = make()
    llm.create_chat_completion([{"role": "user", "content": "Hi"}], logprobs=True, top_logprobs=3)
    kinds = [r.type for r in transport.requests]
    assert kinds.count("logits") == 1 and kinds.count("token_pieces") == 1 and "detokenize" not in kinds
    (asked,) = [r.fields["tokens"] for r in transport.requests if r.type == "token_pieces"]
    assert len(asked) == len(set(asked)) and {72, 108, 33} <= set(asked)


def test_response_format_becomes_a_grammar() -> None:
    llm, transport = make()
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    llm.create_chat_completion([{"role": "user", "content": "Where?"}], response_format=fmt)
    assert '"\\"city\\""' in transport.generate_calls[-1][1]["grammar"]
    llm.create_chat_completion(
        [{"role": "user", "content": "Any JSON"}], response_format={"type": "json_object"}
    )
    assert transport.generate_calls[-1][1]["grammar"].startswith("root ::= object")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "response_format": {"type": "json_object"},
            },
            "not both",
        ),
        ({"mirostat_mode": 2}, "mirostat_mode"),
        ({"response_format": {"type": "xml"}}, "xml"),
    ],
)
def test_what_would_silently_differ_is_a_typed_error(kwargs, message) -> None:
    llm, _ = make()
    with pytest.raises(InvalidParameterError, match=message):
        llm.create_chat_completion([{"role": "user", "content": "Hi"}], **kwargs)
    with pytest.raises(InvalidParameterError, match="suffix"):
        llm.create_completion("def f():", suffix="return 1")
    with pytest.raises(TypeError, match="no_such"):
        Llama(MODEL, runner=LlamaRunner(transport=MockTransport()), no_such=1)
    # a base URL given beside a runner of one's own would be ignored: the runner's own is used
    with pytest.raises(InvalidParameterError, match="base_url"):
        Llama(MODEL, runner=LlamaRunner(transport=MockTransport()), base_url="http://example.test/app/")


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALL = b'<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'


def test_tools_are_rendered_and_a_reply_with_a_call_is_parsed() -> None:
    transport = MockTransport(pieces=[(7, CALL)], metadata=WITH_TEMPLATE)
    llm = Llama(MODEL, runner=LlamaRunner(transport=transport))
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    out = llm.create_chat_completion(messages, tools=[WEATHER], tool_choice="auto", temperature=0)
    request = transport.chat_apply_calls[-1]
    assert request["tools"] == [WEATHER] and request["tool_choice"] == "auto"
    assert transport.generate_calls[-1][0].startswith("<tools>")  # the prompt llama.cpp's chat layer made
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    call = choice["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather" and call["function"]["arguments"] == '{"city": "Paris"}'
    chunks = list(llm.create_chat_completion(messages, tools=[WEATHER], stream=True))
    assert chunks[1]["choices"][0]["delta"]["tool_calls"][0]["index"] == 0
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    follow_up = [
        *messages,
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "Sunny, 21 C"},
    ]
    llm.create_chat_completion(follow_up, tools=[WEATHER])
    sent = transport.chat_apply_calls[-1]["messages"]
    assert sent[1]["tool_calls"] == [call] and sent[2] == follow_up[2]  # tool fields reach llama.cpp as given
    only = {"type": "function", "function": {"name": "get_weather"}}
    llm.create_chat_completion(
        messages, tools=[WEATHER, {**WEATHER, "function": {"name": "other"}}], tool_choice=only
    )
    assert transport.chat_apply_calls[-1]["tool_choice"] == "required"
    assert [t["function"]["name"] for t in transport.chat_apply_calls[-1]["tools"]] == ["get_weather"]


@pytest.mark.parametrize(
    "tool_choice, lazy",
    [("auto", True), ("required", False), ({"type": "function", "function": {"name": "get_weather"}}, False)],
)
@pytest.mark.parametrize("stream", [False, True])
def test_the_tool_grammar_reaches_generation(tool_choice, lazy: bool, stream: bool) -> None:
    """The chat layer's tool grammar is what the engine samples with: from the first token when a call is
    required (no triggers), from the trigger with "auto" (llama-server's lazy grammar)."""
    transport = MockTransport(pieces=[(7, CALL)], metadata=WITH_TEMPLATE)
    llm = Llama(MODEL, runner=LlamaRunner(transport=transport))
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    out = llm.create_chat_completion(messages, tools=[WEATHER], tool_choice=tool_choice, stream=stream)
    finish = (
        [c["choices"][0]["finish_reason"] for c in out][-1] if stream else out["choices"][0]["finish_reason"]
    )
    applied = asyncio.run(transport.chat_apply(transport.chat_apply_calls[-1]))  # what llama.cpp answered
    assert applied["grammar"].startswith("root ::= ") and applied["grammar_triggers"]
    options = transport.generate_calls[-1][1]
    assert options["grammar"] == applied["grammar"]
    if lazy:
        assert options["grammar_triggers"] == [{"type": 1, "value": "<tool_call>"}]
        assert "grammar_prefill" not in options
    else:
        assert "grammar_triggers" not in options  # enforced from the start, not from a trigger
        # past what the template already wrote of the reply, as llama-server feeds it to the grammar
        assert options["grammar_prefill"] == applied["generation_prompt"] == "<assistant>"
        assert applied["grammar"].startswith('root ::= "<assistant>" ')
    assert finish == "tool_calls"


def test_no_tool_grammar_without_tools_or_with_tool_choice_none() -> None:
    llm, transport = make()
    messages = [{"role": "user", "content": "Hi"}]
    llm.create_chat_completion(messages, tools=[WEATHER], tool_choice="none")
    llm.create_chat_completion(messages)
    assert all("grammar" not in options for _, options in transport.generate_calls[-2:])


def test_tokens_embeddings_and_model_facts() -> None:
    llm, _ = make(embedding=True)
    assert llm.tokenize(b"Hi") == [1, 72, 105] and llm.tokenize(b"Hi", add_bos=False) == [72, 105]
    assert llm.detokenize([72, 105]) == b"Hi"
    out = llm.create_embedding(["a", "abc"])
    assert out["object"] == "list" and [d["index"] for d in out["data"]] == [0, 1]
    assert out["data"][0]["object"] == "embedding" and len(out["data"][0]["embedding"]) == 3
    assert out["usage"]["prompt_tokens"] == 2 + 4
    assert llm.embed("abc") == out["data"][1]["embedding"]
    assert llm.n_ctx() == 2048 and llm.metadata["general.name"] == "tiny-test"


def test_async_twins_and_the_sync_error_inside_a_loop() -> None:
    async def main() -> None:
        transport = MockTransport(pieces=[(72, b"Hi")], metadata=WITH_TEMPLATE)
        llm = await Llama.load(MODEL, runner=LlamaRunner(transport=transport))
        out = await llm.acreate_chat_completion([{"role": "user", "content": "Hi"}])
        assert out["choices"][0]["message"]["content"] == "Hi"
        chunks = [c async for c in await llm.acreate_completion("x", stream=True)]
        assert "".join(c["choices"][0]["text"] for c in chunks) == "Hi"
        with pytest.raises(SyncCallError, match="acreate_chat_completion"):
            llm.create_chat_completion([{"role": "user", "content": "Hi"}])

    asyncio.run(main())


def test_kv_cache_types_take_llama_cpp_python_ggml_type_numbers_or_names() -> None:
    llm, transport = make(type_k=8, type_v="q8_0")  # llama_cpp.GGML_TYPE_Q8_0 is 8
    fields = transport.load_calls[-1][1]
    assert fields["type_k"] == fields["type_v"] == 8
    assert llm.runner.spec.type_k == llm.runner.spec.type_v == "q8_0"
    llm, transport = make(type_k=0)
    assert transport.load_calls[-1][1]["type_k"] == 0 and "type_v" not in transport.load_calls[-1][1]
    assert (llm.runner.spec.type_k, llm.runner.spec.type_v) == ("f32", "f16")
    for bad in (99, "q9_0", True, 1.0):
        with pytest.raises(InvalidParameterError, match="type_k"):
            make(type_k=bad)
