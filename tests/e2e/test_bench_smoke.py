"""Smoke runs of every `py-runner bench` command on the tiny fixture model, as a user runs them (the CLI in a
subprocess, `--json`, one run each): the report has its fields, every figure is finite and positive, and each
ratio is the quotient of the figures it is made of. Speeds are not judged here (the benches print them)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from py_runner.host.browser import browsers
from py_runner.host.fixtures import fixture_model

# Not in README's Firefox pass: the bench commands' reports, not the engine's speed in a browser.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]

N_PREDICT = 8


@pytest.fixture(scope="module")
def tiny() -> Path:
    return fixture_model("tiny", "f16")


@pytest.fixture
def bench(require_builds, run_cli, tmp_path):
    def run(*args: str) -> dict:
        proc = run_cli(["bench", *args, "--json"], cwd=tmp_path, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout)

    return run


def positive(value) -> bool:
    """A finite number above 0 (not a bool, not NaN, not infinity)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    return is_number and math.isfinite(value) and value > 0


def same(ratio: float, numerator: float, denominator: float) -> bool:
    return positive(ratio) and math.isclose(ratio, numerator / denominator, rel_tol=1e-9)


def test_bench_load(bench, tiny: Path) -> None:
    report = bench("load", "--model", str(tiny), "--runs", "1", "--ctx-size", "256")
    assert report["model"] == str(tiny) and report["file_size"] == tiny.stat().st_size
    assert (report["build"], report["runs"], report["ctx_size"]) == ("st", 1, 256)
    memory = report["llama_cpp_memory"]
    assert memory and all(positive(v) for v in memory.values()), memory
    hits = {"network, no cache": False, "network, to cache": False, "cache": True}
    for kind in ("network, no cache", "network, to cache", "cache", "file"):
        r = report[kind]
        assert positive(r["mb_per_s"]) and positive(r["seconds"]), (kind, r)
        assert same(r["mb_per_s"], report["file_size"] / 1e6, r["seconds"]), (kind, r)
        if kind in hits:
            assert r["cache_hit"] is hits[kind], (kind, r)
        assert positive(r["wasm_heap_ratio"]) and positive(r["heap_over_allocated"]), (kind, r)
        assert math.isfinite(r["peak_memory_ratio"]) and r["peak_memory_ratio"] >= 0, (kind, r)
        assert math.isclose(
            r["peak_beyond_heap_ratio"], r["peak_memory_ratio"] - r["wasm_heap_ratio"], abs_tol=1e-9
        ), (kind, r)
        # the heap holds at least what llama.cpp allocated in it
        assert r["heap_over_allocated"] >= 1, (kind, r)


def test_bench_generate(bench, tiny: Path) -> None:
    report = bench("generate", "--model", str(tiny), "--runs", "1", "--n-predict", str(N_PREDICT))
    assert report["browser"] == browsers.selected_browser() and report["n_predict"] == N_PREDICT  # the UA's
    every = {"st", "mt", "st-relaxed", "mt-relaxed"}
    assert report["not_run"] == {} and set(report["builds"]) == every, report
    native = report["native"]
    assert positive(native["prompt_tok_s"]) and positive(native["gen_tok_s"]), native
    for build, r in report["builds"].items():
        for path in ("python", "js"):
            assert positive(r[path]["prompt_tok_s"]) and positive(r[path]["gen_tok_s"]), (build, r)
        assert same(r["python_over_js"], r["python"]["gen_tok_s"], r["js"]["gen_tok_s"]), (build, r)
        for key in ("prompt_tok_s", "gen_tok_s"):
            assert same(r["over_native"][key], r["python"][key], native[key]), (build, r)
        assert 1 <= r["tokens"] <= N_PREDICT and r["threads"] == 1, (build, r)
    st, mt = report["builds"]["st"]["python"], report["builds"]["mt"]["python"]
    assert same(report["mt_over_st"], mt["gen_tok_s"], st["gen_tok_s"]), report
    for base in ("st", "mt"):  # each relaxed variant ran, and its ratio to SIMD128 is reported
        relaxed = report["builds"][f"{base}-relaxed"]
        ratio = report["relaxed_over_simd128"][base]["gen_tok_s"]
        assert same(ratio, relaxed["python"]["gen_tok_s"], report["builds"][base]["python"]["gen_tok_s"])


def test_bench_generate_compares_kv_cache_types_over_a_long_prompt(bench, tiny: Path) -> None:
    # f32: the tiny model's heads (16 values) take no quantized cache (blocks of 32)
    args = ["--build", "st", "--cache-type", "f16", "--cache-type", "f32", "--depth", "200"]
    report = bench("generate", "--model", str(tiny), "--runs", "1", "--n-predict", str(N_PREDICT), *args)
    assert set(report["builds"]) == {"st", "st kv=f32"} and report["depth"] == 200, report
    for build, native in (("st", report["native"]), ("st kv=f32", report["native kv=f32"])):
        r = report["builds"][build]
        assert r["prompt_tokens"] >= 100, r  # about 200 tokens of prose, whatever the vocabulary makes of it
        for key in ("prompt_tok_s", "gen_tok_s"):
            assert same(r["over_native"][key], r["python"][key], native[key]), (build, r)
    ratio = report["kv_over_f16"]["st kv=f32"]["gen_tok_s"]
    default, f32 = report["builds"]["st"]["python"], report["builds"]["st kv=f32"]["python"]
    assert same(ratio, f32["gen_tok_s"], default["gen_tok_s"]), report


def test_bench_vs_wllama(bench, tiny: Path) -> None:
    report = bench("vs-wllama", "--model", str(tiny), "--runs", "1", "--n-predict", str(N_PREDICT))
    assert (report["threads"], report["n_predict"], report["runs"]) == (1, N_PREDICT, 1)
    assert list(report["models"]) == [str(tiny)]
    r = report["models"][str(tiny)]
    for engine in ("py_runner", "wllama"):
        e = r[engine]
        assert positive(e["prompt_tok_s"]) and positive(e["gen_tok_s"]), (engine, r)
        assert e["tokens"] == N_PREDICT, (engine, r)  # ignore_eos: both generate every token asked for
    # The same prompt through the same vocabulary. py_runner counts the tokens it evaluated: its KV cache may
    # keep the BOS token the warm-up left (75 against wllama's 76 here).
    assert 0 <= r["wllama"]["prompt_tokens"] - r["py_runner"]["prompt_tokens"] <= 1, r
    assert r["py_runner"]["prompt_tokens"] > 0, r
    assert same(r["gen_ratio"], r["py_runner"]["gen_tok_s"], r["wllama"]["gen_tok_s"]), r
    assert same(r["prompt_ratio"], r["py_runner"]["prompt_tok_s"], r["wllama"]["prompt_tok_s"]), r


def test_bench_first_token(bench, tiny: Path) -> None:
    report = bench("first-token", "--model", str(tiny), "--runs", "1")
    assert (report["model"], report["build"], report["runs"]) == (str(tiny), "st", 1)
    for key in ("boot_s", "load_s", "first_token_s", "after_boot_s"):
        assert positive(report[key]), (key, report)
    assert math.isclose(report["after_boot_s"], report["load_s"] + report["first_token_s"], rel_tol=1e-9)


def test_bench_soak(bench, tiny: Path) -> None:
    report = bench("soak", "--model", str(tiny), "--generates", "3", "--loads", "2")
    assert (report["model"], report["build"], report["generates"], report["loads"]) == (str(tiny), "st", 3, 2)
    assert report["tokens"] == 3 * 4, report  # n_predict=4 each; random weights: end-of-text never first
    assert positive(report["seconds"]), report
    for key in ("wasm_heap_first_load", "wasm_heap_after_generates", "wasm_heap_last_load"):
        assert positive(report[key]), (key, report)
    if browsers.selected_browser() == "chromium":  # only its DevTools protocol reads the JS heap after a GC
        assert positive(report["js_heap_start"]) and positive(report["js_heap_end"]), report
    else:
        assert report["js_heap_start"] is None and report["js_heap_end"] is None, report
