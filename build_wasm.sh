#!/usr/bin/env bash
# Build llama.cpp + our glue (wasm/) three ways:
#   st/      WebAssembly, single thread          (pr_glue.js + pr_glue.wasm)
#   mt/      WebAssembly, pthreads               (pr_glue.js + pr_glue.wasm + pr_glue.worker.js)
#   native/  the same glue natively: pr_native, the reference for parity tests and benchmarks
# Inputs are pinned; outputs are cached under $PY_RUNNER_CACHE (default ~/.cache/py_runner) in builds/<hash>,
# where <hash> covers every input (source, glue, patches, this script, toolchain versions). An unchanged input set
# is never rebuilt.
#
#   bash build_wasm.sh               build what is missing, print the build folder
#   bash build_wasm.sh --print-dir   print the build folder for the current inputs, build nothing
#   bash build_wasm.sh --only st|mt|native
set -euo pipefail

LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_CPP_PYTHON_SHA256=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
SDIST_URL="https://files.pythonhosted.org/packages/source/l/llama-cpp-python/llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION}.tar.gz"
PTHREAD_POOL_SIZE=4   # worker.js caps n_threads at this: ggml must never wait for a worker that is not there

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cache="${PY_RUNNER_CACHE:-$HOME/.cache/py_runner}"
jobs="$(nproc 2>/dev/null || echo 2)"

print_only=0
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --print-dir) print_only=1 ;;
        --only) only="$2"; shift ;;
        *) echo "usage: $0 [--print-dir] [--only st|mt|native]" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "[build_wasm] $*" >&2; }

# --- the input hash --------------------------------------------------------------------------------------------
first_line() { "$@" 2>/dev/null | sed -n 1p || true; }   # sed reads all: no SIGPIPE, a stable answer
emcc_version="$(first_line emcc --version)"
cxx_version="$(first_line c++ --version)"
input_hash="$(
    {
        echo "$LLAMA_CPP_PYTHON_VERSION $LLAMA_CPP_PYTHON_SHA256 $PTHREAD_POOL_SIZE"
        echo "$emcc_version"
        echo "$cxx_version"
        cat "$here/build_wasm.sh"
        find "$here/wasm" -type f | LC_ALL=C sort | xargs cat
    } | sha256sum | cut -c1-16
)"
out="$cache/builds/$input_hash"
if [ "$print_only" = 1 ]; then
    echo "$out"
    exit 0
fi

# --- the pinned llama.cpp source -----------------------------------------------------------------------------
src_root="$cache/src/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION"
llama_src="$src_root/vendor/llama.cpp"
fetch_source() {
    local tarball="$cache/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
    mkdir -p "$cache/src"
    if [ ! -f "$tarball" ] || ! echo "$LLAMA_CPP_PYTHON_SHA256  $tarball" | sha256sum -c --status; then
        log "downloading llama-cpp-python $LLAMA_CPP_PYTHON_VERSION sdist"
        local tmp
        tmp="$(mktemp -d)"
        curl -fsSL --retry 3 "$SDIST_URL" -o "$tmp/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz"
        mv "$tmp/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" "$tarball"
        rm -rf "$tmp"
    fi
    echo "$LLAMA_CPP_PYTHON_SHA256  $tarball" | sha256sum -c --status \
        || { log "sha256 mismatch for $tarball"; exit 1; }
    if [ ! -f "$src_root/.extracted" ]; then
        rm -rf "$src_root"
        tar -xzf "$tarball" -C "$cache/src"
        mv "$cache/src/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION" "$src_root"
        touch "$src_root/.extracted"
    fi
}

# Our patches are applied to a per-build copy so the pristine tree stays reusable (gguf-py, vocab files).
patched_source() {
    local dest="$1"
    rm -rf "$dest"
    mkdir -p "$(dirname "$dest")"
    cp -r "$llama_src" "$dest"
    for p in "$here"/wasm/patches/*.patch; do
        patch -d "$dest" -p1 --quiet < "$p"
    done
}

llama_cmake_flags=(
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF
    -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
)
static_libs() {  # link order: llama, then ggml (registry), cpu backend, base
    echo "$1/src/libllama.a $1/ggml/src/libggml.a $1/ggml/src/libggml-cpu.a $1/ggml/src/libggml-base.a"
}

# --- WebAssembly ---------------------------------------------------------------------------------------------
build_wasm_variant() {
    local variant="$1" dest="$2"
    local work="$cache/work/$input_hash/$variant"
    local start=$SECONDS
    log "building $variant with $emcc_version"
    patched_source "$work/src"

    local cflags="-fwasm-exceptions" link_thread=()
    if [ "$variant" = mt ]; then
        cflags="$cflags -pthread"
        link_thread=(-pthread -sUSE_PTHREADS=1 "-sPTHREAD_POOL_SIZE=$PTHREAD_POOL_SIZE")
    fi
    # Emscripten's toolchain file reports CMAKE_SYSTEM_PROCESSOR=x86; without EMSCRIPTEN_SYSTEM_PROCESSOR ggml
    # silently builds its generic scalar path instead of the WASM SIMD kernels (4-6x slower).
    emcmake cmake -S "$work/src" -B "$work/build" "${llama_cmake_flags[@]}" \
        -DEMSCRIPTEN_SYSTEM_PROCESSOR=wasm32 -DLLAMA_WASM_MEM64=OFF -DLLAMA_BUILD_HTML=OFF \
        -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" > "$work/configure.log" 2>&1 \
        || { cat "$work/configure.log" >&2; exit 1; }
    if ! grep -q "Wasm detected" "$work/configure.log" || grep -q "GGML_CPU_GENERIC" "$work/configure.log"; then
        log "ggml did not pick its WASM SIMD path (see $work/configure.log)"
        exit 1
    fi
    cmake --build "$work/build" --target llama -j "$jobs" > "$work/build.log" 2>&1 \
        || { tail -50 "$work/build.log" >&2; exit 1; }
    if [ -z "$(find "$work/build" -path '*arch/wasm/quants.c.o' -print -quit)" ]; then
        log "ggml-cpu/arch/wasm/quants.c was not compiled in: refusing a scalar build"
        exit 1
    fi

    # 3.1.69 shrank the default stack to 64 KB (long prompts then crash); 3.1.6 calls the setting TOTAL_STACK.
    local stack_flag="-sSTACK_SIZE=5MB"
    case "$emcc_version" in *" 3.1.6 "* | *" 3.1.6") stack_flag="-sTOTAL_STACK=5MB" ;; esac
    local exported="_pr_init,_pr_last_error,_pr_load,_pr_metadata_json,_pr_tokenize,_pr_token_to_piece,_pr_detokenize"
    exported="$exported,_pr_sampler_init,_pr_sampler_configure,_pr_chat_format,_pr_eval_prompt,_pr_reused_tokens"
    exported="$exported,_pr_next_token,_pr_is_eog,_pr_set_threads,_pr_free,_pr_embed,_pr_n_embd"
    exported="$exported,_malloc,_free"

    mkdir -p "$dest"
    em++ -O3 -fwasm-exceptions $cflags -I "$work/src/include" -I "$work/src/ggml/include" \
        -c "$here/wasm/glue.cpp" -o "$work/glue.o"
    # shellcheck disable=SC2046
    em++ -O3 -fwasm-exceptions "$work/glue.o" $(static_libs "$work/build") -o "$dest/pr_glue.js" \
        "${link_thread[@]}" "$stack_flag" \
        -sMODULARIZE=1 -sEXPORT_NAME=createPyRunnerModule -sENVIRONMENT=worker \
        -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=64MB -sMAXIMUM_MEMORY=4GB \
        -sFORCE_FILESYSTEM=1 -lworkerfs.js \
        "-sEXPORTED_FUNCTIONS=$exported" \
        -sEXPORTED_RUNTIME_METHODS=FS,UTF8ToString,stringToUTF8,lengthBytesUTF8,HEAP32,HEAPU8 \
        > "$work/link.log" 2>&1 || { cat "$work/link.log" >&2; exit 1; }
    log "$variant: $(du -h "$dest/pr_glue.wasm" | cut -f1) wasm ($(gzip -c "$dest/pr_glue.wasm" | wc -c) bytes gzipped)," \
        "$((SECONDS - start)) s"
}

# --- native reference ----------------------------------------------------------------------------------------
build_native() {
    local dest="$1"
    local work="$cache/work/$input_hash/native"
    local start=$SECONDS
    log "building native reference with $cxx_version"
    patched_source "$work/src"
    cmake -S "$work/src" -B "$work/build" "${llama_cmake_flags[@]}" > "$work/configure.log" 2>&1 \
        || { cat "$work/configure.log" >&2; exit 1; }
    cmake --build "$work/build" --target llama -j "$jobs" > "$work/build.log" 2>&1 \
        || { tail -50 "$work/build.log" >&2; exit 1; }
    mkdir -p "$dest"
    # shellcheck disable=SC2046
    c++ -O2 -std=c++17 -I "$work/src/include" -I "$work/src/ggml/include" \
        "$here/wasm/glue.cpp" "$here/wasm/native_main.cpp" $(static_libs "$work/build") -lpthread -ldl \
        -o "$dest/pr_native"
    log "native: $((SECONDS - start)) s"
}

# --- main ----------------------------------------------------------------------------------------------------
if [ -z "$emcc_version" ]; then
    log "emcc not found: apt-get install emscripten"
    exit 1
fi
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"   # Debian's emscripten finds its acorn there
# Debian's emscripten ships a frozen cache of system libraries (wasm-exceptions and pthread variants included).

needed=()
for variant in st mt native; do
    if [ -n "$only" ] && [ "$only" != "$variant" ]; then continue; fi
    [ -f "$out/$variant/.done" ] || needed+=("$variant")
done
if [ ${#needed[@]} -gt 0 ]; then
    fetch_source
    for variant in "${needed[@]}"; do
        rm -rf "${out:?}/$variant.tmp"
        if [ "$variant" = native ]; then
            build_native "$out/$variant.tmp"
        else
            build_wasm_variant "$variant" "$out/$variant.tmp"
        fi
        touch "$out/$variant.tmp/.done"
        rm -rf "${out:?}/$variant"
        mv "$out/$variant.tmp" "$out/$variant"
        rm -rf "$cache/work/$input_hash/$variant"
    done
else
    log "up to date: $out"
fi
du -sh "$out"/* >&2
echo "$out"
