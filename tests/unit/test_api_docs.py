"""The API reference (scripts/api_docs.sh: pdoc over py_runner's docstrings) builds without a warning, and
documents every name `py_runner` exports."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import py_runner

ROOT = Path(__file__).resolve().parents[2]


def test_the_api_reference_builds_and_documents_every_exported_name(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "api_docs.sh"), str(tmp_path / "api")],
        capture_output=True,
        text=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr  # a warning (an unreadable annotation) fails it
    page = (tmp_path / "api" / "py_runner.html").read_text(encoding="utf-8")
    documented = set(re.findall(r'id="([A-Za-z_][A-Za-z0-9_]*)"', page))
    missing = [name for name in py_runner.__all__ if name not in documented and not name.startswith("__")]
    assert not missing, missing
    assert "Load a model from a URL str" in page  # LlamaRunner.load_model's docstring, rendered
