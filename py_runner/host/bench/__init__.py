"""The benches behind `py-runner bench`, one module each: `load` (load throughput and peak browser memory),
`generate` (tok/s through Python, from JS alone and natively), `soak` (heap figures over many calls),
`vs_wllama` (tok/s against wllama in the same page), `first_token` (page start to first token); `_memory`
samples the browser's memory.

Everything runs in the real stack (server, headless browser, Pyodide, the engine worker); memory is what the
browser processes this run started hold (anonymous and shared, from /proc), relative to its level with the
page ready and no model loaded.
"""

from .first_token import bench_first_token, format_first_token_report
from .generate import bench_generate, format_generate_report
from .load import bench_load, format_load_report
from .soak import bench_soak, format_soak_report
from .vs_wllama import bench_vs_wllama, format_vs_wllama_report, requantized

__all__ = [
    "bench_first_token",
    "bench_generate",
    "bench_load",
    "bench_soak",
    "bench_vs_wllama",
    "format_first_token_report",
    "format_generate_report",
    "format_load_report",
    "format_soak_report",
    "format_vs_wllama_report",
    "requantized",
]
