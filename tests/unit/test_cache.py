"""The model cache's Python side: LlamaRunner.cache, load options, cache_hit/sha256, stages, errors."""

import asyncio

import pytest

from py_runner import (
    BridgeError,
    CachedModel,
    CacheQuotaError,
    CacheUsage,
    LlamaRunner,
    LoadingStage,
    ModelIntegrityError,
    ModelLoadError,
    RunnerBusyError,
)
from py_runner._errors import error_from_js
from py_runner._transport.mock import MockTransport

URL = "http://127.0.0.1:8000/tiny.gguf"


def run(coro):
    return asyncio.run(coro)


def test_second_load_reports_a_cache_hit_and_the_entry_is_listed_and_deleted():
    async def main():
        t = MockTransport()
        r = LlamaRunner(transport=t)
        assert await r.cache.list() == []
        first = await r.load_model(URL)
        second = await r.load_model(URL)
        listed = await r.cache.list()
        deleted, again = await r.cache.delete(URL), await r.cache.delete(URL)
        await r.load_model(URL)
        cleared = await r.cache.clear()
        return t, first, second, listed, deleted, again, cleared, await r.cache.list()

    t, first, second, listed, deleted, again, cleared, after = run(main())
    assert first.cache_hit is False and second.cache_hit is True
    assert listed == [CachedModel(URL, 250000, True, "2026-01-01T00:00:00Z")]
    assert (deleted, again, cleared, after) == (True, False, 1, [])
    assert all(opts["cache"] is True and "sha256" not in opts for _, opts in t.load_calls)


def test_inspect_resolves_the_url_like_a_load():
    async def main():
        r = LlamaRunner(transport=MockTransport())
        await r.load_model(URL)
        return [await r.cache.inspect(url) for url in ("/tiny.gguf", "../tiny.gguf", "x")]

    by_path, relative, missing = run(main())
    assert by_path is not None and by_path.url == URL and by_path.complete
    assert relative == by_path and missing is None


def test_cache_false_and_sha256_go_to_the_worker():
    t = MockTransport(metadata={**MockTransport().metadata, "sha256": "ab" * 32})
    r = LlamaRunner(transport=t)
    spec = run(r.load_model(URL, cache=False, sha256=" " + "AB" * 32))
    assert t.load_calls[0][1]["cache"] is False and t.load_calls[0][1]["sha256"] == "ab" * 32
    assert spec.sha256 == "ab" * 32 and spec.cache_hit is False
    assert run(r.cache.list()) == []  # cache=False: nothing stored


def test_cache_hit_uses_the_cached_date():
    t = MockTransport(metadata={**MockTransport().metadata, "cached_at": "2020-05-01T00:00:00Z"})
    spec = run(LlamaRunner(transport=t).load_model(URL))
    assert spec.download_date == "2020-05-01T00:00:00Z"  # when the cached file was downloaded


def test_cache_and_verifying_stages_are_reported():
    progress = [
        {"stage": "cache", "loaded": 0, "total": None},
        {"stage": "downloading", "loaded": 100, "total": 100},
        {"stage": "verifying", "loaded": 100, "total": 100},
        {"stage": "loading", "loaded": 100, "total": 100},
    ]
    stages = []
    run(
        LlamaRunner(transport=MockTransport(progress=progress)).load_model(
            URL, lambda i: stages.append(i.stage)
        )
    )
    assert [s for s in stages if s != LoadingStage.PREPARING] == [
        LoadingStage.CHECKING_CACHE,
        LoadingStage.DOWNLOADING,
        LoadingStage.VERIFYING,
        LoadingStage.LOADING_INTO_ENGINE,
        LoadingStage.READY,
    ]
    assert LoadingStage("cache") is LoadingStage.CHECKING_CACHE


def test_cache_calls_are_refused_while_loading():
    async def main():
        r = LlamaRunner(transport=MockTransport(block_load=True))
        task = asyncio.ensure_future(r.load_model(URL))
        for _ in range(200):  # event-loop turns, not time: the load starts within a few, on any machine
            if r.is_loading_model:
                break
            await asyncio.sleep(0)
        else:
            pytest.fail("the load did not start within 200 event-loop turns")
        with pytest.raises(RunnerBusyError):
            await r.cache.list()
        with pytest.raises(RunnerBusyError):
            await r.cache.clear()
        r.cancel_loading()
        with pytest.raises(ModelLoadError):
            await task

    run(main())


@pytest.mark.parametrize(
    "name, cls", [("CacheQuotaError", CacheQuotaError), ("ModelIntegrityError", ModelIntegrityError)]
)
def test_cache_errors_map_from_the_worker(name, cls):
    err = error_from_js(name, "no room to cache http://x/m.gguf: QuotaExceededError", "downloading")
    assert type(err) is cls and isinstance(err, ModelLoadError)
    assert str(err).endswith("(stage: downloading)")


def test_load_error_from_quota_reaches_the_caller():
    errors = []
    t = MockTransport(load_error=error_from_js("CacheQuotaError", "no room", "downloading"))
    r = LlamaRunner(transport=t, on_model_load_error=errors.append)
    with pytest.raises(CacheQuotaError):
        run(r.load_model(URL))
    assert isinstance(errors[0], CacheQuotaError) and not r.is_model_loaded


def test_usage_reports_the_engines_answer_and_what_is_left():
    answer = {"models": 5, "usage": 7, "quota": 10}
    t = MockTransport(handlers={"cache_usage": lambda request: dict(answer)})
    usage = run(LlamaRunner(transport=t).cache.usage())
    assert usage == CacheUsage(models=5, usage=7, quota=10) and usage.available == 3
    answer.update(usage=None, quota=None)  # a browser with no storage estimate
    assert run(LlamaRunner(transport=t).cache.usage()).available is None
    # the scripted engine has no answer of its own for this request: a clear error, not a KeyError
    with pytest.raises(BridgeError, match="no handler for the request 'cache_usage'"):
        run(LlamaRunner(transport=MockTransport()).cache.usage())
