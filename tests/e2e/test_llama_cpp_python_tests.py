"""llama-cpp-python 0.3.36's own tests, from its pinned sdist and unmodified, run by pytest inside the page
against `import llama_cpp` (the page wheel's, py_runner's API): the oracle for llama-cpp-python code running
unchanged in the browser.

The harness (its conftest.py, written into the page beside the tests) changes the environment only:
- `huggingface_hub.hf_hub_download` finds local files: the transformer model the cache tests download
  (stories15M) is the default model (SmolLM2), served by the dev server; the other hub models have none.
  The tests' `./vendor/llama.cpp/models/ggml-vocab-*.gguf` paths are served where the page resolves them.
- numpy, scipy and jinja2 are not in the page (no registry serves Pyodide builds of them): `numpy` and
  `scipy.special` are stand-ins that let test_llama.py's first lines import and raise if a test uses them;
  `llama_cpp._internals` (the ctypes wrappers) is a stand-in the same way.
- The tests that cannot pass here are skipped by name, each with its reason (SKIPPED below); the report
  counts them by reason. Every other test must pass.
"""

from __future__ import annotations

import ast
import collections
import json
import shutil
import textwrap
from pathlib import Path

import pytest

from py_runner.host.build.assets import default_model, peer_test_wheels
from py_runner.host.fixtures import llama_cpp_source_dir

# Not in README's Firefox pass: llama-cpp-python's own tests: the Python layer.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]

PEER_TESTS = ("test_llama.py", "test_llama_grammar.py", "test_llama_chat_format.py")
RECURRENT = "[llama_cpp_recurrent_model_path-True-False]"
HYBRID = "[llama_cpp_hybrid_model_path-False-True]"
CACHE_TESTS = (
    "test_exact_cached_prompt_reuse_matches_fresh",
    "test_loaded_exact_cached_prompt_reuse_matches_fresh",
    "test_ram_cache_exact_prompt_hit_matches_fresh",
    "test_shorter_prompt_prefix_reuse_matches_fresh",
)
INTERNALS = "ctypes internals"
HUB_OUTPUT = "one hub model's output"
NO_MODEL = "no model file"
NUMPY = "numpy not in the page"
CHAT_FORMAT = "llama_chat_format's Python formatters"
# node id -> (reason, why): what the harness skips. Everything else must pass.
SKIPPED = {
    "test_llama.py::test_llama_cpp_tokenization": (
        INTERNALS,
        "asserts llama._ctx.ctx, llama-cpp-python's ctypes context; the rest of its assertions run in "
        "tests/e2e/test_llama_vocab_and_eval.py",
    ),
    "test_llama.py::test_real_model": (
        INTERNALS,
        "drives llama_cpp._internals (LlamaModel, LlamaBatch, ...)",
    ),
    "test_llama.py::test_real_llama": (HUB_OUTPUT, "asserts Qwen3.5-0.8B's completions word for word"),
    "test_llama.py::test_real_llama_repeated_prompt_cache": (HUB_OUTPUT, "asserts Qwen3.5-0.8B's completion"),
    "test_llama.py::test_recurrent_model_prompt_cache_reset": (NO_MODEL, "a recurrent model (Mamba)"),
    "test_llama.py::test_hybrid_model_prompt_cache_reset": (NO_MODEL, "a hybrid model (Falcon-H1)"),
    **{f"test_llama.py::{name}{RECURRENT}": (NO_MODEL, "a recurrent model (Mamba)") for name in CACHE_TESTS},
    **{f"test_llama.py::{name}{HYBRID}": (NO_MODEL, "a hybrid model (Falcon-H1)") for name in CACHE_TESTS},
    "test_llama.py::test_real_llama_embeddings": (
        NUMPY,
        "np.testing.assert_allclose; tests/e2e/test_llama_vocab_and_eval.py checks batched = one by one "
        "within 1e-4",
    ),
    "test_llama_chat_format.py::test_mistral_instruct": (
        CHAT_FORMAT,
        "imports jinja2 (not in the page) and llama_chat_format's formatters, which py_runner does not "
        "offer: llama.cpp's own template engine renders chats",
    ),
    "test_llama_chat_format.py::test_hf_tokenizer_config_str_to_chat_formatter": (
        CHAT_FORMAT,
        "llama_chat_format.hf_tokenizer_config_to_chat_formatter (Jinja2 in Python)",
    ),
}
PASSING = [
    "test_llama.py::test_llama_cpp_version",
    *(f"test_llama.py::{name}[llama_cpp_transformer_model_path-False-False]" for name in CACHE_TESTS),
    "test_llama_grammar.py::test_grammar_from_string",
    "test_llama_grammar.py::test_composed_pydantic_grammar",
    "test_llama_grammar.py::test_grammar_anyof",
]

CONFTEST = '''
"""py_runner's harness for llama-cpp-python's tests in the page (tests/e2e/test_llama_cpp_python_tests.py)."""
import json
import sys
import types

import pytest

SKIPPED = json.loads(SKIPPED_JSON)
LOCAL_MODELS = json.loads(LOCAL_MODELS_JSON)
# test_llama_chat_format.py imports jinja2 and llama_chat_format's formatters at its top: not collected; its
# tests are reported skipped by the harness (SKIPPED)
collect_ignore = ["test_llama_chat_format.py"]


def _stand_in(name, why, **attributes):
    module = types.ModuleType(name)

    def missing(attribute):
        if attribute.startswith("__"):  # what the import system and tools probe for
            raise AttributeError(attribute)
        raise ImportError(f"{name}.{attribute}: {why}")

    module.__getattr__ = missing
    module.__dict__.update(attributes)
    sys.modules[name] = module
    return module


def _refuse(name, why):
    def refused(*args, **kwargs):
        raise ImportError(f"{name}: {why}")

    return refused


NOT_IN_PAGE = "not in this page: no registry serves a Pyodide build of it"
_stand_in("numpy", NOT_IN_PAGE)
_stand_in("scipy", NOT_IN_PAGE)
_stand_in("scipy.special", NOT_IN_PAGE, log_softmax=_refuse("scipy.special.log_softmax", NOT_IN_PAGE))
_stand_in("llama_cpp._internals", "llama-cpp-python's ctypes wrappers: not in the browser")


def hf_hub_download(repo_id, filename, **kwargs):
    try:
        return LOCAL_MODELS[f"{repo_id}/{filename}"]
    except KeyError:
        raise FileNotFoundError(f"the harness has no local file for {repo_id}/{filename}") from None


_stand_in("huggingface_hub", "the harness offers hf_hub_download only", hf_hub_download=hf_hub_download)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid in SKIPPED:
            reason, why = SKIPPED[item.nodeid]
            item.add_marker(pytest.mark.skip(reason=f"{reason}: {why}"))


class Outcomes:
    def __init__(self):
        self.outcomes = {}

    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome != "passed":
            detail = report.longreprtext[-3000:] if report.outcome == "failed" else ""
            if report.skipped and isinstance(report.longrepr, tuple):
                detail = report.longrepr[2]
            self.outcomes[report.nodeid] = [report.outcome, detail]
'''

RUN = """
import json, os, sys
import micropip
for url in WHEELS:
    await micropip.install(url)
os.makedirs(FOLDER, exist_ok=True)
for name, text in FILES.items():
    with open(f"{FOLDER}/{name}", "w", encoding="utf-8") as f:
        f.write(text)
os.chdir(FOLDER)
sys.path.insert(0, FOLDER)
import pytest
import conftest
outcomes = conftest.Outcomes()
status = pytest.main(["-q", "-p", "no:cacheprovider", "-W", "ignore::pytest.PytestUnraisableExceptionWarning",
                      *TESTS], plugins=[outcomes])
json.dumps({"status": int(status), "outcomes": outcomes.outcomes})
"""


def test_llama_cpp_pythons_own_tests_pass_in_the_page(require_builds, tmp_path: Path) -> None:
    from py_runner.host.browser.headless import harness_page
    from py_runner.host.server import start_server, stop_server

    tests_dir = llama_cpp_source_dir().parents[1] / "tests"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for wheel in peer_test_wheels():
        shutil.copy(wheel, wheels / wheel.name)
    model = default_model()
    vocab = llama_cpp_source_dir() / "models" / "ggml-vocab-llama-spm.gguf"
    # where the page resolves test_llama.py's "./vendor/llama.cpp/models/..." (relative to run.html)
    extra = {"/web/site/vendor/llama.cpp/models/ggml-vocab-llama-spm.gguf": vocab}
    server, base_url = start_server(
        "127.0.0.1", 0, files_dir=tmp_path, extra_files=extra, default_model=model
    )
    local_models = {"ggml-org/models/tinyllamas/stories15M-q4_0.gguf": f"/models/{model.name}"}
    conftest = CONFTEST.replace("SKIPPED_JSON", repr(json.dumps(SKIPPED))).replace(
        "LOCAL_MODELS_JSON", repr(json.dumps(local_models))
    )
    files = {name: (tests_dir / name).read_text(encoding="utf-8") for name in PEER_TESTS}
    files["conftest.py"] = textwrap.dedent(conftest)
    code = (
        f"WHEELS = {[f'/files/wheels/{w.name}' for w in sorted(wheels.iterdir())]!r}\n"
        f"FILES = {files!r}\nFOLDER = '/home/pyodide/llama-cpp-python-tests'\n"
        f"TESTS = {['test_llama.py', 'test_llama_grammar.py']!r}\n{RUN}"
    )
    try:
        with harness_page(base_url) as page:
            report = json.loads(page.run(code, timeout_s=1500))
            pytest_output = page.output
    finally:
        stop_server(server)
    assert report["outcomes"], f"pytest ran nothing in the page (status {report['status']}):\n{pytest_output}"

    outcomes = report["outcomes"]
    # test_llama_chat_format.py is not collected (its imports): its tests, read from the file, are counted as
    # the harness skips them
    chat_format = [n for n in SKIPPED if n.startswith("test_llama_chat_format.py::")]
    tree = ast.parse((tests_dir / "test_llama_chat_format.py").read_text(encoding="utf-8"))
    defined = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    tests = [f"test_llama_chat_format.py::{name}" for name in defined if name.startswith("test_")]
    assert sorted(tests) == sorted(chat_format)
    for name in chat_format:
        outcomes[name] = ["skipped", ": ".join(SKIPPED[name])]
    failed = {n: o[1] for n, o in outcomes.items() if o[0] == "failed"}
    assert not failed, "\n\n".join(f"{n}:\n{detail}" for n, detail in failed.items())
    assert sorted(n for n, o in outcomes.items() if o[0] == "passed") == sorted(PASSING)
    skipped = {n: o[1] for n, o in outcomes.items() if o[0] == "skipped"}
    assert sorted(skipped) == sorted(SKIPPED)
    by_reason = collections.Counter(SKIPPED[n][0] for n in skipped)
    print(f"llama-cpp-python tests in the page: {len(PASSING)} passed; skipped: {dict(by_reason)}")
    assert by_reason == {INTERNALS: 2, HUB_OUTPUT: 2, NO_MODEL: 10, NUMPY: 1, CHAT_FORMAT: 2}
    # the sdist has one more test file: test_llama_speculative.py (draft models, which are not offered)
    assert {p.name for p in tests_dir.glob("test_*.py")} == {*PEER_TESTS, "test_llama_speculative.py"}
