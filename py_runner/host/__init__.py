"""py_runner's host tools: CPython only, never shipped into the page. By job:

- `browser/`: launching browsers (Chromium, Firefox ESR, WebKitGTK) and running Python in their pages
  (`choice`, `browsers`, `webkit`, `headless`, `in_page`, `page_code`).
- `bench/`: the benches behind `py-runner bench`, one module each (`load`, `generate`, `soak`, `vs_wllama`,
  `first_token`, `_memory`), and the programs they run in the page as files of their own (`bench/programs/`).
- `build/`: pinned external inputs and their fetching (`pins`, `assets`), where everything lives on disk
  (`paths`), the page's wheel (`wheel`), the PEP 517 build backend (`backend`) and what makes archives
  reproducible (`reproducible`).
- `cli`: the `py-runner` command line; `server`: the dev server; `export`: static sites (`export_lite`: the
  JupyterLite site of `export --jupyterlite`); `perplexity`: the
  browser against native llama.cpp over a text (`texts/`); `fixtures`: fixture models (numpy and gguf);
  `pytest_plugin`: the pytest plugin (entry point `pytest11`) for users' own in-browser apps; `skips`: the
  skip-or-fail rule of the tests.
- `web` is web/ mapped here as package data when py_runner is installed; `bundle/` is what the build staged.

Import rules: host modules may import the library (`py_runner`, `py_runner._*`); the library never imports
`py_runner.host` (tests/unit/test_layers.py checks it), so the wheel Pyodide installs holds no host code.
`build/` imports nothing else of the host, `browser/` only `build/`; the top-level modules and `bench/` use
both. No module of py_runner is in an import cycle, function-level imports included (test_layers.py).
"""
