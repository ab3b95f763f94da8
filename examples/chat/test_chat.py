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
    session = ChatSession(runner, system="Be brief.", template="chatml")
    await session.ask("Hello?", n_predict=4)
    await session.ask("Again?", n_predict=4)
    assert [m["role"] for m in session.messages] == ["system", "user", "assistant", "user", "assistant"]
    # The plugin serves with isolation headers: the multi-thread build where the browser has shared memory.
    assert runner.build == ("mt" if hasattr(js, "SharedArrayBuffer") else "st")


def test_an_error_in_the_page_fails_with_its_traceback(py_runner_page) -> None:
    import pytest

    from py_runner.host.pytest_plugin import InPageError

    with pytest.raises(InPageError, match=r"(?s)Traceback.*ModelNotLoadedError"):
        py_runner_page.run("from py_runner import LlamaRunner\nawait LlamaRunner().generate_text('hi')")
