"""The chat page `py-runner serve` opens: Python in Pyodide on py_runner.Llama, driven like a person would —
load the default model, ask, read the streamed reply, ask a follow-up that sees the first turn — in st and mt,
with a screenshot kept (PY_RUNNER_SCREENSHOTS, else the test's temporary folder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import set_number

pytestmark = pytest.mark.e2e
QUESTION = "What is the capital of France? Answer in one sentence."
# Only the first turn can answer it. Greedy, the default model repeats QUESTION exactly; asked alone, it made
# one up ('My previous question was: "What is the best way to prepare for a job interview?"').
FOLLOW_UP = "What was my previous question? Repeat it word for word."


def wait_text(page, selector: str, starts: str, timeout_s: float = 120) -> str:
    page.wait_for_function(
        f"document.querySelector({selector!r}).textContent.startsWith({starts!r})", timeout=timeout_s * 1000
    )
    return page.locator(selector).text_content()


@pytest.mark.parametrize("build", ["auto", "st"])
def test_a_real_exchange_on_the_chat_page(
    require_builds, default_model_browser, build: str, tmp_path: Path
) -> None:
    browser, base_url, model = default_model_browser
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(base_url + "/")  # the server's front page is the chat
    assert page.url.endswith("/web/apps/chat.html")
    wait_text(page, "#status", "Ready")
    assert page.locator("#model-choice").input_value() == f"/models/{model.name}"  # default first
    # the user's models only: the cache's models folder also holds test fixtures, which are not offered
    assert page.locator("#model-choice option").count() == 1
    page.select_option("#build", build)
    page.check("#deterministic")  # greedy: the reply below is native llama.cpp's
    page.click("#load")
    expected = "mt" if build == "auto" else "st"  # the dev server isolates the page: auto is mt
    assert wait_text(page, "#status", "Loaded") == f"Loaded {model.name} ({expected} build)"
    assert page.locator("#progress").evaluate("el => el.value") == 1

    page.fill("#message", QUESTION)
    page.click("#send")
    # the stats line comes when the reply is complete
    page.wait_for_function("document.querySelector('#stats').textContent !== ''", timeout=120_000)
    replies = page.locator(".turn.assistant")
    assert replies.nth(0).text_content() == "The capital of France is Paris."
    stats = page.locator("#stats").text_content()
    assert " tok/s; prompt " in stats and stats.endswith("finish: stop")
    assert page.locator(".reply-stats").count() == 1  # each reply says its own

    page.fill("#message", FOLLOW_UP)
    page.press("#message", "Enter")  # Enter sends too
    page.wait_for_function("document.querySelectorAll('.turn.assistant').length === 2")
    page.wait_for_function("!document.querySelector('#send').disabled", timeout=120_000)
    second = replies.nth(1).text_content()
    assert second == QUESTION  # the follow-up saw the first turn
    assert page.locator(".turn.user").count() == 2

    folder = Path(os.environ.get("PY_RUNNER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"chat-page-{expected}.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    print(f"\nscreenshot: {shot}")


def test_bad_settings_and_urls_are_named_on_the_chat_page(require_builds, default_model_browser) -> None:
    """A `javascript:` model URL is refused by its scheme (it read as a CORS error), and max tokens 1.5 is a
    message naming the field, with no reply bubble (it left an empty one and no message)."""
    browser, base_url, _ = default_model_browser
    page = browser.new_page()
    page.goto(base_url + "/")
    wait_text(page, "#status", "Ready")
    page.fill("#model-url", "javascript:alert(1)")
    page.click("#load")
    status = wait_text(page, "#status", "InvalidParameterError")
    assert "model URL scheme 'javascript:' is not supported" in status
    page.fill("#model-url", "")
    page.select_option("#build", "st")
    page.click("#load")
    wait_text(page, "#status", "Loaded")

    set_number(page, "#max-tokens", "1.5")
    page.fill("#message", "Hi")
    page.click("#send")
    status = wait_text(page, "#status", "Max tokens")
    assert status == "Max tokens must be a whole number of at least 1, got '1.5'"
    assert page.locator("#status").get_attribute("class") == "error"
    assert page.locator(".turn").count() == 0 and page.locator("#message").input_value() == "Hi"

    set_number(page, "#max-tokens", 2)
    page.click("#send")
    page.wait_for_function("document.querySelector('#stats').textContent !== ''", timeout=120_000)
    assert page.locator(".turn.assistant").count() == 1 and page.locator(".turn.assistant").text_content()
    assert "finish: " in page.locator("#stats").text_content()  # the page still replies


def test_the_conversation_survives_a_reload_and_its_next_turn_reads_only_new_tokens(
    require_builds, default_model_browser, tmp_path: Path
) -> None:
    """Two turns, a reload (the page opens again: new Python, new engine), and the third turn: the page
    restores the conversation by itself, and the engine evaluates only the third turn's own tokens, the rest
    coming from the saved session. "New chat" forgets it: the next reload starts empty."""
    browser, base_url, model = default_model_browser
    page = browser.new_page(viewport={"width": 1000, "height": 900})
    page.goto(base_url + "/")
    wait_text(page, "#status", "Ready")
    page.select_option("#build", "st")
    page.check("#deterministic")
    page.click("#load")
    wait_text(page, "#status", "Loaded")
    sampling = page.locator("#sampling").text_content()
    assert "temperature 0.8" in sampling and "llama.cpp server's defaults" in sampling

    def ask(text: str, replies: int) -> str:
        page.fill("#message", text)
        page.click("#send")
        page.wait_for_function(
            f"document.querySelectorAll('.reply-stats').length === {replies}", timeout=120_000
        )
        page.wait_for_function("!document.querySelector('#send').disabled", timeout=120_000)
        return page.locator(".reply-stats").nth(replies - 1).text_content()

    ask(QUESTION, 1)
    second = ask("And of Italy?", 2)
    first_page_prompt = int(second.split("prompt ")[1].split(" new tokens")[0])

    page.reload()
    status = wait_text(page, "#status", "Loaded", timeout_s=180)
    assert "conversation restored" in status and "tokens restored from the saved session" in status
    assert page.locator(".turn.user").count() == 2 and page.locator(".turn.assistant").count() == 2
    page.check("#deterministic")
    third = page.locator(".reply-stats")
    page.fill("#message", "Which of the two is larger?")
    page.click("#send")
    page.wait_for_function("document.querySelectorAll('.reply-stats').length === 1", timeout=120_000)
    page.wait_for_function("!document.querySelector('#send').disabled", timeout=120_000)
    stats = third.nth(0).text_content()
    evaluated = int(stats.split("prompt ")[1].split(" new tokens")[0])
    reused = int(stats.split("new tokens, ")[1].split(" from the cache")[0])
    assert reused > 40 and evaluated < 40, stats  # only the third turn's tokens were read
    assert evaluated <= first_page_prompt + 10, (stats, second)

    folder = Path(os.environ.get("PY_RUNNER_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "chat-page-after-reload.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print(f"\nscreenshot: {shot}")

    page.click("#new-chat")
    assert page.locator(".turn").count() == 0
    page.reload()
    wait_text(page, "#status", "Ready")  # nothing to restore: the page waits for a model


def test_replies_render_safe_markdown_and_never_the_models_html(
    require_builds, default_model_browser
) -> None:
    """A stored conversation (as a reload finds it) whose reply holds Markdown and HTML: the Markdown becomes
    elements, the HTML stays text (no <img>, no handler runs); its session is gone, so the page says the next
    turn reads the conversation again. Unticking Markdown shows the reply as plain text."""
    browser, base_url, model = default_model_browser
    page = browser.new_page()
    page.goto(base_url + "/")
    wait_text(page, "#status", "Ready")
    reply = '# Title\nSome **bold** and `code`\n\n- one\n- two\n\n<img src=x onerror="window.hacked=1">'
    stored = {
        "model": f"/models/{model.name}",
        "system": "",
        "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": reply}],
    }
    page.evaluate("(s) => localStorage.setItem('py_runner-chat-page', JSON.stringify(s))", stored)
    page.reload()
    status = wait_text(page, "#status", "Loaded", timeout_s=180)
    assert "conversation restored" in status and "SessionNotFoundError" in status
    bubble = page.locator(".turn.assistant")
    assert (
        bubble.locator("strong").text_content() == "bold" and bubble.locator("code").text_content() == "code"
    )
    assert bubble.locator("li").count() == 2 and bubble.locator("h3").text_content() == "Title"
    assert page.locator("#conversation img").count() == 0 and "<img src=x" in bubble.text_content()
    assert page.evaluate("() => window.hacked") is None
    page.uncheck("#markdown")
    assert bubble.locator("strong").count() == 0 and bubble.text_content() == reply
