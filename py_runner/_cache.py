"""The browser's model cache, seen from Python: `LlamaRunner.cache`.

Models loaded from URLs are stored by the engine worker in the Origin Private File System
(web/shared/model_cache.js), one entry per absolute URL. A second load of the same URL mounts the stored file
and makes no network request.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from ._transport import Transport


@dataclass(frozen=True)
class CachedModel:
    url: str
    size: int | None  # bytes; None while a download's total is unknown
    complete: bool  # False: an interrupted download that the next load of the URL resumes
    cached_at: str | None  # ISO 8601 time the download completed
    sha256: str | None = None  # hex, when it was computed (load_model(..., sha256=...))


@dataclass(frozen=True)
class CacheUsage:
    """What the cache holds and what the browser grants, in bytes (`await runner.cache.usage()`): ask it
    before downloading a large model. `usage` and `quota` are the origin's, as `navigator.storage.estimate()`
    says them (None where the browser does not); a browser's quota follows its free disk space."""

    models: int  # py_runner's cached models, complete or not
    usage: int | None  # everything the page's origin stores, the models included
    quota: int | None  # what the origin may store in all

    @property
    def available(self) -> int | None:
        """Bytes the origin may still store (quota less usage), or None where the browser does not say."""
        return None if self.usage is None or self.quota is None else max(0, self.quota - self.usage)


def _cached_model(entry: dict[str, Any]) -> CachedModel:
    size = entry.get("size")
    return CachedModel(
        url=str(entry.get("url") or ""),
        size=None if size is None else int(size),
        complete=bool(entry.get("complete")),
        cached_at=entry.get("cached_at") or None,
        sha256=entry.get("sha256") or None,
    )


class ModelCache:
    """List and delete cached models. Starts the engine if needed; like loads and generations, these raise
    RunnerBusyError while the runner is loading or generating (the engine does one thing at a time)."""

    def __init__(
        self, transport_for: Callable[[str], Awaitable[Transport]], base_url: Callable[[], str]
    ) -> None:
        # The runner hands over how to reach an idle engine and the base URL its loads resolve against: the
        # cache needs nothing else of it.
        self._transport_for = transport_for
        self._base_url = base_url

    async def list(self) -> builtins.list[CachedModel]:  # builtins: `list` here is this method
        """Every entry, complete or not, sorted by URL."""
        transport = await self._transport_for("list the cache")
        return [_cached_model(dict(e)) for e in await transport.cache_list()]

    async def inspect(self, url: str) -> CachedModel | None:
        """The entry of `url` (resolved against the runner's base URL, as loads resolve it), or None."""
        entries = await self.list()
        absolute = urljoin(self._base_url(), url)
        return next((e for e in entries if e.url == absolute), None)

    async def delete(self, url: str) -> bool:
        """Delete the entry of `url` (resolved against the runner's base URL); True if there was one."""
        transport = await self._transport_for("delete from the cache")
        return bool(await transport.cache_delete(url))

    async def clear(self) -> int:
        """Delete every entry; returns how many there were."""
        transport = await self._transport_for("clear the cache")
        return int(await transport.cache_clear() or 0)

    async def usage(self) -> CacheUsage:
        """The bytes the cached models take, and what the origin stores and may store."""
        transport = await self._transport_for("measure the cache")
        result = await transport.request("cache_usage", {})
        usage, quota = result.get("usage"), result.get("quota")
        return CacheUsage(
            models=int(result["models"]),
            usage=None if usage is None else int(usage),
            quota=None if quota is None else int(quota),
        )
