"""The worker protocol is declared once (web/shared/protocol.js) and mirrored once (py_runner/_transport/
protocol.py): C, JS and Python must agree, and no layer may keep a private copy of a name, code or default."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from py_runner import GenerateTextParams, LlamaRunner
from py_runner._errors import _BY_JS_NAME
from py_runner._loading import _WORKER_STAGES, LoadOptions
from py_runner._transport import Transport
from py_runner._transport.protocol import CACHE_TYPES, DEFAULTS, GLUE, POOLING, PROTOCOL

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
# the runtime: the engine worker, what it shares with the page, bridge, boot, harness (not the service worker)
JS_FILES = sorted(p.relative_to(WEB).as_posix() for p in WEB.glob("*/*.js") if p.name != "coi_sw.js")


def read(name: str) -> str:
    return (ROOT / name).read_text(encoding="utf-8")


def js_protocol() -> dict:
    text = read("web/shared/protocol.js")
    body = text.split("/* protocol-json-begin */", 1)[1].split("/* protocol-json-end */", 1)[0]
    return json.loads(body)


def test_python_mirrors_the_js_declaration() -> None:
    assert js_protocol() == PROTOCOL


def test_glue_codes_agree_with_glue_h() -> None:
    pattern = r"^#define (PR_(?:ERR|POOLING|CACHE_TYPE)_\w+)\s+(.+?)\s*(?://.*)?$"
    defines = {
        name: int(eval(value, {}))  # integer literals, some parenthesised: "(-2147483647 - 1)"
        for name, value in re.findall(pattern, read("wasm/glue.h"), re.M)
    }
    assert defines == GLUE
    assert POOLING == {name: GLUE[f"PR_POOLING_{name.upper()}"] for name in POOLING}
    # load_model(type_k=/type_v=) takes ggml's names for the types (glue_session.cpp asserts glue.h's values)
    assert CACHE_TYPES == {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8,
                           "iq4_nl": 20, "bf16": 30}  # fmt: skip


def test_sampler_knobs_are_pr_sampler_configure_parameters_in_order() -> None:
    signature = read("wasm/glue.h").split("pr_sampler_configure(", 1)[1].split(");", 1)[0]
    names = re.findall(r"(\w+)\s*(?:,|$)", " ".join(signature.split()))
    tail = ["bias_tokens", "bias_values", "n_bias", "grammar", "grammar_triggers", "grammar_prefill"]
    assert names[0] == "s" and names[-len(tail) :] == tail
    assert names[1 : -len(tail)] == PROTOCOL["sampler"]
    params = GenerateTextParams(seed=7).to_bridge_options()
    assert all(name in params for name in PROTOCOL["sampler"])
    assert set(PROTOCOL["sampler"]) <= set(DEFAULTS)


def test_every_request_has_one_worker_handler_and_no_bridge_or_transport_method_of_its_own() -> None:
    """One path: the worker's HANDLERS table answers exactly the declared requests; the bridge and the
    transports send every one through request(), with no per-request method to keep in step."""
    requests = set(PROTOCOL["requests"])
    handlers = set()
    tables = (
        ("web/engine/worker.js", "HANDLERS"),
        ("web/engine/engine_text.js", "TEXT_HANDLERS"),
        ("web/engine/engine_state.js", "STATE_HANDLERS"),
    )
    for path, table in tables:
        block = read(path).split(f"const {table} = {{", 1)[1].split("\n};", 1)[0]
        handlers |= set(re.findall(r"^\s+(\w+)\s*[,:]", block, re.M))
    assert handlers == requests
    bridge = read("web/page/bridge.js")
    assert set(re.findall(r'_request\("(\w+)"', bridge)) == {"init"}  # start() sends init itself
    per_request = r"^  (tokenize|detokenize|generate|embed|logits|chatFormat|cacheList)\("
    assert not re.search(per_request, bridge, re.M)
    members = inspect.getmembers(Transport)
    abstract = {name for name, fn in members if getattr(fn, "__isabstractmethod__", False)}
    assert abstract == {"start", "request", "read_prefix", "abort", "terminate"}
    for name in ("pyodide", "mock"):
        module = read(f"py_runner/_transport/{name}.py")
        own = r"^    async def (tokenize|generate|load|embed|logits|chat_\w+)\("
        assert not re.search(own, module, re.M), f"{name}.py keeps a method of its own for a request"


def test_every_request_declares_fields_events_and_result() -> None:
    kinds = {"str", "int", "float", "bool", "list", "dict", "bytes", "float32", "json", "blob"}
    for name, declared in PROTOCOL["requests"].items():
        assert set(declared) == {"fields", "events", "result"}, name
        assert set(declared["events"]) <= {"progress", "token"}, name
        result = declared["result"]
        types = list(declared["fields"].values())
        types += [result] if isinstance(result, str) else list(result.values())
        for kind in types:
            assert set(kind.rstrip("?").split("|")) <= kinds, (name, kind)
    assert set(PROTOCOL["sampler"]) <= set(PROTOCOL["requests"]["generate"]["fields"])


def design_row(name: str, declared: dict) -> str:
    """The first four cells of DESIGN.md's row for a request, as its declaration reads."""
    fields = ", ".join(f"`{f}`" + ("?" if k.endswith("?") else "") for f, k in declared["fields"].items())
    events = ", ".join(declared["events"]) or "—"
    result = declared["result"]
    shown = result if isinstance(result, str) else "{" + ", ".join(result) + "}"
    return f"| `{name}` | {fields or '—'} | {events} | {shown} |"


def test_the_design_table_is_the_declaration() -> None:
    design = read("docs/DESIGN.md")
    table = design.split("## Worker messages", 1)[1].split("\n\n| request |", 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = [re.match(r"\| `(\w+)`", row).group(1) for row in rows]
    assert named == [*PROTOCOL["requests"], "abort"]
    for row, (name, declared) in zip(rows, PROTOCOL["requests"].items(), strict=False):
        assert row.startswith(design_row(name, declared) + " "), f"DESIGN.md's {name} is not its declaration"


def test_error_names_are_the_python_error_tree() -> None:
    assert set(PROTOCOL["errors"]) == set(_BY_JS_NAME)
    dom_names = {"QuotaExceededError", "NotFoundError", "TypeMismatchError"}  # DOMException names, read only
    for name in JS_FILES:
        named = set(re.findall(r'"(\w+Error)"', read(f"web/{name}")))
        assert named - dom_names <= set(PROTOCOL["errors"]), f"{name} names errors outside protocol.js"


def test_no_layer_keeps_its_own_copy() -> None:
    worker = read("web/engine/worker.js")
    assert not re.search(r"(===|!==) -\d", worker), "glue codes are named in protocol.js, not magic numbers"
    for name in (n for n in JS_FILES if n != "shared/protocol.js"):  # protocol.js is where they live
        text = read(f"web/{name}")
        assert not re.search(r"class \w+ extends Error", text), f"{name}: one JS error class (protocol.js)"
        assert '"py_runner-models"' not in text, f"{name}: the OPFS layout lives in protocol.js"
        assert "crypto.subtle.digest" not in text, f"{name}: the cache key is protocol.js cacheKey()"
        if name in (
            "engine/worker.js",
            "shared/model_cache.js",
        ):  # the bridge's fetch is the header probe (one Range)
            assert "fetch(" not in text, f"{name}: models are fetched by the one loop in download.js"
    assert "PTHREAD_POOL_SIZE=4" not in read("build_wasm.sh") and "web/shared/protocol.js" in read(
        "build_wasm.sh"
    )
    assert not re.search(r"\?\? ?0\.\d|\?\? ?(40|64|128|512)\b", worker), "defaults live in protocol.js"


def test_progress_stages_are_declared() -> None:
    stages = set(PROTOCOL["stages"])
    for name in JS_FILES:
        used = set(re.findall(r'progress\("(\w+)"', read(f"web/{name}")))
        used |= set(re.findall(r'stage: "(\w+)"', read(f"web/{name}")))
        assert used <= stages, f"{name} reports undeclared stages {used - stages}"
    assert set(_WORKER_STAGES) <= stages


@pytest.mark.parametrize("knob", [k for k in DEFAULTS if k not in ("n_ctx", "n_batch", "seed")])
def test_python_defaults_are_the_protocol_defaults(knob: str) -> None:
    assert getattr(GenerateTextParams(), knob) == DEFAULTS[knob]


def test_load_defaults_are_the_protocol_defaults() -> None:
    signature = inspect.signature(LlamaRunner.load_model)
    assert signature.parameters["ctx_size"].default == DEFAULTS["n_ctx"] == LoadOptions().ctx_size
    assert signature.parameters["batch_size"].default == DEFAULTS["n_batch"] == LoadOptions().batch_size
    assert LoadOptions(pooling="cls").request_fields()["pooling"] == GLUE["PR_POOLING_CLS"]
