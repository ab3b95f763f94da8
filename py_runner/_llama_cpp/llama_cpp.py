"""llama_cpp.llama_cpp: not in the browser (it raises ImportError saying why)."""

from ._unavailable import missing_module

raise missing_module(
    __name__,
    "llama-cpp-python's ctypes binding to libllama (llama_cpp.llama_cpp) needs a native library, "
    "which a browser cannot load",
)
