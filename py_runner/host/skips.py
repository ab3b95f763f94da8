"""Skips for a missing environment (a browser, a build, a model, a package), in one place: with
PY_RUNNER_REQUIRE_E2E=1 (CI, or your own CI with py_runner's pytest plugin) each one is a failure instead, so
that a run which could not test something says so instead of passing quietly.
"""

from __future__ import annotations

import os
from types import ModuleType

REQUIRE_ENV = "PY_RUNNER_REQUIRE_E2E"


def required() -> bool:
    """Whether a missing environment fails the test instead of skipping it."""
    return os.environ.get(REQUIRE_ENV) == "1"


def skip_or_fail(reason: str | None) -> None:
    """Nothing when `reason` is None; else skip the test, or fail it under PY_RUNNER_REQUIRE_E2E=1."""
    import pytest

    if reason is None:
        return
    if required():
        pytest.fail(f"{REQUIRE_ENV}=1 but: {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)  # also at a module's top, as importorskip is


def import_or_skip(name: str) -> ModuleType:
    """The module, as `pytest.importorskip` gives it, under the same rule (at a module's top too)."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        skip_or_fail(f"{name} is not importable: {exc}")
        raise  # not reached: skip_or_fail raised
