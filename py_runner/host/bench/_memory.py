"""Sampling the browser's memory from /proc: the processes this run started, and what they hold."""

from __future__ import annotations

import os
import threading


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(stat[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _rss_bytes(pids: list[int], fields: tuple[str, ...] = ("RssAnon", "RssShmem")) -> int:
    """The memory `pids` hold: anonymous and shared memory (the wasm heap, the JS heaps, Blobs in memory).
    Not the pages of files they have mapped (RssFile: a cached model read from disk is mapped by the browser's
    storage process), which the kernel drops under pressure; `fields=("RssFile",)` measures those."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
                for line in f:
                    name, _, value = line.partition(":")
                    if name in fields:
                        total += int(value.split()[0]) * 1024  # kB
        except (OSError, IndexError, ValueError):
            continue
    return total


class _PeakSampler:
    """Samples the summed RSS of this process's descendants (the browser) every 20 ms."""

    def __init__(self) -> None:
        self.peak = 0
        self.peak_file_pages = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            pids = _descendants(os.getpid())
            self.peak = max(self.peak, _rss_bytes(pids))
            self.peak_file_pages = max(self.peak_file_pages, _rss_bytes(pids, ("RssFile",)))
            self._stop.wait(0.02)

    def __enter__(self) -> _PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
