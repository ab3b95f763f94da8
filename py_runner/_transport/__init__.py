"""The cut between the Python API and I/O, one concern per module (as httpx/_transports/ is):

- base.py      Transport (the interface LlamaRunner talks to) and Artifacts (where the engine's files are)
- protocol.py  the worker protocol's names, codes and defaults, mirrored from web/shared/protocol.js
- pyodide.py   PyodideTransport: drives web/page/bridge.js in the browser (the only module touching js)
- mock.py      MockTransport: a scripted engine for unit tests without a browser (public)
- installed.py the engine from the installed wheel (blob: URLs) where nothing else says where it is

Import rule: modules here import only each other and the library's `_errors`; never the API above them
(`_runner`, `_llama*`) nor `py_runner.host`.
"""

from .base import Artifacts, Transport
from .mock import MockTransport

__all__ = ["Artifacts", "MockTransport", "Transport"]
