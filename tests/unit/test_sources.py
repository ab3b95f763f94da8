import asyncio

import pytest

from py_runner import InvalidParameterError, LlamaRunner, MockTransport, ModelCompatibilityError
from py_runner._sources import check_url_schemes, expand_split, in_shard_order, shard_urls


def test_shard_urls_from_the_first() -> None:
    assert shard_urls("https://h/m/model-00001-of-00003.gguf", 3) == [
        "https://h/m/model-00001-of-00003.gguf",
        "https://h/m/model-00002-of-00003.gguf",
        "https://h/m/model-00003-of-00003.gguf",
    ]
    assert shard_urls("/m/a-b-00001-of-00002.gguf?token=x", 2)[1] == "/m/a-b-00002-of-00002.gguf?token=x"


@pytest.mark.parametrize(
    "url", ["/m/model.gguf", "/m/model-00002-of-00003.gguf", "/m/model-00001-of-00004.gguf"]
)
def test_shard_urls_need_the_llama_cpp_naming(url: str) -> None:
    with pytest.raises(ModelCompatibilityError, match="-00001-of-00003.gguf"):
        shard_urls(url, 3)


class _File:  # what a JS File looks like from Python: an object with a .name
    def __init__(self, name: str) -> None:
        self.name = name


def test_shards_in_any_order_are_put_first_shard_first() -> None:
    files = [_File(f"m-{i:05d}-of-00003.gguf") for i in (3, 1, 2)]
    assert [f.name for f in in_shard_order(files)] == [f"m-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    urls = ["/a/m-00002-of-00002.gguf?t=1", "/a/m-00001-of-00002.gguf?t=1"]
    assert in_shard_order(urls) == urls[::-1]
    assert in_shard_order(tuple(urls)) == urls[::-1]


@pytest.mark.parametrize(
    "names",
    [
        ["b.gguf", "a.gguf"],  # not shards: kept, the header check says what is wrong
        ["m-00002-of-00002.gguf", "n-00001-of-00002.gguf"],  # two different splits
        ["m-00002-of-00003.gguf", "m-00001-of-00002.gguf"],  # counts disagree
        ["m-00002-of-00002.gguf", "m-00002-of-00002.gguf"],  # the same shard twice
    ],
)
def test_lists_that_are_not_one_split_are_kept_as_given(names: list[str]) -> None:
    files = [_File(n) for n in names]
    assert in_shard_order(files) == files
    assert in_shard_order(names) == names
    assert in_shard_order("/m-00002-of-00002.gguf") == "/m-00002-of-00002.gguf"


def test_expand_split() -> None:
    assert expand_split("/m.gguf", None, None) == "/m.gguf"
    assert expand_split("/x-00001-of-00002.gguf", 0, 2) == [
        "/x-00001-of-00002.gguf",
        "/x-00002-of-00002.gguf",
    ]
    assert expand_split(["/a", "/b"], 0, 2) == ["/a", "/b"]
    with pytest.raises(ModelCompatibilityError, match="shard 2 of 3"):
        expand_split("/x-00002-of-00003.gguf", 1, 3)
    with pytest.raises(ModelCompatibilityError, match="3 shards, 2 given"):
        expand_split(["/a", "/b"], 0, 3)
    with pytest.raises(ModelCompatibilityError, match="pass all 2 files"):
        expand_split(b"GGUF", 0, 2)
    with pytest.raises(ModelCompatibilityError, match="not split"):
        expand_split(["/a", "/b"], None, None)


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("javascript:alert(1)", "javascript:"),
        (" Java\tScript:alert(1)", "javascript:"),  # as a browser parses it: spaces dropped, tabs removed
        ("file:///models/m.gguf", "file:"),
        ("ftp://example.test/m.gguf", "ftp:"),
        (["https://h/m-00001-of-00002.gguf", "chrome://m-00002-of-00002.gguf"], "chrome:"),
    ],
)
def test_a_model_url_scheme_a_page_cannot_fetch_is_named(url, scheme: str) -> None:
    """It was fetched and reported as a CORS error; now it is refused by name before any request."""
    transport = MockTransport()
    runner = LlamaRunner(transport=transport)
    with pytest.raises(InvalidParameterError, match=f"model URL scheme '{scheme}' is not supported"):
        asyncio.run(runner.load_model(url))
    assert transport.load_calls == [] and not runner.is_model_loaded


@pytest.mark.parametrize("url", ["models/m.gguf", "/m.gguf", "https://h/m.gguf", "http://h/m.gguf?a=b:c"])
def test_relative_and_http_model_urls_pass(url: str) -> None:
    check_url_schemes(url)
    asyncio.run(LlamaRunner(transport=MockTransport()).load_model(url))
