/*
 * AVX2 + FMA micro-kernels (this file alone is compiled with -mavx2 -mfma; the dispatcher
 * only calls it on processors that report both).
 *
 * GEMM register tile: C[6 x 16] += A[6 x kc] * B[kc x 16] with 12 ymm accumulators
 * (6 rows x two 8-float halves), two ymm loads of B and 6 broadcasts of A per k step:
 * 12 independent FMA chains cover 2 FMA units x 4-5 cycles latency; 12 + 2 + 1 of the 16
 * ymm registers.
 */
#include "kernels.h"

#include <immintrin.h>

#define MR 6
#define NR 16

static void gemm_tile(int64_t kc, const float *restrict a, const float *restrict b, float alpha,
                      float beta, float *restrict c, int64_t ldc, int rows, int cols) {
    __m256 lo[MR], hi[MR];
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm256_setzero_ps();
    /* C is needed only after the k loop: start fetching it now so that its cache misses
     * overlap the arithmetic. */
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + cols - 1), _MM_HINT_T0);
    }

    for (int64_t p = 0; p < kc; p++) {
        __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 8
        for (int r = 0; r < MR; r++) {
            __m256 ar = _mm256_broadcast_ss(a + r);
            lo[r] = _mm256_fmadd_ps(ar, b0, lo[r]);
            hi[r] = _mm256_fmadd_ps(ar, b1, hi[r]);
        }
        a += MR;
        b += NR;
    }

    __m256 va = _mm256_set1_ps(alpha);
    if (rows == MR && cols == NR) {
        if (beta == 0.0f) {
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                _mm256_storeu_ps(c + r * ldc, _mm256_mul_ps(va, lo[r]));
                _mm256_storeu_ps(c + r * ldc + 8, _mm256_mul_ps(va, hi[r]));
            }
        } else {
            __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
            for (int r = 0; r < MR; r++) {
                float *cr = c + r * ldc;
                _mm256_storeu_ps(cr, _mm256_fmadd_ps(va, lo[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr))));
                _mm256_storeu_ps(cr + 8, _mm256_fmadd_ps(va, hi[r], _mm256_mul_ps(vb, _mm256_loadu_ps(cr + 8))));
            }
        }
        return;
    }

    /* Edge tile: write the accumulators out and update only the part inside C. */
    float tile[MR * NR] __attribute__((aligned(32)));
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
        _mm256_store_ps(tile + r * NR, lo[r]);
        _mm256_store_ps(tile + r * NR + 8, hi[r]);
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float v = alpha * tile[r * NR + j];
            c[r * ldc + j] = beta == 0.0f ? v : v + beta * c[r * ldc + j];
        }
}

/* In-register transpose of an 8 x 8 block: v[r] lane p becomes v[p] lane r. Pairs of rows
 * are interleaved by floats, then by float pairs, which leaves within each 128-bit half h
 * of b[4i + c] the column 4h + c of rows 4i..4i+3; swapping halves finishes the job. */
static void transpose8(__m256 v[8]) {
    __m256 a[8], b[8];
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        a[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        a[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
#pragma GCC unroll 2
    for (int i = 0; i < 2; i++) {
        __m256d lo0 = _mm256_castps_pd(a[4 * i]), lo1 = _mm256_castps_pd(a[4 * i + 2]);
        __m256d hi0 = _mm256_castps_pd(a[4 * i + 1]), hi1 = _mm256_castps_pd(a[4 * i + 3]);
        b[4 * i] = _mm256_castpd_ps(_mm256_unpacklo_pd(lo0, lo1));
        b[4 * i + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(lo0, lo1));
        b[4 * i + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(hi0, hi1));
        b[4 * i + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(hi0, hi1));
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        v[c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x20);
        v[4 + c] = _mm256_permute2f128_ps(b[c], b[4 + c], 0x31);
    }
}

/* Lane i of the result is all ones for i < n: the mask of the first n floats. */
static __m256i first_lanes(int n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Groups of 8 rows x 8 k steps: masked loads (missing rows and k steps read as 0), one
 * transpose, masked stores of the group's part of each k step. */
static void pack_transposed(int64_t kc, int rows, int width, const float *restrict src, int64_t ld,
                            float *restrict dst) {
    for (int r0 = 0; r0 < width; r0 += 8) {
        int group_rows = rows - r0 < 0 ? 0 : rows - r0 < 8 ? rows - r0 : 8;
        __m256i store_mask = first_lanes(width - r0);
        for (int64_t p0 = 0; p0 < kc; p0 += 8) {
            int steps = kc - p0 < 8 ? (int)(kc - p0) : 8;
            __m256i load_mask = first_lanes(steps);
            __m256 v[8];
#pragma GCC unroll 8
            for (int r = 0; r < 8; r++)
                v[r] = r < group_rows ? _mm256_maskload_ps(src + (int64_t)(r0 + r) * ld + p0, load_mask)
                                      : _mm256_setzero_ps();
            transpose8(v);
#pragma GCC unroll 8
            for (int p = 0; p < 8; p++)
                if (p < steps) _mm256_maskstore_ps(dst + (p0 + p) * width + r0, store_mask, v[p]);
        }
    }
}

/* 12 independent ymm chains x <- x * s + t (s < 1 keeps the values bounded); with s and t
 * that is 14 of the 16 registers, so nothing spills. */
#define FMA_CHAINS 12

static float fma_loop(int64_t iterations) {
    __m256 acc[FMA_CHAINS];
    __m256 s = _mm256_set1_ps(0.999999f), t = _mm256_set1_ps(1e-6f);
#pragma GCC unroll 16
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm256_set1_ps((float)i);
    for (int64_t it = 0; it < iterations; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm256_fmadd_ps(acc[i], s, t);
    }
    __m256 sum = acc[0];
#pragma GCC unroll 16
    for (int i = 1; i < FMA_CHAINS; i++) sum = _mm256_add_ps(sum, acc[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    return lanes[0] + lanes[1] + lanes[2] + lanes[3] + lanes[4] + lanes[5] + lanes[6] + lanes[7];
}

static void stream_copy(float *dst, const float *src, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) {
        __m256 x0 = _mm256_load_ps(src + i), x1 = _mm256_load_ps(src + i + 8);
        _mm256_stream_ps(dst + i, x0);
        _mm256_stream_ps(dst + i + 8, x1);
    }
    _mm_sfence(); /* streaming stores are weakly ordered */
}

const ambient_cpu_kernels ambient_cpu_kernels_avx2 = {
    .name = "avx2",
    .mr = MR,
    .nr = NR,
    .mc = MR * 32,
    .kc = 512,
    .nc = NR * 256,
    .gemm_tile = gemm_tile,
    .pack_transposed = pack_transposed,
    .fma_loop = fma_loop,
    .fma_flops_per_iteration = 2 * 8 * FMA_CHAINS,
    .stream_copy = stream_copy,
};
