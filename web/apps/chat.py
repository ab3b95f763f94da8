"""The chat page's Python: runs in Pyodide and holds a conversation with a model through py_runner.Llama
(llama-cpp-python's API). The whole conversation goes to the model each turn; the engine keeps what it already
evaluated in its KV cache, so a turn costs only its own new tokens.

A page people keep open: sampling as llama.cpp's server samples (its defaults, or the model's own
`general.sampling.*` keys) with a "deterministic" switch (greedy); the conversation saved after every reply
(its text in localStorage, the engine's KV cache as a py_runner session) and restored after a reload, the
next turn reading only its new tokens; replies as plain text or a safe subset of Markdown (DOM text nodes,
never HTML from the model); each reply's time to first token, speed and prompt tokens shown beside it."""

import asyncio
import json
import math
import re
import time
from urllib.parse import quote

import js
from pyodide.ffi import create_proxy

from py_runner import GenerateTextParams, Llama, LlamaRunner, LocalWebAIError, ProgressInfo

el = js.document.getElementById
state = {"llm": None, "source": None, "messages": [], "loading": False, "replying": False}
tasks = set()  # keeps running tasks referenced

SESSION = "py_runner-chat-page"  # the session that holds the conversation's KV cache
STORED = "py_runner-chat-page"  # localStorage: {"model": URL, "system": text, "messages": [...]}
# Sampling as llama.cpp's server samples: its defaults (GenerateTextParams' are the same), unless the model's
# GGUF names its own (general.sampling.*, written by convert_hf_to_gguf from generation_config.json).
SERVER_DEFAULTS = GenerateTextParams()
SAMPLING = {  # chat completion argument -> (GGUF key, llama-server's default)
    "temperature": ("general.sampling.temp", SERVER_DEFAULTS.temp),
    "top_k": ("general.sampling.top_k", SERVER_DEFAULTS.top_k),
    "top_p": ("general.sampling.top_p", SERVER_DEFAULTS.top_p),
    "min_p": ("general.sampling.min_p", SERVER_DEFAULTS.min_p),
    "repeat_penalty": ("general.sampling.penalty_repeat", SERVER_DEFAULTS.repeat_penalty),
}


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


# ---- replies as text or safe Markdown ----------------------------------------------------------------------
LIST_ITEM = re.compile(r"\s*([-*+]|\d+[.)])\s+(.*)")
HEADING = re.compile(r"(#{1,3})\s+(.*)")
INLINE = re.compile(r"(`[^`\n]+`|\*\*[^*\n]+\*\*|\*[^*\s][^*\n]*\*)")


def markdown_blocks(text: str) -> list[tuple[str, object]]:
    """A reply's blocks in a small Markdown subset: ("pre", code) for ``` fences, ("h3".."h5", text),
    ("ul" | "ol", [items]), ("p", text). Everything else is text: nothing is ever parsed as HTML."""
    blocks: list[tuple[str, object]] = []
    lines, i = text.split("\n"), 0

    def starts_block(line: str) -> bool:
        return bool(line.lstrip().startswith("```") or HEADING.match(line) or LIST_ITEM.match(line))

    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith("```"):
            body, i = [], i + 1
            while i < len(lines) and not lines[i].lstrip().startswith("```"):
                body.append(lines[i])
                i += 1
            blocks.append(("pre", "\n".join(body)))
            i += 1  # the closing fence (or the end, while the reply streams)
        elif heading := HEADING.match(line):
            blocks.append((f"h{len(heading.group(1)) + 2}", heading.group(2)))
            i += 1
        elif item := LIST_ITEM.match(line):
            ordered, items = item.group(1)[0].isdigit(), []
            while (
                i < len(lines)
                and (item := LIST_ITEM.match(lines[i]))
                and item.group(1)[0].isdigit() == ordered
            ):
                items.append(item.group(2))
                i += 1
            blocks.append(("ol" if ordered else "ul", items))
        elif not line.strip():
            i += 1
        else:
            paragraph = []
            while i < len(lines) and lines[i].strip() and not starts_block(lines[i]):
                paragraph.append(lines[i])
                i += 1
            blocks.append(("p", "\n".join(paragraph)))
    return blocks


def append_inline(node, text: str) -> None:
    """`code`, **strong** and *em* as elements, the rest as text nodes."""
    for part in INLINE.split(text):
        if not part:
            continue
        tag = {"`": "code", "**": "strong"}.get(part[:2] if part.startswith("**") else part[0])
        tag = tag or ("em" if part.startswith("*") and len(part) > 2 else None)
        if tag is None or len(part) < 3:
            node.appendChild(js.document.createTextNode(part))
            continue
        child = js.document.createElement(tag)
        child.textContent = part[2:-2] if tag == "strong" else part[1:-1]
        node.appendChild(child)


def render_reply(bubble, text: str) -> None:
    bubble.replaceChildren()
    plain = not el("markdown").checked
    bubble.style.whiteSpace = "pre-wrap" if plain else ""  # Markdown's blocks keep their own line breaks
    if plain:
        bubble.textContent = text
        return
    for kind, body in markdown_blocks(text):
        node = js.document.createElement(kind)
        if kind == "pre":
            node.textContent = body
        elif kind in ("ul", "ol"):
            for item in body:
                entry = js.document.createElement("li")
                append_inline(entry, item)
                node.appendChild(entry)
        else:
            append_inline(node, body)
        bubble.appendChild(node)


def add_turn(role: str, text: str):
    turn = js.document.createElement("div")
    turn.className = f"turn {role}"
    if role == "assistant":
        render_reply(turn, text)
    else:
        turn.textContent = text
    el("conversation").appendChild(turn)
    el("conversation").scrollTop = el("conversation").scrollHeight
    return turn


def add_reply_stats(text: str) -> None:
    line = js.document.createElement("div")
    line.className = "reply-stats"
    line.textContent = text
    el("conversation").appendChild(line)
    el("stats").textContent = text


# ---- the conversation, kept across reloads -----------------------------------------------------------------
def stored_conversation() -> dict:
    try:
        return json.loads(js.localStorage.getItem(STORED) or "{}")
    except ValueError:
        return {}


async def save_conversation() -> None:
    """The text in localStorage, the KV cache as a session: a reload continues where this reply ended."""
    if not isinstance(state["source"], str):  # a File chosen from disk: a reload cannot open it again
        return
    try:
        await state["llm"].runner.save_session(SESSION)
    except LocalWebAIError as err:  # e.g. no room: the text is still kept, the next turn re-reads it
        show_status(f"The conversation's cache was not saved ({type(err).__name__}: {err})", error=True)
    record = {"model": state["source"], "system": el("system").value, "messages": state["messages"]}
    js.localStorage.setItem(STORED, json.dumps(record))


async def restore_conversation() -> str | None:
    """The conversation saved for this model, if any: shown, and its KV cache restored; says how it went."""
    saved = stored_conversation()
    if saved.get("model") != state["source"] or not saved.get("messages"):
        return None
    state["messages"] = list(saved["messages"])
    el("system").value = saved.get("system") or ""
    for message in state["messages"]:
        add_turn(message["role"], message["content"])
    try:
        info = await state["llm"].runner.load_session(SESSION)
        note = f"{info.n_tokens} tokens restored from the saved session"
    except LocalWebAIError as err:  # gone or from another model: the next turn reads the conversation again
        note = f"its cache was not restored ({type(err).__name__}), the next turn reads it again"
    return note


def new_chat() -> None:
    state["messages"] = []
    el("conversation").innerHTML = ""
    el("stats").textContent = ""
    js.localStorage.removeItem(STORED)
    if state["llm"] is not None:
        spawn(forget_session())


async def forget_session() -> None:
    try:
        await state["llm"].runner.delete_session(SESSION)
    except LocalWebAIError:
        pass  # nothing stored, or no storage: nothing to forget


# ---- loading -----------------------------------------------------------------------------------------------
def sampling_defaults() -> tuple[dict[str, float], str]:
    """The chat's sampling arguments (the model's own where its GGUF names them) and where they came from."""
    meta = state["llm"].metadata
    values, from_model = {}, []
    for name, (key, default) in SAMPLING.items():
        try:
            values[name] = type(default)(float(meta[key]))
            from_model.append(name)
        except (KeyError, ValueError):
            values[name] = default
    return values, ("the model's " + ", ".join(from_model)) if from_model else "llama.cpp server's defaults"


def show_sampling() -> None:
    values, origin = sampling_defaults()
    el("temperature").placeholder = f"{values['temperature']:g}"
    shown = ", ".join(f"{name} {value:g}" for name, value in values.items())
    el("sampling").textContent = f"Sampling: {shown} ({origin})"


async def load(source, *, restoring: bool = False) -> None:
    state["loading"] = True
    refresh()
    try:
        if state["llm"] is not None:
            state["llm"].close()  # one engine at a time: the old model's memory goes back
            state["llm"] = None
        runner = LlamaRunner(build=el("build").value)
        state["llm"] = await Llama.load(source, n_ctx=2048, runner=runner, progress_callback=on_progress)
        state["source"] = source
        loaded = f"Loaded {runner.spec.file_name} ({runner.build} build)"
        show_sampling()
        state["messages"] = []
        el("conversation").innerHTML = ""
        el("stats").textContent = ""
        note = await restore_conversation() if restoring else None
        if note is None:
            new_chat()
        show_status(loaded + (f"; conversation restored: {note}" if note else ""))
    except LocalWebAIError as err:
        show_status(f"{type(err).__name__}: {err}", error=True)
    finally:
        state["loading"] = False
        refresh()


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


def chat_sampling() -> dict[str, float]:
    values, _ = sampling_defaults()
    if el("deterministic").checked:  # greedy: the same reply every time, as temperature 0 gives in llama.cpp
        return {**values, "temperature": 0.0}
    values["temperature"] = setting("temperature", "Temperature", values["temperature"], 0, whole=False)
    return values


async def send() -> None:
    text = el("message").value.strip()
    llm = state["llm"]
    if not text or llm is None:
        return
    try:
        sampling = chat_sampling()
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
            conversation, stream=True, max_tokens=max_tokens, **sampling
        )
        async for chunk in chunks:
            choice = chunk["choices"][0]
            piece = choice["delta"].get("content")
            if piece:
                first = first or time.perf_counter()  # the prompt is evaluated by then
                parts.append(piece)
                pieces += 1
                render_reply(reply, "".join(parts))
                el("conversation").scrollTop = el("conversation").scrollHeight
            finish = choice["finish_reason"] or finish
        ended = time.perf_counter()
        state["messages"] += [user, {"role": "assistant", "content": "".join(parts)}]
        first = first or ended
        rate = (pieces - 1) / (ended - first) if pieces > 1 and ended > first else 0.0
        result = llm.runner.last_result
        prompt = (
            f"prompt {result.prompt_tokens_evaluated} new tokens, "
            f"{result.prompt_tokens_reused} from the cache; "
            if result is not None
            else ""
        )
        add_reply_stats(
            f"{pieces} tokens, the first after {first - started:.2f} s, then {rate:.1f} tok/s; "
            f"{prompt}finish: {finish}"
        )
        await save_conversation()
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


def rerender_replies(_event) -> None:
    replies = [m["content"] for m in state["messages"] if m["role"] == "assistant"]
    for bubble, text in zip(js.document.querySelectorAll(".turn.assistant"), replies, strict=False):
        render_reply(bubble, text)


on("load", "click", lambda _: spawn(load(chosen_model())))
on("model-file", "change", lambda _: spawn(load(el("model-file").files.item(0))))
on("send", "click", lambda _: spawn(send()))
on("message", "keydown", on_key)
on("stop", "click", lambda _: state["llm"] and state["llm"].runner.cancel())
on("new-chat", "click", lambda _: new_chat())
on("markdown", "change", rerender_replies)

# The user's models: the embedded default first, then their --models-dir (never the project's test fixtures).
for name in js.__pyRunnerConfig.models or []:
    option = js.document.createElement("option")
    option.value = f"/models/{quote(name)}"
    option.textContent = name
    el("model-choice").appendChild(option)
saved_model = stored_conversation().get("model")
if isinstance(saved_model, str) and saved_model:  # a reload: back to the conversation it left
    show_status(f"Restoring your conversation with {saved_model.rsplit('/', 1)[-1]}…")
    spawn(load(saved_model, restoring=True))
else:
    show_status("Ready: load a model")
refresh()
