"""`py-runner perplexity` on the default model over the shipped text's first tokens: a bound that keeps the
browser's fidelity to native llama.cpp from getting worse. The goal (issue 13: mean KLD <= 1e-4, top-1 at
least 99.5 %) is not met yet; this holds where it stands (0.014 and 93.75 % on these 64 tokens, Q4_1). And
`--candidate-native` on the tiny fixture model, with native's own build as the candidate: distance 0."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def test_the_browser_stays_close_to_native_on_the_default_model(require_builds, run_cli, tmp_path) -> None:
    proc = run_cli(["perplexity", "--max-tokens", "64", "--ctx", "128", "--json"], cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["tokens"] == 64 and report["windows"] == 1
    assert abs(report["perplexity"] / report["native_perplexity"] - 1) < 0.02, report
    assert report["mean_kld"] < 0.03 and report["top1_agreement"] >= 0.9, report


def test_candidate_native_the_same_build_is_at_zero_distance(require_builds, run_cli, tmp_path) -> None:
    """`--candidate-native` with native's own build as the candidate (a wrapper that logs its calls, then
    runs it): the candidate is what scored the tokens, and two runs of one build agree exactly, so the report
    is the floor: no KL divergence, the same perplexity, every best token the same."""
    from py_runner.host.build.paths import native_binary
    from py_runner.host.fixtures import fixture_model

    calls = tmp_path / "calls.txt"
    candidate = tmp_path / "candidate_pr_native"
    candidate.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\nexec "{native_binary()}" "$@"\n')
    candidate.chmod(0o755)
    tiny = fixture_model("tiny", "f16")
    proc = run_cli(
        ["perplexity", "--model", str(tiny), "--candidate-native", str(candidate), "--max-tokens", "48",
         "--ctx", "40", "--json"],
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert (report["tokens"], report["windows"], report["build"]) == (48, 2, f"native:{candidate}"), report
    called = calls.read_text().split() if calls.exists() else []
    assert called == ["score", "score"]  # one scoring per window, by the candidate
    assert report["mean_kld"] < 1e-9 and report["max_logprob_diff"] < 1e-6, report
    assert report["perplexity"] == pytest.approx(report["native_perplexity"], rel=1e-9), report
    assert report["top1_agreement"] == 1.0, report
