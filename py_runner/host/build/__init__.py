"""Building and fetching (CPython only): what py_runner is made from and where it lies on disk.

- `pins`: every external input, pinned (name, version, sha256 of what its registry's client hands over).
- `assets`: fetching the pins through their registries' own clients (`python3 -m py_runner.host.build.assets
  fetch`, which scripts/fetch_assets.sh runs), and the default model.
- `paths`: where everything lives: the checkout or the installed bundle, the caches, the engine's builds.
- `wheel`: the wheel Pyodide installs in the page (the library and the engine), built reproducibly and cached.
- `backend`: the PEP 517 backend of `python -m build` (pyproject.toml's `build-backend`): setuptools',
  with a reproducible sdist and the staged bundle (py_runner/host/bundle/: engine builds, Pyodide, micropip,
  the page's wheel).
- `reproducible`: the time every archive holds and the sdist rewrite, shared by `backend` and `wheel`.

May import: the standard library, setuptools (in `backend`), the library (`py_runner`, for its files and
version) and each other in this order: pins <- paths <- assets; reproducible <- wheel <- backend. Nothing here
imports the rest of py_runner.host (browsers, server, CLI), so that the build backend loads with setuptools
alone.
"""
