"""llama-cpp-python's token-level Llama methods in py_runner (py_runner/_llama_eval.py) against the scripted
engine: what eval / sample / generate / reset send and keep (n_tokens, input_ids, scores), token-list prompts,
vocab_only loads. (That they continue exactly in the real engine: tests/e2e/test_llama_vocab_and_eval.py.)"""

import itertools
from array import array

import pytest

from py_runner import GenerationNotSupportedError, InvalidParameterError, Llama, LlamaRunner
from py_runner._transport.mock import MockTransport

URL = "http://127.0.0.1:8000/tiny.gguf"
EOS = 2  # the scripted engine's end-of-generation token


def llama(**kwargs) -> tuple[Llama, MockTransport]:
    transport = MockTransport()
    return Llama(URL, runner=LlamaRunner(transport=transport), **kwargs), transport


def test_eval_holds_the_tokens_and_keeps_the_logits_asked_for() -> None:
    llm, transport = llama()
    assert llm.n_tokens == 0 and llm.input_ids.tolist() == [] and llm.scores == []
    llm.eval([1, 5, 6])
    assert llm.n_tokens == 3 and llm.input_ids[: llm.n_tokens].tolist() == [1, 5, 6]
    assert transport.requests[-1].fields == {"tokens": [1, 5, 6]}  # the last position's logits only
    assert [row is None for row in llm.scores] == [True, True, False]
    llm.eval([7])  # after those held: the engine is sent the whole sequence
    assert transport.requests[-1].fields == {"tokens": [1, 5, 6, 7]} and llm.n_tokens == 4
    llm.reset()
    assert llm.n_tokens == 0 and llm.input_ids.tolist() == []
    llm.eval([1, 9])
    assert transport.requests[-1].fields == {"tokens": [1, 9]}

    full, transport = llama(logits_all=True)
    full.eval([1, 5])
    full.eval([6, 7])
    assert transport.requests[-1].fields == {"tokens": [1, 5, 6, 7], "rows_from": 2}
    rows = full.scores
    assert isinstance(rows[3], array) and len(rows[3]) == 512
    assert [max(range(512), key=row.__getitem__) for row in rows] == [1, 5, 6, 7]  # the mock's rows


def test_eval_refuses_what_is_not_a_token() -> None:
    llm, _ = llama()
    for bad in ([512], [-1], [True], ["1"], "abc", 3):
        with pytest.raises(InvalidParameterError):
            llm.eval(bad)  # type: ignore[arg-type]
    assert llm.n_tokens == 0


def test_sample_samples_after_the_position_asked_for() -> None:
    llm, transport = llama()
    llm.eval([1, 5, 6])
    assert llm.sample(temp=0.0) == 1  # the scripted engine's first token
    prompt, options = transport.generate_calls[-1]
    assert prompt == [1, 5, 6] and options["n_predict"] == 1 and options["temp"] == 0.0
    assert options["top_k"] == 40 and options["top_p"] == 0.95 and options["min_p"] == 0.05  # its defaults
    llm.sample(temp=0.0, idx=1)
    assert transport.generate_calls[-1][0] == [1, 5]
    assert llm.input_ids.tolist() == [1, 5, 6]  # sampling evaluates nothing the Llama keeps
    for idx in (3, -1):
        with pytest.raises(InvalidParameterError):
            llm.sample(idx=idx)
    with pytest.raises(InvalidParameterError):
        llm.sample(mirostat_mode=2)


def test_generate_yields_end_of_generation_tokens_and_goes_on_after_them() -> None:
    llm, transport = llama()
    tokens = list(itertools.islice(llm.generate([1, 5, 6], temp=0.0), 5))
    assert tokens == [1, 2, EOS, 1, 2]  # the scripted engine says "Hi there" and ends, twice
    assert [call[0] for call in transport.generate_calls] == [[1, 5, 6], [1, 5, 6, 1, 2, EOS]]
    # as llama-cpp-python counts: the last token yielded is not evaluated yet
    assert llm.input_ids.tolist() == [1, 5, 6, 1, 2, EOS, 1]


def test_generate_keeps_a_shared_prefix_and_resets_otherwise() -> None:
    llm, transport = llama()
    resets = []
    original = llm.reset
    llm.reset = lambda: resets.append(1) or original()  # type: ignore[method-assign]
    llm.eval([1, 5, 6, 7])
    list(itertools.islice(llm.generate([1, 5, 6], temp=0.0), 1))
    assert resets == [] and transport.generate_calls[-1][0] == [1, 5, 6]
    list(itertools.islice(llm.generate([9, 9], temp=0.0), 1))
    assert resets == [1] and transport.generate_calls[-1][0] == [9, 9]
    list(itertools.islice(llm.generate([3], temp=0.0, reset=False), 1))
    assert transport.generate_calls[-1][0] == [9, 9, 3]  # continues what is held


def test_a_completion_leaves_what_the_engine_holds_and_takes_token_prompts() -> None:
    llm, transport = llama()
    out = llm.create_completion([1, 72, 105], max_tokens=8, temperature=0)
    assert transport.generate_calls[-1][0] == [1, 72, 105]
    assert out["choices"][0]["text"] == "Hi there" and out["choices"][0]["finish_reason"] == "stop"
    assert llm.input_ids.tolist() == [1, 72, 105, 1, 2]  # read from the engine (state_tokens)
    echoed = llm.create_completion([1, 72, 105], max_tokens=8, echo=True)
    assert echoed["choices"][0]["text"] == "HiHi there"  # the prompt's text, then the reply
    for bad in ([], [600], [1.5]):
        with pytest.raises(InvalidParameterError):
            llm.create_completion(bad)
    with pytest.raises(InvalidParameterError):
        llm.create_completion([1, 72], logprobs=2)


def test_vocab_only_loads_the_tokenizer_alone_and_refuses_generation() -> None:
    transport = MockTransport(metadata={**MockTransport().metadata, "vocab_only": True, "n_ctx": 0})
    llm = Llama(URL, runner=LlamaRunner(transport=transport), vocab_only=True)
    assert transport.load_calls[-1][1]["vocab_only"] is True
    assert llm.tokenize(b"Hi") == [1, 72, 105] and llm.detokenize([72, 105]) == b"Hi"
    with pytest.raises(GenerationNotSupportedError, match="vocab_only"):
        llm.create_completion("Hi")
    with pytest.raises(InvalidParameterError):
        Llama(URL, runner=LlamaRunner(transport=MockTransport()), vocab_only=1)  # type: ignore[arg-type]


def test_model_facts_llama_cpp_python_code_reads() -> None:
    llm, _ = llama()
    assert llm.token_nl() == 10  # the scripted tokenizer: a token per byte
    assert llm._is_recurrent is False and llm._is_hybrid is False
    llm.set_seed(1337)
    llm.create_completion("Hi", max_tokens=2)
    assert llm.runner.last_result.seed == 1337
