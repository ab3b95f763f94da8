"""What llama_cpp cannot offer in a browser, said at import: a module that raises, and names that do."""

from collections.abc import Callable
from typing import Any

USE = (
    "py_runner runs llama.cpp in a Web Worker and offers llama-cpp-python's high-level API (llama_cpp.Llama)"
)


def missing_module(name: str, why: str) -> ImportError:
    return ImportError(f"{name} is not available in the browser: {why}. {USE}.", name=name)


def unavailable(module: str, **names: str) -> Callable[[str], Any]:
    """A module's __getattr__ that answers each of `names` with an ImportError giving its reason (so
    `from module import name` says why, not just that it failed), and anything else with AttributeError."""

    def __getattr__(attr: str) -> Any:
        if attr in names:
            raise ImportError(f"{module}.{attr} is not available in the browser: {names[attr]}", name=module)
        raise AttributeError(f"module {module!r} has no attribute {attr!r}")

    return __getattr__
