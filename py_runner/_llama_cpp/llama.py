"""llama_cpp.llama: the Llama class and its state and cache types (py_runner's)."""

from py_runner import BaseLlamaCache, Llama, LlamaCache, LlamaGrammar, LlamaRAMCache, LlamaState

__all__ = ["BaseLlamaCache", "Llama", "LlamaCache", "LlamaGrammar", "LlamaRAMCache", "LlamaState"]
