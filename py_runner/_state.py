"""Saved state: a conversation's KV cache kept in memory (`save_state` / `load_state`, llama-cpp-python's
names) or in the browser's storage (`save_session` / `load_session`), so that a reload does not evaluate the
conversation again; and LlamaRunner's methods for them (a mixin).

What a state holds: the tokens the engine's KV cache holds (the prompt-reuse list of wasm/glue_generate.cpp)
and that cache's bytes (llama.cpp's llama_state_seq_get_data of sequence 0: the K and V of every layer for
those positions), with the identity of the model and context they were made with. The engine
(web/engine/engine_state.js) refuses a state of another model (source, size, sha256, ETag), context size or KV
cache types with StateMismatchError; llama.cpp itself refuses one whose shapes differ. After a restore the
next prompt that starts with the saved tokens evaluates only what follows them.

Sessions are stored by the engine worker beside the model cache (web/shared/session_store.js: the Origin
Private File System, or Cache Storage where there is none), one entry per name, with a sha256 over the tokens
and state that is checked when the session is read (StateIntegrityError, and the entry is deleted). A full
quota is CacheQuotaError, as for models.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any

from ._errors import InvalidParameterError, StateError
from ._transport import Transport

MAX_SESSION_NAME = 200  # characters: a name is a key, not a document


@dataclasses.dataclass(frozen=True)
class LlamaState:
    """A conversation's saved state (llama-cpp-python's `LlamaState`, same field names): `input_ids` the
    tokens the KV cache holds, `llama_state` that cache's bytes (`llama_state_size` of them), `seed` the
    sampler seed of the Llama that saved it. `scores` (per-token logits in llama-cpp-python with
    logits_all=True) is None: the engine does not keep them. `model` identifies the model and context it was
    saved with; `load_state` refuses it anywhere else."""

    input_ids: list[int]
    scores: None
    n_tokens: int
    llama_state: bytes
    llama_state_size: int
    seed: int
    model: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SessionInfo:
    """A session stored in the browser (`list_sessions()`, and what save/load_session return)."""

    name: str
    n_tokens: int  # the conversation's tokens the session holds
    size: int  # bytes of the stored KV cache state
    saved_at: str  # ISO 8601
    sha256: str  # over the tokens and the state, checked on every load
    model: dict[str, Any]  # source, size, sha256, etag, n_ctx, type_k, type_v of the model it was saved with


def _session_info(meta: dict[str, Any]) -> SessionInfo:
    return SessionInfo(
        name=str(meta.get("name") or ""),
        n_tokens=int(meta.get("n_tokens") or 0),
        size=int(meta.get("size") or 0),
        saved_at=str(meta.get("saved_at") or ""),
        sha256=str(meta.get("sha256") or ""),
        model=dict(meta.get("model") or {}),
    )


def check_session_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_SESSION_NAME:
        raise InvalidParameterError(
            f"a session name is a non-empty str of at most {MAX_SESSION_NAME} characters, got {name!r}"
        )
    return name


class StateMethods:
    # What LlamaRunner provides (_runner.py): one request with crash recovery, an engine for storage calls.
    _request: Callable[[str, Callable[[Transport], Awaitable[Any]]], Awaitable[Any]]
    _cache_transport: Callable[[str], Awaitable[Transport]]

    async def save_state(self) -> LlamaState:
        """The conversation the engine holds (its tokens and KV cache), as a LlamaState in memory."""
        result = await self._request("save the state", lambda t: t.request("state_save", {}))
        tokens = [int(t) for t in result["tokens"]]
        data = bytes(result["state"])
        return LlamaState(
            input_ids=tokens,
            scores=None,
            n_tokens=len(tokens),
            llama_state=data,
            llama_state_size=len(data),
            seed=0,
            model=dict(result["model"]),
        )

    async def load_state(self, state: LlamaState) -> None:
        """Restore a state saved by save_state() with this model and context: the next prompt that starts
        with `state.input_ids` evaluates only what follows them. Raises StateMismatchError for a state of
        another model, context size or KV cache types."""
        if not isinstance(state, LlamaState):
            raise InvalidParameterError(f"load_state takes a LlamaState, got {type(state).__name__}")
        data = bytes(state.llama_state)
        if len(data) != state.llama_state_size or len(state.input_ids) != state.n_tokens:
            raise StateError(
                f"the state is inconsistent: {len(data)} bytes for llama_state_size "
                f"{state.llama_state_size}, "
                f"{len(state.input_ids)} input_ids for n_tokens {state.n_tokens}"
            )
        fields = {"tokens": [int(t) for t in state.input_ids], "state": data, "model": dict(state.model)}
        await self._request("load a state", lambda t: t.request("state_load", fields))

    async def save_session(self, name: str) -> SessionInfo:
        """Store the conversation the engine holds in the browser under `name` (replacing a session of that
        name), for load_session() after a reload. Raises CacheQuotaError when the origin's quota is full."""
        fields = {"name": check_session_name(name)}
        meta = await self._request("save a session", lambda t: t.request("session_save", fields))
        return _session_info(meta)

    async def load_session(self, name: str) -> SessionInfo:
        """Restore the session stored under `name` into the loaded model's context. Raises
        SessionNotFoundError, StateMismatchError (another model, context size or KV cache types) or
        StateIntegrityError (its bytes changed on disk: the entry is deleted)."""
        fields = {"name": check_session_name(name)}
        meta = await self._request("load a session", lambda t: t.request("session_load", fields))
        return _session_info(meta)

    async def list_sessions(self) -> list[SessionInfo]:
        """The sessions stored in this browser for this origin, by name."""
        transport = await self._cache_transport("list sessions")
        return [_session_info(meta) for meta in await transport.request("session_list", {})]

    async def delete_session(self, name: str) -> bool:
        """Delete the session stored under `name`; False when there was none."""
        transport = await self._cache_transport("delete a session")
        return bool(await transport.request("session_delete", {"name": check_session_name(name)}))
