/*
 * Baseline micro-kernels for any x86-64 (and other processors): portable C with GCC vector
 * types, which the compiler maps to SSE2 (4 floats) without fused multiply-add.
 *
 * GEMM register tile: C[6 x 8] += A[6 x kc] * B[kc x 8] in 12 four-float accumulators,
 * two loads of B and 6 broadcasts of A per k step.
 */
#include "kernels.h"

#include <string.h>

#define MR 6
#define NR 8

typedef float v4 __attribute__((vector_size(16)));

static v4 load4(const float *p) {
    v4 v;
    memcpy(&v, p, sizeof v); /* compiles to one unaligned load */
    return v;
}

static void gemm_tile(int64_t kc, const float *restrict a, const float *restrict b, float alpha,
                      float beta, float *restrict c, int64_t ldc, int rows, int cols) {
    v4 lo[MR], hi[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) lo[r] = hi[r] = (v4){0, 0, 0, 0};

    for (int64_t p = 0; p < kc; p++) {
        v4 b0 = load4(b), b1 = load4(b + 4);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            v4 ar = (v4){0, 0, 0, 0} + a[r];
            lo[r] += ar * b0;
            hi[r] += ar * b1;
        }
        a += MR;
        b += NR;
    }

    float tile[MR * NR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        memcpy(tile + r * NR, &lo[r], sizeof(v4));
        memcpy(tile + r * NR + 4, &hi[r], sizeof(v4));
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float v = alpha * tile[r * NR + j];
            c[r * ldc + j] = beta == 0.0f ? v : v + beta * c[r * ldc + j];
        }
}

static void pack_transposed(int64_t kc, int rows, int width, const float *restrict src, int64_t ld,
                            float *restrict dst) {
    for (int64_t p = 0; p < kc; p++) {
        for (int r = 0; r < rows; r++) dst[p * width + r] = src[r * ld + p];
        for (int r = rows; r < width; r++) dst[p * width + r] = 0.0f;
    }
}

/* 12 independent four-float chains x <- x * s + t: a multiply and a dependent add each, so
 * 12 chains are needed to keep two multipliers and two adders busy through ~6 cycles. */
#define FMA_CHAINS 12

static float fma_loop(int64_t iterations) {
    v4 acc[FMA_CHAINS];
    v4 s = (v4){0, 0, 0, 0} + 0.999999f, t = (v4){0, 0, 0, 0} + 1e-6f;
#pragma GCC unroll 16
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = (v4){0, 0, 0, 0} + (float)i;
    for (int64_t it = 0; it < iterations; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = acc[i] * s + t;
    }
    v4 sum = acc[0];
#pragma GCC unroll 16
    for (int i = 1; i < FMA_CHAINS; i++) sum += acc[i];
    return sum[0] + sum[1] + sum[2] + sum[3];
}

static void stream_copy(float *dst, const float *src, int64_t count) {
    memcpy(dst, src, (size_t)count * sizeof(float)); /* libc uses streaming stores for large copies */
}

const ambient_cpu_kernels ambient_cpu_kernels_scalar = {
    .name = "scalar",
    .mr = MR,
    .nr = NR,
    .mc = MR * 32,
    .kc = 512,
    .nc = NR * 256,
    .gemm_tile = gemm_tile,
    .pack_transposed = pack_transposed,
    .fma_loop = fma_loop,
    .fma_flops_per_iteration = 2 * 4 * FMA_CHAINS,
    .stream_copy = stream_copy,
};
