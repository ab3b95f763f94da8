"""`bench session` in the page: a long conversation saved as a session, then, after a reload, its next turn
answered from the restored session or by reading the whole conversation again."""

import json

import js

from py_runner import GenerateTextParams, LlamaRunner

GREEDY = GenerateTextParams(temp=0.0, n_predict=16)


async def conversation(runner: LlamaRunner, text: str, target: int) -> list[dict]:
    """User turns of the text's paragraphs, each acknowledged, until the chat is about `target` tokens."""
    messages: list[dict] = []
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        messages += [{"role": "user", "content": paragraph}, {"role": "assistant", "content": "Noted."}]
        prompt = await runner.format_chat(messages)
        if len(await runner.tokenize(prompt, add_special=True, parse_special=True)) >= target:
            break
    return messages


async def save(params: dict) -> str:
    runner = LlamaRunner(build=params["build"])
    await runner.load_model(params["url"], ctx_size=params["ctx_size"])
    messages = await conversation(runner, params["text"], params["tokens"])
    messages.pop()  # the last acknowledgement is the model's own reply
    reply = await runner.chat(messages, GREEDY)
    messages.append({"role": "assistant", "content": reply.text})
    info = await runner.save_session(params["session"])
    runner.terminate()
    return json.dumps({"messages": messages, "n_tokens": info.n_tokens, "size": info.size})


async def resume(params: dict) -> str:
    runner = LlamaRunner(build=params["build"])
    await runner.load_model(params["url"], ctx_size=params["ctx_size"])
    first = []
    started = js.performance.now()
    if params["from_session"]:
        await runner.load_session(params["session"])
    messages = [*params["messages"], {"role": "user", "content": params["question"]}]
    result = await runner.chat(messages, GREEDY, lambda _: first.append(js.performance.now()))
    runner.terminate()
    return json.dumps(
        {
            "first_token_ms": first[0] - started,
            "tokens": result.tokens,
            "prompt_tokens": result.prompt_tokens,
            "evaluated": result.prompt_tokens_evaluated,
        }
    )
