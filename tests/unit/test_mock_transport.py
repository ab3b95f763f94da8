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
