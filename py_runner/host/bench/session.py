"""`py-runner bench session`: a long conversation's next turn after a page reload, answered from a session
restored from the browser's storage (`load_session`) against reading the whole conversation again."""

from __future__ import annotations

import json
from pathlib import Path

from .programs import python_call

# the public-domain text `py-runner perplexity` reads (the Declaration of Independence, Gettysburg Address)
TEXT = Path(__file__).resolve().parents[1] / "texts" / "declaration-and-gettysburg-address.txt"

SESSION = "py_runner-bench-session"
QUESTION = "In one sentence, what is this text about?"


def bench_session(
    model: Path, *, build: str = "st", tokens: int = 1500, runs: int = 2, ctx_size: int = 2048
) -> dict:
    """Page 1 builds a conversation of about `tokens` tokens (the shipped text's paragraphs as user turns)
    and saves it as a session; then fresh pages in the same profile (a reload: the model from the cache)
    answer one more question, alternately from the restored session and by reading the conversation again.
    Time to the first token of that answer, from before load_session (or the chat call), best of `runs`;
    both answers must be the same tokens."""
    from ..browser.headless import HarnessPage, open_browser
    from ..server import start_server, stop_server

    url = f"/local-model/{model.name}"
    server, base_url = start_server("127.0.0.1", 0, extra_files={url: model})
    common = {"build": build, "url": url, "ctx_size": ctx_size, "session": SESSION}
    try:
        with open_browser() as browser:
            context = browser.new_context()  # one profile: the cache and the session outlive each page

            def visit(program: str) -> dict:
                page = HarnessPage(context.new_page())
                page.boot(base_url, timeout_s=120)
                out = json.loads(page.run(program, timeout_s=600))
                page.page.close()
                return out

            text = TEXT.read_text(encoding="utf-8")
            saved = visit(python_call("session", "save", text=text, tokens=tokens, **common))
            resumed: dict[bool, list[dict]] = {True: [], False: []}
            for _ in range(runs):
                for from_session in (True, False):
                    program = python_call(
                        "session", "resume", messages=saved["messages"], question=QUESTION,
                        from_session=from_session, **common,
                    )  # fmt: skip
                    resumed[from_session].append(visit(program))
            context.close()
    finally:
        stop_server(server)
    restored = min(resumed[True], key=lambda r: r["first_token_ms"])
    reread = min(resumed[False], key=lambda r: r["first_token_ms"])
    if restored["tokens"] != reread["tokens"]:
        raise RuntimeError("the restored session answered other tokens than reading the conversation again")
    return {
        "model": str(model), "build": build, "runs": runs, "session_tokens": saved["n_tokens"],
        "session_bytes": saved["size"], "prompt_tokens": reread["prompt_tokens"],
        "restored_evaluated": restored["evaluated"], "restored_s": restored["first_token_ms"] / 1000,
        "reread_s": reread["first_token_ms"] / 1000,
        "speedup": reread["first_token_ms"] / restored["first_token_ms"],
    }  # fmt: skip


def format_session_report(report: dict) -> str:
    return (
        f"model {report['model']} ({report['build']} build), best of {report['runs']}, after a page reload:\n"
        f"  session: {report['session_tokens']} tokens, {report['session_bytes'] / 1e6:.1f} MB in storage\n"
        f"  next turn ({report['prompt_tokens']} prompt tokens), time to its first token:\n"
        f"    restored session {report['restored_s']:.2f} s "
        f"({report['restored_evaluated']} tokens evaluated), "
        f"reading the conversation again {report['reread_s']:.2f} s: {report['speedup']:.1f}x faster"
    )
