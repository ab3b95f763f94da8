#!/usr/bin/env bash
# Build llama.cpp + our glue (wasm/) five ways:
#   st/          WebAssembly SIMD128, single thread   (pr_glue.js + pr_glue.wasm)
#   mt/          WebAssembly SIMD128, pthreads        (pr_glue.js + pr_glue.wasm + pr_glue.worker.js)
#   st-relaxed/  the same with relaxed SIMD (wasm/patches' relaxed kernels), compiled by clang 19: the bridge
#   mt-relaxed/  picks these where WebAssembly.validate accepts a relaxed-SIMD module (not WebKit)
#   native/      the same glue natively: pr_native, the reference for parity tests and benchmarks
# Inputs are pinned; outputs are cached under $PY_RUNNER_CACHE (default ~/.cache/py_runner) in two levels:
#   libs/<lib hash>/      the patched llama.cpp tree and its static libraries per variant; <lib hash> covers the
#                         pinned source, our patches, the toolchains and the recipe between the "libraries" markers
#   builds/<hash>/        the linked outputs; <hash> covers every input (the libraries, glue, this script)
# An unchanged input set is never rebuilt, and a change to the glue alone only recompiles the glue and links.
#
#   bash build_wasm.sh               build what is missing, print the build folder
#   bash build_wasm.sh --print-dir   print the build folder for the current inputs, build nothing
#   bash build_wasm.sh --print-libs-dir   the same for the llama.cpp libraries (scripts/native_isa_variant.sh)
#   bash build_wasm.sh --patched-source   fetch and patch the llama.cpp source if needed, print its folder
#                                         (tests/kernels compile our kernel patches' checks against it)
#   bash build_wasm.sh --only st|mt|st-relaxed|mt-relaxed|native
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The pthread workers started with the module; web/shared/protocol.js is its one home (the worker caps n_threads at it:
# ggml must never wait for a pthread worker that is not there).
PTHREAD_POOL_SIZE="$(sed -n 's/.*"pthread_pool_size": *\([0-9][0-9]*\).*/\1/p' "$here/web/shared/protocol.js")"
[ -n "$PTHREAD_POOL_SIZE" ] || { echo "build_wasm.sh: no pthread_pool_size in web/shared/protocol.js" >&2; exit 1; }
cache="${PY_RUNNER_CACHE:-$HOME/.cache/py_runner}"
# Builds may live apart from the downloads: CI fetches every input into an empty cache on every run but keeps
# the builds, which are reused only when every input, fetched afresh and verified, hashes the same.
build_cache="${PY_RUNNER_BUILD_CACHE:-$cache}"
assets() { PYTHONPATH="$here${PYTHONPATH:+:$PYTHONPATH}" "${PYTHON:-python3}" -m py_runner.host.build.assets "$@"; }
# The pinned llama.cpp source (py_runner/host/build/pins.py): the llama-cpp-python sdist, fetched by pip.
read -r LLAMA_CPP_PYTHON_VERSION LLAMA_CPP_PYTHON_SHA256 < <(assets pin llama-cpp-python)
jobs="$(nproc 2>/dev/null || echo 2)"

print_only=0
only=""
while [ $# -gt 0 ]; do
    case "$1" in
        --print-dir) print_only=1 ;;
        --print-libs-dir) print_only=libs ;;
        --patched-source) print_only=source ;;
        --only) only="$2"; shift ;;
        *) echo "usage: $0 [--print-dir | --print-libs-dir | --patched-source] [--only st|mt|st-relaxed|mt-relaxed|native]" >&2; exit 2 ;;
    esac
    shift
done

log() { echo "[build_wasm] $*" >&2; }

# --- the input hashes ------------------------------------------------------------------------------------------
first_line() { "$@" 2>/dev/null | sed -n 1p || true; }   # sed reads all: no SIGPIPE, a stable answer
emcc_version="$(first_line emcc --version)"
cxx_version="$(first_line c++ --version)"
# The relaxed-SIMD variants: Debian's emscripten 3.1.6 driving Debian 12's clang 19 and lld 19 (apt clang-19
# lld-19), whose WebAssembly backend emits the standard relaxed-SIMD opcodes (clang 14's are pre-standard).
# Emscripten calls its tools `clang-14`, `wasm-ld-14`, ... under LLVM_ROOT: a folder of links by those names to
# LLVM 19's tools, named by EM_LLVM_ROOT for those variants only. Emscripten's system libraries stay the ones
# Debian built with clang 14 (object files of either compiler link together).
LLVM19_BIN=/usr/lib/llvm-19/bin
relaxed_clang_version="$(first_line "$LLVM19_BIN/clang" --version)"
lib_recipe() { sed -n '/^# --- llama.cpp libraries ---/,/^# --- end of llama.cpp libraries ---/p' "$here/build_wasm.sh"; }
lib_hash="$(
    {
        echo "$LLAMA_CPP_PYTHON_VERSION $LLAMA_CPP_PYTHON_SHA256"
        echo "$emcc_version"
        echo "$cxx_version"
        echo "$relaxed_clang_version"
        lib_recipe
        find "$here/wasm/patches" -type f | LC_ALL=C sort | xargs cat
    } | sha256sum | cut -c1-16
)"
input_hash="$(
    {
        echo "$lib_hash $PTHREAD_POOL_SIZE"
        cat "$here/build_wasm.sh"
        find "$here/wasm" -type f | LC_ALL=C sort | xargs cat
    } | sha256sum | cut -c1-16
)"
out="$build_cache/builds/$input_hash"
if [ "$print_only" = 1 ]; then
    echo "$out"
    exit 0
elif [ "$print_only" = libs ]; then
    echo "$build_cache/libs/$lib_hash"
    exit 0
fi

# --- the pinned llama.cpp source -----------------------------------------------------------------------------
llama_src=""
fetch_source() {   # the sdist's vendor/llama.cpp, fetched by pip, verified against its pin and unpacked
    llama_src="$(assets fetch llama-cpp-python)"
}

# --- llama.cpp libraries ---
libs="$build_cache/libs/$lib_hash"
patched="$libs/src"   # the pinned tree with wasm/patches applied, shared by every variant (headers, common/)

patch_source() {
    [ -f "$patched/.done" ] && return
    rm -rf "$patched"
    mkdir -p "$libs"
    cp -r "$llama_src" "$patched"
    for p in "$here"/wasm/patches/*.patch; do
        patch -d "$patched" -p1 --quiet < "$p"
    done
    touch "$patched/.done"
}

llama_cmake_flags=(
    -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DGGML_OPENMP=OFF
    -DLLAMA_BUILD_COMMON=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF
)

variant_cflags() {  # the compile flags of a variant's C and C++ code, libraries and glue alike
    case "$1" in
        st) echo "-fwasm-exceptions" ;;
        mt) echo "-fwasm-exceptions -pthread" ;;
        st-relaxed) echo "-fwasm-exceptions -mrelaxed-simd" ;;
        mt-relaxed) echo "-fwasm-exceptions -pthread -mrelaxed-simd" ;;
        native) echo "" ;;
    esac
}

# The relaxed variants' toolchain (see LLVM19_BIN): exports EM_LLVM_ROOT for them, unsets it for the others.
use_toolchain() {
    case "$1" in
        *-relaxed)
            local dir="$build_cache/toolchains/llvm19-as-14" tool
            if [ ! -x "$LLVM19_BIN/clang" ] || [ ! -x "$LLVM19_BIN/wasm-ld" ]; then
                log "clang 19 and lld 19 are missing (apt-get install clang-19 lld-19): needed for $1"
                exit 1
            fi
            mkdir -p "$dir"
            for tool in clang clang++ wasm-ld llvm-ar llvm-nm llvm-ranlib llvm-objcopy llvm-dwarfdump opt llc; do
                ln -sfn "$LLVM19_BIN/$tool" "$dir/$tool-14"
            done
            export EM_LLVM_ROOT="$dir"
            ;;
        *) unset EM_LLVM_ROOT ;;
    esac
}

# The static libraries of one variant in $libs/<variant>/build (kept: a glue change does not rebuild them).
build_libs() {
    local variant="$1" dir="$libs/$1"
    [ -f "$dir/.done" ] && return
    local start=$SECONDS cflags
    cflags="$(variant_cflags "$variant")"
    use_toolchain "$variant"
    rm -rf "$dir"
    mkdir -p "$dir"
    log "building llama.cpp libraries ($variant)"
    if [ "$variant" = native ]; then
        # GGML_NATIVE, but no AMX: a CPU may list AMX while its hypervisor has not enabled the tile state (this
        # kind of VM: ldtilecfg faults, pr_native died on every quantized prompt); the reference is AVX-512.
        local no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
        cmake -S "$patched" -B "$dir/build" "${llama_cmake_flags[@]}" \
            -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" > "$dir/configure.log" 2>&1 \
            || { cat "$dir/configure.log" >&2; exit 1; }
    else
        # Emscripten's toolchain file reports CMAKE_SYSTEM_PROCESSOR=x86; without EMSCRIPTEN_SYSTEM_PROCESSOR
        # ggml silently builds its generic scalar path instead of the WASM SIMD kernels (4-6x slower).
        emcmake cmake -S "$patched" -B "$dir/build" "${llama_cmake_flags[@]}" \
            -DEMSCRIPTEN_SYSTEM_PROCESSOR=wasm32 -DLLAMA_WASM_MEM64=OFF -DLLAMA_BUILD_HTML=OFF \
            -DCMAKE_C_FLAGS="$cflags" -DCMAKE_CXX_FLAGS="$cflags" > "$dir/configure.log" 2>&1 \
            || { cat "$dir/configure.log" >&2; exit 1; }
        if ! grep -q "Wasm detected" "$dir/configure.log" || grep -q "GGML_CPU_GENERIC" "$dir/configure.log"; then
            log "ggml did not pick its WASM SIMD path (see $dir/configure.log)"
            exit 1
        fi
    fi
    cmake --build "$dir/build" --target llama -j "$jobs" > "$dir/build.log" 2>&1 \
        || { tail -50 "$dir/build.log" >&2; exit 1; }
    if [ "$variant" != native ] && [ -z "$(find "$dir/build" -path '*arch/wasm/quants.c.o' -print -quit)" ]; then
        log "ggml-cpu/arch/wasm/quants.c was not compiled in: refusing a scalar build"
        exit 1
    fi
    touch "$dir/.done"
    log "llama.cpp libraries ($variant): $((SECONDS - start)) s"
}
# --- end of llama.cpp libraries ---

static_libs() {  # link order: llama, then ggml (registry), cpu backend, base
    local b="$libs/$1/build"
    echo "$b/src/libllama.a $b/ggml/src/libggml.a $b/ggml/src/libggml-cpu.a $b/ggml/src/libggml-base.a"
}

# Our glue and the parts of llama.cpp's common/ it uses (the Jinja engine for chat templates, its JSON wrapper),
# compiled for one variant into $work; prints the object files.
# llama.cpp's common/ code the glue uses: the Jinja engine, and the chat layer its server uses (templates with tools,
# tool-call parsing: chat*.cpp, peg-parser.cpp, parsers/) with what that needs of common.cpp. log.cpp is left out:
# its logger starts a thread, which the st build has not; wasm/common_log.cpp logs to stderr instead.
common_sources=(jinja/caps.cpp jinja/lexer.cpp jinja/parser.cpp jinja/runtime.cpp jinja/string.cpp jinja/value.cpp
                json.cpp unicode.cpp chat.cpp chat-auto-parser-generator.cpp chat-auto-parser-helpers.cpp
                chat-diff-analyzer.cpp chat-peg-parser.cpp peg-parser.cpp json-schema-to-grammar.cpp json-schema.cpp
                trie.cpp common.cpp sampling.cpp speculative.cpp fit.cpp ngram-cache.cpp ngram-map.cpp ngram-mod.cpp
                reasoning-budget.cpp)
# Our glue (wasm/, the C ABI of glue.h; wasm/README.md says which file does what). Object files are named after
# their source's basename: no name here may be one of common_sources'.
glue_sources=(glue_session.cpp glue_generate.cpp glue_tokens.cpp glue_state.cpp glue_chat.cpp common_log.cpp)
compile_glue() {
    local variant="$1" work="$2" cxx=em++ opt=-O3
    local includes=(-I "$patched/include" -I "$patched/ggml/include" -I "$patched/common" -I "$patched/vendor")
    [ "$variant" = native ] && cxx=c++ && opt=-O2
    mkdir -p "$work"
    local sources=() f
    for f in "${glue_sources[@]}"; do sources+=("$here/wasm/$f"); done
    for f in "${common_sources[@]}"; do sources+=("$patched/common/$f"); done
    for f in "$patched"/common/parsers/*.cpp; do sources+=("$f"); done
    # common.cpp wants build-info.cpp, which llama.cpp's CMake writes from its template: the same, here.
    sed -e 's/@LLAMA_BUILD_NUMBER@/0/' -e "s/@LLAMA_BUILD_COMMIT@/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION/" \
        -e "s/@BUILD_COMPILER@/$cxx/" -e "s/@BUILD_TARGET@/$variant/" "$patched/common/build-info.cpp.in" \
        > "$work/build-info.cpp"
    sources+=("$work/build-info.cpp")
    # shellcheck disable=SC2046
    # Compiler output goes to a log (llama.cpp's common/ warns about 32-bit size_t): shown only on failure.
    printf '%s\n' "${sources[@]}" | xargs -P "$jobs" -I{} sh -c \
        "$cxx -std=c++17 $opt $(variant_cflags "$variant") ${includes[*]} -c {} -o $work/\$(basename {} .cpp).o" \
        > "$work/compile.log" 2>&1 || { cat "$work/compile.log" >&2; log "compiling the glue ($variant) failed"; exit 1; }
    for f in "${sources[@]}"; do echo "$work/$(basename "$f" .cpp).o"; done
}

# --- WebAssembly ---------------------------------------------------------------------------------------------
exported_functions() {  # every PR_API function of glue.h, plus malloc/free for the worker's buffers
    sed -nE 's/^PR_API .*[ *](pr_[a-z_]+)\(.*/_\1/p' "$here/wasm/glue.h" | grep -v '^_pr_quantize$' | tr '\n' ','
    echo "_malloc,_free"
}

# Typed C++ exceptions in the mt build. With wasm exceptions, the code clang generates for a catch clause tells
# the personality function which clause it is through the global __wasm_lpad_context. Emscripten's libunwind
# defines it thread_local when built with threads, but clang < 15 addresses it as a plain global: with -pthread
# the two disagree, no `catch (const std::out_of_range &)` ever matches, and every exception falls through to
# `catch (...)`, including the ones llama.cpp catches itself while loading some vocabularies (Command-R's). The
# fix (LLVM 15 made the compiler use TLS) is matched here: the same libunwind source with a plain global, linked
# ahead of the system's. Exceptions are only thrown on the calling thread (loading, tokenizing), never by the
# compute threads, so one slot is enough. Prints the object to link, or nothing when the compiler is fixed.
lpad_context_fix() {
    local work="$1" major
    major="$(em++ -dM -E -x c++ /dev/null | sed -n 's/^#define __clang_major__ //p')"
    [ "${major:-0}" -ge 15 ] && return
    local root src="system/lib/libunwind/src/Unwind-wasm.c"
    root="$(em-config EMSCRIPTEN_ROOT)"
    grep -q '^thread_local struct _Unwind_LandingPadContext __wasm_lpad_context;' "$root/$src" \
        || { log "cannot apply the __wasm_lpad_context fix: $root/$src has changed"; exit 1; }
    sed 's/^thread_local struct _Unwind_LandingPadContext __wasm_lpad_context;/struct _Unwind_LandingPadContext __wasm_lpad_context;/' \
        "$root/$src" > "$work/unwind_wasm_lpad.c"
    emcc -Oz -pthread -fwasm-exceptions -D_LIBUNWIND_DISABLE_VISIBILITY_ANNOTATIONS -DNDEBUG -D__USING_WASM_EXCEPTIONS__ \
        -I "$root/system/lib/libunwind/include" -I "$root/system/lib/libunwind/src" \
        -c "$work/unwind_wasm_lpad.c" -o "$work/unwind_wasm_lpad.o" >&2
    echo "$work/unwind_wasm_lpad.o"
}

build_wasm_variant() {
    local variant="$1" dest="$2"
    local work="$build_cache/work/$input_hash/$variant"
    local start=$SECONDS
    use_toolchain "$variant"
    log "linking $variant with $emcc_version${EM_LLVM_ROOT:+ and $relaxed_clang_version}"
    local link_thread=()
    if [ "${variant%-relaxed}" = mt ]; then
        link_thread=(-pthread -sUSE_PTHREADS=1 "-sPTHREAD_POOL_SIZE=$PTHREAD_POOL_SIZE")
    fi
    local objects
    objects="$(compile_glue "$variant" "$work")"
    if [ "${variant%-relaxed}" = mt ]; then
        objects="$objects $(lpad_context_fix "$work")"
    fi

    # 3.1.69 shrank the default stack to 64 KB (long prompts then crash); 3.1.6 calls the setting TOTAL_STACK.
    local stack_flag="-sSTACK_SIZE=5MB"
    case "$emcc_version" in *" 3.1.6 "* | *" 3.1.6") stack_flag="-sTOTAL_STACK=5MB" ;; esac

    mkdir -p "$dest"
    # The heap grows by exactly what an allocation needs (MEMORY_GROWTH_GEOMETRIC_STEP=0), not by 20 % of itself:
    # a model's buffers are allocated once, at load, and a wasm heap never shrinks, so the default's overshoot
    # stayed for good (SmolLM2: 1.41x what llama.cpp allocated). Growing in place costs no copy.
    # shellcheck disable=SC2046,SC2086
    em++ -O3 $(variant_cflags "$variant") $objects $(static_libs "$variant") -o "$dest/pr_glue.js" \
        "${link_thread[@]}" "$stack_flag" \
        -sMODULARIZE=1 -sEXPORT_NAME=createPyRunnerModule -sENVIRONMENT=worker \
        -sALLOW_MEMORY_GROWTH=1 -sINITIAL_MEMORY=64MB -sMAXIMUM_MEMORY=4GB -sMEMORY_GROWTH_GEOMETRIC_STEP=0 \
        -sFORCE_FILESYSTEM=1 -lworkerfs.js \
        "-sEXPORTED_FUNCTIONS=$(exported_functions)" \
        -sEXPORTED_RUNTIME_METHODS=FS,UTF8ToString,stringToUTF8,lengthBytesUTF8,HEAP32,HEAPU8 \
        > "$work/link.log" 2>&1 || { cat "$work/link.log" >&2; exit 1; }
    log "$variant: $(du -h "$dest/pr_glue.wasm" | cut -f1) wasm ($(gzip -c "$dest/pr_glue.wasm" | wc -c) bytes gzipped)," \
        "$((SECONDS - start)) s"
}

# --- native reference ----------------------------------------------------------------------------------------
build_native() {
    local dest="$1"
    local work="$build_cache/work/$input_hash/native"
    local start=$SECONDS
    log "linking native reference with $cxx_version"
    local objects
    objects="$(compile_glue native "$work")"
    c++ -O2 -std=c++17 -I "$patched/include" -I "$patched/ggml/include" -c "$here/wasm/native_main.cpp" \
        -o "$work/native_main.o"
    mkdir -p "$dest"
    # shellcheck disable=SC2046,SC2086
    c++ $objects "$work/native_main.o" $(static_libs native) -lpthread -ldl -o "$dest/pr_native"
    log "native: $((SECONDS - start)) s"
}

# --- main ----------------------------------------------------------------------------------------------------
if [ -z "$emcc_version" ]; then
    log "emcc not found: apt-get install emscripten"
    exit 1
fi
if [ "$print_only" = source ]; then
    fetch_source
    patch_source
    echo "$patched"
    exit 0
fi
export NODE_PATH="${NODE_PATH:-/usr/share/nodejs}"   # Debian's emscripten finds its acorn there
# Debian's emscripten ships a frozen cache of system libraries (wasm-exceptions and pthread variants included).

needed=()
for variant in st mt st-relaxed mt-relaxed native; do
    if [ -n "$only" ] && [ "$only" != "$variant" ]; then continue; fi
    [ -f "$out/$variant/.done" ] || needed+=("$variant")
done
if [ ${#needed[@]} -gt 0 ]; then
    fetch_source
    patch_source
    for variant in "${needed[@]}"; do
        build_libs "$variant"
        rm -rf "${out:?}/$variant.tmp"
        if [ "$variant" = native ]; then
            build_native "$out/$variant.tmp"
        else
            build_wasm_variant "$variant" "$out/$variant.tmp"
        fi
        touch "$out/$variant.tmp/.done"
        rm -rf "${out:?}/$variant"
        mv "$out/$variant.tmp" "$out/$variant"
        rm -rf "$build_cache/work/$input_hash/$variant"
    done
else
    log "up to date: $out"
fi
du -sh "$out"/* >&2
echo "$out"
