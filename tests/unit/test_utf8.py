from py_runner._utf8 import Utf8Stream


def feed_all(pieces):
    s = Utf8Stream()
    out = [s.feed(p) for p in pieces]
    return out, s.flush()


def test_emoji_split_every_byte():
    b = "😀".encode()
    out, tail = feed_all([b[:1], b[1:2], b[2:3], b[3:]])
    assert out == ["", "", "", "😀"] and tail == ""


def test_cjk_split_across_tokens_with_ascii():
    b = "x中文y".encode()  # x, 3 bytes, 3 bytes, y
    out, tail = feed_all([b[:2], b[2:5], b[5:]])
    assert out == ["x", "中", "文y"] and tail == ""
    assert all(isinstance(t, str) for t in out)


def test_invalid_bytes_become_replacement():
    out, tail = feed_all([b"a\xffb", b"\xc3(", b"\xed\xa0\x80"])  # bad start, bad continuation, surrogate
    text = "".join(out) + tail
    assert text.startswith("a\ufffdb\ufffd(") and "\ufffd" in text[5:]
    text.encode("utf-8")  # always valid UTF-8


def test_truncated_sequence_released_on_flush_and_reusable():
    s = Utf8Stream()
    assert s.feed(b"ok\xe4\xb8") == "ok"
    assert s.flush() == "\ufffd"
    assert s.feed(bytearray(b"\xe4\xb8\xad")) == "中"
    assert s.feed(memoryview(b"!")) == "!"
