"""llama-cpp-python's prompt caches (`llama_cpp.LlamaRAMCache`, its alias `LlamaCache`), for
`Llama.set_cache`: saved states (`LlamaState`, py_runner/_state.py) kept by the tokens they hold, so that a
prompt that starts with those tokens continues from its state instead of being evaluated again
(llama-cpp-python's `Llama` does so before each completion, and stores the state after it, keyed by prompt +
completion tokens).

The same class semantics as llama-cpp-python 0.3.36's llama_cache.py: a lookup returns the state whose key
shares the longest prefix with the tokens asked for (KeyError when none shares one), and marks it recently
used; a store replaces a state of the same key and drops the least recently used until the states' bytes fit
`capacity_bytes`. Its disk cache (`LlamaDiskCache`, on the diskcache package) has no twin here: a page has no
disk of that kind (sessions, LlamaRunner.save_session, keep states in the browser's storage)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence

from ._state import LlamaState


def longest_token_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens a and b share from the start (llama-cpp-python's Llama.longest_token_prefix)."""
    shared = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        shared += 1
    return shared


class BaseLlamaCache(ABC):
    """A cache of saved states by their tokens (llama-cpp-python's BaseLlamaCache)."""

    def __init__(self, capacity_bytes: int = 2 << 30) -> None:
        self.capacity_bytes = capacity_bytes

    @property
    @abstractmethod
    def cache_size(self) -> int: ...

    @abstractmethod
    def __getitem__(self, key: Sequence[int]) -> LlamaState: ...

    @abstractmethod
    def __contains__(self, key: Sequence[int]) -> bool: ...

    @abstractmethod
    def __setitem__(self, key: Sequence[int], value: LlamaState) -> None: ...


class LlamaRAMCache(BaseLlamaCache):
    """Saved states in memory, least recently used dropped past `capacity_bytes` (default 2 GiB) of state."""

    def __init__(self, capacity_bytes: int = 2 << 30) -> None:
        super().__init__(capacity_bytes)
        self.cache_state: OrderedDict[tuple[int, ...], LlamaState] = OrderedDict()

    @property
    def cache_size(self) -> int:
        return sum(state.llama_state_size for state in self.cache_state.values())

    def _find_longest_prefix_key(self, key: tuple[int, ...]) -> tuple[int, ...] | None:
        best, best_len = None, 0
        for candidate in self.cache_state:
            shared = longest_token_prefix(candidate, key)
            if shared > best_len:
                best, best_len = candidate, shared
        return best

    def __getitem__(self, key: Sequence[int]) -> LlamaState:
        found = self._find_longest_prefix_key(tuple(key))
        if found is None:
            raise KeyError("Key not found")
        self.cache_state.move_to_end(found)
        return self.cache_state[found]

    def __contains__(self, key: Sequence[int]) -> bool:
        return self._find_longest_prefix_key(tuple(key)) is not None

    def __setitem__(self, key: Sequence[int], value: LlamaState) -> None:
        key = tuple(key)
        self.cache_state.pop(key, None)
        self.cache_state[key] = value
        while self.cache_size > self.capacity_bytes and self.cache_state:
            self.cache_state.popitem(last=False)


LlamaCache = LlamaRAMCache  # llama-cpp-python's older name, kept there too
