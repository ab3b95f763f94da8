"""The demo page: Python in Pyodide loads a model from the file picker (a browser File) and streams output."""

from __future__ import annotations

import pytest

from conftest import set_number
from py_runner.host.browser.headless import launch_browser
from py_runner.host.fixtures import fixture_model
from py_runner.host.server import start_server, stop_server

pytestmark = pytest.mark.e2e


def test_demo_page_loads_a_picked_file_and_generates(require_builds) -> None:
    from playwright.sync_api import sync_playwright

    model = fixture_model("tiny", "f16")
    server, base_url = start_server("127.0.0.1", 0)
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            try:
                page = browser.new_page()
                model_requests = []
                page.on("request", lambda r: model_requests.append(r.url) if ".gguf" in r.url else None)
                page.goto(base_url + "/web/apps/index.html")
                status = page.locator("#status")
                page.wait_for_function("document.querySelector('#status').textContent.startsWith('Ready')")
                assert page.evaluate("crossOriginIsolated") is True

                page.set_input_files("#model-file", str(model))
                page.wait_for_function(
                    "document.querySelector('#status').textContent.startsWith('Loaded')", timeout=60_000
                )
                assert status.text_content() == f"Loaded {model.name} (mt build)"
                assert page.locator("#progress").evaluate("el => el.value") == 1
                metadata = page.locator("#metadata").inner_text()
                assert "architecture\tllama" in metadata and f"file_size\t{model.stat().st_size}" in metadata
                assert model_requests == []  # the File went to the worker, not through the network

                set_number(page, "#n-predict", 16)
                page.click("#generate")
                page.wait_for_function(
                    "document.querySelector('#timings').textContent.length > 0", timeout=60_000
                )
                assert page.locator("#timings").text_content().startswith("16 tokens, finish: length")
                assert len(page.locator("#output").text_content()) > 0
            finally:
                browser.close()
    finally:
        stop_server(server)


def test_demo_page_offers_the_default_model_first_and_it_answers(
    require_builds, default_model_browser
) -> None:
    browser, base_url, model = default_model_browser
    page = browser.new_page()
    page.goto(base_url + "/web/apps/index.html")
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Ready')")
    url = f"/models/{model.name}"
    assert page.locator("#model-url").input_value() == url  # preselected
    assert page.locator("#models option").first.get_attribute("value") == url
    page.click("#load-url")
    page.wait_for_function(
        "document.querySelector('#status').textContent.startsWith('Loaded')", timeout=120_000
    )
    page.fill("#prompt", "The capital of France is")
    set_number(page, "#n-predict", 8)
    page.click("#generate")
    page.wait_for_function("document.querySelector('#timings').textContent.length > 0", timeout=60_000)
    assert "Paris" in page.locator("#output").text_content()  # real text from a real model
