"""The benches behind `py-runner bench`, one module each: `load` (load throughput and peak browser memory),
`generate` (tok/s through Python, from JS alone and natively), `soak` (heap figures over many calls),
`vs_wllama` (tok/s against wllama in the same page), `first_token` (page start to first token), `session` (a
long conversation's next turn after a reload, from a restored session or read again); `_memory`
samples the browser's memory. What they run in the page are files of their own in `programs/` (Python given
its parameters as one JSON object, JavaScript function expressions), which `py-runner perplexity` uses too.

Everything runs in the real stack (server, headless browser, Pyodide, the engine worker); memory is what the
browser processes this run started hold (anonymous and shared, from /proc), relative to its level with the
page ready and no model loaded.

May import: the library, `py_runner.host.browser` (the harness page), `py_runner.host.build` (paths, pins,
assets) and `py_runner.host.server`, inside the functions that need them; never the CLI.
"""

from .first_token import bench_first_token, format_first_token_report
from .generate import bench_generate, format_generate_report
from .load import bench_load, format_load_report
from .session import bench_session, format_session_report
from .soak import bench_soak, format_soak_report
from .vs_wllama import bench_vs_wllama, format_vs_wllama_report, requantized

__all__ = [
    "bench_first_token",
    "bench_generate",
    "bench_load",
    "bench_session",
    "bench_soak",
    "bench_vs_wllama",
    "format_first_token_report",
    "format_generate_report",
    "format_load_report",
    "format_session_report",
    "format_soak_report",
    "format_vs_wllama_report",
    "requantized",
]
