#!/usr/bin/env bash
# Fetch the pinned browser-side assets into the py_runner cache (idempotent):
#   - the Pyodide npm package      -> $PY_RUNNER_CACHE/pyodide/<version>/  (files at the top level)
#   - the micropip wheel (PyPI)    -> $PY_RUNNER_CACHE/wheels/
# PY_RUNNER_CACHE defaults to ~/.cache/py_runner. PYODIDE_TGZ may name an already downloaded
# pyodide-<version>.tgz (from `npm pack`) to use instead of asking the npm registry.
set -euo pipefail

PYODIDE_VERSION="314.0.7"
PYODIDE_TGZ_SHA256="66b7949e5a0cba2250b586d7e368bf12fb482800748d182c4618254b685ffaa0"
MICROPIP_VERSION="0.11.1"
MICROPIP_WHEEL_SHA256="768de165adb8e66906039d8fec4127a57f522dfdf8e6fbff877a4616941ecfd3"
PYTHON="${PYTHON:-python3}"

CACHE="${PY_RUNNER_CACHE:-$HOME/.cache/py_runner}"
PYODIDE_DIR="$CACHE/pyodide/$PYODIDE_VERSION"
WHEELS_DIR="$CACHE/wheels"

# --- Pyodide -------------------------------------------------------------------------------
if [[ -f "$PYODIDE_DIR/pyodide.mjs" && -f "$PYODIDE_DIR/pyodide.asm.wasm" && -f "$PYODIDE_DIR/.complete" ]]; then
    echo "pyodide $PYODIDE_VERSION: present in $PYODIDE_DIR"
else
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    if [[ -n "${PYODIDE_TGZ:-}" ]]; then
        tgz="$PYODIDE_TGZ"
    else
        (cd "$tmp" && npm pack --silent "pyodide@$PYODIDE_VERSION" >/dev/null)
        tgz="$tmp/pyodide-$PYODIDE_VERSION.tgz"
    fi
    echo "$PYODIDE_TGZ_SHA256  $tgz" | sha256sum -c --status \
        || { echo "pyodide-$PYODIDE_VERSION.tgz: sha256 mismatch" >&2; exit 1; }
    mkdir -p "$tmp/x"
    tar -xzf "$tgz" -C "$tmp/x"
    rm -rf "$PYODIDE_DIR.partial"
    mkdir -p "$(dirname "$PYODIDE_DIR")"
    mv "$tmp/x/package" "$PYODIDE_DIR.partial"
    touch "$PYODIDE_DIR.partial/.complete"
    rm -rf "$PYODIDE_DIR"
    mv "$PYODIDE_DIR.partial" "$PYODIDE_DIR"
    echo "pyodide $PYODIDE_VERSION: extracted into $PYODIDE_DIR"
fi

# --- micropip ------------------------------------------------------------------------------
mkdir -p "$WHEELS_DIR"
if compgen -G "$WHEELS_DIR/micropip-$MICROPIP_VERSION-*.whl" >/dev/null; then
    echo "micropip $MICROPIP_VERSION: present in $WHEELS_DIR"
else
    "$PYTHON" -m pip download --quiet "micropip==$MICROPIP_VERSION" --python-version 3.14 \
        --only-binary=:all: --no-deps -d "$WHEELS_DIR"
    wheel="$(compgen -G "$WHEELS_DIR/micropip-$MICROPIP_VERSION-*.whl" | head -n1)"
    echo "$MICROPIP_WHEEL_SHA256  $wheel" | sha256sum -c --status \
        || { rm -f "$wheel"; echo "$wheel: sha256 mismatch" >&2; exit 1; }
    echo "micropip $MICROPIP_VERSION: downloaded into $WHEELS_DIR"
fi
