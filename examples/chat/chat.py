"""The chat app's logic: a conversation with a model through py_runner, kept turn by turn."""

from __future__ import annotations

from py_runner import GenerateTextParams, LlamaRunner


class ChatSession:
    """Asks the model, remembers the conversation: each answer sees every earlier turn (and py_runner reuses
    the KV cache for them, so a follow-up costs only its own tokens)."""

    def __init__(
        self, runner: LlamaRunner, *, system: str | None = None, template: str | None = None
    ) -> None:
        self.runner = runner
        self.template = template  # None: the model's own chat template
        self.messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []

    async def ask(self, question: str, *, n_predict: int = 96, on_text=None) -> str:
        self.messages.append({"role": "user", "content": question})
        params = GenerateTextParams(n_predict=n_predict, temp=0)  # greedy: the same answer every time
        stream = None if on_text is None else (lambda chunk: on_text(chunk.text))
        result = await self.runner.chat(self.messages, params, stream, template=self.template)
        self.messages.append({"role": "assistant", "content": result.text})
        return result.text
