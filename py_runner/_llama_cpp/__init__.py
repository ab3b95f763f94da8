"""`import llama_cpp` in the page: llama-cpp-python's high-level names, served by py_runner.

The page's wheel (py_runner/host/build/wheel.py) carries this package a second time as the top-level package
`llama_cpp`, so that code written for llama-cpp-python keeps its import line in Pyodide, where
llama-cpp-python itself cannot be installed (it is a ctypes binding to a native library). CPython installs of
py_runner do not carry it: there, `llama_cpp` stays llama-cpp-python's. Each module has llama-cpp-python's
module name; what a browser cannot offer (the ctypes bindings, llava, the server) raises an ImportError that
says so and what to use.

Import rule: the standard library and py_runner's public names only (`from py_runner import ...`), so that the
same files work as `llama_cpp.*` and as `py_runner._llama_cpp.*`.
"""

from .llama import (
    BaseLlamaCache,
    Llama,
    LlamaCache,
    LlamaGrammar,
    LlamaRAMCache,
    LlamaState,
)

# The llama-cpp-python release whose API these names follow: the one whose sdist the engine is built from
# (py_runner/host/build/pins.py; tests/unit/test_llama_cpp_package.py holds the two equal).
__version__ = "0.3.36"

__all__ = [
    "BaseLlamaCache",
    "Llama",
    "LlamaCache",
    "LlamaGrammar",
    "LlamaRAMCache",
    "LlamaState",
    "__version__",
]
