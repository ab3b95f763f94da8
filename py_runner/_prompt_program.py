"""What `py-runner run --prompt` runs inside Pyodide: load a model, generate (or chat), report.

The CLI writes a three-line program (``PROGRAM``) that calls ``run_prompt(config)`` with a JSON config
passed in ``sys.argv[1]``. This module is plain Python (it ships in py_runner's wheel), so it can be
tested in CPython with a fake transport. It also converts the native reference's JSON to the same
output shape (``native_result``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from ._utf8 import Utf8Stream

PROGRAM = """\
import json, sys
from py_runner._prompt_program import run_prompt
sys.exit(await run_prompt(json.loads(sys.argv[1])))
"""

_MB = 1024 * 1024


def _rate(count: int | None, ms: float | None) -> float | None:
    if not count or not ms or ms <= 0:
        return None
    return count * 1000.0 / ms


def result_json(
    *,
    tokens: list[int],
    text: str,
    build: str | None,
    threads: int | None,
    model: dict[str, Any],
    simd: str | None = None,
    load_ms: float | None,
    prompt_tokens: int | None,
    prompt_ms: float | None,
    gen_tokens: int | None,
    gen_ms: float | None,
) -> dict[str, Any]:
    """The one JSON object `run --json` prints (same shape for st/mt/native)."""
    return {
        "tokens": [int(t) for t in tokens],
        "text": text,
        "build": build,
        "simd": simd,  # the build's variant ("relaxed" / "simd128"; None for native)
        "threads": threads,
        "model": model,
        "timings": {
            "load_ms": load_ms,
            "prompt_tokens": prompt_tokens,
            "prompt_tok_s": _rate(prompt_tokens, prompt_ms),
            "gen_tokens": gen_tokens,
            "gen_tok_s": _rate(gen_tokens, gen_ms),
        },
    }


def native_result(native: dict[str, Any], *, threads: int, model_path: str | None = None) -> dict[str, Any]:
    """Convert `pr_native generate`'s JSON to `result_json`'s shape (build "native")."""
    from ._spec import ModelSpecification

    metadata = dict(native.get("metadata") or {})
    spec = ModelSpecification.from_metadata(metadata, source_url=model_path)
    timings = native.get("timings") or {}
    tokens = list(native.get("tokens") or [])
    # The same UTF-8 handling as the browser path: pieces are raw bytes, decoded as one stream.
    stream = Utf8Stream()
    text = "".join(stream.feed(bytes.fromhex(piece)) for piece in native.get("pieces_hex") or [])
    text += stream.flush()
    return result_json(
        tokens=tokens,
        text=text,
        build="native",
        threads=threads,
        model=spec.to_dict(),
        load_ms=timings.get("load_ms"),
        prompt_tokens=timings.get("prompt_tokens"),
        prompt_ms=timings.get("prompt_ms"),
        gen_tokens=timings.get("gen_tokens", len(tokens)),
        gen_ms=timings.get("gen_ms"),
    )


class _ProgressLine:
    """A one-line terminal progress display on stderr ("\\r" updates, newline when done)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._open = False

    def __call__(self, info: Any) -> None:
        stage = getattr(info.stage, "value", str(info.stage))
        loaded = info.loaded or 0
        if info.total:
            amount = f"{100.0 * loaded / info.total:5.1f}% {loaded / _MB:.1f}/{info.total / _MB:.1f} MB"
        elif loaded:
            amount = f"{loaded / _MB:.1f} MB"
        else:
            amount = ""
        line = f"[{stage}] {amount} {info.message or ''}".rstrip()
        self._stream.write(f"\r{line:<60}")
        self._open = True
        if stage in ("ready", "error", "aborted"):
            self.close()
        self._stream.flush()

    def close(self) -> None:
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False


def _make_runner(cfg: dict[str, Any], transport: Any = None) -> Any:
    """LlamaRunner with the requested build ("auto"/"st"/"mt"), its variant and threads."""
    from . import LlamaRunner

    build, simd = cfg.get("build") or "auto", cfg.get("simd") or "auto"
    return LlamaRunner(transport=transport, build=build, simd=simd, n_threads=cfg.get("threads"))


async def run_prompt(cfg: dict[str, Any], *, transport: Any = None, out: Any = None, err: Any = None) -> int:
    """Load cfg["model_url"], generate from cfg["prompt"] (with cfg["chat"]: answer it as a user message,
    after cfg["system"] if given, through the model's chat template); stream text (or print JSON); return a
    status."""
    from . import GenerateTextParams, LocalWebAIError

    out = out or sys.stdout
    err = err or sys.stderr
    as_json = bool(cfg.get("json"))
    progress = _ProgressLine(err)
    runner = None
    try:
        runner = _make_runner(cfg, transport)
        t0 = time.perf_counter()
        spec = await runner.load_model(
            cfg["model_url"],
            progress_callback=progress,
            ctx_size=int(cfg.get("ctx_size") or 512),
            type_k=cfg.get("cache_type_k"),
            type_v=cfg.get("cache_type_v"),
        )
        load_ms = (time.perf_counter() - t0) * 1000.0
        progress.close()

        build = runner.build
        wanted = cfg.get("build") or "auto"
        if wanted in ("st", "mt") and build != wanted:
            err.write(f"py-runner: error: asked for the {wanted} build but the engine started {build}\n")
            return 1

        params = GenerateTextParams(
            n_predict=int(cfg.get("n_predict") or 32),
            n_threads=cfg.get("threads"),
            temp=float(cfg.get("temp", 0.0)),
            top_k=int(cfg.get("top_k", 40)),
            top_p=float(cfg.get("top_p", 0.95)),
            seed=int(cfg.get("seed", 0)),
        )

        def on_token(chunk: Any) -> None:
            if chunk.text:
                out.write(chunk.text)
                out.flush()

        on_token_or_none = None if as_json else on_token
        if cfg.get("chat"):
            system = [{"role": "system", "content": cfg["system"]}] if cfg.get("system") is not None else []
            messages = [*system, {"role": "user", "content": cfg["prompt"]}]
            result = await runner.chat(messages, params, on_token_or_none)
        else:
            result = await runner.generate_text(cfg["prompt"], params, on_token_or_none)
        if as_json:
            threads = result.threads if result.threads is not None else cfg.get("threads")
            doc = result_json(
                tokens=result.tokens,
                text=result.text,
                build=build,
                simd=runner.simd,
                threads=int(threads) if threads is not None else None,
                model=spec.to_dict(),
                load_ms=load_ms,
                prompt_tokens=result.prompt_tokens,
                prompt_ms=result.prompt_ms,
                gen_tokens=result.generated_tokens,
                gen_ms=result.gen_ms,
            )
            out.write(json.dumps(doc) + "\n")
        else:
            out.write("\n")
        out.flush()
        return 0
    except LocalWebAIError as exc:
        progress.close()
        message = str(exc).splitlines()[0] if str(exc) else ""
        err.write(f"py-runner: error: {type(exc).__name__}: {message}\n")
        err.flush()
        return 1
    finally:
        if runner is not None:
            try:
                runner.terminate()
            except Exception:
                pass
