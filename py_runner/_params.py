"""Generation parameters: validation and the mapping onto the worker's request fields."""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import InvalidParameterError
from ._json_schema import schema_to_gbnf
from ._limits import check_grammar
from ._transport.protocol import DEFAULTS, SAMPLER_KNOBS

log = logging.getLogger(__name__)

_U32_MAX = 2**32 - 1
_I32_MAX = 2**31 - 1


def _is_int(v: Any) -> bool:  # what reaches the engine as a C int: larger values would wrap in JS
    return isinstance(v, int) and not isinstance(v, bool) and -_I32_MAX <= v <= _I32_MAX


def _is_num(v: Any) -> bool:  # finite: an infinity or NaN reaches the samplers as garbage
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


# The range of each numeric field: (test, what the message says it must be). Llama's keyword arguments are
# checked by the same table under their own names (check(..., label="temperature")).
_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "n_predict": (lambda v: _is_int(v) and v >= 1, "an int >= 1"),
    "ctx_size": (lambda v: v is None or (_is_int(v) and v >= 16), "None or an int >= 16"),
    "batch_size": (lambda v: v is None or (_is_int(v) and v >= 1), "None or an int >= 1"),
    "n_threads": (lambda v: v is None or (_is_int(v) and v >= 1), "None or an int >= 1"),
    "temp": (lambda v: _is_num(v) and v >= 0, "a number >= 0 (0 = greedy)"),
    "top_k": (lambda v: _is_int(v) and v >= 0, "an int >= 0 (0 = off)"),
    "top_p": (lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]"),
    "min_p": (lambda v: _is_num(v) and 0 <= v <= 1, "a number in [0, 1]"),
    "typical_p": (lambda v: _is_num(v) and 0 < v <= 1, "a number in (0, 1]"),
    "repeat_penalty": (lambda v: _is_num(v) and v > 0, "a number > 0 (1 = off)"),
    "repeat_last_n": (lambda v: _is_int(v) and v >= -1, "an int >= -1"),
    "presence_penalty": (_is_num, "a finite number"),
    "frequency_penalty": (_is_num, "a finite number"),
    "seed": (
        lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= _U32_MAX),
        f"None or an int in 0..{_U32_MAX}",
    ),
    "n_gpu_layers": (lambda v: v is None or _is_int(v), "None or an int"),
}


def check(name: str, value: Any, label: str | None = None) -> None:
    """Raise InvalidParameterError unless `value` is in the range of GenerateTextParams field `name`; the
    message names `label` (the caller's name for it, e.g. Llama's `temperature`) and the range."""
    test, what = _RANGES[name]
    if not test(value):
        raise InvalidParameterError(f"{label or name} must be {what}, got {value!r}")


@dataclass
class GenerateTextParams:
    """Sampling and context settings for one generate_text() call.

    ctx_size/batch_size are made when the model loads (load_model(ctx_size=..., batch_size=...)): here
    they say which context this generation needs, and generate_text() raises InvalidParameterError when
    the loaded one differs (None, the default: whatever was loaded). seed=None picks a random 32-bit seed
    in Python and records it in the GenerationResult so a run can be reproduced.
    """

    n_predict: int = DEFAULTS["n_predict"]
    # The context this generation needs, made by load_model(ctx_size=, batch_size=): a value given here that
    # differs from the loaded one raises InvalidParameterError in generate_text (None: the loaded one).
    ctx_size: int | None = None
    batch_size: int | None = None
    n_threads: int | None = None
    temp: float = DEFAULTS["temp"]
    top_k: int = DEFAULTS["top_k"]
    top_p: float = DEFAULTS["top_p"]
    min_p: float = DEFAULTS["min_p"]
    typical_p: float = DEFAULTS["typical_p"]
    repeat_penalty: float = DEFAULTS["repeat_penalty"]
    repeat_last_n: int = DEFAULTS["repeat_last_n"]  # -1 = the whole context, 0 = no penalties
    presence_penalty: float = DEFAULTS["presence_penalty"]
    frequency_penalty: float = DEFAULTS["frequency_penalty"]
    seed: int | None = None
    stop: list[str] = field(default_factory=list)  # generation ends before any of these strings
    ignore_eos: bool = False
    logit_bias: dict[int, float] = field(default_factory=dict)  # token id -> bias (float("-inf") bans it)
    grammar: str | None = None  # GBNF (llama.cpp grammars/README.md), start symbol "root"
    # llama.cpp's lazy-grammar triggers ({"type": 0 token | 1 word | 2 pattern | 3 full pattern, "value"}, as
    # LlamaRunner.apply_chat returns them): the grammar is enforced only from the first trigger in the output
    grammar_triggers: list[dict[str, Any]] | None = None
    # What the chat template already wrote of the reply (apply_chat's "generation_prompt"): a grammar of
    # llama.cpp's chat layer enforced from the start (tool_choice "required") begins with it, and takes it as
    # accepted before generation, as llama-server does
    grammar_prefill: str | None = None
    json_schema: dict[str, Any] | None = (
        None  # output that parses as JSON valid against it (see _json_schema)
    )
    n_gpu_layers: int | None = None
    no_display_prompt: bool = True
    chatml: bool = False

    def validate(self) -> None:
        def need(ok: bool, msg: str) -> None:
            if not ok:
                raise InvalidParameterError(msg)

        for name in _RANGES:
            check(name, getattr(self, name))
        need(
            isinstance(self.stop, list | tuple) and all(isinstance(x, str) and x for x in self.stop),
            f"stop must be a list of non-empty strings, got {self.stop!r}",
        )
        need(
            isinstance(self.logit_bias, dict)
            and all(
                _is_int(k) and k >= 0 and (_is_num(v) or v == float("-inf"))
                for k, v in self.logit_bias.items()
            ),
            "logit_bias must map token ids (int >= 0) to finite numbers or float('-inf') (a ban)",
        )
        need(
            self.grammar is None or (isinstance(self.grammar, str) and self.grammar.strip() != ""),
            "grammar must be None or a non-empty GBNF string",
        )
        need(self.grammar is None or self.json_schema is None, "give grammar or json_schema, not both")
        if self.grammar:
            check_grammar(self.grammar)  # a NUL or groups nested past what the engine's parser can take
        need(
            self.grammar_triggers is None
            or (
                bool(self.grammar)
                and isinstance(self.grammar_triggers, list)
                and all(isinstance(t, dict) and t.get("type") in (0, 1, 2, 3) for t in self.grammar_triggers)
            ),
            "grammar_triggers needs a grammar and is a list of {'type': 0..3, 'value': ...}",
        )
        need(
            self.grammar_prefill is None
            or (isinstance(self.grammar_prefill, str) and bool(self.grammar) and not self.grammar_triggers),
            "grammar_prefill is a str for a grammar enforced from the start (no grammar_triggers)",
        )
        if self.json_schema is not None:
            schema_to_gbnf(self.json_schema)  # unsupported schemas fail here, before anything runs

    def check_context(self, n_ctx: int, n_batch: int) -> None:
        """Raise InvalidParameterError when ctx_size / batch_size were given and the loaded context (n_ctx
        tokens, batches of n_batch) differs: the context is made once, by load_model, and a generation that
        asked for another one must not run in it unnoticed."""
        for name, asked, loaded in (
            ("ctx_size", self.ctx_size, n_ctx),
            ("batch_size", self.batch_size, n_batch),
        ):
            if asked is not None and asked != loaded:
                raise InvalidParameterError(
                    f"{name}={asked}, but the model was loaded with {name}={loaded}: the context is made "
                    f"when the model loads, load_model(..., {name}={asked}); leave {name} None here"
                )

    def format_prompt(self, prompt: str) -> str:
        """The prompt as sent to the engine (ChatML-wrapped when chatml=True)."""
        if self.chatml:
            return f"<|im_start|>user\n{prompt}<|im_end|>\n<|im_start|>assistant\n"
        return prompt

    def to_bridge_options(self) -> dict[str, Any]:
        """The worker's generate fields. Resolves seed=None to a random seed (read it back from
        the dict); n_threads=None is left out so the bridge's default applies."""
        if self.n_gpu_layers is not None:
            log.warning(
                "n_gpu_layers=%s ignored: the WebAssembly build runs on the CPU only", self.n_gpu_layers
            )
        # Every sampler knob of the protocol (web/shared/protocol.js "sampler"), typed as its default is.
        opts: dict[str, Any] = {
            name: type(DEFAULTS[name])(getattr(self, name)) for name in SAMPLER_KNOBS if name != "seed"
        }
        opts["seed"] = self.seed if self.seed is not None else random.getrandbits(32)
        opts["n_predict"] = self.n_predict
        opts["ignore_eos"] = bool(self.ignore_eos)
        if self.logit_bias:
            opts["logit_bias"] = [[int(k), float(v)] for k, v in sorted(self.logit_bias.items())]
        if self.grammar:
            opts["grammar"] = self.grammar
            if self.grammar_triggers:
                opts["grammar_triggers"] = [dict(t) for t in self.grammar_triggers]
            if self.grammar_prefill:
                opts["grammar_prefill"] = self.grammar_prefill
        elif self.json_schema is not None:
            opts["grammar"] = schema_to_gbnf(self.json_schema)
        if self.n_threads is not None:
            opts["n_threads"] = self.n_threads
        return opts
