import asyncio

import pytest

from py_runner import ChatTemplateError, GenerateTextParams, LlamaRunner, ModelNotLoadedError
from py_runner._transport.mock import METADATA, MockTransport

URL = "http://127.0.0.1:8000/tiny.gguf"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]


def loaded(template: str | None = "{{ messages }}") -> tuple[LlamaRunner, MockTransport]:
    metadata = {**METADATA, "meta": {**METADATA["meta"]}}
    if template:
        metadata["meta"]["tokenizer.chat_template"] = template
    transport = MockTransport(metadata=metadata)
    runner = LlamaRunner(transport=transport)
    asyncio.run(runner.load_model(URL))
    return runner, transport


def test_chat_formats_with_the_model_template_then_generates() -> None:
    runner, transport = loaded()
    result = asyncio.run(runner.chat(MESSAGES, GenerateTextParams(chatml=True)))
    prompt, _ = transport.generate_calls[0]
    assert prompt == "<system>Be brief.</system><user>Hi</user><assistant>"  # not wrapped in ChatML again
    # the model's own (Jinja) template goes through llama.cpp's chat layer, as llama-server renders it
    assert transport.chat_apply_calls[-1]["messages"] == MESSAGES and transport.chat_calls == []
    assert result.text == "Hi there"


def test_chatml_is_an_explicit_fallback_only() -> None:
    runner, transport = loaded(template=None)
    assert runner.chat_template is None
    with pytest.raises(ChatTemplateError, match="no chat template"):
        asyncio.run(runner.chat(MESSAGES))
    asyncio.run(runner.chat(MESSAGES, GenerateTextParams(chatml=True)))
    assert transport.chat_calls[-1][1] == "chatml"


def test_unsupported_template_and_bad_messages() -> None:
    runner, _ = loaded()
    with pytest.raises(ChatTemplateError):
        asyncio.run(runner.chat(MESSAGES, template="unsupported"))
    with pytest.raises(ValueError):
        asyncio.run(runner.chat([{"content": "no role"}]))


def test_stream_chat_yields_the_chunks_of_chat() -> None:
    runner, _ = loaded()

    async def main():
        return [chunk async for chunk in runner.stream_chat(MESSAGES)]

    assert [c.text for c in asyncio.run(main())] == ["Hi", " there"]


def test_tokenize_and_detokenize_go_to_the_engine() -> None:
    runner, _ = loaded()
    assert asyncio.run(runner.tokenize("ab")) == [1, 97, 98]
    assert asyncio.run(runner.tokenize("ab", add_special=False)) == [97, 98]
    assert asyncio.run(runner.detokenize([1, 97, 98])) == "ab"


def test_tokenize_needs_a_model() -> None:
    with pytest.raises(ModelNotLoadedError):
        asyncio.run(LlamaRunner(transport=MockTransport()).tokenize("x"))


def test_logits_are_one_row_per_token_of_n_vocab_floats() -> None:
    runner, transport = loaded()
    rows = asyncio.run(runner.logits("Hello", [5, 7, 9]))
    assert transport.logits_calls == [("Hello", [5, 7, 9])]
    assert [len(r) for r in rows] == [512, 512, 512]  # the fake model's n_vocab
    assert [max(range(len(r)), key=r.__getitem__) for r in rows] == [5, 7, 9]
    assert asyncio.run(runner.logits("Hello", [])) == []


def test_the_chat_policy_classifies_templates() -> None:
    """_chat's one rule (wasm/glue_chat.cpp's agrees): Jinja source goes to llama.cpp's chat layer, a name
    to its built-in list, the model's own template (None) to the chat layer."""
    from py_runner._chat import BUILT_IN, CHAT_LAYER, chat_path, is_jinja

    assert is_jinja("{{ messages }}") and is_jinja("{% for m in messages %}{% endfor %}")
    assert not is_jinja("chatml") and not is_jinja("{ not jinja }")
    assert chat_path(None) == CHAT_LAYER and chat_path("{{ x }}") == CHAT_LAYER
    assert chat_path("llama3") == BUILT_IN
