"""Our kernel patches (wasm/patches) checked as WebAssembly, outside any model and any browser (so they
run once, in the README's first pytest pass, not again under --browser firefox): each C check here is
compiled by emcc against the patched llama.cpp tree, with the SIMD128 builds' compiler and with the relaxed
builds' (clang 19), and run by node. A model's logits would show a wrong kernel only where it mattered;
these compare every bit, on inputs chosen to reach the edge cases."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from py_runner.host.build.paths import BUILD_SCRIPT
from py_runner.host.skips import skip_or_fail

pytestmark = pytest.mark.e2e

KERNELS = Path(__file__).parent
LLVM19_AS_14 = "toolchains/llvm19-as-14"  # build_wasm.sh's links that make emcc drive clang 19
COMPILERS = ["clang 14, SIMD128", "clang 19, relaxed SIMD"]


@pytest.fixture(scope="module")
def patched_source() -> Path:
    have = shutil.which("emcc") and shutil.which("node")
    skip_or_fail(None if have else "emcc or node is missing (scripts/setup.sh)")
    proc = subprocess.run(
        ["bash", str(BUILD_SCRIPT), "--patched-source"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return Path(proc.stdout.strip().splitlines()[-1])


def run_check(source: Path, compiler: str, tree: Path, out: Path, *more: str) -> str:
    """Compile `source` (and `more`: flags, patched sources) for WebAssembly, run it in node, return its
    output; fails if either step does."""
    env = {**os.environ, "NODE_PATH": os.environ.get("NODE_PATH", "/usr/share/nodejs")}
    flags = ["-O3", "-msimd128"]  # as the builds compile llama.cpp (CMake Release)
    node = ["node"]
    if "relaxed" in compiler:
        proc = subprocess.run(["bash", str(BUILD_SCRIPT), "--print-libs-dir"], capture_output=True, text=True)
        env["EM_LLVM_ROOT"] = str(Path(proc.stdout.strip()).parents[1] / LLVM19_AS_14)
        skip_or_fail(
            None if Path(env["EM_LLVM_ROOT"]).is_dir() else "the relaxed builds' toolchain is missing"
        )
        flags.append("-mrelaxed-simd")
        node.append("--experimental-wasm-relaxed-simd")  # node 18/20's V8 has it behind this flag
    ggml = tree / "ggml"
    includes = ["-I", str(ggml / "include"), "-I", str(ggml / "src"), "-I", str(ggml / "src" / "ggml-cpu")]
    program = out / f"{source.stem}.js"
    built = subprocess.run(
        ["emcc", *flags, "-sSINGLE_FILE", *includes, *more, str(source), "-o", str(program)],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-3000:]
    ran = subprocess.run([*node, str(program)], capture_output=True, text=True, env=env, check=False)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return ran.stdout


@pytest.mark.parametrize("compiler", COMPILERS)
def test_the_f16_store_equals_ggml_scalar_conversion_for_sampled_floats_and_edge_cases(
    patched_source: Path, compiler: str, tmp_path: Path
) -> None:
    # every 61st group of four floats: 2^32 / 61 * 4 of the 2^32 (STEP=4 checks them all, in about 20 s)
    out = run_check(KERNELS / "f16_conversion.c", compiler, patched_source, tmp_path, "-DSTEP=61")
    assert "checked 281637" in out and " 0 mismatches" in out, out


@pytest.mark.parametrize("compiler", COMPILERS)
def test_the_four_row_mat_vec_kernels_equal_the_one_row_kernels_bit_for_bit(
    patched_source: Path, compiler: str, tmp_path: Path
) -> None:
    quants = patched_source / "ggml" / "src" / "ggml-cpu" / "arch" / "wasm" / "quants.c"
    out = run_check(
        KERNELS / "mat_vec_rows.c", compiler, patched_source, tmp_path,
        "-D_GNU_SOURCE", "-sERROR_ON_UNDEFINED_SYMBOLS=0", "-sINITIAL_MEMORY=64MB", str(quants),
    )  # fmt: skip
    print(out)
    kernels = ["q4_1", "q8_0"] + ([] if "relaxed" in compiler else ["q4_K"])  # relaxed keeps q4_K's one row
    for name in kernels:
        assert f"{name} n=" in out and "identical" in out.split(f"{name} n=")[1].splitlines()[0], out
    assert "0 mismatches" in out, out
