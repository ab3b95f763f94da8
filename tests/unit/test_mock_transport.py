"""MockTransport, as a user's own unit test would use it: the README's example, run from the README's own text
(so that the README cannot drift from what the library does unseen)."""

import ast
import asyncio
import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Testing your own code without a browser"


def readme_example() -> str:
    """The first ```python block under SECTION, exactly as the README prints it."""
    text = README.read_text(encoding="utf-8")
    assert SECTION in text, f"README lost its section {SECTION!r}"
    block = re.search(r"```python\n(.*?)```", text.split(SECTION, 1)[1], re.S)
    assert block, f"README's section {SECTION!r} has no python example"
    return block.group(1)


def test_the_readme_example_runs_as_written() -> None:
    source = readme_example()
    # The README's code uses top-level await, as a notebook or a `py-runner run --script` would.
    code = compile(source, str(README), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
    scope: dict = {}

    async def main() -> None:
        result = eval(code, scope)  # a coroutine: the code awaits
        if result is not None:
            await result

    asyncio.run(main())
    # What the example says it shows holds: the reply, and the request it recorded.
    assert scope["result"].text == "A cat sat."
    assert scope["prompt"] == "Summarize: The cat sat on the mat.\n"
    assert scope["options"]["temp"] == 0
    assert scope["transport"].generate_calls == [(scope["prompt"], scope["options"])]


def run(coro):  # noqa: ANN001, ANN201
    return asyncio.run(coro)


def test_a_handler_replaces_the_scripted_engine_for_its_request() -> None:
    from py_runner import LlamaRunner, MockTransport

    seen = []

    def tokenize(request):  # noqa: ANN001, ANN202
        seen.append(request.fields)
        return {"tokens": [7, 8, 9]}

    transport = MockTransport(handlers={"tokenize": tokenize})

    async def main() -> list[int]:
        runner = LlamaRunner(transport=transport)
        await runner.load_model("models/model.gguf")
        return await runner.tokenize("anything")

    assert run(main()) == [7, 8, 9]
    assert seen == [{"text": "anything", "add_special": True, "parse_special": False}]
    assert [r.type for r in transport.requests] == ["load", "tokenize"]


def test_requests_and_results_are_held_to_the_protocol_declaration() -> None:
    import pytest

    from py_runner import MockTransport
    from py_runner._errors import BridgeError

    with pytest.raises(ValueError, match="no request named"):
        MockTransport(handlers={"tokenise": lambda request: {}})
    # any declared request takes a handler, one the scripted engine has none for too
    started = MockTransport(handlers={"init": lambda r: {"build": r.fields["build"], "threads": 1}})
    init = {"build": "st", "moduleUrl": "x.js", "threads": 1}
    assert run(started.request("init", init)) == {"build": "st", "threads": 1}
    transport = MockTransport(handlers={"detokenize": lambda request: {"text": "wrong shape"}})

    async def ask(type_: str, fields: dict) -> object:
        await transport.start()
        return await transport.request(type_, fields)

    words = {"text": "x", "add_special": True, "parse_special": False}
    for type_, fields, said in [
        ("init", {"build": "st", "moduleUrl": "x.js", "threads": 1}, "no handler for the request 'init'"),
        ("tokenize", {**words, "extra": 1}, "no field extra"),
        ("tokenize", {"text": "x", "add_special": True}, "parse_special is missing"),
        ("tokenize", {**words, "text": 3}, "text should be str"),
        ("summarize", {}, "unknown request type summarize"),
        ("detokenize", {"tokens": [1], "remove_special": False, "unparse_special": False}, "no field text"),
    ]:
        with pytest.raises(BridgeError, match=said):
            run(ask(type_, fields))
