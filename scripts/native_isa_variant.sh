#!/usr/bin/env bash
# Build pr_native again with llama.cpp's CPU backend compiled for another x86 instruction set, to measure how far
# two native builds of the same source are from each other (the floor under any comparison with native):
#
#   bash scripts/native_isa_variant.sh avx2|scalar OUT_DIR      -> OUT_DIR/pr_native
#   py-runner perplexity --candidate-native OUT_DIR/pr_native --ctx 256 --max-tokens 480
#
# The reference pr_native (build_wasm.sh) is built with GGML_NATIVE: on this machine, AVX-512. "avx2" is what most
# x86 machines run (AVX2, FMA, F16C); "scalar" turns every x86 extension off, ggml's plain C kernels. Only
# libggml-cpu is rebuilt; llama.cpp's other libraries and the glue are the reference build's sources and flags.
# Needs build_wasm.sh to have built the native variant first (the patched tree and its libraries).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
isa="${1:-}" out="${2:-}"
case "$isa" in
    avx2) isa_flags=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF) ;;
    scalar) isa_flags=(-DGGML_SSE42=OFF -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF
                       -DGGML_BMI2=OFF -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF) ;;
    *) echo "usage: $0 avx2|scalar OUT_DIR" >&2; exit 2 ;;
esac
[ -n "$out" ] || { echo "usage: $0 avx2|scalar OUT_DIR" >&2; exit 2; }

libs="$(bash "$here/build_wasm.sh" --print-libs-dir)"
patched="$libs/src" reference="$libs/native/build"
[ -f "$libs/native/.done" ] || { echo "$libs/native is not built: run build_wasm.sh first" >&2; exit 1; }
mkdir -p "$out/objects"
jobs="$(nproc 2>/dev/null || echo 2)"

# llama.cpp's CPU backend for the chosen instruction set: the reference's CMake flags, GGML_NATIVE off.
cmake -S "$patched" -B "$out/ggml-cpu" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF \
    -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DGGML_NATIVE=OFF "${isa_flags[@]}" \
    > "$out/configure.log" 2>&1 || { cat "$out/configure.log" >&2; exit 1; }
cmake --build "$out/ggml-cpu" --target ggml-cpu -j "$jobs" > "$out/build.log" 2>&1 \
    || { tail -30 "$out/build.log" >&2; exit 1; }

# The glue, compiled as build_wasm.sh compiles its native variant (its lists of glue and llama.cpp common/ sources).
eval "$(sed -n '/^common_sources=(/,/)$/p' "$here/build_wasm.sh")"
eval "$(sed -n '/^glue_sources=(/{:a;/)$/!{N;ba;};p;}' "$here/build_wasm.sh")"   # one line or several
sources=("$here/wasm/native_main.cpp")
for f in "${glue_sources[@]}"; do sources+=("$here/wasm/$f"); done
for f in "${common_sources[@]}"; do sources+=("$patched/common/$f"); done
for f in "$patched"/common/parsers/*.cpp; do sources+=("$f"); done
sed -e 's/@LLAMA_BUILD_NUMBER@/0/' -e "s/@LLAMA_BUILD_COMMIT@/isa-$isa/" -e 's/@BUILD_COMPILER@/c++/' \
    -e "s/@BUILD_TARGET@/native-$isa/" "$patched/common/build-info.cpp.in" > "$out/objects/build-info.cpp"
sources+=("$out/objects/build-info.cpp")
printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -I{} sh -c \
    "c++ -std=c++17 -O2 -I $patched/include -I $patched/ggml/include -I $patched/common -I $patched/vendor \
     -c {} -o $out/objects/\$(basename {} .cpp).o" > "$out/compile.log" 2>&1 \
    || { cat "$out/compile.log" >&2; exit 1; }
c++ "$out"/objects/*.o "$reference/src/libllama.a" "$reference/ggml/src/libggml.a" \
    "$out/ggml-cpu/ggml/src/libggml-cpu.a" "$reference/ggml/src/libggml-base.a" -lpthread -ldl -o "$out/pr_native"
echo "$out/pr_native"
