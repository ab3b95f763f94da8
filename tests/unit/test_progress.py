import logging

import pytest

from py_runner import LoadingStage, ProgressInfo
from py_runner._progress import ProgressReporter

D, L = LoadingStage.DOWNLOADING, LoadingStage.LOADING_INTO_ENGINE


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def make():
    events, clock = [], Clock()
    return events, clock, ProgressReporter(events.append, min_interval=0.1, clock=clock)


def test_fraction():
    assert ProgressInfo(D, 5, None).fraction is None
    assert ProgressInfo(D, 5, 0).fraction is None
    assert ProgressInfo(D, 25, 100).fraction == 0.25


def test_throttles_within_a_stage_but_not_stage_changes():
    events, clock, rep = make()
    rep.report(LoadingStage.PREPARING)
    for i in range(1, 100):  # 99 events within 0.099 s
        clock.t = i * 0.001
        rep.report(D, i, 1000)
    assert [e.stage for e in events] == [LoadingStage.PREPARING, D]
    clock.t = 0.2
    rep.report(D, 500, 1000)
    assert events[-1].loaded == 500 and len(events) == 3


def test_pending_event_flushed_on_stage_change_and_stage_completion_passes():
    events, clock, rep = make()
    rep.report(D, 0, 100)
    clock.t = 0.01
    rep.report(D, 60, 100)  # held back
    clock.t = 0.02
    rep.report(L, 0, 100)
    assert [(e.stage, e.loaded) for e in events] == [(D, 0), (D, 60), (L, 0)]
    clock.t = 0.03
    rep.report(L, 100, 100)  # completes the stage: not throttled
    assert events[-1].loaded == 100


def test_loaded_is_monotonic_within_a_stage():
    events, clock, rep = make()
    for i, n in enumerate([10, 50, 30, 70, 20]):
        clock.t = i
        rep.report(D, n, 100)
    assert [e.loaded for e in events] == [10, 50, 50, 70, 70]
    clock.t = 10
    rep.report(L, 5, 100)  # a new stage may restart
    assert events[-1].loaded == 5


@pytest.mark.parametrize("final", [LoadingStage.READY, LoadingStage.ERROR, LoadingStage.ABORTED])
def test_final_event_always_delivered_then_nothing(final):
    events, clock, rep = make()
    rep.report(D, 40, 100)
    clock.t = 0.001
    rep.report(D, 50, 100)
    clock.t = 0.002
    rep.report(final, message="end")
    assert events[-1].stage is final and rep.finished
    if final is not LoadingStage.READY:  # failures carry the last numbers
        assert (events[-1].loaded, events[-1].total) == (50, 100)
    n = len(events)
    clock.t = 5
    rep.report(D, 99, 100)
    rep.report(LoadingStage.READY)
    assert len(events) == n


def test_callback_exception_is_logged_not_raised(caplog):
    calls = []

    def bad(info):
        calls.append(info)
        raise RuntimeError("ui bug")

    rep = ProgressReporter(bad)
    with caplog.at_level(logging.ERROR):
        rep.report(LoadingStage.PREPARING)
        rep.report(LoadingStage.READY)
    assert len(calls) == 2 and "ui bug" in caplog.text


def test_none_callback_and_string_stage():
    rep = ProgressReporter(None)
    rep.report("downloading", 1, 2)
    assert rep.last == ProgressInfo(D, 1, 2)


ORDER = ["preparing", "cache", "downloading", "verifying", "loading", "ready"]


def never_go_back(stages: list[str]) -> bool:
    """README: stages never go back (preparing → cache → downloading → verifying → loading → ready)."""
    ranks = [ORDER.index(s) for s in stages if s in ORDER]
    return ranks == sorted(ranks)


def test_the_order_check_can_fail():
    assert not never_go_back(["preparing", "loading", "downloading", "loading", "ready"])
    assert never_go_back(["preparing", "cache", "downloading", "downloading", "loading", "ready"])


def test_an_event_of_an_earlier_stage_is_dropped():
    events, clock, rep = make()
    rep.report(LoadingStage.PREPARING)
    rep.report(D, 10, 10)
    rep.report(L, 1, 10)
    clock.t = 1.0
    rep.report(D, 10, 10)  # late, from a stage already left
    rep.report(LoadingStage.PREPARING)
    rep.report(L, 10, 10)
    rep.report(LoadingStage.ABORTED)  # a final event ends any stage
    assert [(e.stage.value, e.loaded) for e in events] == [
        ("preparing", 0),
        ("downloading", 10),
        ("loading", 1),
        ("loading", 10),
        ("aborted", 10),
    ]


@pytest.mark.parametrize(
    "script",
    [
        ["downloading", "loading", "downloading", "loading"],  # a late download event
        ["cache", "verifying", "cache", "loading"],
        ["loading", "verifying", "downloading", "cache"],  # everything backwards
    ],
)
def test_a_load_through_the_runner_never_goes_back(script: list[str]):
    """The scripted worker goes back; what the user's callback sees does not (MockTransport, the real path
    from the worker's events through the runner to the callback)."""
    import asyncio

    from py_runner import LlamaRunner, MockTransport

    progress = [{"stage": s, "loaded": i, "total": 100} for i, s in enumerate(script)]
    events: list[ProgressInfo] = []
    runner = LlamaRunner(transport=MockTransport(progress=progress))
    asyncio.run(runner.load_model("models/model.gguf", progress_callback=events.append))
    stages = [e.stage.value for e in events]
    assert stages[0] == "preparing" and stages[-1] == "ready"
    assert never_go_back(stages), stages
    assert script[0] in stages  # the first worker stage is delivered, not everything dropped
