"""Sync over async for Llama: its sync methods run their async twin to completion.

In Pyodide with `pyodide.ffi.run_sync` (JSPI: the page keeps running while Python waits for the engine); in
CPython with no running loop, on an event loop of its own; where neither can work (a browser without JSPI, or
a caller already inside a running event loop) SyncCallError names the twin to await instead."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Iterator
from typing import TypeVar

from ._errors import SyncCallError

T = TypeVar("T")


class SyncRunner:
    """Runs awaitables to completion for one Llama (and owns the event loop CPython needs for that)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None

    def run(self, awaitable: Awaitable[T], twin: str) -> T:
        """`awaitable`'s result; `twin` names the async method to use where waiting is impossible."""
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is None:  # CPython with no loop (scripts, tests on MockTransport): a loop of our own
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
            return self._loop.run_until_complete(awaitable)
        try:
            from pyodide.ffi import can_run_sync, run_sync
        except ImportError:
            can_run_sync = None
        if can_run_sync is not None and can_run_sync():
            return run_sync(awaitable)
        if asyncio.iscoroutine(awaitable):
            awaitable.close()
        if can_run_sync is None:
            where = "an event loop is already running"
        elif browser_has_jspi():
            where = "JSPI cannot suspend this call: it did not come from an awaitable run (runPythonAsync)"
        else:
            where = "this browser has no JSPI (WebAssembly.Suspending)"
        call = twin if "." in twin else f"llm.{twin}"  # "Llama.load" is a classmethod, the rest are methods
        raise SyncCallError(f"cannot wait here ({where}): use `await {call}(...)` instead")

    def iterate(self, chunks: AsyncIterator[T], twin: str) -> Iterator[T]:
        """A sync iterator over `chunks`; closing it closes them."""
        # Checked now, not at the first next(): the error belongs to the call that cannot work.
        probe = asyncio.sleep(0)
        self.run(probe, twin)

        def items() -> Iterator[T]:
            try:
                while True:
                    try:
                        yield self.run(chunks.__anext__(), twin)
                    except StopAsyncIteration:
                        return
            finally:
                with contextlib.suppress(Exception):
                    self.run(chunks.aclose(), twin)

        return items()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None


def browser_has_jspi() -> bool:
    """Whether the page's WebAssembly can suspend (JSPI): a feature test, not a browser name."""
    try:
        from js import WebAssembly
    except ImportError:
        return False
    return hasattr(WebAssembly, "Suspending")
