"""One Llama completion or chat request: llama-cpp-python's keyword arguments (checked in _llama_args) made
into the prompt, the GenerateTextParams and the response head; a chat rendered by the chat policy (_chat)."""

from __future__ import annotations

from typing import Any, Protocol

from . import _llama_args as args
from ._chat import RenderedChat, render_openai_chat
from ._errors import InvalidParameterError
from ._openai_shapes import Head
from ._params import GenerateTextParams
from ._runner import LlamaRunner


class Llama(Protocol):
    """What a request needs of the Llama it is made for (_llama.py's; named here, not imported: no cycle)."""

    model_path: Any
    seed: int
    chat_format: str | None
    runner: LlamaRunner

    def n_ctx(self) -> int: ...

    def n_vocab(self) -> int: ...


class LlamaRequest:
    """A request's prompt, GenerateTextParams and response head; `echo` and `logprobs` (top-n count, None for
    none) as asked; for a chat, how it was rendered."""

    def __init__(
        self, llm: Llama, prompt: str | list[int], params: GenerateTextParams, model: str | None
    ) -> None:
        self.prompt = prompt
        self.params = params
        self.head = Head(model or str(llm.model_path))
        self.echo = False
        self.logprobs: int | None = None
        self.rendered: RenderedChat | None = None  # a chat's rendering (its reply parsed if tools were given)

    @classmethod
    def completion(cls, llm: Llama, prompt: Any, kwargs: dict[str, Any]) -> LlamaRequest:
        kwargs = dict(kwargs)
        if isinstance(prompt, list | tuple):
            prompt = args.token_ids("prompt", prompt, llm.n_vocab())  # evaluated as they are
        elif not isinstance(prompt, str):
            raise InvalidParameterError(
                f"prompt must be a str or a list of token ids, got {type(prompt).__name__}"
            )
        if kwargs.pop("suffix", None) is not None:
            raise InvalidParameterError("suffix (infill) is not supported")
        echo = bool(args.flag("echo", kwargs.pop("echo", False)))
        logprobs = args.logprobs_count("logprobs", kwargs.pop("logprobs", None))
        if logprobs is not None and isinstance(prompt, list):
            raise InvalidParameterError("logprobs with a token-list prompt is not supported: give the text")
        model = kwargs.get("model")
        request = cls(llm, prompt, _params(llm, kwargs, max_tokens=16, temperature=0.8), model)
        request.echo = echo
        request.logprobs = logprobs
        return request

    @classmethod
    async def chat(cls, llm: Llama, messages: list[dict[str, Any]], kwargs: dict[str, Any]) -> LlamaRequest:
        """The prompt as llama.cpp's server renders the request (common/chat: the model's template, tools), or
        with chat_format (a built-in template name) llama.cpp's fixed list: _chat's policy."""
        kwargs = dict(kwargs)
        for name in ("functions", "function_call"):
            if kwargs.pop(name, None):
                raise InvalidParameterError(f"{name} (deprecated by OpenAI) is not supported: use tools")
        tools, tool_choice, parallel = args.tools_args(
            kwargs.pop("tools", None),
            kwargs.pop("tool_choice", None),
            kwargs.pop("parallel_tool_calls", None),
        )
        response_format = kwargs.pop("response_format", None)
        if response_format is not None:
            if tools and tool_choice != "none":
                raise InvalidParameterError("give tools or response_format, not both")
            kwargs["json_schema"], kwargs["grammar"] = args.response_format(
                response_format, kwargs.get("grammar")
            )
        logprobs = args.flag("logprobs", kwargs.pop("logprobs", None), optional=True)
        top_logprobs = args.logprobs_count("top_logprobs", kwargs.pop("top_logprobs", None))
        turns = args.messages(messages)
        _params(llm, dict(kwargs), max_tokens=None, temperature=0.2)  # every argument, before llama.cpp runs
        rendered = await render_openai_chat(
            llm.runner,
            turns,
            template_name=llm.chat_format,
            tools=tools,
            tool_choice=tool_choice,
            parallel_tool_calls=parallel,
        )
        kwargs.update(rendered.generation_fields(kwargs.get("stop"), kwargs.get("grammar")))
        params = _params(llm, kwargs, max_tokens=None, temperature=0.2)
        request = cls(llm, rendered.prompt, params, kwargs.get("model"))
        request.logprobs = (top_logprobs or 0) if logprobs else None
        request.rendered = rendered
        return request


def _params(
    llm: Llama, kwargs: dict[str, Any], *, max_tokens: int | None, temperature: float
) -> GenerateTextParams:
    n_ctx, n_vocab = llm.n_ctx() or 512, llm.n_vocab()
    return args.params(
        kwargs,
        n_ctx=n_ctx,
        n_vocab=n_vocab,
        llm_seed=llm.seed,
        max_tokens=max_tokens,
        temperature=temperature,
    )
