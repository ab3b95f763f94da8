"""The OpenAI-shaped dicts Llama returns, as llama-cpp-python shapes them: a response's head (`id`, `object`,
`created`, `model`), its choices and stream chunks, `usage`, and the finish reasons."""

from __future__ import annotations

import time
import uuid
from typing import Any

from ._generation import GenerationResult

# GenerationResult.finish_reason -> OpenAI's
FINISH = {"eos": "stop", "stop": "stop", "length": "length", "context_full": "length", "aborted": "stop"}


def finish_reason(result: GenerationResult) -> str:
    return FINISH[result.finish_reason]


class Head:
    """One response's `id`, `object`, `created` and `model`: the same id on every chunk of a stream."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.created = int(time.time())
        self._id: str | None = None

    def __call__(self, kind: str) -> dict[str, Any]:
        if self._id is None:
            self._id = f"{'cmpl' if kind.startswith('text') else 'chatcmpl'}-{uuid.uuid4()}"
        return {"id": self._id, "object": kind, "created": self.created, "model": self.model}


def usage(result: GenerationResult) -> dict[str, int]:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.generated_tokens,
        "total_tokens": result.prompt_tokens + result.generated_tokens,
    }


def completion(head: Head, text: str, logprobs: Any, result: GenerationResult) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "logprobs": logprobs, "finish_reason": finish_reason(result)}
    return {**head("text_completion"), "choices": [choice], "usage": usage(result)}


def completion_chunk(head: Head, text: str, finish: str | None = None) -> dict[str, Any]:
    choice = {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}
    return {**head("text_completion"), "choices": [choice]}


def chat_completion(
    head: Head, message: dict[str, Any], logprobs: Any, finish: str, result: GenerationResult
) -> dict[str, Any]:
    choice = {"index": 0, "message": message, "logprobs": logprobs, "finish_reason": finish}
    return {**head("chat.completion"), "choices": [choice], "usage": usage(result)}


def chat_chunk(head: Head, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {**head("chat.completion.chunk"), "choices": [choice]}


def message_delta(message: dict[str, Any]) -> dict[str, Any]:
    """A whole reply message (parsed at the end of a stream) as one chunk's delta: its fields but the role,
    tool calls numbered as OpenAI's stream numbers them."""
    delta = {k: v for k, v in message.items() if k != "role" and v is not None}
    if "tool_calls" in delta:
        delta["tool_calls"] = [{"index": i, **c} for i, c in enumerate(delta["tool_calls"])]
    return delta
