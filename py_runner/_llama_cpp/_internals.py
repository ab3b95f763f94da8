"""llama_cpp._internals: not in the browser (it raises ImportError saying why)."""

from ._unavailable import missing_module

raise missing_module(
    __name__,
    "llama-cpp-python's wrappers around the ctypes binding (llama_cpp._internals) exist only with "
    "that binding",
)
