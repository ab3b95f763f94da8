import asyncio

import pytest

from py_runner import (
    BridgeError,
    GenerateTextParams,
    GenerationError,
    InvalidParameterError,
    LlamaRunner,
    LoadAbortedError,
    LoadingStage,
    ModelCompatibilityError,
    ModelNotLoadedError,
    NetworkError,
    RunnerBusyError,
)
from py_runner._gguf import parse_header
from py_runner._transport.mock import MockTransport

URL = "http://127.0.0.1:8000/tiny.gguf"


def run(coro):
    return asyncio.run(coro)


async def until(cond, steps=200):
    for _ in range(steps):
        if cond():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def test_load_success_spec_state_and_progress():
    events, loaded = [], []
    t = MockTransport()
    r = LlamaRunner(transport=t, n_threads=2, on_model_loaded=loaded.append)
    assert not r.is_model_loaded and r.build is None and r.get_model_metadata() is None

    spec = run(r.load_model(URL, events.append, ctx_size=512, batch_size=64))

    assert r.is_model_loaded and not r.is_loading_model and r.build == "st"
    assert r.get_model_metadata() is spec and loaded == [spec]
    assert spec.source_url == URL and spec.file_name == "tiny.gguf" and spec.file_size == 250000
    assert spec.quantization == "Q8_0" and spec.download_date.endswith("+00:00")
    min_size = t.load_calls[0][1]["min_size"]  # the size the GGUF header implies
    assert t.load_calls[0] == (
        URL,
        {"n_ctx": 512, "n_batch": 64, "cache": True, "n_threads": 2, "min_size": min_size},
    )
    assert min_size == parse_header(t.model_bytes).file_size_expected
    stages = [e.stage for e in events]
    assert stages[0] is LoadingStage.PREPARING and stages[-1] is LoadingStage.READY
    assert stages.index(LoadingStage.DOWNLOADING) < stages.index(LoadingStage.LOADING_INTO_ENGINE)
    assert events[-1].fraction == 1.0


def test_non_url_source_has_no_source_url():
    spec = run(LlamaRunner(transport=MockTransport()).load_model(b"GGUF..."))
    assert spec.source_url is None and spec.file_name == "tiny.gguf"


def test_progress_callback_errors_do_not_break_loading():
    def bad(_):
        raise RuntimeError("ui bug")

    assert run(LlamaRunner(transport=MockTransport()).load_model(URL, bad)).architecture == "llama"


@pytest.mark.parametrize(
    "error, expected",
    [(NetworkError("404", url=URL, status=404), NetworkError), (RuntimeError("boom"), BridgeError)],
)
def test_load_error_is_typed_reported_and_leaves_not_loaded(error, expected):
    events, errors = [], []
    r = LlamaRunner(transport=MockTransport(load_error=error), on_model_load_error=errors.append)
    with pytest.raises(expected):
        run(r.load_model(URL, events.append))
    assert events[-1].stage is LoadingStage.ERROR and events[-1].loaded == 250000
    assert isinstance(errors[0], expected)
    assert not r.is_model_loaded and not r.is_loading_model


def test_incompatible_gguf_version():
    t = MockTransport()
    t.metadata["gguf_version"] = 4
    r = LlamaRunner(transport=t)
    with pytest.raises(ModelCompatibilityError):
        run(r.load_model(URL))
    assert not r.is_model_loaded


@pytest.mark.parametrize("how", ["cancel_loading", "task.cancel"])
def test_cancelling_a_load_aborts_it(how: str):
    events = []
    t = MockTransport(block_load=True)
    r = LlamaRunner(transport=t)

    async def main():
        task = asyncio.ensure_future(r.load_model(URL, events.append))
        await until(lambda: t.load_calls)
        assert r.is_loading_model
        if how == "cancel_loading":
            r.cancel_loading()
        else:
            task.cancel()
        with pytest.raises(LoadAbortedError if how == "cancel_loading" else asyncio.CancelledError):
            await task

    run(main())
    assert t.aborts == ["load"] and events[-1].stage is LoadingStage.ABORTED
    assert not r.is_loading_model and not r.is_model_loaded


def test_abort_signal_polled_during_load():
    class Signal:
        aborted = False

    sig = Signal()
    t = MockTransport(block_load=True)
    r = LlamaRunner(transport=t)

    async def main():
        task = asyncio.ensure_future(r.load_model(URL, signal=sig))
        await until(lambda: t.load_calls)
        sig.aborted = True
        with pytest.raises(LoadAbortedError):
            await asyncio.wait_for(task, 2)

    run(main())
    assert "load" in t.aborts


def test_already_aborted_signal_skips_transport():
    class Signal:
        aborted = True

    t = MockTransport()
    with pytest.raises(LoadAbortedError):
        run(LlamaRunner(transport=t).load_model(URL, signal=Signal()))
    assert t.load_calls == []


def test_generate_before_load():
    with pytest.raises(ModelNotLoadedError):
        run(LlamaRunner(transport=MockTransport()).generate_text("hi"))


def test_invalid_params_rejected_before_transport():
    t = MockTransport()
    r = LlamaRunner(transport=t)
    with pytest.raises(InvalidParameterError):
        run(r.load_model(URL, ctx_size=4))

    async def main():
        await r.load_model(URL)
        await r.generate_text("x", GenerateTextParams(top_p=0))

    with pytest.raises(InvalidParameterError):
        run(main())
    assert t.generate_calls == []


def test_busy_rejection():
    t = MockTransport(block_load=True)
    r = LlamaRunner(transport=t)

    async def main():
        task = asyncio.ensure_future(r.load_model(URL))
        await until(lambda: t.load_calls)
        with pytest.raises(RunnerBusyError):
            await r.load_model(URL)
        with pytest.raises(RunnerBusyError):
            await r.generate_text("x")
        t.block_load = False
        r.cancel_loading()
        with pytest.raises(LoadAbortedError):
            await task
        await r.load_model(URL)  # idle again
        t.block_generate_after = 1
        gen = asyncio.ensure_future(r.generate_text("x"))
        await until(lambda: t.generate_calls)
        with pytest.raises(RunnerBusyError):
            await r.generate_text("y")
        with pytest.raises(RunnerBusyError):
            await r.load_model(URL)
        r.cancel()
        return await gen

    assert run(main()).finish_reason == "aborted"


def loaded_runner(**kw):
    t = MockTransport(**kw)
    r = LlamaRunner(transport=t)
    return r, t


def test_generate_text_utf8_tokens_callbacks_and_seed():
    pieces = [
        (10, b"caf"),
        (11, b"\xc3"),
        (12, b"\xa9 "),
        (13, "😀".encode()[:1]),
        (14, "😀".encode()[1:]),
        (15, "中文".encode()),
    ]
    r, t = loaded_runner(pieces=pieces)
    chunks, done = [], []

    async def main():
        await r.load_model(URL)
        return await r.generate_text("p", GenerateTextParams(seed=42), chunks.append, done.append)

    res = run(main())
    assert res.text == "café 😀中文" and res.tokens == [10, 11, 12, 13, 14, 15]
    assert [c.text for c in chunks] == ["caf", "", "é ", "", "😀", "中文"]
    assert done == [res] and res.finish_reason == "eos" and res.seed == 42
    assert res.generated_tokens == 6 and res.prompt_tokens == 5
    assert res.gen_tok_s == pytest.approx(60.0) and res.prompt_tok_s == pytest.approx(100.0)
    prompt, options = t.generate_calls[0]
    assert prompt == "p"
    assert options | {"n_predict": 128, "temp": 0.8, "top_k": 40, "top_p": 0.95, "seed": 42} == options


def test_random_seed_recorded_and_dangling_bytes_flushed():
    r, t = loaded_runner(pieces=[(1, b"a\xe4\xb8")])

    async def main():
        await r.load_model(URL)
        return await r.generate_text("p", GenerateTextParams(n_predict=3))

    res = run(main())
    assert res.text == "a\ufffd"
    assert res.seed == t.generate_calls[0][1]["seed"] and 0 <= res.seed < 2**32


def test_length_chatml_and_display_prompt():
    r, t = loaded_runner(pieces=[(1, b"a"), (2, b"b"), (3, b"c")])
    params = GenerateTextParams(n_predict=2, chatml=True, no_display_prompt=False)

    async def main():
        await r.load_model(URL)
        return await r.generate_text("hi", params)

    res = run(main())
    sent = "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert t.generate_calls[0][0] == sent
    assert res.finish_reason == "length" and res.text == sent + "ab"


def test_cancel_generation_returns_aborted():
    r, t = loaded_runner(pieces=[(1, b"a"), (2, b"b"), (3, b"c")], block_generate_after=1)

    async def main():
        await r.load_model(URL)
        seen = []
        task = asyncio.ensure_future(r.generate_text("p", token_callback=seen.append))
        await until(lambda: seen)
        r.cancel()
        return await task

    res = run(main())
    assert res.finish_reason == "aborted" and res.tokens == [1] and res.text == "a"
    assert r.is_model_loaded


def test_cancel_drops_tokens_the_engine_made_after_it():
    pieces = [(1, b"a"), (2, b"b"), (3, b"c"), (4, b"d"), (5, b"e")]
    r, t = loaded_runner(pieces=pieces, abort_lag=2)

    async def main():
        await r.load_model(URL)
        seen = []

        def on_token(chunk):
            seen.append(chunk.token)
            if len(seen) == 2:
                r.cancel()

        return await r.generate_text("p", token_callback=on_token), seen

    res, seen = run(main())
    assert seen == [1, 2]  # tokens 3 and 4 were still made by the engine, never delivered
    assert res.finish_reason == "aborted" and res.tokens == [1, 2] and res.text == "ab"


def test_token_callback_error_aborts_and_propagates():
    r, t = loaded_runner(pieces=[(1, b"a"), (2, b"b"), (3, b"c")])

    def cb(chunk):
        raise KeyError("user bug")

    async def main():
        await r.load_model(URL)
        await r.generate_text("p", token_callback=cb)

    with pytest.raises(KeyError):
        run(main())
    assert t.aborts == ["generate"]


@pytest.mark.parametrize(
    "error, expected",
    [(GenerationError("decode failed"), GenerationError), (RuntimeError("?"), GenerationError)],
)
def test_generation_errors_typed(error, expected):
    r, _ = loaded_runner(gen_error=error)

    async def main():
        await r.load_model(URL)
        await r.generate_text("p")

    with pytest.raises(expected):
        run(main())
    assert not r.is_loading_model and r.is_model_loaded


def test_stream_matches_generate_text():
    pieces = [(i, b) for i, b in enumerate([b"x", b"\xf0\x9f", b"\x98\x80", b"y"] * 10)]
    r, _ = loaded_runner(pieces=pieces)
    params = GenerateTextParams(seed=7, n_predict=100)

    async def main():
        await r.load_model(URL)
        res = await r.generate_text("p", params)
        chunks = [c async for c in r.stream("p", params)]
        return res, chunks

    res, chunks = run(main())
    assert [c.token for c in chunks] == res.tokens and len(chunks) == 40
    assert "".join(c.text for c in chunks) == res.text


def test_stream_propagates_errors():
    r, _ = loaded_runner(gen_error=GenerationError("bad"))

    async def main():
        await r.load_model(URL)
        return [c async for c in r.stream("p")]

    with pytest.raises(GenerationError):
        run(main())

    with pytest.raises(ModelNotLoadedError):
        run(_collect(LlamaRunner(transport=MockTransport()).stream("p")))


async def _collect(agen):
    return [c async for c in agen]


def test_stream_early_exit_cancels_generation():
    r, t = loaded_runner(pieces=[(i, b"a") for i in range(50)])

    async def main():
        await r.load_model(URL)
        agen = r.stream("p")
        async for _ in agen:
            break
        await agen.aclose()
        assert not r.is_loading_model
        return await r.generate_text("again", GenerateTextParams(n_predict=2))  # not busy

    assert run(main()).tokens == [0, 1]
    assert t.aborts == ["generate"]


def test_terminate_resets_and_restarts():
    r, t = loaded_runner()

    async def main():
        await r.load_model(URL)
        r.terminate()
        assert not r.is_model_loaded and r.build is None
        with pytest.raises(ModelNotLoadedError):
            await r.generate_text("p")
        await r.load_model(URL)

    run(main())
    assert t.terminated == 1 and t.starts == 2 and r.is_model_loaded


def test_terminate_during_load_fails_with_bridge_error():
    t = MockTransport(block_load=True)
    r = LlamaRunner(transport=t)

    async def main():
        task = asyncio.ensure_future(r.load_model(URL))
        await until(lambda: t.load_calls)
        r.terminate()
        with pytest.raises((BridgeError, LoadAbortedError)):
            await task

    run(main())
    assert not r.is_loading_model and not r.is_model_loaded


def test_stop_string_ends_generation_and_is_not_in_the_text():
    pieces = [(1, b"Hello"), (2, b" <|e"), (3, b"nd|> tail"), (4, b"never")]
    r, t = loaded_runner(pieces=pieces, abort_lag=1)

    async def main():
        await r.load_model(URL)
        seen = []
        params = GenerateTextParams(stop=["<|end|>"], seed=1)
        return await r.generate_text("p", params, token_callback=seen.append), seen

    res, seen = run(main())
    assert res.text == "Hello " and res.finish_reason == "stop"
    assert res.tokens == [1, 2, 3]  # the token that completed the stop string is the last one
    assert [c.text for c in seen] == ["Hello", " ", ""]
    assert t.aborts == ["generate"]


def test_what_the_browser_lacks_is_said_once_per_runner_and_the_work_goes_on(caplog):
    """A browser without SharedArrayBuffer (st chosen) or without any cache storage (loaded uncached) gets one
    warning line for each, however many loads follow; the loads themselves succeed."""
    from py_runner._transport.mock import METADATA

    no_cache = "model cache off: this browser offers neither ..."
    no_threads = "single-thread build: this browser has no SharedArrayBuffer, although the page is isolated"
    t = MockTransport(start_notice=no_threads, metadata={**METADATA, "cache_notice": no_cache})
    r = LlamaRunner(transport=t)
    with caplog.at_level("WARNING", logger="py_runner"):
        for _ in range(3):
            assert run(r.load_model(URL)).architecture == "llama"
    said = [rec.getMessage() for rec in caplog.records]
    assert said.count(no_threads) == 1 and said.count(no_cache) == 1, said

    quiet = LlamaRunner(transport=MockTransport())  # a browser that has both says nothing
    caplog.clear()
    with caplog.at_level("WARNING", logger="py_runner"):
        run(quiet.load_model(URL))
    assert caplog.records == []


def test_a_context_size_given_to_generate_text_must_be_the_loaded_one(caplog):
    """The context is made by load_model: ctx_size / batch_size left None (the default) say nothing, equal
    to the loaded ones they run, and a different one is refused with a typed error naming load_model's
    keyword, before the engine runs (no parameter that only warns)."""
    t = MockTransport()
    r = LlamaRunner(transport=t)

    async def main():
        await r.load_model(URL, ctx_size=512, batch_size=128)
        await r.generate_text("a", GenerateTextParams(n_predict=2))
        await r.generate_text("a", GenerateTextParams(n_predict=2, ctx_size=512, batch_size=128))
        calls = len(t.generate_calls)
        with pytest.raises(
            InvalidParameterError, match=r"ctx_size=1024.*load_model\(\.\.\., ctx_size=1024\)"
        ):
            await r.generate_text("a", GenerateTextParams(n_predict=2, ctx_size=1024))
        with pytest.raises(InvalidParameterError, match=r"batch_size=256.*loaded with batch_size=128"):
            await r.generate_text("a", GenerateTextParams(n_predict=2, batch_size=256))
        assert len(t.generate_calls) == calls

    with caplog.at_level("WARNING", logger="py_runner"):
        run(main())
    assert caplog.records == []
