"""Llama's keyword arguments (issue 22, items 8 and 10): types and ranges checked as llama-cpp-python types
them, each wrong one an InvalidParameterError naming the argument and what it takes, before llama.cpp runs."""

from __future__ import annotations

import pytest

from py_runner import InvalidParameterError, Llama, LlamaRunner, MockTransport
from py_runner._transport.mock import METADATA

MODEL = "models/model.gguf"
HI = [{"role": "user", "content": "Hi"}]
WITH_TEMPLATE = {**METADATA, "meta": {**METADATA["meta"], "tokenizer.chat_template": "{{ messages }}"}}


def make(**kwargs) -> tuple[Llama, MockTransport]:
    transport = MockTransport(pieces=[(72, b"Hel"), (108, b"lo"), (33, b"!")] * 4, metadata=WITH_TEMPLATE)
    return Llama(MODEL, runner=LlamaRunner(transport=transport), **kwargs), transport


def n_predict(transport: MockTransport) -> int:
    return transport.generate_calls[-1][1]["n_predict"]


def test_max_tokens_counts_as_llama_cpp_python_does() -> None:
    llm, transport = make()
    llm.create_completion("x", max_tokens=3.0)  # a whole float counts: llama-cpp-python stops at 3 too
    assert n_predict(transport) == 3
    for until_full in (None, 0, -1):  # None or <= 0: until the context is full
        llm.create_completion("x", max_tokens=until_full)
        assert n_predict(transport) == llm.n_ctx() == 2048
    llm.create_completion("x", max_tokens=10**12)  # more than the context: the context (llama-cpp-python)
    assert n_predict(transport) == 2048
    for bad in ("3", 1.5, True, [3], float("nan")):
        with pytest.raises(InvalidParameterError, match=r"max_tokens must be None or an int, got"):
            llm.create_completion("x", max_tokens=bad)
        with pytest.raises(InvalidParameterError, match=r"max_tokens must be"):
            llm.create_chat_completion(HI, max_tokens=bad)


def test_logprob_counts_are_never_negative() -> None:
    llm, transport = make()
    calls = len(transport.logits_calls)
    with pytest.raises(InvalidParameterError, match=r"logprobs must be None or an int >= 0, got -1"):
        llm.create_completion("x", logprobs=-1)
    with pytest.raises(InvalidParameterError, match=r"top_logprobs must be None or an int >= 0, got -3"):
        llm.create_chat_completion(HI, logprobs=True, top_logprobs=-3)
    for bad in ("2", 1.5, False):
        with pytest.raises(InvalidParameterError, match="logprobs"):
            llm.create_completion("x", logprobs=bad)
    with pytest.raises(InvalidParameterError, match=r"logprobs must be None, True or False, got 'yes'"):
        llm.create_chat_completion(HI, logprobs="yes")
    assert len(transport.logits_calls) == calls  # refused before the engine was asked
    out = llm.create_chat_completion(HI, logprobs=True, top_logprobs=2.0)
    assert len(out["choices"][0]["logprobs"]["content"][0]["top_logprobs"]) == 2


def test_logit_bias_keys_and_values_are_typed_errors() -> None:
    llm, transport = make()
    with pytest.raises(InvalidParameterError, match=r"logit_bias keys must be token ids \(ints in 0..511\)"):
        llm.create_completion("x", logit_bias={"abc": 1})
    with pytest.raises(InvalidParameterError, match="0..511"):
        llm.create_completion("x", logit_bias={512: 1})
    for bad in ({True: 1}, {1.5: 1}, {-1: 1}):
        with pytest.raises(InvalidParameterError, match="logit_bias keys"):
            llm.create_completion("x", logit_bias=bad)
    for value in ("1", float("inf"), float("nan"), None, True):
        with pytest.raises(InvalidParameterError, match=r"logit_bias\[5\] must be a finite number"):
            llm.create_completion("x", logit_bias={5: value})
    with pytest.raises(InvalidParameterError, match="logit_bias must be a dict"):
        llm.create_completion("x", logit_bias=[(5, 1)])
    llm.create_completion("x", logit_bias={"72": 2, 5: float("-inf")})  # JSON's string keys, as OpenAI's
    assert transport.generate_calls[-1][1]["logit_bias"] == [[5, float("-inf")], [72, 2.0]]


def test_response_format_that_is_not_a_dict_names_it() -> None:
    llm, _ = make()
    for bad in ("json", ["json_object"], 1):
        with pytest.raises(InvalidParameterError, match=r"response_format must be a dict such as"):
            llm.create_chat_completion(HI, response_format=bad)
    with pytest.raises(InvalidParameterError, match="json_schema needs"):
        llm.create_chat_completion(HI, response_format={"type": "json_schema", "json_schema": "x"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"temperature": "0.5"}, r"temperature must be a number >= 0"),
        ({"temperature": True}, r"temperature must be"),
        ({"top_p": 2}, r"top_p must be a number in \(0, 1\], got 2"),
        ({"min_p": -0.1}, r"min_p must be"),
        ({"typical_p": "1"}, r"typical_p must be"),
        ({"repeat_penalty": 0}, r"repeat_penalty must be a number > 0"),
        ({"presence_penalty": float("inf")}, r"presence_penalty must be a finite number"),
        ({"frequency_penalty": "x"}, r"frequency_penalty must be"),
        ({"top_k": 2.5}, r"top_k must be an int, got 2.5"),
        ({"top_k": "40"}, r"top_k must be an int"),
        ({"seed": "1"}, r"seed must be None or an int >= -1"),
        ({"seed": 2**32}, r"seed must be None or an int in 0\.\.4294967295"),
        ({"seed": True}, r"seed must be"),
        ({"stop": 5}, r"stop must be None, a str or a list of str"),
        ({"stop": ["a", 5]}, r"stop must be"),
        ({"echo": 1}, r"echo must be True or False, got 1"),
        ({"stream": "yes"}, r"stream must be True or False, got 'yes'"),
        ({"model": 5}, r"model must be None or a str"),
        ({"mirostat_tau": "5"}, r"mirostat_tau must be a number"),
    ],
)
def test_completion_arguments_of_the_wrong_type_or_range_are_named(kwargs, message) -> None:
    llm, transport = make()
    with pytest.raises(InvalidParameterError, match=message):
        llm.create_completion("x", **kwargs)
    if "echo" not in kwargs:
        with pytest.raises(InvalidParameterError, match=message):
            llm.create_chat_completion(HI, **kwargs)
    assert transport.generate_calls == []


def test_values_llama_cpp_python_gives_a_meaning_keep_it() -> None:
    llm, transport = make()
    llm.create_completion("x", top_k=-1, seed=-1, temperature=0, stop="!")  # top_k <= 0: off; -1: random
    options = transport.generate_calls[-1][1]
    assert options["top_k"] == 0 and 0 <= options["seed"] <= 2**32 - 1
    llm.create_completion("x", top_k=40.0, seed=7, echo=False, stream=False, logprobs=None, model="m")
    assert transport.generate_calls[-1][1]["top_k"] == 40 and transport.generate_calls[-1][1]["seed"] == 7


def test_chat_only_arguments() -> None:
    llm, _ = make()
    with pytest.raises(InvalidParameterError, match="messages must be a list of dicts, got str"):
        llm.create_chat_completion("Hi")
    with pytest.raises(InvalidParameterError, match="tools must be None or a list of dicts"):
        llm.create_chat_completion(HI, tools="get_weather")
    with pytest.raises(InvalidParameterError, match="tool_choice must be None, 'none', 'auto', 'required'"):
        llm.create_chat_completion(HI, tool_choice="sometimes")
    with pytest.raises(InvalidParameterError, match="parallel_tool_calls must be None, True or False"):
        llm.create_chat_completion(HI, parallel_tool_calls="yes")


def test_constructor_tokens_and_embeddings() -> None:
    transport = MockTransport(metadata=WITH_TEMPLATE)
    for kwargs, message in [
        ({"n_ctx": "512"}, r"n_ctx must be an int >= 0, got '512'"),
        ({"n_ctx": True}, r"n_ctx must be"),
        ({"n_batch": 0}, r"n_batch must be an int >= 1, got 0"),
        ({"n_threads": 1.5}, r"n_threads must be None or an int >= 1"),
        ({"seed": -2}, r"seed must be None or an int >= -1"),
        ({"chat_format": 1}, r"chat_format must be None or a template name"),
        ({"embedding": "yes"}, r"embedding must be True or False"),
        ({"verbose": 0}, r"verbose must be True or False"),
    ]:
        with pytest.raises(InvalidParameterError, match=message):
            Llama(MODEL, runner=LlamaRunner(transport=transport), **kwargs)
    assert transport.load_calls == []
    llm, loaded = make(n_ctx=1024.0, embedding=True)
    assert loaded.load_calls[0][1]["n_ctx"] == 1024
    with pytest.raises(InvalidParameterError, match="add_bos must be True or False"):
        llm.tokenize(b"Hi", add_bos="no")
    with pytest.raises(InvalidParameterError, match="special must be True or False"):
        llm.tokenize(b"Hi", special=1)
    with pytest.raises(InvalidParameterError, match="tokens must be a list of token ids"):
        llm.detokenize(72)
    with pytest.raises(InvalidParameterError, match="normalize must be True or False"):
        llm.embed("abc", normalize=1)
    with pytest.raises(InvalidParameterError, match="input must be a str or a list of str"):
        llm.create_embedding(5)
    with pytest.raises(InvalidParameterError, match="input must be a str or a list of str"):
        llm.embed(["a", 5])
    assert len(llm.embed("abc")) == 3 and len(llm.embed(["a", "b"])) == 2
