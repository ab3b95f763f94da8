import pytest

from py_runner._stop import StopMatcher


def run(pieces, stop):
    m = StopMatcher(stop)
    shown = [m.feed(p) for p in pieces]
    return shown, m.flush(), m.stopped


def test_stop_string_split_across_pieces_is_never_shown() -> None:
    shown, rest, stopped = run(["Hello", " wor", "ld<", "|en", "d|> more"], ["<|end|>"])
    assert "".join(shown) == "Hello world" and rest == "" and stopped
    assert shown == ["Hello", " wor", "ld", "", ""]


def test_held_text_that_is_not_a_stop_string_comes_back() -> None:
    shown, rest, stopped = run(["a <", "b", " <|e"], ["<|end|>"])
    assert "".join(shown) + rest == "a <b <|e" and not stopped
    assert shown == ["a ", "<b", " "] and rest == "<|e"


@pytest.mark.parametrize(
    "pieces, stop, text",
    [
        (["xxSTOPyy"], ["STOP"], "xx"),
        (["ab", "c"], ["bc", "abc"], ""),  # the earliest match wins
        (["one\n\ntwo"], ["\n\n", "two"], "one"),
        (["nothing"], [], "nothing"),
    ],
)
def test_cases(pieces, stop, text) -> None:
    shown, rest, _ = run(pieces, stop)
    assert "".join(shown) + rest == text
