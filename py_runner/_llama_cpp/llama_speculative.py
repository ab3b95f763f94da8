"""llama_cpp.llama_speculative: not in the browser (it raises ImportError saying why)."""

from ._unavailable import missing_module

raise missing_module(__name__, "speculative decoding (draft models) is not offered")
