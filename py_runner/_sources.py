"""What a model source is, and how a split GGUF's first shard names the others.

llama.cpp names shards `<prefix>-00001-of-00003.gguf` (llama_split_path) and loads the rest from the first
one's folder; a URL to the first shard therefore implies the URLs of all of them.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ._errors import InvalidParameterError, ModelCompatibilityError

FETCHABLE_SCHEMES = ("http", "https", "blob", "data")  # what a page's fetch() can load a model from
_SHARD_RE = re.compile(r"^(?P<prefix>.*)-(?P<no>\d{5})-of-(?P<count>\d{5})\.gguf$")


def describe(source: Any) -> str:
    """A short name for messages: the URL, or the first URL of a list, or 'the model file'."""
    if isinstance(source, str):
        return source
    if isinstance(source, list | tuple) and source and isinstance(source[0], str):
        return source[0]
    return "the model file"


def check_url_schemes(source: Any) -> None:
    """Refuse a model URL whose scheme a page cannot fetch a model from (`javascript:`, `file:`, `ftp:`, ...):
    the browser's fetch() would fail with a TypeError that reads like a CORS or network failure. Relative URLs
    and http(s), blob and data URLs pass. The check parses as the browser does (leading spaces and control
    characters dropped, tabs and newlines removed), so `" java\tscript:"` is caught too."""
    urls = [source] if isinstance(source, str) else source if isinstance(source, list | tuple) else []
    for url in urls:
        if not isinstance(url, str):
            continue
        try:
            scheme = urlsplit(url).scheme.lower()
        except ValueError as err:
            raise InvalidParameterError(f"model URL {url!r} is not a valid URL: {err}") from None
        if scheme and scheme not in FETCHABLE_SCHEMES:
            allowed = ", ".join(f"{s}:" for s in FETCHABLE_SCHEMES)
            raise InvalidParameterError(
                f"model URL scheme {scheme + ':'!r} is not supported ({allowed} or a relative URL): "
                f"{url[:80]!r}"
            )


def first_part(source: Any) -> Any:
    """The part that carries the GGUF header (the first shard of a split model)."""
    return source[0] if isinstance(source, list | tuple) else source


def in_shard_order(source: Any) -> Any:
    """A list of shards as llama.cpp needs them, first shard first: a file picker or a user may give them in
    any order. Sorted only when every part is named like a shard of the same split (a URL by its path, a
    File by its name); any other list is kept as given, and the header check says what is wrong with it."""
    if not isinstance(source, list | tuple) or len(source) < 2:
        return source
    numbered = []
    for part in source:
        name = urlsplit(part).path if isinstance(part, str) else getattr(part, "name", None)
        match = _SHARD_RE.match(name.rsplit("/", 1)[-1]) if isinstance(name, str) else None
        if match is None:
            return source
        numbered.append((int(match["no"]), match["prefix"], match["count"], part))
    if len({(prefix, count) for _, prefix, count, _ in numbered}) != 1:
        return source
    if len({no for no, *_ in numbered}) != len(numbered):
        return source
    return [part for *_, part in sorted(numbered, key=lambda n: n[0])]


def shard_urls(first_url: str, count: int) -> list[str]:
    """All shard URLs of a split GGUF from its first shard's URL (query and fragment kept per shard)."""
    path, sep, rest = first_url.partition("?")
    path, hash_sep, fragment = path.partition("#") if not sep else (path, "", "")
    match = _SHARD_RE.match(path)
    if not match or int(match["no"]) != 1 or int(match["count"]) != count:
        raise ModelCompatibilityError(
            f"{first_url} is shard 1 of a {count}-part split GGUF, but its name does not end with "
            f"-00001-of-{count:05d}.gguf: pass the list of all shard URLs instead"
        )
    tail = (sep + rest) if sep else (hash_sep + fragment)
    return [f"{match['prefix']}-{i:05d}-of-{count:05d}.gguf{tail}" for i in range(1, count + 1)]


def expand_split(source: Any, split_no: int | None, split_count: int | None) -> Any:
    """The source to load: for a split GGUF all shards (checked against the header), else unchanged."""
    label = describe(source)
    if split_count is None or split_count <= 1:
        if isinstance(source, list | tuple) and len(source) > 1:
            raise ModelCompatibilityError(f"{label}: {len(source)} files given but the model is not split")
        return source
    if split_no not in (None, 0):
        raise ModelCompatibilityError(
            f"{label} is shard {split_no + 1} of {split_count}: load the first shard (or all of them)"
        )
    if isinstance(source, str):
        return shard_urls(source, split_count)
    if isinstance(source, list | tuple):
        if len(source) != split_count:
            raise ModelCompatibilityError(f"{label}: the model has {split_count} shards, {len(source)} given")
        return list(source)
    raise ModelCompatibilityError(f"{label} is shard 1 of {split_count}: pass all {split_count} files")
