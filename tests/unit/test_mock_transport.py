"""MockTransport, as a user's own unit test would use it: the README's example, run as written."""

import asyncio

from py_runner import GenerateTextParams, LlamaRunner, MockTransport


async def summarize(runner: LlamaRunner, text: str) -> str:  # the user's code under test
    result = await runner.generate_text(f"Summarize: {text}\n", GenerateTextParams(n_predict=32, temp=0))
    return result.text.strip()


def test_the_readme_example() -> None:
    async def main() -> None:
        transport = MockTransport(pieces=[(1, b"A cat"), (2, b" sat.")])  # (token id, bytes) per token
        runner = LlamaRunner(transport=transport)
        await runner.load_model("models/model.gguf")
        assert await summarize(runner, "The cat sat on the mat.") == "A cat sat."
        prompt, options = transport.generate_calls[0]  # every request is recorded
        assert prompt == "Summarize: The cat sat on the mat.\n" and options["n_predict"] == 32

    asyncio.run(main())
