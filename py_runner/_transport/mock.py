"""MockTransport: a scripted engine, so that code built on LlamaRunner can be unit-tested in plain CPython,
with no browser (as httpx ships httpx.MockTransport).

    runner = LlamaRunner(transport=MockTransport(pieces=[(1, b"Hello"), (2, b" world")]))
    await runner.load_model("models/model.gguf")  # resolved against the page, as in the browser
    assert (await runner.generate_text("Hi")).text == "Hello world"

It answers every request of web/shared/protocol.js from a table of handlers, one per request type, each given
a MockRequest (type, fields, progress(), token()) and returning the result as the browser transport returns
it. The built-in table: a valid GGUF header for the fail-fast check, scripted load progress and model
metadata, the given token pieces for every generation, tag-style chat formatting, a byte-per-token tokenizer,
cache entries, embeddings. `handlers={"tokenize": fn, ...}` replaces any of them (as httpx's mock takes a
handler). Errors and blocking can be scripted (load_error, gen_error, block_load, block_generate_after, ...),
and every call is recorded (requests, load_calls, generate_calls, chat_calls, ...) for assertions. A request
whose fields or result do not match the declaration fails with BridgeError, as the bridge refuses it.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from array import array
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from .._errors import BridgeError, ChatTemplateError, EmbeddingError, LoadAbortedError
from .base import ProgressCallback, TokenCallback, Transport
from .protocol import CACHE_TYPES, REQUESTS, request_problems, result_problems


def gguf_header(arch: str = "llama", *, magic: bytes = b"GGUF", version: int = 3) -> bytes:
    """A minimal GGUF file: no tensors, one key (general.architecture)."""
    key, value = b"general.architecture", arch.encode()
    kv = struct.pack("<Q", len(key)) + key + struct.pack("<IQ", 8, len(value)) + value  # 8 = STRING
    return magic + struct.pack("<IQQ", version, 0, 1) + kv


METADATA: dict[str, Any] = {
    "meta": {
        "general.architecture": "llama",
        "general.name": "tiny-test",
        "general.file_type": "7",
        "llama.rope.freq_base": "10000.000000",
        "llama.context_length": "256",
    },
    "n_vocab": 512,
    "n_ctx_train": 256,
    "n_embd": 64,
    "n_layer": 2,
    "n_head": 4,
    "n_head_kv": 2,
    "n_params": 123456,
    "size": 234567,
    "desc": "llama ?B Q8_0",
    "n_ctx": 2048,
    "gguf_version": 3,
    "tensor_count": 19,
    "file_name": "tiny.gguf",
    "file_size": 250000,
}


@dataclass
class MockRequest:
    """One request as a MockTransport handler sees it."""

    type: str
    fields: dict[str, Any]
    on_progress: ProgressCallback | None = None
    on_token: TokenCallback | None = None

    def progress(self, event: dict[str, Any]) -> None:
        if self.on_progress is not None:
            self.on_progress(dict(event))

    def token(self, token: int, piece: bytes) -> None:
        if self.on_token is not None:
            self.on_token(token, piece)


Handler = Callable[[MockRequest], Any | Awaitable[Any]]


class MockTransport(Transport):
    def __init__(
        self,
        *,
        handlers: dict[str, Handler] | None = None,
        progress: list[dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        pieces: list[tuple[int, bytes]] | None = None,
        load_error: BaseException | None = None,
        gen_error: BaseException | None = None,
        block_load: bool = False,
        block_generate_after: int | None = None,
        abort_lag: int = 0,
        model_bytes: bytes | None = None,
        model_size: int | None = None,
        prefix_error: BaseException | None = None,
        embed_error: BaseException | None = None,
        block_embed_after: int | None = None,
        start_notice: str | None = None,
    ) -> None:
        self.start_notice = start_notice  # what a browser lacking a feature says at start (bridge.js info())
        self.model_bytes = gguf_header() if model_bytes is None else model_bytes
        # the size the model's source reports, when model_bytes holds only its start (a big model's header)
        self.model_size = model_size
        self.prefix_error = prefix_error
        self.embed_error = embed_error
        self.block_embed_after = block_embed_after  # embed waits after N texts
        self.embed_calls: list[tuple[list[str], dict[str, Any]]] = []
        self.prefix_reads: list[int] = []
        self.chat_calls: list[tuple[list[dict[str, str]], str | None]] = []
        self.chat_apply_calls: list[dict[str, Any]] = []
        self.logits_calls: list[tuple[str, list[int]]] = []
        self.cache_entries: dict[str, dict[str, Any]] = {}  # url -> {url, size, complete, cached_at}
        self.progress = (
            progress
            if progress is not None
            else [
                {"stage": "downloading", "loaded": 0, "total": 250000},
                {"stage": "downloading", "loaded": 250000, "total": 250000},
                {"stage": "loading", "loaded": 0, "total": 250000},
                {"stage": "loading", "loaded": 250000, "total": 250000},
            ]
        )
        self._metadata_given = metadata
        self.metadata = dict(METADATA if metadata is None else metadata)
        self.pieces = pieces if pieces is not None else [(1, b"Hi"), (2, b" there")]
        self.load_error = load_error
        self.abort_lag = abort_lag  # tokens the engine still emits after abort(), as a real worker may
        self.gen_error = gen_error
        self.block_load = block_load  # load waits until abort()/terminate()
        self.block_generate_after = block_generate_after  # generate waits after N tokens
        self.starts = 0
        self.aborts: list[str] = []
        self.terminated = 0
        self.load_calls: list[tuple[Any, dict[str, Any]]] = []
        self.generate_calls: list[tuple[str, dict[str, Any]]] = []
        self._abort: dict[str, asyncio.Event] = {}
        self._dead: asyncio.Event | None = None
        self.requests: list[MockRequest] = []  # every request, in order
        # the tokens its KV cache holds, as the engine keeps them: the last prompt and what was generated
        # after it (the last sampled token is decoded only when generation goes on), or what eval or
        # state_load put there
        self.held: list[int] = []
        # request type -> handler: the scripted engine below, then the caller's
        self.handlers: dict[str, Handler] = {
            "load": self._load,
            "generate": self._generate,
            "embed": self._embed,
            "logits": self._logits,
            "eval": self._eval,
            "state_tokens": lambda request: {"tokens": list(self.held)},
            "state_load": self._state_load,
            "tokenize": self._tokenize,
            "detokenize": self._detokenize,
            "token_pieces": self._token_pieces,
            "chat_format": self._chat_format,
            "chat_apply": self._chat_apply,
            "chat_parse": self._chat_parse,
            "cache_list": self._cache_list,
            "cache_delete": self._cache_delete,
            "cache_clear": self._cache_clear,
        }
        # any request protocol.js declares may be handled: a new pass-through request needs no edit here
        unknown = set(handlers or {}) - set(REQUESTS)
        if unknown:
            raise ValueError(f"MockTransport: no request named {sorted(unknown)} in the protocol")
        self.handlers.update(handlers or {})

    async def request(
        self,
        type: str,
        fields: dict[str, Any],
        *,
        on_progress: ProgressCallback | None = None,
        on_token: TokenCallback | None = None,
    ) -> Any:
        problems = request_problems(type, fields)
        if problems:
            raise BridgeError("; ".join(problems))
        handler = self.handlers.get(type)
        if handler is None:
            raise BridgeError(f"MockTransport has no handler for the request {type!r}: pass one in handlers=")
        request = MockRequest(type, dict(fields), on_progress, on_token)
        self.requests.append(request)
        result = handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        problems = result_problems(type, result)
        if problems:
            raise BridgeError("; ".join(problems))
        return result

    def _event(self, kind: str) -> asyncio.Event:
        self._abort[kind] = asyncio.Event()
        return self._abort[kind]

    async def _wait(self, aborted: asyncio.Event) -> None:
        assert self._dead is not None
        dead = asyncio.ensure_future(self._dead.wait())
        ab = asyncio.ensure_future(aborted.wait())
        await asyncio.wait([dead, ab], return_when=asyncio.FIRST_COMPLETED)
        dead.cancel()
        ab.cancel()
        if self._dead.is_set():
            raise BridgeError("worker terminated")

    async def start(self) -> dict[str, Any]:
        self.starts += 1
        self._dead = asyncio.Event()
        return {
            "build": "st",
            "simd": "simd128",
            "threads": 1,
            "crossOriginIsolated": False,
            "baseUrl": "http://127.0.0.1:8000/app/",  # where a page served by `py-runner serve` lives
            "notice": self.start_notice,
        }

    async def _load(self, request: MockRequest) -> dict[str, Any]:
        options = dict(request.fields)
        source = options.pop("source")
        self.load_calls.append((source, options))
        aborted = self._event("load")
        for p in self.progress:
            await asyncio.sleep(0)
            if aborted.is_set():
                raise LoadAbortedError("AbortError (stage: loading)")
            request.progress(p)
        if self.block_load:
            await self._wait(aborted)
        if aborted.is_set():
            raise LoadAbortedError("AbortError (stage: loading)")
        if self.load_error is not None:
            raise self.load_error
        metadata = dict(self.metadata)
        if "n_ctx" in options and "n_ctx" not in (self._metadata_given or {}):
            metadata["n_ctx"] = options["n_ctx"]  # the context asked for, as the engine makes it
        type_names = {number: name for name, number in CACHE_TYPES.items()}
        for kv in ("type_k", "type_v"):  # the KV cache's types by ggml's names, as the engine reports them
            metadata[kv] = type_names[options[kv]] if kv in options else "f16"
        if isinstance(source, str) and options.get("cache", True):  # the worker's OPFS cache, in memory
            metadata["cache_hit"] = source in self.cache_entries
            size = metadata.get("file_size")
            entry = {"url": source, "size": size, "complete": True, "cached_at": "2026-01-01T00:00:00Z"}
            self.cache_entries.setdefault(source, entry)
        return metadata

    async def _generate(self, request: MockRequest) -> dict[str, Any]:
        options = dict(request.fields)
        prompt = options.pop("prompt")
        self.generate_calls.append((prompt, options))
        aborted = self._event("generate")
        if self.gen_error is not None:
            raise self.gen_error
        tokens: list[int] = []
        reason = "eos"
        for tok, piece in self.pieces:
            if len(tokens) == self.block_generate_after:
                await self._wait(aborted)
            await asyncio.sleep(0)
            if aborted.is_set():
                if self.abort_lag == 0:
                    reason = "aborted"
                    break
                self.abort_lag -= 1
            if len(tokens) >= options["n_predict"]:
                reason = "length"
                break
            request.token(tok, piece)
            tokens.append(tok)
        prompt_ids = list(prompt) if isinstance(prompt, list) else [1, *prompt.encode()]  # _tokenize's
        self.held = prompt_ids + (tokens if reason == "eos" else tokens[:-1])
        return {
            "tokens": tokens,
            "prompt_tokens": 5,
            "timings": {"prompt_ms": 50.0, "gen_ms": 100.0},
            "finish_reason": reason,
            "eog_token": int(self.metadata.get("eos_token_id", 2)) if reason == "eos" else -1,
        }

    async def _embed(self, request: MockRequest) -> dict[str, Any]:
        """Vector of a text: [its length, 1, 0] (unit length when normalize), one progress event per text."""
        options = dict(request.fields)
        texts = options.pop("texts")
        self.embed_calls.append((list(texts), options))
        aborted = self._event("embed")
        if self.embed_error is not None:
            raise self.embed_error
        vectors = []
        for i, text in enumerate(texts):
            if i == self.block_embed_after:
                await self._wait(aborted)
            await asyncio.sleep(0)
            if aborted.is_set():
                raise EmbeddingError(f"embedding was aborted after {i} of {len(texts)} texts")
            v = [float(len(text)), 1.0, 0.0]
            if options.get("normalize", True):
                norm = sum(x * x for x in v) ** 0.5
                v = [x / norm for x in v]
            vectors.append(v)
            request.progress({"stage": "embedding", "loaded": i + 1, "total": len(texts)})
        flat = array("f", [x for v in vectors for x in v])
        return {"embeddings": flat.tobytes(), "n_embd": 3, "n_tokens": [len(t) + 1 for t in texts]}

    async def _tokenize(self, request: MockRequest) -> dict[str, Any]:
        await asyncio.sleep(0)
        text, add_special = request.fields["text"], request.fields["add_special"]
        return {"tokens": ([1] if add_special else []) + list(text.encode())}  # BOS, then one token per byte

    async def _detokenize(self, request: MockRequest) -> dict[str, Any]:
        await asyncio.sleep(0)
        return {"bytes": bytes(t for t in request.fields["tokens"] if t >= 32)}

    async def _token_pieces(self, request: MockRequest) -> dict[str, Any]:
        await asyncio.sleep(0)
        pieces = [bytes([t]) if t >= 32 else b"" for t in request.fields["tokens"]]  # a byte per token
        return {"bytes": b"".join(pieces), "lengths": [len(p) for p in pieces]}

    async def _logits(self, request: MockRequest) -> dict[str, Any]:
        await asyncio.sleep(0)
        prompt, tokens = request.fields["prompt"], list(request.fields["tokens"])
        self.logits_calls.append((prompt, tokens))
        n_vocab = self.metadata["n_vocab"]
        rows = array("f", [0.0] * (n_vocab * len(tokens)))
        for i, token in enumerate(tokens):
            rows[i * n_vocab + token] = 1.0 + i  # row i's argmax is tokens[i]
        return {"n_vocab": n_vocab, "rows": len(tokens), "logits": rows.tobytes()}

    async def _eval(self, request: MockRequest) -> dict[str, Any]:
        """Rows whose argmax is the token at their position, mod n_vocab; the sequence is then held."""
        await asyncio.sleep(0)
        tokens = list(request.fields["tokens"])
        reused = 0
        while reused < min(len(self.held), len(tokens) - 1) and self.held[reused] == tokens[reused]:
            reused += 1
        start = request.fields.get("rows_from")
        positions = range(len(tokens) - 1, len(tokens)) if start is None else range(start, len(tokens))
        n_vocab = self.metadata["n_vocab"]
        rows = array("f", [0.0] * (n_vocab * len(positions)))
        for i, position in enumerate(positions):
            rows[i * n_vocab + tokens[position] % n_vocab] = 1.0
        self.held = tokens
        return {"n_vocab": n_vocab, "rows": len(positions), "logits": rows.tobytes(), "reused": reused}

    def _state_load(self, request: MockRequest) -> dict[str, Any]:
        self.held = list(request.fields["tokens"])
        return {"tokens": len(self.held)}

    async def _chat_format(self, request: MockRequest) -> dict[str, Any]:
        await asyncio.sleep(0)
        messages, template = list(request.fields["messages"]), request.fields.get("template")
        self.chat_calls.append((messages, template))
        if template == "unsupported":
            raise ChatTemplateError("the chat template is not supported")
        turns = "".join(f"<{m['role']}>{m['content']}</{m['role']}>" for m in messages)
        return {"prompt": turns + ("<assistant>" if request.fields["add_assistant"] else "")}

    async def _chat_apply(self, mock_request: MockRequest) -> dict[str, Any]:
        return {"json": json.dumps(await self._chat_applied(json.loads(mock_request.fields["request"])))}

    async def _chat_parse(self, request: MockRequest) -> dict[str, Any]:
        return {"json": json.dumps(await self._chat_parsed(request.fields["text"]))}

    async def _chat_applied(self, request: dict[str, Any]) -> dict[str, Any]:
        """The tag-style template, tools as a <tools> line and a grammar of their calls (lazy, from the
        trigger `<tool_call>`, unless tool_choice is "required"); a reply's <tool_call>{json}</tool_call>
        parses."""
        await asyncio.sleep(0)
        self.chat_apply_calls.append(dict(request))
        if request.get("template") == "unsupported":
            raise ChatTemplateError("the chat template is not supported")
        turns = "".join(f"<{m['role']}>{m.get('content') or ''}</{m['role']}>" for m in request["messages"])
        tools = f"<tools>{json.dumps(request['tools'])}</tools>" if request.get("tools") else ""
        prompt = tools + turns + ("<assistant>" if request.get("add_generation_prompt", True) else "")
        applied: dict[str, Any] = {"prompt": prompt, "format": 0, "format_name": "Content-only"}
        applied.update(grammar="", grammar_lazy=False, grammar_triggers=[], preserved_tokens=[], parser="")
        if tools and request.get("tool_choice", "auto") != "none":
            # As llama.cpp's chat layer: a grammar of the calls, lazy (from the trigger) unless one is
            # required; the trigger is there either way, so code that starts a required grammar lazily shows.
            names = " | ".join(json.dumps(json.dumps(t["function"]["name"])) for t in request["tools"])
            required = request.get("tool_choice", "auto") == "required"
            # a grammar enforced from the start begins with what the template wrote (llama.cpp's does too)
            start = '"<assistant>" ' if required and request.get("add_generation_prompt", True) else ""
            call = '"<tool_call>{\\"name\\": " name ", \\"arguments\\": " args "}</tool_call>"'
            grammar = f"root ::= {start}{call}\n"
            grammar += f'name ::= {names}\nargs ::= "{{" [^<]* "}}"\n'
            applied.update(grammar=grammar, grammar_lazy=not required)
            applied.update(
                grammar_triggers=[{"type": 1, "value": "<tool_call>"}], preserved_tokens=["<tool_call>"]
            )
        generation_prompt = "<assistant>" if request.get("add_generation_prompt", True) else ""
        applied.update(
            generation_prompt=generation_prompt, additional_stops=["</assistant>"] if tools else []
        )
        return applied

    async def _chat_parsed(self, text: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        message: dict[str, Any] = {"role": "assistant", "content": text}
        calls = re.findall(r"<tool_call>(.*?)</tool_call>", text, re.S)
        if calls:
            message["content"] = re.sub(r"<tool_call>.*?</tool_call>", "", text, flags=re.S).strip() or None
            message["tool_calls"] = [
                {
                    "type": "function",
                    "id": f"call_{i}",
                    "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])},
                }
                for i, c in enumerate(json.loads(call) for call in calls)
            ]
        return message

    async def read_prefix(self, source: Any, length: int) -> tuple[bytes, int | None]:
        self.prefix_reads.append(length)
        if self.prefix_error is not None:
            raise self.prefix_error
        await asyncio.sleep(0)
        total = len(self.model_bytes) if self.model_size is None else self.model_size
        return self.model_bytes[:length], total

    async def _cache_list(self, request: MockRequest) -> list[dict[str, Any]]:
        await asyncio.sleep(0)
        return [dict(e) for _, e in sorted(self.cache_entries.items())]

    async def _cache_delete(self, request: MockRequest) -> bool:
        await asyncio.sleep(0)
        return self.cache_entries.pop(request.fields["url"], None) is not None

    async def _cache_clear(self, request: MockRequest) -> int:
        await asyncio.sleep(0)
        count = len(self.cache_entries)
        self.cache_entries.clear()
        return count

    def abort(self, kind: str) -> None:
        self.aborts.append(kind)
        if kind in self._abort:
            self._abort[kind].set()

    def terminate(self) -> None:
        self.terminated += 1
        if self._dead is not None:
            self._dead.set()
