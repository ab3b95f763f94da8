"""llama_cpp.llama_cache: the in-memory prompt cache (LlamaRAMCache, alias LlamaCache)."""

from py_runner import BaseLlamaCache, LlamaCache, LlamaRAMCache

from ._unavailable import unavailable

__all__ = ["BaseLlamaCache", "LlamaCache", "LlamaRAMCache"]
__getattr__ = unavailable(
    __name__,
    LlamaDiskCache="llama-cpp-python's disk cache keeps states with the diskcache package in a "
    "folder; a page has "
    "no such folder: use LlamaRAMCache, or LlamaRunner.save_session to keep a state in the browser's storage",
)
