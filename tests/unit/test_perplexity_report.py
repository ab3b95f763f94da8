"""`py-runner perplexity`'s arithmetic: windows and the report, on hand-made rows."""

from __future__ import annotations

import math

from py_runner.host.perplexity import PROMPT_ROOM, REDUCE_SOURCE, summarize, windows


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
    assert math.isclose(report["mean_logprob_diff"], math.log(2)) and math.isclose(
        report["max_logprob_diff"], math.log(2)
    )


def test_row_reduction_the_page_and_the_host_share() -> None:
    reducer: dict = {}
    exec(REDUCE_SOURCE, reducer)
    reduce_row = reducer["reduce_row"]
    same = reduce_row([0.0, 1.0, 2.0], [0.0, 1.0, 2.0], 1)
    assert same[2] == 0.0 and same[3] is True and math.isclose(same[0], same[1])
    # a shifted row is the same distribution: no divergence
    assert reduce_row([0.0, 1.0, 2.0], [5.0, 6.0, 7.0], 0)[2] < 1e-12
    # native sure of token 0, the candidate of token 1: KL(p||q) by hand, and the best tokens part
    ref, row = [4.0, 0.0], [0.0, 4.0]
    p = [math.exp(x) / sum(math.exp(y) for y in ref) for x in ref]
    q = [math.exp(x) / sum(math.exp(y) for y in row) for x in row]
    nll_ref, nll_row, kld, same_best = reduce_row(ref, row, 0)
    assert math.isclose(kld, sum(a * math.log(a / b) for a, b in zip(p, q, strict=True)))
    assert math.isclose(nll_ref, -math.log(p[0])) and math.isclose(nll_row, -math.log(q[0]))
    assert same_best is False
