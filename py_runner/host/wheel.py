"""Build py_runner's own pure-Python wheel with zipfile (no build backend), for micropip in Pyodide.

The wheel is deterministic: fixed file order, fixed timestamps and permissions, so the same sources
give the same bytes (and the same sha256).
"""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the library: py_runner/*.py, not host/
PYPROJECT = PACKAGE_DIR.parent / "pyproject.toml"
DIST_NAME = "py_runner"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)


def project_metadata() -> dict:
    """The [project] table of pyproject.toml (read without importing py_runner)."""
    with open(PYPROJECT, "rb") as f:
        return tomllib.load(f)["project"]


def version() -> str:
    return str(project_metadata()["version"])


def wheel_name() -> str:
    return f"{DIST_NAME}-{version()}-py3-none-any.whl"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
    return f"sha256={digest}"


def _metadata_text(project: dict) -> str:
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {DIST_NAME}",
        f"Version: {project['version']}",
    ]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lic = project.get("license")
    if isinstance(lic, dict) and lic.get("text"):
        lines.append(f"License: {lic['text']}")
    for dep in project.get("dependencies", []):
        lines.append(f"Requires-Dist: {dep}")
    return "\n".join(lines) + "\n\n"


def _wheel_text() -> str:
    return "Wheel-Version: 1.0\nGenerator: py_runner.host.wheel\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _source_files() -> list[Path]:
    return sorted(p for p in PACKAGE_DIR.glob("*.py") if p.is_file())


def _write(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o100644 & 0xFFFF) << 16
    info.create_system = 3
    zf.writestr(info, data)


def build_wheel(out_dir: str | Path) -> Path:
    """Write ``py_runner-<version>-py3-none-any.whl`` into ``out_dir`` and return its path."""
    project = project_metadata()
    ver = str(project["version"])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dist_info = f"{DIST_NAME}-{ver}.dist-info"

    entries: list[tuple[str, bytes]] = []
    for path in _source_files():
        entries.append((f"{DIST_NAME}/{path.name}", path.read_bytes()))
    entries.append((f"{dist_info}/METADATA", _metadata_text(project).encode("utf-8")))
    entries.append((f"{dist_info}/WHEEL", _wheel_text().encode("utf-8")))
    entries.append((f"{dist_info}/top_level.txt", f"{DIST_NAME}\n".encode()))

    record_name = f"{dist_info}/RECORD"
    record_lines = [f"{name},{_record_hash(data)},{len(data)}" for name, data in entries]
    record_lines.append(f"{record_name},,")
    entries.append((record_name, ("\n".join(record_lines) + "\n").encode("utf-8")))

    target = out_dir / f"{DIST_NAME}-{ver}-py3-none-any.whl"
    tmp = target.with_name(target.name + ".tmp")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name, data in entries:
            _write(zf, name, data)
    tmp.replace(target)
    return target
