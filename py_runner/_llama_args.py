"""Llama's keyword arguments, checked as llama-cpp-python types them, and turned into GenerateTextParams.

Every argument of `create_completion`, `create_chat_completion`, `__call__`, `embed`, `tokenize`, ... is
checked before the engine is entered, and a wrong type or a value out of range raises InvalidParameterError
naming the argument and what it must be: a bool is not an int, a string is not a number, and a count such as
`max_tokens` is a whole number (`3.0` is 3, as llama-cpp-python counts with it and its server coerces it;
`1.5` and `"3"` are refused). Where llama-cpp-python gives a value a meaning, it keeps it: `max_tokens` None
or <= 0 generates until the context is full, `top_k` <= 0 is off, `seed=-1` is a random seed. Ranges are
GenerateTextParams' (`_params.check`), reported under the facade's names (`temperature`, not `temp`).
"""

from __future__ import annotations

import math
from typing import Any

from ._errors import InvalidParameterError
from ._json_schema import JSON_GRAMMAR
from ._params import GenerateTextParams, check
from ._transport.protocol import CACHE_TYPES

LLAMA_DEFAULT_SEED = 0xFFFFFFFF  # llama-cpp-python's "random seed"
UNSUPPORTED_SAMPLING = ("mirostat_mode", "logits_processor", "stopping_criteria", "tfs_z")
_TOOL_CHOICES = ("none", "auto", "required")
# create_completion / create_chat_completion keyword -> GenerateTextParams field (ranges checked there)
_FIELDS = {
    "temperature": "temp", "top_p": "top_p", "top_k": "top_k", "min_p": "min_p", "typical_p": "typical_p",
    "repeat_penalty": "repeat_penalty", "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
}  # fmt: skip


def whole(name: str, value: Any, low: int | None = None, *, optional: bool = True) -> int | None:
    """`value` as an int: an int (not a bool) or a float with no fractional part, at least `low`."""
    if value is None and optional:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        what = "an int" + ("" if low is None else f" >= {low}")
        raise InvalidParameterError(f"{name} must be {'None or ' if optional else ''}{what}, got {value!r}")
    return value


def flag(name: str, value: Any, *, optional: bool = False) -> bool | None:
    """`value` as a bool: True or False (not 0, 1 or "yes"), or None when `optional`."""
    if value is None and optional:
        return None
    if not isinstance(value, bool):
        raise InvalidParameterError(
            f"{name} must be {'None, ' if optional else ''}True or False, got {value!r}"
        )
    return value


def streaming(kwargs: dict[str, Any]) -> bool:
    """The `stream` argument, checked before a call decides between a dict and an iterator."""
    return bool(flag("stream", kwargs.get("stream", False)))


def init_args(n_ctx: Any, n_batch: Any, n_threads: Any, seed: Any, chat_format: Any) -> tuple[int, int, int]:
    """Llama()'s n_ctx, n_batch and seed, checked (n_ctx=0: the model's training context)."""
    n_ctx = whole("n_ctx", n_ctx, 0, optional=False)
    n_batch = whole("n_batch", n_batch, 1, optional=False)
    whole("n_threads", n_threads, 1)
    if chat_format is not None and not isinstance(chat_format, str):
        raise InvalidParameterError(f"chat_format must be None or a template name (str), got {chat_format!r}")
    return n_ctx, n_batch, _seed(seed, LLAMA_DEFAULT_SEED)  # type: ignore[return-value]


def cache_type(name: str, value: Any) -> str | None:
    """llama-cpp-python's type_k / type_v: a ggml_type number (llama_cpp.GGML_TYPE_Q8_0 is 8), or
    load_model's name for it ("q8_0"); None keeps llama.cpp's F16."""
    if value is None:
        return None
    if isinstance(value, str) and value.lower() in CACHE_TYPES:
        return value.lower()
    if isinstance(value, int) and not isinstance(value, bool):
        for type_name, number in CACHE_TYPES.items():
            if number == value:
                return type_name
    raise InvalidParameterError(
        f"{name} must be None, a KV cache type name ({', '.join(CACHE_TYPES)}) or its ggml_type number "
        f"({', '.join(str(n) for n in CACHE_TYPES.values())}), got {value!r}"
    )


def texts(name: str, value: Any) -> list[str]:
    """A str or a list of str (embedding inputs) as a list."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple) and all(isinstance(t, str) for t in value):
        return list(value)
    raise InvalidParameterError(f"{name} must be a str or a list of str, got {type(value).__name__}")


def token_ids(name: str, value: Any, n_vocab: int) -> list[int]:
    """A list of token ids, each an int in 0..n_vocab-1 (a prompt given as tokens)."""
    out = []
    for token in value:
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < (n_vocab or 2**31):
            raise InvalidParameterError(f"{name}: token ids must be ints in 0..{n_vocab - 1}, got {token!r}")
        out.append(token)
    if not out:
        raise InvalidParameterError(f"{name} is an empty list of tokens")
    return out


def _seed(value: Any, random: int | None) -> int | None:
    # -1 is llama-cpp-python's random seed too: its uint32 wraps to LLAMA_DEFAULT_SEED.
    seed = whole("seed", value, -1)
    if seed == -1:
        return random
    check("seed", seed)
    return seed


def logprobs_count(name: str, value: Any) -> int | None:
    """Completion `logprobs` / chat `top_logprobs`: how many alternatives per token (None: no logprobs)."""
    return whole(name, value, 0)


def logit_bias(value: Any, n_vocab: int) -> dict[int, float]:
    """{token id: bias}: ids as ints or their decimal strings (JSON object keys, as OpenAI clients send
    them), each below n_vocab; biases finite numbers or -inf (a ban)."""
    if not isinstance(value, dict):
        raise InvalidParameterError(
            f"logit_bias must be a dict {{token id: bias}}, got {type(value).__name__}"
        )
    out: dict[int, float] = {}
    for key, bias in value.items():
        token = key
        if isinstance(key, str):  # what llama-cpp-python's int(k) takes; the rest refused by name below
            try:
                token = int(key)
            except ValueError:
                pass
        if isinstance(token, bool) or not isinstance(token, int) or not 0 <= token < (n_vocab or 2**31):
            limit = f"0..{n_vocab - 1}" if n_vocab else ">= 0"
            raise InvalidParameterError(f"logit_bias keys must be token ids (ints in {limit}), got {key!r}")
        ok = isinstance(bias, int | float) and not isinstance(bias, bool) and not math.isnan(bias)
        if not ok or bias == math.inf:
            raise InvalidParameterError(
                f"logit_bias[{key!r}] must be a finite number or float('-inf') (a ban), got {bias!r}"
            )
        out[token] = float(bias)
    return out


def params(
    kwargs: dict[str, Any],
    *,
    n_ctx: int,
    n_vocab: int,
    llm_seed: int,
    max_tokens: int | None,
    temperature: float,
) -> GenerateTextParams:
    """GenerateTextParams for the sampling and length arguments left in `kwargs` (consumed)."""
    for name in UNSUPPORTED_SAMPLING:
        value = kwargs.pop(name, None)
        if value not in (None, 0, 1.0, [], ()):
            raise InvalidParameterError(f"{name} is not supported here")
    for name in ("mirostat_tau", "mirostat_eta"):  # used by mirostat only, which is refused above
        value = kwargs.pop(name, None)
        if value is not None and not (isinstance(value, int | float) and not isinstance(value, bool)):
            raise InvalidParameterError(f"{name} must be a number, got {value!r}")
    model = kwargs.pop("model", None)
    if model is not None and not isinstance(model, str):
        raise InvalidParameterError(f"model must be None or a str, got {model!r}")
    kwargs.pop("stream", None)
    limit = whole("max_tokens", kwargs.pop("max_tokens", max_tokens))
    # None or <= 0: until the context is full; more than the context: the context (llama-cpp-python's clamp)
    n_predict = n_ctx if limit is None or limit <= 0 else min(limit, n_ctx)
    stop = kwargs.pop("stop", None)
    if stop is None:
        stop = []
    elif isinstance(stop, str):
        stop = [stop]
    elif isinstance(stop, list | tuple) and all(isinstance(s, str) for s in stop):
        stop = list(stop)
    else:
        raise InvalidParameterError(f"stop must be None, a str or a list of str, got {stop!r}")
    seed = kwargs.pop("seed", None)
    if seed is not None:
        seed = _seed(seed, None)
    elif llm_seed != LLAMA_DEFAULT_SEED:  # Llama(seed=...): every call starts from it
        seed = llm_seed
    grammar = kwargs.pop("grammar", None)
    grammar = getattr(
        grammar, "_grammar", grammar
    )  # a llama_cpp.LlamaGrammar-like object keeps its text there
    fields: dict[str, Any] = {"temp": temperature}
    for name, value in list(kwargs.items()):
        if value is None or name not in _FIELDS:
            continue
        if name == "top_k":
            value = max(whole("top_k", value, optional=False), 0)  # type: ignore[type-var]  # <= 0: off
        check(_FIELDS[name], value, label=name)
        fields[_FIELDS[name]] = value
    bias = kwargs.pop("logit_bias", None)
    if bias is not None:
        fields["logit_bias"] = logit_bias(bias, n_vocab)
    internal = ("json_schema", "grammar_triggers", "grammar_prefill")  # set by the facade, not by callers
    for name in internal:
        if kwargs.get(name) is not None:
            fields[name] = kwargs[name]
    unknown = set(kwargs) - set(_FIELDS) - set(internal)
    if unknown:
        raise TypeError(f"unexpected keyword argument {sorted(unknown)[0]!r}")
    result = GenerateTextParams(n_predict=n_predict, stop=stop, seed=seed, grammar=grammar, **fields)
    result.validate()
    return result


def response_format(fmt: Any, grammar: Any) -> tuple[dict[str, Any] | None, str | None]:
    """(json_schema, grammar) for OpenAI's response_format: json_object (any object, or llama-cpp-python's
    `schema`), or json_schema {"json_schema": {"schema": ...}}."""
    if not isinstance(fmt, dict):
        raise InvalidParameterError(
            "response_format must be a dict such as {'type': 'json_object'} or "
            f"{{'type': 'json_schema', 'json_schema': {{'schema': {{...}}}}}}, got {fmt!r}"
        )
    if grammar is not None:
        raise InvalidParameterError("give response_format or grammar, not both")
    kind = fmt.get("type")
    if kind == "json_object":
        schema = fmt.get("schema")
        return (schema, None) if schema else (None, JSON_GRAMMAR)
    if kind == "json_schema":
        spec = fmt.get("json_schema") or {}
        schema = spec.get("schema", spec if "type" in spec else None) if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidParameterError(
                "response_format json_schema needs {'json_schema': {'schema': {...}}}"
            )
        return schema, None
    if kind in (None, "text"):
        return None, None
    raise InvalidParameterError(
        f"response_format type {kind!r} is not supported (json_object, json_schema, text)"
    )


def tools_args(tools: Any, tool_choice: Any, parallel: Any) -> tuple[list[dict[str, Any]] | None, Any, bool]:
    """tools (a list of {"type": "function", "function": {...}}), tool_choice ("none", "auto", "required" or
    {"type": "function", "function": {"name": ...}}: that tool only, required) and parallel_tool_calls."""
    if tools is not None and not (
        isinstance(tools, list | tuple) and all(isinstance(t, dict) for t in tools)
    ):
        raise InvalidParameterError(f"tools must be None or a list of dicts, got {type(tools).__name__}")
    tools = list(tools) if tools else None
    if isinstance(tool_choice, dict):
        function = tool_choice.get("function")
        wanted = function.get("name") if isinstance(function, dict) else None
        tools = [t for t in tools or [] if (t.get("function") or {}).get("name") == wanted]
        if not tools:
            raise InvalidParameterError(f"tool_choice names a tool that is not in tools: {wanted!r}")
        tool_choice = "required"
    elif tool_choice is not None and tool_choice not in _TOOL_CHOICES:
        raise InvalidParameterError(
            f"tool_choice must be None, 'none', 'auto', 'required' or {{'type': 'function', 'function': "
            f"{{'name': ...}}}}, got {tool_choice!r}"
        )
    return tools, tool_choice, bool(flag("parallel_tool_calls", parallel, optional=True))


def message(value: Any) -> dict[str, Any]:
    """An OpenAI message as llama.cpp's chat layer takes it: text content (a string, or text parts joined),
    and the tool fields (tool_calls, tool_call_id, name) as given."""
    if not isinstance(value, dict) or "role" not in value:
        raise InvalidParameterError("each message must be a dict with a 'role'")
    out = {k: v for k, v in value.items() if k in ("role", "name", "tool_calls", "tool_call_id")}
    content = value.get("content")
    out["content"] = None if content is None and value.get("tool_calls") else text_content(content)
    return out


def messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list | tuple):
        raise InvalidParameterError(f"messages must be a list of dicts, got {type(value).__name__}")
    return [message(m) for m in value]


def text_content(content: Any) -> str:
    """A message's content as text: a string, or OpenAI's list of {"type": "text", "text": ...} parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise InvalidParameterError("message content must be text (images and other parts are not supported)")
