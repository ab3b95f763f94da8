"""Saved states, sessions and reranking as Python sees them (py_runner/_state.py, _rerank.py), against the
scripted engine: the requests sent, the shapes returned, the typed errors. The engine's side (the KV cache's
bytes, storage, the scores) is tests/e2e/test_sessions_and_rerank.py's."""

import asyncio

import pytest

from py_runner import (
    InvalidParameterError,
    Llama,
    LlamaRunner,
    LlamaState,
    ModelNotLoadedError,
    RerankNotSupportedError,
    SessionInfo,
    SessionNotFoundError,
    StateError,
    StateMismatchError,
)
from py_runner._errors import error_from_js
from py_runner._transport.mock import MockTransport

URL = "http://127.0.0.1:8000/tiny.gguf"
MODEL = {
    "source": URL,
    "size": 10,
    "sha256": None,
    "etag": '"e1"',
    "n_ctx": 512,
    "type_k": "f16",
    "type_v": "f16",
}
META = {"format": 1, "name": "chat", "saved_at": "2026-12-06T00:00:00Z", "n_tokens": 3, "size": 5,
        "sha256": "ab" * 32, "model": MODEL}  # fmt: skip


def run(coro):
    return asyncio.run(coro)


def loaded(**handlers) -> tuple[LlamaRunner, list]:
    sent = []

    def recorded(name, handler):
        def answer(request):
            sent.append((name, dict(request.fields)))
            return handler(request)

        return answer

    runner = LlamaRunner(transport=MockTransport(handlers={k: recorded(k, v) for k, v in handlers.items()}))
    run(runner.load_model(URL))
    return runner, sent


def test_save_state_and_load_state_carry_tokens_bytes_and_the_models_identity() -> None:
    runner, sent = loaded(
        state_save=lambda r: {"tokens": [1, 2, 3], "state": b"\x01\x02", "model": dict(MODEL)},
        state_load=lambda r: {"tokens": len(r.fields["tokens"])},
    )
    state = run(runner.save_state())
    assert state == LlamaState([1, 2, 3], None, 3, b"\x01\x02", 2, 0, MODEL)
    run(runner.load_state(state))
    assert sent[-1] == ("state_load", {"tokens": [1, 2, 3], "state": b"\x01\x02", "model": MODEL})
    with pytest.raises(StateError, match="inconsistent"):
        run(runner.load_state(LlamaState([1, 2], None, 2, b"\x01", 5, 0, MODEL)))
    with pytest.raises(InvalidParameterError, match="LlamaState"):
        run(runner.load_state({"input_ids": [1]}))  # type: ignore[arg-type]


def test_a_state_of_another_model_is_the_engines_typed_refusal() -> None:
    def refuse(request):
        raise error_from_js("StateMismatchError", "its n_ctx is 512, the loaded model's 1024")

    runner, _ = loaded(state_load=refuse)
    with pytest.raises(StateMismatchError, match="n_ctx"):
        run(runner.load_state(LlamaState([1], None, 1, b"x", 1, 0, MODEL)))


def test_sessions_are_saved_listed_loaded_and_deleted_by_name() -> None:
    store: dict[str, dict] = {}

    def load(request):
        name = request.fields["name"]
        if name not in store:
            raise error_from_js("SessionNotFoundError", f"no session named {name!r}")
        return store[name]

    runner, sent = loaded(
        session_save=lambda r: store.setdefault(r.fields["name"], {**META, "name": r.fields["name"]}),
        session_load=load,
        session_list=lambda r: list(store.values()),
        session_delete=lambda r: store.pop(r.fields["name"], None) is not None,
    )
    info = run(runner.save_session("chat"))
    assert info == SessionInfo("chat", 3, 5, META["saved_at"], META["sha256"], MODEL)
    assert run(runner.list_sessions()) == [info]
    assert run(runner.load_session("chat")) == info
    assert run(runner.delete_session("chat")) is True and run(runner.delete_session("chat")) is False
    with pytest.raises(SessionNotFoundError, match="chat") as caught:
        run(runner.load_session("chat"))
    assert isinstance(caught.value, KeyError) and str(caught.value) == "no session named 'chat'"
    for bad in ("", "   ", "x" * 201, 3):
        with pytest.raises(InvalidParameterError, match="session name"):
            run(runner.save_session(bad))  # type: ignore[arg-type]
    assert [name for name, _ in sent] == ["session_save", "session_list", "session_load", "session_delete",
                                          "session_delete", "session_load"]  # fmt: skip


def test_states_need_a_loaded_model() -> None:
    with pytest.raises(ModelNotLoadedError):
        run(LlamaRunner(transport=MockTransport()).save_state())


def test_rerank_returns_llama_servers_shape_best_first() -> None:
    scores = [0.1, 2.5, -1.0, 2.5]
    runner, sent = loaded(
        rerank=lambda r: {"scores": scores[: len(r.fields["documents"])], "n_tokens": [4] * 4}
    )
    out = run(runner.rerank("q", ["a", "b", "c", "d"]))
    assert out == {
        "object": "list",
        "usage": {"prompt_tokens": 16, "total_tokens": 16},
        "results": [
            {"index": 1, "relevance_score": 2.5},
            {"index": 3, "relevance_score": 2.5},  # a tie keeps the documents' order
            {"index": 0, "relevance_score": 0.1},
            {"index": 2, "relevance_score": -1.0},
        ],
    }
    assert run(runner.rerank("q", ["a", "b", "c", "d"], top_n=1))["results"] == [
        {"index": 1, "relevance_score": 2.5}
    ]
    assert sent[0] == ("rerank", {"query": "q", "documents": ["a", "b", "c", "d"]})
    bad = [(3, ["a"], None), ("q", "ab", None), ("q", [], None), ("q", ["a", 1], None), ("q", ["a"], 0),
           ("q", ["a"], True)]  # fmt: skip
    for query, documents, top_n in bad:
        with pytest.raises(InvalidParameterError):
            run(runner.rerank(query, documents, top_n))  # type: ignore[arg-type]


def test_rerank_on_a_model_that_is_not_a_reranker_is_a_typed_error() -> None:
    def refuse(request):
        raise error_from_js("RerankNotSupportedError", "this model is not a reranker")

    runner, _ = loaded(rerank=refuse)
    with pytest.raises(RerankNotSupportedError):
        run(runner.rerank("q", ["a"]))


def test_llama_rerank_and_state_use_llama_cpp_pythons_names() -> None:
    runner, _ = loaded(
        rerank=lambda r: {"scores": [1.0, 3.0], "n_tokens": [2, 2]},
        state_save=lambda r: {"tokens": [7], "state": b"s", "model": dict(MODEL)},
        state_load=lambda r: {"tokens": 1},
    )
    llm = Llama(URL, runner=runner, seed=42)
    out = llm.rerank("q", ["a", "b"], top_n=1)
    assert out["model"] == URL and out["results"] == [{"index": 1, "relevance_score": 3.0}]
    state = llm.save_state()
    assert (state.input_ids, state.n_tokens, state.llama_state, state.llama_state_size, state.seed) == (
        [7], 1, b"s", 1, 42,
    )  # fmt: skip
    llm.seed = 1
    llm.load_state(state)
    assert llm.seed == 42
