"""What makes py_runner's archives reproducible: the one time they all hold, and an sdist rewritten so that
the same sources give the same bytes. Shared by the build backend (backend.py) and the page-wheel builder
(wheel.py), which import it and never each other."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

DEFAULT_EPOCH = 315532800  # 1980-01-01, the earliest time a zip file can hold: wheels and sdists agree


def normalize_sdist(path: Path, epoch: int) -> None:
    """Rewrite a .tar.gz in place with sorted members and fixed times, owners and modes."""
    with tarfile.open(path, "r:gz") as src:
        members = sorted(src.getmembers(), key=lambda m: m.name)
        payload = {m.name: src.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as out:
        for member in members:
            member.mtime = epoch
            member.uid = member.gid = 0
            member.uname = member.gname = "root"
            member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
            member.pax_headers = {}
            data = payload.get(member.name)
            out.addfile(member, io.BytesIO(data) if data is not None else None)
    with open(path, "wb") as f, gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as gz:
        gz.write(raw.getvalue())
