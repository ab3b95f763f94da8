"""Token pieces are raw bytes that may split a UTF-8 character; this turns them into safe text."""

from __future__ import annotations

import codecs


class Utf8Stream:
    """Incremental decoder: incomplete sequences are held back until complete, invalid bytes
    become U+FFFD. Call flush() at the end to release (as U+FFFD) a dangling partial sequence."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes | bytearray | memoryview) -> str:
        return self._decoder.decode(bytes(data), final=False)

    def flush(self) -> str:
        text = self._decoder.decode(b"", final=True)
        self._decoder.reset()
        return text
