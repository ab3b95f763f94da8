"""The page's `llama_cpp` package (py_runner/_llama_cpp, carried by the page wheel as top-level `llama_cpp`),
read here as py_runner._llama_cpp: llama-cpp-python's names are py_runner's, its version is the pinned
llama-cpp-python's, and what a browser cannot offer says so when imported. (`import llama_cpp` in a real
page: tests/e2e/test_llama_api.py.)"""

import importlib

import pytest

import py_runner
from py_runner.host.build.pins import LLAMA_CPP_PYTHON


def test_the_high_level_names_are_py_runners() -> None:
    package = importlib.import_module("py_runner._llama_cpp")
    assert package.__version__ == LLAMA_CPP_PYTHON.version  # the API it follows is the pinned release's
    for name in ("Llama", "LlamaState", "LlamaGrammar", "LlamaRAMCache", "LlamaCache", "BaseLlamaCache"):
        assert getattr(package, name) is getattr(py_runner, name)
    grammar = importlib.import_module("py_runner._llama_cpp.llama_grammar")
    assert grammar.json_schema_to_gbnf('{"type": "boolean"}').startswith("root ::= ")
    assert importlib.import_module("py_runner._llama_cpp.llama").Llama is py_runner.Llama


@pytest.mark.parametrize(
    ("module", "said"),
    [
        ("llama_cpp", "ctypes binding to libllama"),
        ("_internals", "wrappers around the ctypes binding"),
        ("llava_cpp", "native library"),
        ("mtmd_cpp", "native library"),
        ("llama_chat_format", "no registry serves built for Pyodide"),
        ("llama_speculative", "not offered"),
    ],
)
def test_what_a_browser_cannot_offer_is_an_import_error_that_says_why(module: str, said: str) -> None:
    with pytest.raises(ImportError, match=said) as caught:
        importlib.import_module(f"py_runner._llama_cpp.{module}")
    assert "llama_cpp.Llama" in str(caught.value)


def test_a_missing_name_says_why_too() -> None:
    with pytest.raises(ImportError, match="LlamaRunner.save_session"):
        from py_runner._llama_cpp.llama_cache import LlamaDiskCache  # noqa: F401
    with pytest.raises(ImportError):  # any other name: Python's own "cannot import name"
        from py_runner._llama_cpp.llama_cache import Nothing  # noqa: F401
