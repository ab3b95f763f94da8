"""Deep input and NUL characters in the real engine (issue 22, items 3, 4, 5 and 7), on the default model.

- Text is passed with its length end to end: a NUL is an ordinary character in tokenize, in a chat and in a
  reply's parsing, as in native llama.cpp, never the end of the text.
- Nesting the engine's parsers cannot take is refused before the engine is entered (a grammar, tools, a
  reply); nesting up to each limit works in the engine.
- A chat template's render is bounded: a recursive macro and an endless loop end as ChatTemplateError, and the
  same engine answers the next call.
- Any stack overflow that still happens inside the engine (here: a template expression nested 20,000 deep,
  which llama.cpp's Jinja parser recurses into) is an engine abort: a typed EngineCrashedError, the worker
  replaced, and the next call exact, however often it happens.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from py_runner._limits import MAX_GRAMMAR_DEPTH, MAX_JSON_DEPTH
from py_runner.host.build.assets import default_model

pytestmark = pytest.mark.e2e

APP = textwrap.dedent(
    """\
    import json
    import sys
    import time

    from py_runner import (
        ChatTemplateError, EngineCrashedError, GenerateTextParams, InvalidParameterError, Llama, LlamaRunner,
    )

    config = json.loads(sys.argv[1])
    report = {}
    runner = LlamaRunner(build="st")
    llm = await Llama.load(config["model"], n_ctx=1024, runner=runner)  # the facade, for a chat completion
    greedy = GenerateTextParams(n_predict=8, temp=0)
    before = (await runner.generate_text("The capital of France is", greedy)).tokens
    details = runner.load_details


    async def outcome(call):
        try:
            value = await call
            return ["ok", value]
        except Exception as err:
            return [type(err).__name__, str(err)[-400:]]


    # NUL: an ordinary character
    with_nul = await runner.tokenize("abc\\x00def")
    report["nul_tokens_differ"] = with_nul != await runner.tokenize("abc")
    report["nul_round_trip"] = await runner.detokenize(with_nul, remove_special=True)
    chat = [{"role": "user", "content": "first\\x00second"}]
    applied = await runner.apply_chat(chat)
    report["nul_prompt_tail"] = applied["prompt"][-60:]
    completion = await llm.acreate_chat_completion(messages=chat, max_tokens=1, temperature=0)
    report["nul_prompt_tokens"] = completion["usage"]["prompt_tokens"]
    report["nul_prompt_tokens_expected"] = len(await runner.tokenize(applied["prompt"], True, True))
    report["nul_reply"] = (await runner.parse_chat_reply(applied, "a\\x00b"))["content"]

    # Grammars: the limit works, one more is refused before the engine
    def grammar(depth):
        return "root ::= " + "(" * depth + '"a"' + ")" * depth

    limit = config["grammar_depth"]
    fine = GenerateTextParams(n_predict=2, temp=0, grammar=grammar(limit))
    kind, value = await outcome(runner.generate_text("x", fine))
    report["grammar_at_limit"] = [kind, value.text if kind == "ok" else value]
    too_deep = GenerateTextParams(grammar=grammar(2000))
    report["grammar_2000"] = (await outcome(runner.generate_text("x", too_deep)))[0]

    # Tools and replies: nesting up to the limit goes through llama.cpp's chat layer; deeper is refused
    def schema(depth):
        value = {"type": "string"}
        for _ in range(depth):
            value = {"type": "object", "properties": {"x": value}}
        return value

    def tool(depth):
        function = {"name": "f", "description": "d", "parameters": schema(depth)}
        return {"type": "function", "function": function}

    ask = [{"role": "user", "content": "call f"}]
    at_limit = await outcome(runner.apply_chat(ask, tools=[tool(config["json_depth"] // 2 - 2)]))
    report["tools_at_limit"] = at_limit[0]
    # 800 levels: far past the limit, yet short of the ~4,000 at which Pyodide itself dies freeing a dict
    report["tools_too_deep"] = (await outcome(runner.apply_chat(ask, tools=[tool(400)])))[0]
    applied_tools = await runner.apply_chat(ask, tools=[tool(1)])
    report["tools_format"] = applied_tools["format_name"]
    depth = config["json_depth"]
    deep_reply = '{"tool_call": {"name": "f", "arguments": ' + "[" * (depth - 2) + "]" * (depth - 2) + "}}"
    report["reply_at_limit"] = (await outcome(runner.parse_chat_reply(applied_tools, deep_reply)))[0]
    deeper = '{"tool_call": {"name": "f", "arguments": ' + "[" * 3000 + "]" * 3000 + "}}"
    report["reply_3000"] = await outcome(runner.parse_chat_reply(applied_tools, deeper))

    # Hostile templates: bounded renders, a typed error, the same engine answers next
    recursive = "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"
    report["recursive_macro"] = await outcome(runner.format_chat(ask, template=recursive))
    endless = "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}"
    started = time.monotonic()
    report["endless_loop"] = await outcome(runner.format_chat(ask, template=endless))
    report["endless_loop_s"] = time.monotonic() - started  # for DESIGN's figure; no test bounds time
    again = await runner.generate_text("The capital of France is", greedy)
    # A legitimate long chat stays far inside the template budget
    long_chat = [{"role": ("user", "assistant")[i % 2], "content": f"message {i}"} for i in range(2000)]
    report["long_chat"] = (await outcome(runner.format_chat(long_chat)))[0]
    report["same_engine_after_templates"] = again.tokens == before and runner.load_details == details

    # A stack overflow the checks do not catch: an engine abort, the worker replaced, the next call exact
    overflow = "{{ " + "(" * 20000 + "1" + ")" * 20000 + " }}"
    report["overflows"] = []
    for _ in range(config["overflow_repeats"]):
        report["overflows"].append(await outcome(runner.format_chat(ask, template=overflow)))
        again = await runner.generate_text("The capital of France is", greedy)
        report["overflows"].append(again.tokens == before)
    report["loaded_after"] = runner.is_model_loaded
    print(json.dumps(report))
    """
)


def test_deep_input_and_nul_in_the_engine(require_builds, tmp_path: Path, run_cli) -> None:
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    config = {
        "model": f"/models/{default_model().name}",
        "grammar_depth": MAX_GRAMMAR_DEPTH,
        "json_depth": MAX_JSON_DEPTH,
        "overflow_repeats": 10,
    }
    proc = run_cli(["run", "--script", "app.py", json.dumps(config)], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    print(json.dumps(report, indent=1))

    assert report["nul_tokens_differ"] and report["nul_round_trip"] == "abc\x00def"
    assert "first\x00second" in report["nul_prompt_tail"]
    assert report["nul_prompt_tail"].endswith("<|im_start|>assistant\n")  # the chat goes on past the NUL
    assert report["nul_prompt_tokens"] == report["nul_prompt_tokens_expected"]
    assert report["nul_reply"] == "a\x00b"

    assert report["grammar_at_limit"] == ["ok", "a"]
    assert report["grammar_2000"] == "InvalidParameterError"
    assert report["tools_at_limit"] == "ok" and report["tools_too_deep"] == "InvalidParameterError"
    assert report["reply_at_limit"] == "ok", report["tools_format"]
    assert report["reply_3000"][0] == "ChatTemplateError" and "nests 3002 levels" in report["reply_3000"][1]

    assert report["recursive_macro"][0] == "ChatTemplateError"
    assert "nests deeper than" in report["recursive_macro"][1]
    assert report["endless_loop"][0] == "ChatTemplateError" and "steps of work" in report["endless_loop"][1]
    assert report["long_chat"] == "ok"
    assert report["same_engine_after_templates"]

    crashes, answers = report["overflows"][0::2], report["overflows"][1::2]
    assert [kind for kind, _ in crashes] == ["EngineCrashedError"] * 10 and answers == [True] * 10
    overflow_words = ("Maximum call stack size exceeded", "too much recursion")  # Chromium's, Firefox's
    assert all(any(words in message for words in overflow_words) for _, message in crashes), crashes
    assert report["loaded_after"]
