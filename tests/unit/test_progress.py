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
