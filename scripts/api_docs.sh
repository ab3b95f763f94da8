#!/usr/bin/env bash
# The API reference of py_runner (the library the page installs: what `import py_runner` exports), generated from
# its docstrings and type hints by pdoc (PyPI, the test extra) into OUT (default docs/api/; open OUT/index.html).
# A warning fails it (-W error): an annotation or docstring pdoc cannot read is an error, here and in CI
# (tests/unit/test_api_docs.py builds it too).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out="${1:-docs/api}"
"${PYTHON:-python3}" -W error -m pdoc py_runner --docformat markdown --no-show-source -o "$out"
echo "$out/index.html"
