"""embed(): the runner's side of embeddings, against the scripted transport."""

import asyncio

import pytest

from py_runner import (
    ContextOverflowError,
    EmbeddingAbortedError,
    EmbeddingError,
    EmbeddingInputTooLongError,
    EmbeddingNotSupportedError,
    GenerationError,
    GenerationNotSupportedError,
    InvalidParameterError,
    LlamaRunner,
    ModelNotLoadedError,
)
from py_runner._errors import error_from_js
from py_runner._transport.mock import METADATA, MockTransport

URL = "http://127.0.0.1:8000/tiny.gguf"
BERT = {
    **METADATA,
    "meta": {"general.architecture": "bert", "general.name": "bert-tiny", "bert.pooling_type": "1"},
    "pooling": 1,
    "embedding_model": True,
}


def loaded(metadata=METADATA, **kwargs) -> tuple[LlamaRunner, MockTransport]:
    transport = MockTransport(metadata=metadata, **kwargs)
    runner = LlamaRunner(transport=transport)
    asyncio.run(runner.load_model(URL))
    return runner, transport


def test_one_text_gives_a_vector_a_list_gives_a_list_of_vectors() -> None:
    runner, transport = loaded(BERT)
    vector = asyncio.run(runner.embed("abc"))
    assert vector == pytest.approx([3 / 10**0.5, 1 / 10**0.5, 0.0])
    vectors = asyncio.run(runner.embed(["a", "abcd"], normalize=False, truncate=True))
    assert vectors == [[1.0, 1.0, 0.0], [4.0, 1.0, 0.0]]
    assert transport.embed_calls[-1] == (["a", "abcd"], {"normalize": False, "truncate": True})
    assert asyncio.run(runner.embed([])) == [] and len(transport.embed_calls) == 2  # no engine call


def test_the_spec_says_pooling_and_embedding_model() -> None:
    runner, _ = loaded(BERT)
    spec = runner.get_model_metadata()
    assert spec.pooling_type == "mean" and spec.embedding_model
    runner, _ = loaded()  # a generative model: no pooling
    spec = runner.get_model_metadata()
    assert spec.pooling_type is None and not spec.embedding_model


def test_progress_counts_texts() -> None:
    runner, _ = loaded(BERT)
    seen: list[tuple[int, int]] = []
    asyncio.run(runner.embed(["a", "b", "c"], progress_callback=lambda *p: seen.append(p)))
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_bad_input_and_no_model() -> None:
    with pytest.raises(ModelNotLoadedError):
        asyncio.run(LlamaRunner(transport=MockTransport()).embed("a"))
    runner, _ = loaded(BERT)
    with pytest.raises(InvalidParameterError):
        asyncio.run(runner.embed(["a", 3]))  # type: ignore[list-item]
    with pytest.raises(InvalidParameterError, match="pooling"):
        asyncio.run(runner.load_model(URL, pooling="max"))


def test_pooling_goes_to_the_engine_as_llama_cpp_enum() -> None:
    runner, transport = loaded()
    asyncio.run(runner.load_model(URL, pooling="cls"))
    assert transport.load_calls[-1][1]["pooling"] == 2
    asyncio.run(runner.load_model(URL))
    assert "pooling" not in transport.load_calls[-1][1]


def test_an_embedding_model_does_not_generate() -> None:
    runner, transport = loaded(BERT)
    with pytest.raises(GenerationNotSupportedError, match="embed"):
        asyncio.run(runner.generate_text("hello"))
    assert transport.generate_calls == []


def test_cancel_stops_between_texts_and_the_runner_goes_on() -> None:
    runner, _ = loaded(BERT, block_embed_after=1)

    async def main():
        task = asyncio.ensure_future(runner.embed(["a", "b", "c"]))
        for _ in range(5):
            await asyncio.sleep(0)
        runner.cancel()
        with pytest.raises(EmbeddingAbortedError):
            await task
        runner._transport.block_embed_after = None
        return await runner.embed(["a", "b"])

    assert len(asyncio.run(main())) == 2


def test_engine_errors_arrive_typed() -> None:
    runner, _ = loaded(embed_error=error_from_js("EmbeddingNotSupportedError", "no pooling"))
    with pytest.raises(EmbeddingNotSupportedError):
        asyncio.run(runner.embed("a"))
    assert not runner.is_loading_model and runner._op is None  # free for the next call
    too_long = error_from_js("EmbeddingInputTooLongError", "text 0: 600 tokens")
    assert isinstance(too_long, EmbeddingError) and isinstance(too_long, ContextOverflowError)
    assert isinstance(error_from_js("GenerationNotSupportedError", "x"), GenerationError)
    assert isinstance(error_from_js("EmbeddingAbortedError", "x"), EmbeddingError)
    assert isinstance(too_long, EmbeddingInputTooLongError)


@pytest.mark.parametrize("cancel_at, aborted", [(1, True), (2, True), (3, False)])
def test_a_cancel_the_engine_sees_too_late_still_aborts(cancel_at: int, aborted: bool) -> None:
    """cancel() from a progress callback, with the abort still on its way when the engine finishes: texts
    embedded after the cancel are dropped (EmbeddingAbortedError), as a generation drops tokens; cancelled as
    the last text arrives, nothing came later and the vectors are returned."""
    runner, transport = loaded(BERT)
    transport.abort = lambda kind: None  # the engine never hears of it in time
    seen = []

    def on_progress(done: int, total: int) -> None:
        seen.append(done)
        if done == cancel_at:
            runner.cancel()

    if aborted:
        with pytest.raises(EmbeddingAbortedError, match=f"after {cancel_at} of 3 texts"):
            asyncio.run(runner.embed(["a", "b", "c"], progress_callback=on_progress))
    else:
        assert len(asyncio.run(runner.embed(["a", "b", "c"], progress_callback=on_progress))) == 3
    assert seen == list(range(1, cancel_at + 1))  # nothing reaches the caller after its cancel()
    assert len(asyncio.run(runner.embed(["a", "b"]))) == 2  # and the runner goes on


def test_kv_cache_types_go_to_the_engine_as_ggml_types() -> None:
    runner, transport = loaded()
    spec = asyncio.run(runner.load_model(URL, type_k="q8_0", type_v="f32"))
    assert (transport.load_calls[-1][1]["type_k"], transport.load_calls[-1][1]["type_v"]) == (8, 0)
    assert (spec.type_k, spec.type_v) == ("q8_0", "f32")
    spec = asyncio.run(runner.load_model(URL))
    assert "type_k" not in transport.load_calls[-1][1] and spec.type_k == "f16"
    with pytest.raises(InvalidParameterError, match="type_v"):
        asyncio.run(runner.load_model(URL, type_v="q3_k"))
