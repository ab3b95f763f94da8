// wasm/patches/0006's four-row mat-vec kernels (ggml-cpu/arch/wasm/quants.c, pr_vec_dot_*_x4) against the one-row
// kernels they stand in for: bit-identical results on random blocks, and the time of each (1,000 calls, best of 5) as a figure
// to read (not judged; ggml-cpu.c's choice between them is the parity tests' to check).
// Linked with the patched quants.c alone; what it calls nothing of is left unresolved (-sERROR_ON_UNDEFINED_SYMBOLS=0).
// Compiled with emcc and run by node: tests/kernels/test_wasm_kernels.py.
#define GGML_COMMON_DECL_C
#include "ggml-common.h"
#include "ggml-impl.h"
#include "simd-mappings.h"
#include "quants.h"

#include <emscripten.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

float ggml_table_f32_f16[1 << 16];  // ggml-cpu.c's, filled as ggml_cpu_init fills it

#define ROWS 64
static uint32_t state = 12345;
static uint32_t next(void) { state = state * 1664525u + 1013904223u; return state >> 8; }
static int8_t next_q8(void) { return (int8_t) ((int) (next() % 255) - 127); }
static ggml_fp16_t next_scale(float unit) { return GGML_FP32_TO_FP16(unit * (1 + next() % 100)); }

typedef void (*one_row_t)(int, float *, size_t, const void *, size_t, const void *, size_t, int);
static long mismatches = 0;

static void compare(const char * name, int n, one_row_t one, pr_vec_dot_x4_t four, const void * x, size_t bx,
                    const void * y) {
    float by_one[ROWS], by_four[ROWS];
    double t_one = 1e9, t_four = 1e9;
    for (int round = 0; round < 5; ++round) {
        double t0 = emscripten_get_now();
        for (int it = 0; it < 1000; ++it) {
            for (int r = 0; r < ROWS; ++r) one(n, &by_one[r], 0, (const char *) x + r * bx, 0, y, 0, 1);
        }
        double t1 = emscripten_get_now();
        for (int it = 0; it < 1000; ++it) {
            for (int r = 0; r + 4 <= ROWS; r += 4) four(n, &by_four[r], (const char *) x + r * bx, bx, y);
        }
        double t2 = emscripten_get_now();
        t_one = t1 - t0 < t_one ? t1 - t0 : t_one;
        t_four = t2 - t1 < t_four ? t2 - t1 : t_four;
    }
    const int same = memcmp(by_one, by_four, sizeof by_one) == 0;
    mismatches += !same;
    printf("%s n=%d: one row %.2f ms, four rows %.2f ms (%.2fx), %s\n", name, n, t_one, t_four, t_one / t_four,
           same ? "identical" : "DIFFERENT");
}

int main(void) {
    for (int i = 0; i < (1 << 16); ++i) ggml_table_f32_f16[i] = ggml_compute_fp16_to_fp32((ggml_fp16_t) i);
    {
        const int n = 576, nb = n / QK8_1;
        block_q4_1 * x = malloc(sizeof(block_q4_1) * nb * ROWS);
        block_q8_1 * y = malloc(sizeof(block_q8_1) * nb);
        for (int i = 0; i < nb * ROWS; ++i) {
            x[i].d = next_scale(0.001f);
            x[i].m = next_scale(-0.001f);
            for (int k = 0; k < QK4_1 / 2; ++k) x[i].qs[k] = next();
        }
        for (int i = 0; i < nb; ++i) {
            y[i].d = next_scale(0.01f);
            y[i].s = next_scale(0.5f);
            for (int k = 0; k < QK8_1; ++k) y[i].qs[k] = next_q8();
        }
        compare("q4_1", n, ggml_vec_dot_q4_1_q8_1, pr_vec_dot_q4_1_q8_1_x4, x, sizeof(block_q4_1) * nb, y);
    }
    {
        const int n = 576, nb = n / QK8_0;
        block_q8_0 * x = malloc(sizeof(block_q8_0) * nb * ROWS);
        block_q8_0 * y = malloc(sizeof(block_q8_0) * nb);
        for (int i = 0; i < nb * ROWS; ++i) {
            x[i].d = next_scale(0.001f);
            for (int k = 0; k < QK8_0; ++k) x[i].qs[k] = next_q8();
        }
        for (int i = 0; i < nb; ++i) {
            y[i].d = next_scale(0.01f);
            for (int k = 0; k < QK8_0; ++k) y[i].qs[k] = next_q8();
        }
        compare("q8_0", n, ggml_vec_dot_q8_0_q8_0, pr_vec_dot_q8_0_q8_0_x4, x, sizeof(block_q8_0) * nb, y);
    }
#if !defined(__wasm_relaxed_simd__)
    {
        const int n = 1536, nb = n / QK_K;
        block_q4_K * x = malloc(sizeof(block_q4_K) * nb * ROWS);
        block_q8_K * y = malloc(sizeof(block_q8_K) * nb);
        for (int i = 0; i < nb * ROWS; ++i) {
            x[i].d = next_scale(0.001f);
            x[i].dmin = next_scale(0.001f);
            for (int k = 0; k < QK_K / 2; ++k) x[i].qs[k] = next();
            for (int k = 0; k < 12; ++k) x[i].scales[k] = next();
        }
        for (int i = 0; i < nb; ++i) {
            y[i].d = 0.01f * (1 + next() % 100);
            for (int k = 0; k < QK_K; ++k) y[i].qs[k] = next_q8();
            for (int k = 0; k < QK_K / 16; ++k) {
                int sum = 0;
                for (int l = 0; l < 16; ++l) sum += y[i].qs[k * 16 + l];
                y[i].bsums[k] = (int16_t) sum;
            }
        }
        compare("q4_K", n, ggml_vec_dot_q4_K_q8_K, pr_vec_dot_q4_K_q8_K_x4, x, sizeof(block_q4_K) * nb, y);
    }
#endif
    printf("%ld mismatches\n", mismatches);
    return mismatches != 0;
}
