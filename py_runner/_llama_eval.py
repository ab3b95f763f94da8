"""llama-cpp-python's token-level Llama methods: `eval`, `sample`, `generate`, `reset`, and what they keep:
`n_tokens`, `input_ids`, `scores`.

llama-cpp-python's Llama holds the tokens it has evaluated (`input_ids[:n_tokens]`) and, with
`logits_all=True`, the logits after each of them (`scores`). Here the engine's KV cache lives in the worker,
so the Llama keeps its own view of that sequence (`_view`) and every engine call carries the whole sequence:
the engine keeps the longest prefix its cache already holds and evaluates only the rest (pr_eval_prompt), so
a view that differs from the cache (after `reset()`, after a completion that the engine generated past) costs
time, never correctness. After a completion the view is what the engine holds (the state_tokens request),
read when it is first needed.

What differs from llama-cpp-python, and why:
- `input_ids` is an `array('i')` of the `n_tokens` tokens held (no numpy in the page), not an n_ctx-long
  numpy array; `input_ids[:n_tokens].tolist()` reads the same.
- `scores` is a list with one entry per position held: an `array('f')` of n_vocab logits where the engine
  computed them (every position `eval` evaluated with `logits_all=True`; otherwise the last one), else None.
- `sample(idx=...)` takes the position whose logits to sample from (llama-cpp-python's index into the last
  batch); it samples with llama.cpp's sampler chain in the engine, as generation does.
- `generate()` yields end-of-generation tokens too, as llama-cpp-python does, and goes on after them; it
  ends when the context is full (llama-cpp-python raises there). Sending tokens into it (`.send`) and
  `logits_processor` / `stopping_criteria` are not supported.
"""

from __future__ import annotations

import contextlib
from array import array
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

from . import _llama_args as args
from ._errors import GenerationError, InvalidParameterError
from ._generation import GenerationResult
from ._llama_cache import longest_token_prefix
from ._llama_sync import SyncRunner
from ._params import GenerateTextParams
from ._runner import LlamaRunner

# llama-cpp-python's defaults for sample() and generate()
_SAMPLING_DEFAULTS: dict[str, Any] = {
    "top_k": 40, "top_p": 0.95, "min_p": 0.05, "typical_p": 1.0, "temp": 0.80, "repeat_penalty": 1.0,
    "frequency_penalty": 0.0, "presence_penalty": 0.0, "tfs_z": 1.0, "mirostat_mode": 0, "mirostat_tau": 5.0,
    "mirostat_eta": 0.1, "penalize_nl": True, "logits_processor": None, "grammar": None,
}  # fmt: skip


class LlamaTokenMethods:
    """The token-level half of Llama (mixed into py_runner.Llama)."""

    runner: LlamaRunner
    _sync: SyncRunner
    logits_all: bool
    seed: int
    # the tokens this Llama has evaluated (None: what the engine holds, read when needed) and their logits
    _tokens: list[int] | None
    _scores: dict[int, array]

    def n_ctx(self) -> int:  # Llama's
        raise NotImplementedError

    def n_vocab(self) -> int:  # Llama's
        raise NotImplementedError

    # ---- the sequence held -------------------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        """How many tokens are evaluated (llama-cpp-python's `n_tokens`)."""
        return len(self._view())

    @property
    def input_ids(self) -> array:
        """The tokens evaluated, in order: `array('i')` of `n_tokens` ids."""
        return array("i", self._view())

    @property
    def scores(self) -> list[array | None]:
        """The logits after each position held (array('f') of n_vocab), where the engine computed them."""
        return [self._scores.get(i) for i in range(len(self._view()))]

    def reset(self) -> None:
        """Forget the evaluated tokens (n_tokens = 0), as llama-cpp-python's reset(): the next eval starts at
        position 0 (the engine's cache is overwritten from where the new tokens differ)."""
        self._set_view([])

    def _view(self) -> list[int]:
        if self._tokens is None:
            self._set_view(self._sync.run(self.runner.held_tokens(), "llm.runner.held_tokens"))
        assert self._tokens is not None
        return self._tokens

    async def _aview(self) -> list[int]:
        if self._tokens is None:
            self._set_view(await self.runner.held_tokens())
        assert self._tokens is not None
        return self._tokens

    def _set_view(self, tokens: list[int] | None) -> None:
        """The sequence the Llama now holds (None: the engine's, read when needed); logits are kept for the
        positions it shares with the sequence before."""
        old = self._tokens or []
        shared = longest_token_prefix(old, tokens) if tokens is not None else 0
        self._scores = {i: row for i, row in self._scores.items() if i < shared}
        self._tokens = None if tokens is None else list(tokens)

    def _checked_tokens(self, name: str, tokens: Any) -> list[int]:
        if isinstance(tokens, str | bytes) or not isinstance(tokens, Sequence | array):
            raise InvalidParameterError(f"{name} takes a sequence of token ids, got {type(tokens).__name__}")
        n_vocab = self.n_vocab()
        out = []
        for t in tokens:
            t = int(t) if hasattr(t, "__index__") and not isinstance(t, bool) else t
            if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < (n_vocab or 2**31):
                raise InvalidParameterError(f"{name}: token ids must be ints in 0..{n_vocab - 1}, got {t!r}")
            out.append(t)
        return out

    # ---- eval --------------------------------------------------------------------------------------------
    def eval(self, tokens: Sequence[int]) -> None:
        """Evaluate `tokens` after those held (llama-cpp-python's Llama.eval)."""
        return self._sync.run(self.aeval(tokens), "aeval")

    async def aeval(self, tokens: Sequence[int]) -> None:
        new = self._checked_tokens("eval", tokens)
        if not new:
            return
        held = list(await self._aview())
        sequence = held + new
        rows = await self.runner.eval_tokens(sequence, rows_from=len(held) if self.logits_all else None)
        self._set_view(sequence)
        first = len(sequence) - len(rows)
        self._scores.update({first + i: row for i, row in enumerate(rows)})

    # ---- sampling ----------------------------------------------------------------------------------------
    def _sampling(self, options: dict[str, Any], max_tokens: int | None) -> GenerateTextParams:
        """GenerateTextParams for sample()/generate()'s llama-cpp-python arguments (checked as
        create_completion's are)."""
        options = dict(options)
        temp = options.pop("temp")
        options.pop("penalize_nl")  # llama.cpp's sampler no longer has it
        return args.params(
            options,
            n_ctx=self.n_ctx() or 512,
            n_vocab=self.n_vocab(),
            llm_seed=self.seed,
            max_tokens=max_tokens,
            temperature=temp,
        )

    def sample(
        self,
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        temp: float = 0.80,
        repeat_penalty: float = 1.0,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_eta: float = 0.1,
        mirostat_tau: float = 5.0,
        penalize_nl: bool = True,
        logits_processor: Any = None,
        grammar: Any = None,
        idx: int | None = None,
    ) -> int:
        """A token sampled from the logits after position `idx` (default: the last one held), with llama.cpp's
        sampler chain, llama-cpp-python's arguments and defaults."""
        options = {k: v for k, v in locals().items() if k in _SAMPLING_DEFAULTS}
        return self._sync.run(self.asample(idx=idx, **options), "asample")

    async def asample(self, *, idx: int | None = None, **options: Any) -> int:
        """The async twin of sample() (keyword arguments only)."""
        unknown = set(options) - set(_SAMPLING_DEFAULTS)
        if unknown:
            raise TypeError(f"sample() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        held = await self._aview()
        end = len(held) if idx is None else (args.whole("idx", idx, 0, optional=False) or 0) + 1
        if not 0 < end <= len(held):
            raise InvalidParameterError(f"idx must be a position held (0..{len(held) - 1}), got {idx!r}")
        params = self._sampling({**_SAMPLING_DEFAULTS, **options}, 1)
        result = await self.runner.generate_text(held[:end], params)
        token = result.tokens[0] if result.tokens else result.eog_token
        if token is None:
            raise GenerationError(f"no token was sampled ({result.finish_reason})")
        return token

    def generate(
        self,
        tokens: Sequence[int],
        top_k: int = 40,
        top_p: float = 0.95,
        min_p: float = 0.05,
        typical_p: float = 1.0,
        temp: float = 0.80,
        repeat_penalty: float = 1.0,
        reset: bool = True,
        frequency_penalty: float = 0.0,
        presence_penalty: float = 0.0,
        tfs_z: float = 1.0,
        mirostat_mode: int = 0,
        mirostat_tau: float = 5.0,
        mirostat_eta: float = 0.1,
        penalize_nl: bool = True,
        logits_processor: Any = None,
        stopping_criteria: Any = None,
        grammar: Any = None,
    ) -> Iterator[int]:
        """Tokens sampled one after another after `tokens` (llama-cpp-python's Llama.generate): where the
        tokens held start like `tokens`, only the rest is evaluated; reset=False: `tokens` continue those
        held. Runs until the caller stops iterating or the context is full."""
        if stopping_criteria is not None:
            raise InvalidParameterError("stopping_criteria is not supported here")
        options = {k: v for k, v in locals().items() if k in _SAMPLING_DEFAULTS}
        return self._sync.iterate(self.agenerate(tokens, reset=reset, **options), "agenerate")

    async def agenerate(
        self, tokens: Sequence[int], *, reset: bool = True, **options: Any
    ) -> AsyncIterator[int]:
        """The async twin of generate() (sampling arguments by keyword)."""
        unknown = set(options) - set(_SAMPLING_DEFAULTS)
        if unknown:
            raise TypeError(f"generate() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        new = self._checked_tokens("generate", tokens)
        if not new:
            raise InvalidParameterError("generate takes at least one token")
        params = self._sampling({**_SAMPLING_DEFAULTS, **options}, None)
        held = list(await self._aview())
        if not args.flag("reset", reset):
            sequence = held + new
        else:
            # llama-cpp-python's: a prefix shared with the tokens held is kept (the engine evaluates only the
            # rest), else the state is reset (through the attribute, as llama-cpp-python calls it)
            if not held or not longest_token_prefix(held, new):
                self.reset()
            sequence = new
        while True:
            results: list[GenerationResult] = []
            generated: list[int] = []
            start = lambda on_token, prompt=sequence, done=results.append: (  # noqa: E731
                self.runner.generate_text(prompt, params, on_token, done)
            )
            async with contextlib.aclosing(self.runner._stream(start)) as chunks:
                async for chunk in chunks:
                    self._set_view(sequence + generated)  # the token yielded is not evaluated yet
                    generated.append(chunk.token)
                    yield chunk.token
            self._set_view(sequence + generated)
            eog = results[0].eog_token if results else None
            if eog is None:  # the context is full: nothing more to sample
                return
            yield eog
            sequence = sequence + generated + [eog]
