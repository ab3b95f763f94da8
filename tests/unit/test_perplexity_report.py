"""`py-runner perplexity`'s arithmetic: windows and the report, on hand-made rows."""

from __future__ import annotations

import math

from py_runner.host.perplexity import PROMPT_ROOM, summarize, windows


def test_windows_fit_the_context_after_the_prompt() -> None:
    tokens = list(range(100))
    parts = windows(tokens, ctx=PROMPT_ROOM + 30)
    assert [len(p) for p in parts] == [30, 30, 30, 10]
    assert [t for p in parts for t in p] == tokens  # every token scored once, in order


def test_summary_is_llama_perplexitys() -> None:
    # [native NLL, browser NLL, KLD, same best token]
    rows = [[math.log(2), math.log(4), 0.0, True]] * 99 + [[math.log(2), math.log(4), 1.0, False]]
    report = summarize(rows)
    assert report["tokens"] == 100
    assert math.isclose(report["native_perplexity"], 2.0) and math.isclose(report["perplexity"], 4.0)
    assert math.isclose(report["mean_kld"], 0.01) and report["p99_kld"] == 0.0  # 99 of 100 are 0
    assert report["top1_agreement"] == 0.99
