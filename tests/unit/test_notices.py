"""THIRD_PARTY_NOTICES.txt (py_runner/host/build/notices.py): generated from the pinned inputs in the cache
(scripts/fetch_assets.sh), every bundled component with its license text; a model's license as its GGUF
names it, or a line saying it names none; the default model with its Apache-2.0 text."""

from __future__ import annotations

from pathlib import Path

import pytest

from py_runner.host.build import notices
from py_runner.host.build.paths import pyodide_dir
from py_runner.host.fixtures import fixture_model
from py_runner.host.skips import skip_or_fail


@pytest.fixture(scope="module")
def bundled() -> str:
    skip_or_fail(None if (pyodide_dir() / "package.json").is_file() else "run scripts/fetch_assets.sh")
    return notices.bundled_notices()


def test_every_bundled_component_comes_with_its_license_text(bundled: str) -> None:
    summary = bundled.split(notices.RULE, 1)[0]
    for name, license_id in [
        ("llama.cpp and ggml", "MIT"),
        ("nlohmann/json", "MIT"),
        ("Pyodide", "MPL-2.0"),
        ("micropip", "MPL-2.0"),
        ("CPython", "PSF-2.0"),
    ]:
        assert any(line.startswith(name) and line.endswith(license_id) for line in summary.splitlines()), name
    for text in [
        "Copyright (c) 2023-2026 The ggml authors",  # llama.cpp's and ggml's LICENSE
        "Copyright (c) 2013-2025 Niels Lohmann",
        "Mozilla Public License Version 2.0",
        "PYTHON SOFTWARE FOUNDATION LICENSE VERSION 2",
    ]:
        assert text in bundled, text
    assert "3.14.2" in summary and "314.0.7" in summary  # CPython's version from Pyodide's lock


def gguf_with(path: Path, **keys: str) -> Path:
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    for key, value in keys.items():
        writer.add_string(key, value)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.close()
    return path


def test_a_model_is_recorded_as_its_gguf_names_its_license(tmp_path: Path) -> None:
    named = notices.model_license(
        gguf_with(
            tmp_path / "named.gguf",
            **{
                "general.license": "other",
                "general.license.name": "acme-1",
                "general.license.link": "https://x",
            },
        ),
        "named.gguf",
    )
    assert (named.license, named.name, named.link, named.named) == ("other", "acme-1", "https://x", True)
    text = named.render()
    assert "Model: named.gguf" in text and "License: other" in text and "License link: https://x" in text
    silent = notices.model_license(fixture_model("tiny", "f16"), "tiny.gguf")
    assert not silent.named and "names no license" in silent.render()
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("not a model")
    assert not notices.model_license(not_gguf, "notes.gguf").named


def test_the_default_model_comes_with_its_apache_license_text() -> None:
    from py_runner.host.build.assets import default_model

    record = notices.model_license(default_model(), "SmolLM2-135M-Instruct.Q4_1.gguf")
    assert record.license == "apache-2.0" and record.text is not None
    assert "Apache License" in record.text and "Version 2.0, January 2004" in record.text
    site = notices.site_notices([record])
    assert site.startswith(notices.bundled_notices()) and "Model: SmolLM2-135M-Instruct.Q4_1.gguf" in site
