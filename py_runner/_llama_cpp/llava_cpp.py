"""llama_cpp.llava_cpp: not in the browser (it raises ImportError saying why)."""

from ._unavailable import missing_module

raise missing_module(__name__, "the llava ctypes binding needs a native library")
