"""`py-runner perplexity` on the default model over the shipped text's first tokens: a bound that keeps the
browser's fidelity to native llama.cpp from getting worse. The goal (issue 13: mean KLD <= 1e-4, top-1 at
least 99.5 %) is not met yet; this holds where it stands (0.014 and 93.75 % on these 64 tokens, Q4_1)."""

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
