"""A dev-server handler with faults injected on chosen paths (tests only): a body cut at given offsets, error
statuses, a slow body, a file replaced after a cut. Honours Range and If-Range like the real server, and
records both headers of every request; the library's own server never misbehaves this way. Shared by the
download-integrity and model-cache tests."""

from __future__ import annotations

import hashlib
from http import HTTPStatus

from py_runner._transport.protocol import DOWNLOAD_WINDOW_BYTES

FIRST_WINDOW = f"bytes=0-{DOWNLOAD_WINDOW_BYTES - 1}"  # what a same-origin download asks for first


def etag_of(data: bytes) -> str:
    """A strong ETag that changes with the bytes, as a real server's does when the file changes."""
    return f'"{hashlib.sha256(data).hexdigest()[:16]}"'


class Faulty:
    """A server that honours Range and If-Range, with faults injected: `cuts` (file offsets: the next response
    that crosses one stops there and closes), `statuses` ({"full" | "resume": [status, ...]}: the next such
    request gets that error), `chunk_delay_s` (a slow body) and `then` (the file that replaces `data` on the
    server once a cut has dropped a connection: a resume whose If-Range names the old ETag gets it whole)."""

    def __init__(
        self, data: bytes, cuts=(), statuses=None, chunk_delay_s: float = 0.0, then: bytes | None = None
    ) -> None:
        self.data = data
        self.cuts = sorted(cuts)
        self.statuses = {kind: list(codes) for kind, codes in (statuses or {}).items()}
        self.chunk_delay_s = chunk_delay_s
        self.then = then
        self.log: list[tuple[str, int]] = []  # (kind, status)
        self.asked: list[tuple[str, str | None]] = []  # (Range, If-Range) of each request, as sent


def faults_handler(base: type, faults: dict[str, Faulty]) -> type:
    import time

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            fault = faults.get(self.path)
            if fault is None:
                return super().do_GET()
            data, asked, if_range = fault.data, self.headers.get("Range", ""), self.headers.get("If-Range")
            fault.asked.append((asked, if_range))
            etag = etag_of(data)
            # a download's first window (same origin: web/shared/download.js) starts it as a plain GET would;
            # any other "bytes=0-N" is the GGUF header probe
            probe = asked.startswith("bytes=0-")
            kind = "full" if asked in ("", FIRST_WINDOW) else "probe" if probe else "resume"
            if asked and if_range is not None and if_range.strip() != etag:
                asked = ""  # RFC 9110 13.1.5: the file changed since the client's copy: all of it, with 200
            start, end = 0, len(data) - 1
            if asked.startswith("bytes="):
                first, _, last = asked[len("bytes=") :].partition("-")
                start, end = int(first), min(int(last) if last else end, end)
            if fault.statuses.get(kind):
                status = fault.statuses[kind].pop(0)
                fault.log.append((kind, status))
                self.send_error(status)
                return None
            if start > end:  # past the end: as the real server answers it
                fault.log.append((kind, HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE))
                self.send_response(HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            fault.log.append((kind, 206 if asked else 200))
            self.send_response(HTTPStatus.PARTIAL_CONTENT if asked else HTTPStatus.OK)
            if asked:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("ETag", etag)
            self.send_header("Accept-Ranges", "bytes")
            stop = end + 1
            crossing = [c for c in fault.cuts if start < c <= end]
            if crossing and kind != "probe":
                stop = crossing[0]
                fault.cuts.remove(stop)
                self.close_connection = True
                if fault.then is not None:  # the file changes on the server while the client is cut off
                    fault.data, fault.then = fault.then, None
            self.end_headers()
            for at in range(start, stop, 64 * 1024):
                self.wfile.write(data[at : min(at + 64 * 1024, stop)])
                if fault.chunk_delay_s:
                    time.sleep(fault.chunk_delay_s)
            return None

    return Handler
