"""LlamaRunner's chat methods: a chat formatted by llama.cpp's chat layer (the model's Jinja template, tools),
then generated; a reply parsed as llama.cpp's server parses it. A mixin: LlamaRunner provides the engine calls
declared at the top of ChatMethods."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ._errors import ChatTemplateError, InvalidParameterError
from ._generation import GenerationResult, TokenChunk
from ._limits import check_json_depth, check_reply_depth
from ._params import GenerateTextParams
from ._transport import Transport


class ChatMethods:
    # What LlamaRunner provides (_runner.py): generation, the busy check, and one request with crash recovery.
    load_details: dict[str, Any]
    generate_text: Callable[..., Awaitable[GenerationResult]]
    _stream: Callable[..., AsyncIterator[TokenChunk]]
    _recover: Callable[[], Awaitable[None]]
    _idle_transport: Callable[[str], Transport]
    _request: Callable[[str, Callable[[Transport], Awaitable[Any]]], Awaitable[Any]]

    async def chat(
        self,
        messages: list[dict[str, str]],
        params: GenerateTextParams | None = None,
        token_callback: Callable[[TokenChunk], None] | None = None,
        completion_callback: Callable[[GenerationResult], None] | None = None,
        *,
        template: str | None = None,
    ) -> GenerationResult:
        """Answer a chat ([{"role": "system"|"user"|"assistant", "content": ...}]) formatted with the model's
        own chat template (rendered by llama.cpp's Jinja engine, as its server does), or `template` (a Jinja
        template string, or a built-in name such as "chatml"). params.chatml=True falls back to ChatML when
        the model has no template.
        Consecutive turns reuse the KV cache (result.prompt_tokens_reused). Raises ChatTemplateError."""
        params = params if params is not None else GenerateTextParams()
        if template is None and not self.chat_template and params.chatml:
            template = "chatml"
        prompt = await self.format_chat(messages, template=template)
        plain = dataclasses.replace(params, chatml=False)  # the template did the formatting
        return await self.generate_text(prompt, plain, token_callback, completion_callback)

    async def stream_chat(
        self,
        messages: list[dict[str, str]],
        params: GenerateTextParams | None = None,
        *,
        template: str | None = None,
    ) -> AsyncIterator[TokenChunk]:
        """chat() as an async iterator of TokenChunk."""
        start = lambda on_token: self.chat(messages, params, on_token, template=template)  # noqa: E731
        async with contextlib.aclosing(self._stream(start)) as chunks:
            async for chunk in chunks:
                yield chunk

    async def format_chat(
        self, messages: list[dict[str, str]], *, template: str | None = None, add_assistant: bool = True
    ) -> str:
        """The prompt llama.cpp makes of a chat with the model's template, or with `template`: a Jinja
        template string, or a built-in name like "chatml" or "llama3". A Jinja template (the model's own
        included) is rendered by llama.cpp's chat layer exactly as llama-server renders it (apply_chat); a
        name, or a model template that llama.cpp's Jinja engine cannot parse, by llama.cpp's built-in list.
        Raises ChatTemplateError."""
        if not messages or not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages):
            raise InvalidParameterError("messages must be a non-empty list of {'role': ..., 'content': ...}")
        await self._recover()
        self._idle_transport("format a chat")
        if template is None and not self.chat_template:
            raise ChatTemplateError(
                "the model has no chat template (tokenizer.chat_template): pass chatml=True or template="
            )
        turns = [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]
        if template is None or "{{" in template or "{%" in template:
            try:
                applied = await self.apply_chat(turns, template=template, add_generation_prompt=add_assistant)
                return str(applied["prompt"])
            except ChatTemplateError:
                if template is not None:
                    raise  # a template the caller chose: say why it failed
                # the model's own template does not parse: llama.cpp's built-in list may still know it
        if any("\0" in text for turn in turns for text in turn.values()) or "\0" in (template or ""):
            # llama.cpp's built-in templates take C strings: a NUL would silently cut the chat there
            raise InvalidParameterError("a built-in chat template cannot carry a NUL character in a message")
        return await self._request("format a chat", lambda t: t.chat_format(turns, add_assistant, template))

    async def apply_chat(
        self,
        messages: list[dict[str, Any]],
        *,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: str | None = None,
        parallel_tool_calls: bool = False,
        template: str | None = None,
        add_generation_prompt: bool = True,
    ) -> dict[str, Any]:
        """A chat rendered by llama.cpp's chat layer exactly as llama.cpp's server renders an OpenAI request:
        OpenAI messages (tool calls and tool results included), `tools`, `tool_choice` ("auto", "none",
        "required"), with the model's template (or `template`, a Jinja source). Returns llama.cpp's result:
        {"prompt", "format", "format_name", "grammar", "grammar_lazy", "grammar_triggers",
        "generation_prompt", "additional_stops", "preserved_tokens", "parser"}; hand it to parse_chat_reply
        with the generated text. Raises ChatTemplateError."""
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise InvalidParameterError("messages must be a list of {'role': ..., ...} dicts")
        check_json_depth(messages, "messages")  # before json.dumps and llama.cpp's parsers recurse into them
        check_json_depth(tools, "tools")
        request: dict[str, Any] = {
            "messages": messages,
            "parallel_tool_calls": bool(parallel_tool_calls),
            "add_generation_prompt": bool(add_generation_prompt),
        }
        if tools:
            request["tools"] = tools
        if tool_choice is not None:
            request["tool_choice"] = tool_choice
        if template is not None:
            request["template"] = template
        return await self._request("format a chat", lambda t: t.chat_apply(request))

    async def parse_chat_reply(self, applied: dict[str, Any], text: str) -> dict[str, Any]:
        """The generated `text` parsed as llama.cpp's server parses a reply to the request `applied` came
        from: an OpenAI message {"role", "content", "tool_calls", "reasoning_content"}."""
        check_reply_depth(text)
        return await self._request("parse a reply", lambda t: t.chat_parse(applied, text))

    @property
    def chat_template(self) -> str | None:
        """The loaded model's own chat template (GGUF tokenizer.chat_template), if it has one."""
        return (self.load_details.get("meta") or {}).get("tokenizer.chat_template") or None
