"""The cut between the Python API and I/O, one concern per module (as httpx/_transports/ is):

- base.py      Transport (the interface LlamaRunner talks to) and Artifacts (where the engine's files are)
- protocol.py  the worker protocol's names, codes and defaults, mirrored from web/shared/protocol.js
- pyodide.py   PyodideTransport: drives web/page/bridge.js in the browser (the only module touching js)
- mock.py      MockTransport: a scripted engine for unit tests without a browser (public)
"""

from .base import Artifacts, Transport
from .mock import MockTransport

__all__ = ["Artifacts", "MockTransport", "Transport"]
