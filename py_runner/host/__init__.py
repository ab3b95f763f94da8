"""py_runner's host tools: CPython only, never shipped into the page.

The `py-runner` command line (cli), the dev server (server), the headless Chromium runner (headless),
benches (bench), fixture models (fixtures, which need numpy and gguf), the Pyodide wheel builder (wheel),
the PEP 517 build backend (build_backend), pinned external inputs and their fetching (pins, assets) and where
everything lives on disk (paths); web/ is mapped here as package data (web) when py_runner is installed.

Import rule: host modules may import the library (`py_runner`, `py_runner._*`); the library never imports
`py_runner.host` (tests/unit/test_layers.py checks it), so the wheel Pyodide installs holds the library alone.
"""
