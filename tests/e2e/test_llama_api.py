"""`py_runner.Llama`, llama-cpp-python's API, in the browser on the real default model: sync calls through
JSPI, greedy chat completions equal to the same requests through native llama.cpp (same template, same prompt
tokens, same reply up to a near tie), streams that join to the same text, a json_schema reply that validates,
and logprobs in OpenAI's shape that agree with greedy choice."""

from __future__ import annotations

import json
import math
import subprocess
import textwrap
from pathlib import Path

import pytest
from native_parity import assert_free_running_agrees, native_generate

from py_runner.host.build.assets import default_model
from py_runner.host.build.paths import native_binary

# Not in README's Firefox pass: the Python layer over the engine.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]

QUESTIONS = [
    "What is the capital of France? Answer in one sentence.",
    "Name three primary colors.",
    "What is 12 times 12?",
    "Write a haiku about the sea.",
    "Who wrote Romeo and Juliet?",
]
MAX_TOKENS = 48
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
}

APP = textwrap.dedent(
    """\
    import json
    import math
    import sys

    from py_runner import GenerateTextParams, Llama

    config = json.loads(sys.argv[1])
    llm = Llama(model_path=config["model"], n_ctx=2048, n_threads=1)  # a sync call: it waits through JSPI
    report = {"answers": {}, "prompt_tokens": {}, "streamed": {}, "tokens": {}, "finish": {}}
    for question in config["questions"]:
        messages = [{"role": "user", "content": question}]
        out = llm.create_chat_completion(messages=messages, temperature=0, max_tokens=config["max_tokens"])
        report["answers"][question] = out["choices"][0]["message"]["content"]
        report["finish"][question] = out["choices"][0]["finish_reason"]
        report["prompt_tokens"][question] = out["usage"]["prompt_tokens"]
        chunks = llm.create_chat_completion(
            messages=messages, temperature=0, max_tokens=config["max_tokens"], stream=True
        )
        report["streamed"][question] = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
        greedy = GenerateTextParams(n_predict=config["max_tokens"], temp=0)
        report["tokens"][question] = (await llm.runner.chat(messages, greedy)).tokens  # for a near-tie check
    fmt = {"type": "json_schema", "json_schema": {"name": "place", "schema": config["schema"]}}
    question = [{"role": "user", "content": "Where is the Eiffel Tower? Reply in JSON."}]
    out = llm.create_chat_completion(messages=question, response_format=fmt, temperature=0, max_tokens=64)
    report["json"] = out["choices"][0]["message"]["content"]
    completion = llm.create_completion("The capital of France is", max_tokens=4, temperature=0, logprobs=3)
    report["logprobs"] = completion["choices"][0]["logprobs"]
    report["completion_text"] = completion["choices"][0]["text"]
    # Chat logprobs, and the engine's raw logits for the same prompt and tokens scored independently here.
    question = [{"role": "user", "content": config["questions"][0]}]
    out = llm.create_chat_completion(
        messages=question, temperature=0, max_tokens=6, logprobs=True, top_logprobs=4
    )
    report["chat_logprobs"] = out["choices"][0]
    report["chat_usage"] = out["usage"]
    prompt = (await llm.runner.apply_chat(question))["prompt"]
    tokens = (await llm.runner.generate_text(prompt, GenerateTextParams(n_predict=6, temp=0))).tokens
    rows = []
    for row in await llm.runner.logits(prompt, tokens):
        top = max(row)
        log_z = top + math.log(sum(math.exp(x - top) for x in row))
        best = sorted(range(len(row)), key=lambda t: -row[t])[:4]
        rows.append([[(await llm.runner.detokenize_bytes([t])).hex(), row[t] - log_z] for t in best])
    report["raw_top"] = rows
    report["raw_pieces"] = [(await llm.runner.detokenize_bytes([t])).hex() for t in tokens]
    print(json.dumps(report))
    """
)


def test_llama_chat_completions_equal_native_llama_cpp(require_builds, tmp_path: Path, run_cli) -> None:
    model = default_model()
    (tmp_path / "app.py").write_text(APP, encoding="utf-8")
    config = {"model": f"/models/{model.name}", "questions": QUESTIONS, "max_tokens": MAX_TOKENS}
    config["schema"] = SCHEMA
    args = ["run", "--script", "app.py", json.dumps(config)]
    proc = run_cli(args, cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    assert_chat_logprobs(report)  # the browser's own figures, before any comparison with native

    for question in QUESTIONS:
        native = native_generate(model, "--user", question, "--n-predict", str(MAX_TOKENS))
        native_text = bytes.fromhex("".join(native["pieces_hex"])).decode("utf-8", "replace")
        assert report["prompt_tokens"][question] == native["timings"]["prompt_tokens"], question
        assert report["streamed"][question] == report["answers"][question], question
        if report["answers"][question] != native_text:  # allowed only where native's top two were a near tie
            prompt = bytes.fromhex(native["prompt_hex"]).decode()
            assert_free_running_agrees(model, prompt, report["tokens"][question], native["tokens"], question)
        else:
            assert report["finish"][question] == ("length" if native["finish_reason"] == "length" else "stop")

    place = json.loads(report["json"])
    assert set(place) == {"city", "country"} and all(isinstance(v, str) for v in place.values())

    lp = report["logprobs"]
    assert "".join(lp["tokens"]) == report["completion_text"] and len(lp["token_logprobs"]) == 4
    for chosen, top in zip(lp["token_logprobs"], lp["top_logprobs"], strict=True):
        assert chosen <= 0 and len(top) == 3
        assert max(top.values()) == pytest.approx(chosen, abs=1e-6)  # greedy: the chosen token is the best
        assert sum(math.exp(v) for v in top.values()) <= 1 + 1e-6
    # Against native llama.cpp's log-probabilities for the same tokens. Issue 11 asks for 1e-3; the browser's
    # Q4_1 kernels are not there yet (0.018-0.096 on these 4 tokens: issue 13's fidelity work, measured by
    # `py-runner perplexity`), so this holds today's level and fails if it gets worse.
    native = native_logprobs(model, "The capital of France is", 4, tmp_path)
    assert [text for text, _ in native] == lp["tokens"]
    differences = [abs(ours - theirs) for ours, (_, theirs) in zip(lp["token_logprobs"], native, strict=True)]
    assert max(differences) <= 0.15, differences


def assert_chat_logprobs(report: dict) -> None:
    """OpenAI's chat logprobs shape; under greedy the chosen token is the top one; log-probabilities (<= 0,
    the top ones at most 1 in probability); the same tokens and values as the engine's raw logits give."""
    choice = report["chat_logprobs"]
    content = choice["logprobs"]["content"]
    assert len(content) == report["chat_usage"]["completion_tokens"] == 6
    assert "".join(c["token"] for c in content) == choice["message"]["content"]
    assert [bytes(c["bytes"]).hex() for c in content] == report["raw_pieces"]
    for entry, raw in zip(content, report["raw_top"], strict=True):
        top = entry["top_logprobs"]
        assert set(entry) == {"token", "logprob", "bytes", "top_logprobs"} and len(top) == 4
        assert top[0]["bytes"] == entry["bytes"] and top[0]["logprob"] == entry["logprob"]  # greedy: the best
        values = [t["logprob"] for t in top]
        assert values == sorted(values, reverse=True) and values[0] <= 0
        assert sum(math.exp(v) for v in values) <= 1 + 1e-9
        assert [bytes(t["bytes"]).hex() for t in top] == [piece for piece, _ in raw]
        assert values == pytest.approx([lp for _, lp in raw], abs=1e-9)


def native_logprobs(model: Path, prompt: str, n: int, work: Path) -> list[tuple[str, float]]:
    """Native llama.cpp's greedy continuation of `prompt`: each token's text and log-probability."""
    import numpy as np

    greedy = native_generate(model, "--prompt", prompt, "--n-predict", str(n), "--threads", "1")
    logits_file = work / "native-logits.f32"
    subprocess.run(
        [str(native_binary()), "score", "--model", str(model), "--prompt", prompt, "--threads", "1",
         "--tokens", ",".join(map(str, greedy["tokens"])), "--logits-out", str(logits_file)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    rows = np.fromfile(logits_file, dtype=np.float32).astype(np.float64).reshape(len(greedy["tokens"]), -1)
    top = rows.max(axis=1, keepdims=True)
    log_probs = rows - top - np.log(np.exp(rows - top).sum(axis=1, keepdims=True))
    pieces = [bytes.fromhex(h).decode("utf-8", "replace") for h in greedy["pieces_hex"]]
    chosen = enumerate(zip(pieces, greedy["tokens"], strict=True))
    return [(piece, float(log_probs[i, token])) for i, (piece, token) in chosen]


def test_the_readme_snippet_runs(require_builds, tmp_path: Path, run_cli) -> None:
    """README's "Coming from llama-cpp-python" code, as written, but for the model's URL: the dev server's
    harness page is not beside models/, an exported site's index.html is."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Coming from llama-cpp-python", 1)[1].split("\n### ", 1)[0]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    relative = "models/SmolLM2-135M-Instruct.Q4_1.gguf"
    assert relative in code
    (tmp_path / "snippet.py").write_text(code.replace(relative, "/" + relative), encoding="utf-8")
    proc = run_cli(["run", "--script", "snippet.py"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.startswith("The capital of France is Paris. {'prompt_tokens': ")


TOOL_TEMPLATE = (
    "Qwen-Qwen2.5-7B-Instruct"  # from llama.cpp's models/templates/: Hermes-style <tool_call> replies
)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
TOOL_REQUEST = {
    "messages": [
        {"role": "system", "content": "You are a weather bot."},
        {"role": "user", "content": "What is the weather in Paris?"},
    ],
    "tools": [WEATHER],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "add_generation_prompt": True,
}
TOOL_REPLY = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'

TOOLS_APP = textwrap.dedent(
    """\
    import json
    import sys

    from py_runner import Llama, LlamaRunner

    config = json.loads(sys.argv[1])
    runner = LlamaRunner(build="st")
    await runner.load_model(config["model"])
    request = config["request"]
    applied = await runner.apply_chat(
        request["messages"], tools=request["tools"], tool_choice=request["tool_choice"],
        parallel_tool_calls=request["parallel_tool_calls"],
    )
    message = await runner.parse_chat_reply(applied, config["reply"])
    llm = Llama(runner=runner)
    llm.model_path = config["model"]
    out = await llm.acreate_chat_completion(
        request["messages"], tools=request["tools"], max_tokens=8, temperature=0
    )
    print(json.dumps({"apply": applied, "message": message, "completion": out}))
    """
)


def test_tools_render_and_parse_as_native_llama_cpp(require_builds, tmp_path: Path, run_cli) -> None:
    import subprocess

    from py_runner.host.build.paths import native_binary
    from py_runner.host.fixtures import fixture_model

    model = fixture_model("tiny", "f16", chat_template=TOOL_TEMPLATE)
    (tmp_path / "request.json").write_text(json.dumps(TOOL_REQUEST), encoding="utf-8")
    (tmp_path / "reply.txt").write_text(TOOL_REPLY, encoding="utf-8")
    native = json.loads(
        subprocess.run(
            [str(native_binary()), "chat", "--model", str(model), "--request", str(tmp_path / "request.json"),
             "--reply", str(tmp_path / "reply.txt")],
            capture_output=True, text=True, check=True, timeout=120,
        ).stdout
    )  # fmt: skip
    (tmp_path / "tools.py").write_text(TOOLS_APP, encoding="utf-8")
    config = {"model": f"/models/{model.name}", "request": TOOL_REQUEST, "reply": TOOL_REPLY}
    proc = run_cli(["run", "--script", "tools.py", json.dumps(config)], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    browser = json.loads(proc.stdout.splitlines()[-1])

    # The same prompt, grammar, triggers and stops. The parser travels as llama.cpp's serialized PEG arena,
    # whose rule numbering follows hash-map order (libc++ in the browser, libstdc++ natively): the same rules
    # by name, and below it parses the reply to the same message.
    parser_b, parser_n = (json.loads(side["apply"].pop("parser")) for side in (browser, native))
    assert browser["apply"] == native["apply"]
    assert set(parser_b["rules"]) == set(parser_n["rules"])
    assert len(parser_b["parsers"]) == len(parser_n["parsers"])
    assert "get_weather" in browser["apply"]["prompt"] and "<tools>" in browser["apply"]["prompt"]
    assert browser["message"] == native["message"]
    call = browser["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}
    # A random-weight model never writes the trigger: the lazy grammar never binds, the reply is plain text
    # cut at max_tokens (a grammar bound from the start would have forced "<tool_call>" first).
    choice, usage = browser["completion"]["choices"][0], browser["completion"]["usage"]
    assert choice["finish_reason"] == "length" and usage["completion_tokens"] == 8
    assert set(choice["message"]) == {"role", "content"} and choice["message"]["role"] == "assistant"
    assert not choice["message"]["content"].startswith("<tool_call>")


TOOL_CHOICE_APP = textwrap.dedent(
    """\
    import json
    import sys

    from py_runner import Llama

    config = json.loads(sys.argv[1])
    llm = await Llama.load(config["model"], n_ctx=2048, n_threads=1)
    messages = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
    report = {}
    for choice in ("none", "auto", "required"):
        out = await llm.acreate_chat_completion(
            messages, tools=config["tools"], tool_choice=choice, temperature=0, max_tokens=48
        )
        report[choice] = {**out["choices"][0], "usage": out["usage"]}
    print(json.dumps(report))
    """
)


def test_tool_choice_binds_the_grammar_from_the_start_or_from_its_trigger(
    require_builds, tmp_path: Path, run_cli
) -> None:
    """The default model's weights under a template that takes tools (SmolLM2's own ignores them). Greedily it
    answers in one sentence and ends (EOS). With tool_choice="auto" the grammar waits for "<tool_call>", which
    never comes: the same answer, ended the same way. With "required" the grammar binds from the first token
    and allows no end before a call: the model cannot stop after its sentence and runs to max_tokens. (It
    never writes a call within 48 tokens: llama.cpp's grammar lets text come first, and a 135M model
    rambles.)"""
    from py_runner.host.fixtures import with_chat_template

    model = with_chat_template(default_model(), TOOL_TEMPLATE)
    (tmp_path / "choice.py").write_text(TOOL_CHOICE_APP, encoding="utf-8")
    config = {"model": f"/models/{model.name}", "tools": [WEATHER]}
    proc = run_cli(["run", "--script", "choice.py", json.dumps(config)], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.splitlines()[-1])

    answer = "The capital of France is Paris."
    for choice in ("none", "auto"):
        assert report[choice]["message"] == {"role": "assistant", "content": answer}, choice
        assert report[choice]["finish_reason"] == "stop" and report[choice]["usage"]["completion_tokens"] < 48
    required = report["required"]
    assert required["finish_reason"] == "length" and required["usage"]["completion_tokens"] == 48
    assert answer in required["message"]["content"] and "tool_calls" not in required["message"]
    # The grammar begins with what the template already wrote ("<|im_start|>assistant\n"); the engine feeds it
    # those tokens first, as llama-server does, so the reply does not repeat them.
    assert required["message"]["content"].startswith(answer), required["message"]["content"][:80]


def test_a_ram_cache_restores_an_earlier_prompts_state_exactly(require_builds, pyodide_page) -> None:
    """llama-cpp-python's Llama.set_cache(LlamaRAMCache()): after another prompt has taken the engine's KV
    cache, a prompt seen before continues from its cached state (only its last token is evaluated again) and
    completes exactly as the first time; a LlamaGrammar constrains a completion as grammar= does there."""
    model = default_model()
    code = f"""
import json
from py_runner import Llama, LlamaGrammar, LlamaRAMCache
llm = await Llama.load("/models/{model.name}", n_ctx=512)
llm.set_cache(LlamaRAMCache())
story, other = "Once upon a time, in a small village by the sea,", "The recipe for bread is simple:"
runs = []
for prompt in (story, other, story):
    out = await llm.acreate_completion(prompt, max_tokens=12, temperature=0)
    runs.append([out["choices"][0]["text"], llm.runner.last_result.prompt_tokens,
                 llm.runner.last_result.prompt_tokens_reused])
yes_no = LlamaGrammar.from_string('root ::= "yes" | "no"')
question = "Is the sea salty? Answer:"
answer = await llm.acreate_completion(question, grammar=yes_no, max_tokens=4, temperature=0)
llm.close()
json.dumps({{"runs": runs, "answer": answer["choices"][0]["text"], "states": len(llm.cache.cache_state)}})
"""
    out = json.loads(pyodide_page.run(code))
    (first, prompt_tokens, reused_first), (_, _, reused_other), (third, _, reused_third) = out["runs"]
    assert reused_first == 0 and reused_other <= 1  # nothing shared but the BOS token
    assert third == first and reused_third == prompt_tokens - 1  # from the cached state, exactly
    assert out["answer"] in ("yes", "no") and out["states"] == 3


def test_import_llama_cpp_in_the_page_and_llama_cpp_pythons_own_grammar_tests_pass(
    require_builds, pyodide_page
) -> None:
    """llama-cpp-python's import line works unchanged in the page (the page wheel's llama_cpp package), and
    its own tests/test_llama_grammar.py, from the pinned sdist, unmodified, passes there. (Its test_llama.py
    and test_llama_chat_format.py import numpy, scipy and jinja2 at their top: no registry serves those built
    for Pyodide, so they cannot run in the page.)"""
    from py_runner.host.fixtures import llama_cpp_source_dir

    grammar_tests = (llama_cpp_source_dir().parents[1] / "tests" / "test_llama_grammar.py").read_text()
    code = f"""
import json, sys, types
import llama_cpp
import py_runner
from llama_cpp import Llama, LlamaGrammar
same = Llama is py_runner.Llama and LlamaGrammar is py_runner.LlamaGrammar
report = {{"version": llama_cpp.__version__, "same": same}}
try:
    import llama_cpp.llama_cpp
    report["bindings"] = None
except ImportError as e:
    report["bindings"] = str(e)
module = types.ModuleType("test_llama_grammar")
exec(compile({grammar_tests!r}, "test_llama_grammar.py", "exec"), module.__dict__)
results = {{}}
for name in sorted(n for n in vars(module) if n.startswith("test_")):
    try:
        getattr(module, name)()
        results[name] = "passed"
    except Exception as e:
        results[name] = f"failed: {{type(e).__name__}}: {{e}}"
report["tests"] = results
json.dumps(report)
"""
    out = json.loads(pyodide_page.run(code))
    assert out["version"] == "0.3.36" and out["same"] is True
    assert "not available in the browser" in out["bindings"]
    assert out["tests"] == {
        "test_composed_pydantic_grammar": "passed",
        "test_grammar_anyof": "passed",
        "test_grammar_from_string": "passed",
    }
