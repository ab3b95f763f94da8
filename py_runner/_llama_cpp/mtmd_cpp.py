"""llama_cpp.mtmd_cpp: not in the browser (it raises ImportError saying why)."""

from ._unavailable import missing_module

raise missing_module(__name__, "the mtmd (multimodal) ctypes binding needs a native library")
