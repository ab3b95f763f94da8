"""The per-token pipeline: each (token, piece bytes) the engine streams becomes text (UTF-8 reassembled across
tokens, stop strings held back until they cannot match), goes to the caller's callback, and ends in a
GenerationResult. LlamaRunner.generate_text runs one TokenPipeline per call."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._stop import StopMatcher
from ._utf8 import Utf8Stream


@dataclass
class TokenChunk:
    token: int
    text: str  # the text that became decodable with this token; "" while a character is incomplete


@dataclass
class GenerationResult:
    text: str
    tokens: list[int] = field(default_factory=list)
    finish_reason: str = "eos"  # "eos" | "length" | "stop" | "aborted" | "context_full"
    prompt_tokens: int = 0
    generated_tokens: int = 0
    prompt_ms: float = 0.0
    gen_ms: float = 0.0
    seed: int = 0
    threads: int | None = None  # threads the engine computed with
    prompt_tokens_reused: int = 0  # prompt tokens the KV cache already held (not evaluated again)
    eog_token: int | None = None  # the end-of-generation token that ended it (finish_reason "eos")

    @property
    def prompt_tokens_evaluated(self) -> int:
        return self.prompt_tokens - self.prompt_tokens_reused

    @property
    def prompt_tok_s(self) -> float | None:
        return self.prompt_tokens_evaluated * 1000.0 / self.prompt_ms if self.prompt_ms > 0 else None

    @property
    def gen_tok_s(self) -> float | None:
        return self.generated_tokens * 1000.0 / self.gen_ms if self.gen_ms > 0 else None


class TokenPipeline:
    """One generation's tokens, from the engine's callback to the result.

    stop_engine() is called (once per reason) when the engine must stop early: a stop string matched, or the
    caller's callback raised. is_cancelled() tells whether the caller cancelled: tokens that arrive after that
    (made by the engine while the abort was on its way) are dropped, so the result holds exactly what was
    delivered."""

    def __init__(
        self,
        stop: list[str],
        token_callback: Callable[[TokenChunk], None] | None,
        stop_engine: Callable[[], None],
        is_cancelled: Callable[[], bool],
    ) -> None:
        self._utf8 = Utf8Stream()
        self._stops = StopMatcher(stop)
        self._callback = token_callback
        self._stop_engine = stop_engine
        self._is_cancelled = is_cancelled
        self.tokens: list[int] = []
        self._parts: list[str] = []
        self._dropped = 0
        self.callback_error: BaseException | None = None

    def on_token(self, token: int, piece: bytes) -> None:
        if self._is_cancelled() or self._stops.stopped:
            self._dropped += 1
            return
        text = self._stops.feed(self._utf8.feed(piece))
        if self._stops.stopped:
            self._stop_engine()
        self.tokens.append(token)
        self._parts.append(text)
        if self._callback is None or self.callback_error is not None:
            return
        try:
            self._callback(TokenChunk(token, text))
        except BaseException as exc:  # stop the engine; the caller re-raises once it has stopped
            self.callback_error = exc
            self._stop_engine()

    def result(self, engine: dict[str, Any], *, prompt: str | None, seed: int) -> GenerationResult:
        """The GenerationResult once the engine's generate request has returned `engine`; with `prompt`
        the text starts with it (no_display_prompt=False)."""
        self._parts.append(
            self._stops.feed(self._utf8.flush())
        )  # a dangling partial character shows as U+FFFD
        self._parts.append(self._stops.flush())
        text = "".join(self._parts)
        if prompt is not None:
            text = prompt + text
        timings = engine.get("timings") or {}
        finish_reason = str(engine.get("finish_reason") or "eos")
        if self._stops.stopped:
            finish_reason = "stop"
        elif self._dropped:
            finish_reason = "aborted"
        return GenerationResult(
            text=text,
            tokens=self.tokens,
            finish_reason=finish_reason,
            prompt_tokens=int_or_none(engine.get("prompt_tokens")) or 0,
            prompt_tokens_reused=int_or_none(engine.get("prompt_tokens_reused")) or 0,
            generated_tokens=len(self.tokens),
            prompt_ms=float(timings.get("prompt_ms") or 0.0),
            gen_ms=float(timings.get("gen_ms") or 0.0),
            seed=seed,
            threads=int_or_none(engine.get("threads")),
            eog_token=eog if (eog := int_or_none(engine.get("eog_token"))) is not None and eog >= 0 else None,
        )


def int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
