"""The chat page's Python: runs in Pyodide and holds a conversation with a model through py_runner.Llama
(llama-cpp-python's API). The whole conversation goes to the model each turn; the engine keeps what it already
evaluated in its KV cache, so a turn costs only its own new tokens."""

import asyncio
import math
import time
from urllib.parse import quote

import js
from pyodide.ffi import create_proxy

from py_runner import Llama, LlamaRunner, LocalWebAIError, ProgressInfo

el = js.document.getElementById
state = {"llm": None, "messages": [], "loading": False, "replying": False}
tasks = set()  # keeps running tasks referenced


def show_status(text: str, error: bool = False) -> None:
    el("status").textContent = text
    el("status").className = "error" if error else ""


def refresh() -> None:
    busy = state["loading"] or state["replying"]
    ready = state["llm"] is not None and not busy
    for name in ("load", "model-file"):
        el(name).disabled = busy
    for name in ("send", "message", "new-chat"):
        el(name).disabled = not ready
    el("stop").disabled = not state["replying"]


def on_progress(info: ProgressInfo) -> None:
    el("progress").value = info.fraction or 0
    size = f"{info.loaded / 1e6:.1f}" + (f" / {info.total / 1e6:.1f} MB" if info.total else " MB")
    el("progress-text").textContent = f"{info.stage.value}: {size}"


def add_turn(role: str, text: str):
    turn = js.document.createElement("div")
    turn.className = f"turn {role}"
    turn.textContent = text
    el("conversation").appendChild(turn)
    el("conversation").scrollTop = el("conversation").scrollHeight
    return turn


async def load(source) -> None:
    state["loading"] = True
    refresh()
    try:
        if state["llm"] is not None:
            state["llm"].close()  # one engine at a time: the old model's memory goes back
            state["llm"] = None
        runner = LlamaRunner(build=el("build").value)
        state["llm"] = await Llama.load(source, n_ctx=2048, runner=runner, progress_callback=on_progress)
        spec = runner.spec
        show_status(f"Loaded {spec.file_name} ({runner.build} build)")
        new_chat()
    except LocalWebAIError as err:
        show_status(f"{type(err).__name__}: {err}", error=True)
    finally:
        state["loading"] = False
        refresh()


def new_chat() -> None:
    state["messages"] = []
    el("conversation").innerHTML = ""
    el("stats").textContent = ""


def setting(element_id: str, label: str, default: float, low: float, *, whole: bool) -> float:
    """A number field's value (`default` when empty); a value out of range raises ValueError naming the field
    and what it takes, so that the reply is never started with it."""
    raw = el(element_id).value.strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < low or (whole and not value.is_integer()):
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{label} must be {kind} of at least {low:g}, got {raw!r}")
    return int(value) if whole else value


async def send() -> None:
    text = el("message").value.strip()
    llm = state["llm"]
    if not text or llm is None:
        return
    try:
        temperature = setting("temperature", "Temperature", 0, 0, whole=False)
        max_tokens = int(setting("max-tokens", "Max tokens", 256, 1, whole=True))
    except ValueError as err:  # said beside the conversation; the message stays in the box to send again
        show_status(str(err), error=True)
        return
    el("message").value = ""
    system = el("system").value.strip()
    user = {"role": "user", "content": text}
    conversation = ([{"role": "system", "content": system}] if system else []) + state["messages"] + [user]
    add_turn("user", text)
    reply = add_turn("assistant", "")
    state["replying"] = True
    refresh()
    parts, pieces, finish, first = [], 0, None, None
    started = time.perf_counter()
    try:
        chunks = await llm.acreate_chat_completion(
            conversation,
            stream=True,
            temperature=temperature,
            max_tokens=max_tokens,
        )
        async for chunk in chunks:
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content")
            if piece:
                first = first or time.perf_counter()  # the prompt is evaluated by then
                parts.append(piece)
                pieces += 1
                reply.textContent = "".join(parts)
                el("conversation").scrollTop = el("conversation").scrollHeight
            finish = choice["finish_reason"] or finish
        ended = time.perf_counter()
        state["messages"] += [user, {"role": "assistant", "content": "".join(parts)}]
        first = first or ended
        rate = (pieces - 1) / (ended - first) if pieces > 1 and ended > first else 0.0
        el("stats").textContent = (
            f"{pieces} tokens, the first after {first - started:.2f} s, then {rate:.1f} tok/s; "
            f"finish: {finish}"
        )
    except Exception as err:  # noqa: BLE001  # any failure is shown, never an empty reply and silence
        show_status(f"{type(err).__name__}: {err}", error=True)
        if not parts:
            reply.remove()
    finally:
        state["replying"] = False
        refresh()


def spawn(coro) -> None:
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def on(element_id: str, event: str, handler) -> None:
    el(element_id).addEventListener(event, create_proxy(handler))  # lives as long as the page


def chosen_model():
    return el("model-url").value.strip() or el("model-choice").value


def on_key(event) -> None:
    if event.key == "Enter" and not event.shiftKey and not el("send").disabled:
        event.preventDefault()
        spawn(send())


on("load", "click", lambda _: spawn(load(chosen_model())))
on("model-file", "change", lambda _: spawn(load(el("model-file").files.item(0))))
on("send", "click", lambda _: spawn(send()))
on("message", "keydown", on_key)
on("stop", "click", lambda _: state["llm"] and state["llm"].runner.cancel())
on("new-chat", "click", lambda _: new_chat())

for name in js.__pyRunnerConfig.models or []:  # the default real model first
    option = js.document.createElement("option")
    option.value = f"/models/{quote(name)}"
    option.textContent = name
    el("model-choice").appendChild(option)
show_status("Ready: load a model")
refresh()
