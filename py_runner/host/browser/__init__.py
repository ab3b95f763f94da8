"""Browsers for the host tools (CPython only): launching them offline and running Python in their pages.

- `choice`: which browser this process drives (``PY_RUNNER_BROWSER``) and where its executable is; the leaf.
- `browsers`: whether a browser can launch here, and launching it (Playwright's Chromium and Firefox ESR,
  `launch_webkit` for WebKitGTK); re-exports `choice`'s names, so callers read one module.
- `webkit`: WebKitGTK's MiniBrowser through Selenium and WebKitWebDriver on Xvfb, with the few Playwright
  `Page` methods the harness uses.
- `headless`: the harness page (web/site/run.html): `run_in_browser` (a script, its output and exit status,
  for `py-runner run`), `open_browser`, `harness_page` / `HarnessPage` (Pyodide and py_runner booted, for the
  benches, `perplexity` and the tests).
- `in_page`: the one way code runs in a harness page from the host, `PageRunner.run` (the host's clock, values
  with their types, the page's output kept); `HarnessPage.run` and the pytest plugin's `py_runner_page.run`
  both go through it. `page_code` is its half that runs in Pyodide (sent as text, linted and tested here).

May import: the standard library, Playwright and Selenium (inside the functions that drive them),
`py_runner.host.build` (paths: the cache), and each other in this order: choice <- webkit <- browsers <-
in_page <- headless. Nothing here imports the CLI, the server, the benches or the pytest plugin.
"""
