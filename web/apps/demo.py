"""The demo page's Python: runs in Pyodide, drives LlamaRunner, updates the DOM."""

import asyncio
from urllib.parse import quote

import js
from pyodide.ffi import create_proxy

from py_runner import GenerateTextParams, LlamaRunner, LocalWebAIError, ProgressInfo

runner = LlamaRunner()
page = js.document
element = page.getElementById
tasks = set()  # keeps running tasks referenced


def set_busy(loading: bool, generating: bool) -> None:
    loaded = runner.is_model_loaded
    element("load-url").disabled = loading or generating
    element("model-file").disabled = loading or generating
    element("cancel-load").disabled = not loading
    element("generate").disabled = loading or generating or not loaded
    element("stop").disabled = not generating


def show_status(text: str, error: bool = False) -> None:
    element("status").textContent = text
    element("status").className = "error" if error else ""


def on_progress(info: ProgressInfo) -> None:
    element("progress").value = info.fraction or 0
    size = f"{info.loaded / 1e6:.1f}" + (f" / {info.total / 1e6:.1f} MB" if info.total else " MB")
    element("progress-text").textContent = f"{info.stage.value}: {size} {info.message}"


def show_metadata(spec) -> None:
    table = element("metadata")
    table.innerHTML = ""
    for name, value in spec.to_dict().items():
        if value is None:
            continue
        row = table.insertRow()
        row.insertCell().textContent = name
        row.insertCell().textContent = str(value)


async def load(source) -> None:
    set_busy(True, False)
    try:
        spec = await runner.load_model(source, progress_callback=on_progress)
        show_metadata(spec)
        show_status(f"Loaded {spec.file_name} ({runner.build} build)")
    except LocalWebAIError as err:
        show_status(f"{type(err).__name__}: {err}", error=True)
    finally:
        set_busy(False, False)


async def generate() -> None:
    set_busy(False, True)
    output = element("output")
    output.textContent = ""
    params = GenerateTextParams(
        n_predict=int(element("n-predict").value), temp=float(element("temp").value), seed=0
    )
    try:
        result = await runner.generate_text(
            element("prompt").value, params, token_callback=lambda chunk: output.append(chunk.text)
        )
        element("timings").textContent = (
            f"{result.generated_tokens} tokens, finish: {result.finish_reason}, "
            f"prompt {result.prompt_tok_s or 0:.1f} tok/s, generation {result.gen_tok_s or 0:.1f} tok/s"
        )
    except LocalWebAIError as err:
        show_status(f"{type(err).__name__}: {err}", error=True)
    finally:
        set_busy(False, False)


def spawn(coro) -> None:
    task = asyncio.ensure_future(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)


def on(element_id: str, event: str, handler) -> None:
    element(element_id).addEventListener(event, create_proxy(handler))  # lives as long as the page


on("load-url", "click", lambda _: spawn(load(element("model-url").value)))
on("model-file", "change", lambda _: spawn(load(element("model-file").files.item(0))))
on("cancel-load", "click", lambda _: runner.cancel_loading())
on("generate", "click", lambda _: spawn(generate()))
on("stop", "click", lambda _: runner.cancel())

for name in js.__pyRunnerConfig.models or []:
    option = page.createElement("option")
    option.value = f"/models/{quote(name)}"
    element("models").appendChild(option)
if js.__pyRunnerConfig.models:
    element("model-url").value = f"/models/{quote(js.__pyRunnerConfig.models[0])}"
show_status("Ready: choose a model")
set_busy(False, False)
