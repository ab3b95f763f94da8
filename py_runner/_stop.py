"""Stop strings over streamed text: text that could still become a stop string is held back, so callers never
see any part of one, also when it is split across tokens."""

from __future__ import annotations


class StopMatcher:
    def __init__(self, stop: list[str] | tuple[str, ...]) -> None:
        self._stop = [s for s in stop if s]
        self._held = ""
        self.stopped = False

    def feed(self, text: str) -> str:
        """The text that is now safe to show; after a stop string (stopped=True) nothing more."""
        if self.stopped:
            return ""
        if not self._stop:
            return text
        held = self._held + text
        found = [i for i in (held.find(s) for s in self._stop) if i >= 0]
        if found:
            self.stopped = True
            self._held = ""
            return held[: min(found)]
        keep = max((_overlap(held, s) for s in self._stop), default=0)  # a stop string may start here
        self._held = held[len(held) - keep :] if keep else ""
        return held[: len(held) - keep]

    def flush(self) -> str:
        """At the end of generation: what was held back was not a stop string after all."""
        held, self._held = self._held, ""
        return "" if self.stopped else held


def _overlap(text: str, stop: str) -> int:
    """The length of the longest suffix of `text` that is a proper prefix of `stop`."""
    for n in range(min(len(text), len(stop) - 1), 0, -1):
        if text.endswith(stop[:n]):
            return n
    return 0
