"""Load progress: stages, the event type, and a reporter that makes raw worker events user-friendly."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

log = logging.getLogger(__name__)


class LoadingStage(StrEnum):
    """Load stages; values are the strings the worker and JSON use."""

    PREPARING = "preparing"
    CHECKING_CACHE = "cache"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    LOADING_INTO_ENGINE = "loading"
    READY = "ready"
    ERROR = "error"
    ABORTED = "aborted"


FINAL_STAGES = frozenset({LoadingStage.READY, LoadingStage.ERROR, LoadingStage.ABORTED})
# The order a load goes through (README: "never going back"); ERROR and ABORTED may end it at any point.
_ORDER = {stage: rank for rank, stage in enumerate(LoadingStage) if stage not in FINAL_STAGES}
_ORDER[LoadingStage.READY] = len(_ORDER)


@dataclass(frozen=True)
class ProgressInfo:
    stage: LoadingStage
    loaded: int = 0
    total: int | None = None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        """loaded/total in 0..1, or None while the total is unknown."""
        if not self.total:
            return None
        return min(1.0, max(0.0, self.loaded / self.total))


ProgressCallback = Callable[[ProgressInfo], None]


class ProgressReporter:
    """Wraps a user progress callback.

    - throttles to one event per `min_interval` seconds, except stage changes, the event that
      completes a stage (loaded == total) and final events (READY/ERROR/ABORTED);
    - on a stage change, first delivers the last event held back by throttling, so each stage's
      latest numbers are seen;
    - never goes back to an earlier stage: an event of a stage before the current one is dropped (a late
      event from a stage already left, e.g. a download's last chunk after loading began);
    - keeps `loaded` monotonic within a stage (stages measure different things, so it may restart);
    - ERROR/ABORTED without numbers carry over the last loaded/total;
    - ignores everything after a final event;
    - logs and swallows exceptions from the callback: a buggy UI must not break loading.
    """

    def __init__(
        self,
        callback: ProgressCallback | None,
        *,
        min_interval: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self._min_interval = min_interval
        self._clock = clock
        self._stage: LoadingStage | None = None
        self._loaded = 0
        self._total: int | None = None
        self._last_emit: float | None = None
        self._pending: ProgressInfo | None = None
        self.finished = False
        self.last: ProgressInfo | None = None  # last event delivered

    def report(
        self,
        stage: LoadingStage | str,
        loaded: int | None = None,
        total: int | None = None,
        message: str = "",
    ) -> None:
        if self.finished:
            return
        stage = LoadingStage(stage)
        if self._stage is not None and _ORDER.get(stage, len(_ORDER)) < _ORDER[self._stage]:
            log.debug("progress: %s after %s dropped (stages never go back)", stage.value, self._stage.value)
            return
        same_stage = stage == self._stage
        if loaded is None and stage in (LoadingStage.ERROR, LoadingStage.ABORTED):
            loaded = self._loaded
            total = self._total if total is None else total
        loaded = int(loaded or 0)
        if same_stage:
            loaded = max(loaded, self._loaded)
        info = ProgressInfo(stage, loaded, total, message)

        now = self._clock()
        final = stage in FINAL_STAGES
        stage_done = total is not None and loaded >= total
        due = self._last_emit is None or now - self._last_emit >= self._min_interval
        if final or not same_stage or stage_done or due:
            if not same_stage and self._pending is not None:
                self._emit(self._pending)
            self._emit(info)
            self._last_emit = now
            self._pending = None
        else:
            self._pending = info
        self._stage, self._loaded, self._total = stage, loaded, total
        self.finished = final

    def _emit(self, info: ProgressInfo) -> None:
        self.last = info
        if self._callback is None:
            return
        try:
            self._callback(info)
        except Exception:
            log.exception("progress callback raised; ignored")
