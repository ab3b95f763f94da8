"""A dev-server handler with faults injected on chosen paths (tests only): a body cut at given offsets, error
statuses, a slow body. Honours Range and If-Range like the real server; the library's own server never
misbehaves this way. Shared by the download-integrity and model-cache tests."""

from __future__ import annotations

from http import HTTPStatus


class Faulty:
    """A server that honours Range and If-Range, with faults injected: `cuts` (file offsets: the next response
    that crosses one stops there and closes), `statuses` ({"full" | "resume": [status, ...]}: the next such
    request gets that error) and `chunk_delay_s` (a slow body)."""

    def __init__(self, data: bytes, cuts=(), statuses=None, chunk_delay_s: float = 0.0) -> None:
        self.data = data
        self.cuts = sorted(cuts)
        self.statuses = {kind: list(codes) for kind, codes in (statuses or {}).items()}
        self.chunk_delay_s = chunk_delay_s
        self.log: list[tuple[str, int]] = []  # (kind, status)


def faults_handler(base: type, faults: dict[str, Faulty]) -> type:
    import time

    class Handler(base):  # type: ignore[misc, valid-type]
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            fault = faults.get(self.path)
            if fault is None:
                return super().do_GET()
            data, asked = fault.data, self.headers.get("Range", "")
            start, end = 0, len(data) - 1
            if asked.startswith("bytes="):
                first, _, last = asked[len("bytes=") :].partition("-")
                start, end = int(first), min(int(last) if last else end, end)
            kind = "probe" if asked and start == 0 else "resume" if asked else "full"
            if fault.statuses.get(kind):
                status = fault.statuses[kind].pop(0)
                fault.log.append((kind, status))
                self.send_error(status)
                return None
            fault.log.append((kind, 206 if asked else 200))
            self.send_response(HTTPStatus.PARTIAL_CONTENT if asked else HTTPStatus.OK)
            if asked:
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(data)}")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("ETag", '"one"')
            self.send_header("Accept-Ranges", "bytes")
            stop = end + 1
            crossing = [c for c in fault.cuts if start < c <= end]
            if crossing and kind != "probe":
                stop = crossing[0]
                fault.cuts.remove(stop)
                self.close_connection = True
            self.end_headers()
            for at in range(start, stop, 64 * 1024):
                self.wfile.write(data[at : min(at + 64 * 1024, stop)])
                if fault.chunk_delay_s:
                    time.sleep(fault.chunk_delay_s)
            return None

    return Handler
