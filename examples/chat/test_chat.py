"""The chat app's own tests, written only against py_runner's pytest plugin and its public API: they run in
a real headless browser (--browser chromium|firefox|webkit), with Pyodide and py_runner booted, this folder
served and importable in the page."""

from __future__ import annotations

from py_runner.host.pytest_plugin import run_in_page


def test_the_app_answers_with_the_real_model(py_runner_page, py_runner_model_url) -> None:
    answer = py_runner_page.run(
        f"""
        from chat import ChatSession
        from py_runner import LlamaRunner

        runner = LlamaRunner()
        await runner.load_model({py_runner_model_url!r})
        await ChatSession(runner).ask("What is the capital of France? Answer in one sentence.")
        """
    )
    assert "Paris" in answer


@run_in_page
async def test_a_session_keeps_the_conversation(py_runner_page, py_runner_tiny_model_url) -> None:
    # This body runs in the page (Pyodide): imports go inside it.
    import js
    from chat import ChatSession

    from py_runner import LlamaRunner

    runner = LlamaRunner()
    await runner.load_model(py_runner_tiny_model_url)
    results = []  # what the engine did with each turn (the session returns only the text)
    chat = runner.chat

    async def recording_chat(messages, *args, **kwargs):
        results.append(await chat(messages, *args, **kwargs))
        return results[-1]

    runner.chat = recording_chat
    session = ChatSession(runner, system="Be brief.", template="chatml")
    await session.ask("Hello?", n_predict=4)
    await session.ask("Again?", n_predict=4)
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant", "user", "assistant"]
    first, second = results
    # The engine's prompt for the follow-up held the whole first turn: the KV cache already had the first
    # prompt (and its reply), so all of it was reused and only the new turn was evaluated. A session that sent
    # the follow-up alone would share at most the template's opening tokens with it.
    assert second.prompt_tokens_reused >= first.prompt_tokens, (first, second)
    asked = await runner.format_chat(session.messages[:4], template="chatml")
    assert second.prompt_tokens == len(await runner.tokenize(asked, add_special=True, parse_special=True))
    # The plugin serves with isolation headers: the multi-thread build where the browser has shared memory.
    assert runner.build == ("mt" if hasattr(js, "SharedArrayBuffer") else "st")


def test_an_error_in_the_page_fails_with_its_traceback(py_runner_page) -> None:
    import pytest

    from py_runner.host.pytest_plugin import InPageError

    with pytest.raises(InPageError, match=r"(?s)Traceback.*ModelNotLoadedError"):
        py_runner_page.run("from py_runner import LlamaRunner\nawait LlamaRunner().generate_text('hi')")
