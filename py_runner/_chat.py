"""The chat policy, in one place: which path a chat takes, how a template is classified, and what each path
returns; and LlamaRunner's chat methods (a mixin), which Llama's chat completions use too.

Two paths into llama.cpp:

- **The chat layer** (llama.cpp's common/chat, compiled into the engine; the `chat_apply` request): a Jinja
  template (the model's own tokenizer.chat_template, or a Jinja string the caller gives) rendered exactly as
  llama-server renders an OpenAI request: tools, tool_choice, tool calls and tool results in the history.
  It returns llama.cpp's dict (`prompt`, `grammar`, `grammar_lazy`, `grammar_triggers`, `generation_prompt`,
  `additional_stops`, `parser`, ...); a reply to it is parsed by `chat_parse` into an OpenAI message.
- **The built-in list** (llama_chat_apply_template; the `chat_format` request): a template *name* ("chatml",
  "llama3", ...), and a model template the chat layer cannot parse (the fallback llama-server makes too). It
  returns the prompt only: no tools, no grammar, no reply parsing.

`is_jinja` classifies a template: Jinja when it holds "{{" or "{%", else a built-in name. `chat_path`
picks the path; `render_openai_chat` and `reply_message` are Llama's request and reply on top of it.
A model with no template of its own: `chat(..., GenerateTextParams(chatml=True))` takes the built-in "chatml",
anything else raises ChatTemplateError. Llama(chat_format=name) takes the built-in list and refuses tools.

The C++ twin must agree with this module: pr_chat_format in wasm/glue_chat.cpp (Jinja to the chat layer, else
the built-in list, and the model's template back to the list when the chat layer refuses it), which the native
reference (wasm/native_main.cpp) calls too. A change to the policy changes both.
"""

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

CHAT_LAYER = "chat_layer"  # llama.cpp's common/chat: chat_apply (and chat_parse for the reply)
BUILT_IN = "built_in"  # llama.cpp's fixed list of templates: chat_format


def is_jinja(template: str) -> bool:
    """Whether a template string is Jinja source (else it names one of llama.cpp's built-in templates)."""
    return "{{" in template or "{%" in template


def chat_path(template: str | None) -> str:
    """CHAT_LAYER for the model's own template (None) or a Jinja string; BUILT_IN for a template name. (The
    model's own template falls back to BUILT_IN when the chat layer cannot parse it: see format_chat.)"""
    return CHAT_LAYER if template is None or is_jinja(template) else BUILT_IN


@dataclasses.dataclass
class RenderedChat:
    """An OpenAI-shaped chat rendered for generation: its prompt, and what the chat layer adds to it."""

    prompt: str
    applied: dict[str, Any] | None = None  # the chat layer's result; None from the built-in list
    parse_reply: bool = False  # tools were given: the reply is parsed for tool calls (reply_message)

    def generation_fields(self, stop: Any, grammar: Any) -> dict[str, Any]:
        """What the rendering sets in the generation's arguments, given the caller's `stop` and `grammar`:
        llama.cpp's additional stop strings, and its tool-call grammar unless the caller gave one: lazy (from
        the first trigger) with tool_choice "auto", else enforced from the start past what the template
        already wrote of the reply, as llama-server does."""
        if self.applied is None:
            return {}
        applied = self.applied
        stops = stop or []
        stops = [stops] if isinstance(stops, str) else list(stops)
        fields: dict[str, Any] = {"stop": stops + [s for s in applied["additional_stops"] if s not in stops]}
        if applied["grammar"] and grammar is None:
            fields["grammar"] = applied["grammar"]
            if applied["grammar_lazy"]:
                fields["grammar_triggers"] = applied["grammar_triggers"]
            else:
                fields["grammar_prefill"] = applied["generation_prompt"] or None
        return fields


async def render_openai_chat(
    runner: ChatMethods,
    messages: list[dict[str, Any]],
    *,
    template_name: str | None,
    tools: list[dict[str, Any]] | None,
    tool_choice: Any,
    parallel_tool_calls: bool,
) -> RenderedChat:
    """An OpenAI request's messages as llama-server renders them (the chat layer, the model's template,
    tools), or with `template_name` (Llama's chat_format) through the built-in list, which takes no tools."""
    if template_name is not None:
        if tools:
            raise InvalidParameterError("tools need the model's own template (leave chat_format unset)")
        plain = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
        return RenderedChat(await runner.format_chat(plain, template=template_name))
    applied = await runner.apply_chat(
        messages, tools=tools, tool_choice=tool_choice, parallel_tool_calls=parallel_tool_calls
    )
    return RenderedChat(str(applied["prompt"]), applied, parse_reply=bool(tools))


async def reply_message(
    runner: ChatMethods, rendered: RenderedChat, text: str, finish: str
) -> tuple[dict[str, Any], str]:
    """The assistant's OpenAI message for the generated `text`, and the finish reason: with tools, the text
    parsed as llama-server parses it (tool calls make the finish reason "tool_calls")."""
    if not rendered.parse_reply or rendered.applied is None:
        return {"role": "assistant", "content": text}, finish
    parsed = await runner.parse_chat_reply(rendered.applied, text)
    message: dict[str, Any] = {"role": "assistant", "content": parsed.get("content") or None}
    if parsed.get("tool_calls"):
        message["tool_calls"] = parsed["tool_calls"]
        finish = "tool_calls"
    if parsed.get("reasoning_content"):
        message["reasoning_content"] = parsed["reasoning_content"]
    return message, finish


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
        if chat_path(template) == CHAT_LAYER:
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
