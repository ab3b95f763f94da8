// wasm/patches/0005's vectorised F32 -> F16 store (ggml-cpu/simd-mappings.h, __wasm_f16x4_store) against ggml's
// scalar conversion (ggml-impl.h): floats from 0 to 2^32 in steps of STEP (each step checks four consecutive bit
// patterns; -DSTEP=4 checks them all) plus the edge cases a sampling could miss.
// STEP is a compile-time constant, not an argument: emscripten 3.1.6's libc does not call a main(argc, argv)
// compiled by clang 19 (which names it __main_argc_argv).
// Compiled with emcc against the patched llama.cpp tree and run by node: tests/kernels/test_wasm_kernels.py.
#include "ggml-impl.h"
#include "simd-mappings.h"

#include <stdio.h>

#ifndef STEP
#define STEP 4
#endif

static long mismatches = 0;

static void check_floats(const uint32_t bits[4]) {
    float in[4];
    for (int k = 0; k < 4; ++k) in[k] = fp32_from_bits(bits[k]);
    ggml_fp16_t out[4] = {0};
    __wasm_f16x4_store(out, wasm_v128_load(in));
    for (int k = 0; k < 4; ++k) {
        const ggml_fp16_t want = ggml_compute_fp32_to_fp16(in[k]);
        if (out[k] != want && mismatches++ < 10) printf("f32 %08x -> %04x, scalar %04x\n", bits[k], out[k], want);
    }
}

int main(void) {
    uint64_t floats = 0;
    for (uint64_t w = 0; w < (1ull << 32); w += STEP, floats += 4) {
        const uint32_t bits[4] = {(uint32_t) w, (uint32_t) w + 1, (uint32_t) w + 2, (uint32_t) w + 3};
        check_floats(bits);
    }
    // zeros, the subnormal/normal and overflow boundaries of both formats, rounding ties, infinities, NaNs
    const uint32_t edges[][4] = {
        {0x00000000, 0x80000000, 0x00000001, 0x807fffff},  {0x33000000, 0x33000001, 0x387fc000, 0x387fe000},
        {0x38800000, 0x477fe000, 0x477ff000, 0x477fefff},  {0x7f800000, 0xff800000, 0x7fc00000, 0xffffffff},
        {0x3f801000, 0x3f803000, 0x3f800fff, 0x3f802fff},
    };
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; ++i, floats += 4) check_floats(edges[i]);
    printf("checked %llu floats: %ld mismatches\n", (unsigned long long) floats, mismatches);
    return mismatches != 0;
}
