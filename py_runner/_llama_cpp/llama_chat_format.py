"""llama_cpp.llama_chat_format: not in the browser (it raises ImportError saying why)."""

from ._unavailable import missing_module

raise missing_module(
    __name__,
    "llama-cpp-python's chat formatters render with jinja2 and numpy, which no registry serves built "
    "for Pyodide; py_runner renders chats with llama.cpp's own chat layer "
    "(Llama.create_chat_completion, LlamaRunner.apply_chat)",
)
