"""A chat in the browser: py_runner answers with SmolLM2-135M-Instruct, streaming the reply.

Run it:     py-runner run --script main.py            (headless, from a checkout or an installed py_runner)
Ship it:    py-runner export . site --model <the GGUF> && py-runner export --preview site
"""

import sys

from chat import ChatSession

from py_runner import LlamaRunner

MODEL = sys.argv[1] if len(sys.argv) > 1 else "models/SmolLM2-135M-Instruct.Q4_1.gguf"  # beside the page

runner = LlamaRunner()
spec = await runner.load_model(MODEL)  # noqa: F704  (top-level await: the page runs this with it)
print(f"{spec.model_name} ({runner.build} build) is ready.\n")

session = ChatSession(runner)
for question in ("What is the capital of France?", "And what is it famous for?"):
    print(f"> {question}")
    await session.ask(question, on_text=lambda text: print(text, end="", flush=True))  # noqa: F704
    print("\n")
