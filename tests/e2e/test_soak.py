"""The soak (`py-runner bench soak`): 1,000 generate calls and 100 load cycles in one page, with the wasm heap
and the page's JS heap flat. The figures are printed by the command; here they are bounds."""

from __future__ import annotations

import pytest

from py_runner.host.bench import bench_soak, format_soak_report
from py_runner.host.browser import browsers
from py_runner.host.fixtures import fixture_model

# Not in README's Firefox pass: the wasm heap's growth, which the browser does not change.
pytestmark = [pytest.mark.e2e, pytest.mark.one_browser]
MiB = 1 << 20


def test_a_thousand_generates_and_a_hundred_loads_leave_the_heaps_flat(require_builds) -> None:
    report = bench_soak(fixture_model("tiny", "f16"), generates=1000, loads=100)
    print(format_soak_report(report))
    assert report["tokens"] == 4000  # n_predict=4 each, random weights: end-of-text never comes first
    # Memory.grow never shrinks: a leak in generation or in load/free cycles shows as growth after it.
    assert report["wasm_heap_after_generates"] - report["wasm_heap_first_load"] <= 16 * MiB, report
    assert report["wasm_heap_last_load"] == report["wasm_heap_after_generates"], report
    if report["js_heap_start"] is None:  # only Chromium's DevTools protocol reads the JS heap after a GC
        assert browsers.selected_browser() != "chromium", report
        return
    assert report["js_heap_end"] - report["js_heap_start"] <= 8 * MiB, report
