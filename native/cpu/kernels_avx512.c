/*
 * AVX-512 micro-kernels (this file alone is compiled with -mavx512f/vl/dq/bw -mfma; the
 * dispatcher only calls it on processors that report those).
 *
 * GEMM register tile: C[14 x 32] += A[14 x kc] * B[kc x 32] with 28 zmm accumulators
 * (14 rows x two 16-float halves), two zmm loads of B and 14 broadcasts of A per k step:
 * 28 FMAs per 16 loads, and 28 independent chains hide the 4-cycle FMA latency even where
 * zmm FMAs are split in two 256-bit halves (Zen 4). 28 + 2 + 1 registers of the 32.
 */
#include "kernels.h"

#include <immintrin.h>

#define MR 14
#define NR 32

/* C[0:rows, 0:cols] = alpha * acc + beta * C from the accumulators lo (columns 0-15) and hi. */
static inline __attribute__((always_inline)) void store_tile(const __m512 *lo, const __m512 *hi, float alpha, float beta,
                                                             float *restrict c, int64_t ldc, int rows, int cols) {
    __m512 va = _mm512_set1_ps(alpha);
    if (rows == MR && cols == NR) {
        if (beta == 0.0f) {
#pragma GCC unroll 16
            for (int r = 0; r < MR; r++) {
                _mm512_storeu_ps(c + r * ldc, _mm512_mul_ps(va, lo[r]));
                _mm512_storeu_ps(c + r * ldc + 16, _mm512_mul_ps(va, hi[r]));
            }
        } else {
            __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
            for (int r = 0; r < MR; r++) {
                float *cr = c + r * ldc;
                _mm512_storeu_ps(cr, _mm512_fmadd_ps(va, lo[r], _mm512_mul_ps(vb, _mm512_loadu_ps(cr))));
                _mm512_storeu_ps(cr + 16, _mm512_fmadd_ps(va, hi[r], _mm512_mul_ps(vb, _mm512_loadu_ps(cr + 16))));
            }
        }
        return;
    }

    /* Edge tile (a minority): write the accumulators out and update only the part inside C. */
    float tile[MR * NR] __attribute__((aligned(64)));
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) {
        _mm512_store_ps(tile + r * NR, lo[r]);
        _mm512_store_ps(tile + r * NR + 16, hi[r]);
    }
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < cols; j++) {
            float v = alpha * tile[r * NR + j];
            c[r * ldc + j] = beta == 0.0f ? v : v + beta * c[r * ldc + j];
        }
}

/* C[rows x cols] = alpha * A * B + beta * C, with A's element (r, p) at a[r * row_step + p * k_step]:
 * the packed sliver (1, MR) or rows of a matrix (lda, 1). Inlined into both callers with their
 * steps, so each gets its own loop. */
static inline __attribute__((always_inline)) void tile_product(int64_t kc, const float *restrict a, int64_t row_step,
                                                               int64_t k_step, const float *restrict b, float alpha,
                                                               float beta, float *restrict c, int64_t ldc, int rows,
                                                               int cols) {
    __m512 lo[MR], hi[MR];
#pragma GCC unroll 16
    for (int r = 0; r < MR; r++) lo[r] = hi[r] = _mm512_setzero_ps();
    /* C is needed only after the k loop: start fetching it now so that its cache misses
     * overlap the arithmetic. */
    for (int r = 0; r < rows; r++) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + cols - 1), _MM_HINT_T0);
    }
    for (int64_t p = 0; p < kc; p++) {
        __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 16
        for (int r = 0; r < MR; r++) {
            __m512 ar = _mm512_set1_ps(a[r * row_step]);
            lo[r] = _mm512_fmadd_ps(ar, b0, lo[r]);
            hi[r] = _mm512_fmadd_ps(ar, b1, hi[r]);
        }
        a += k_step;
        b += NR;
    }
    store_tile(lo, hi, alpha, beta, c, ldc, rows, cols);
}

static void gemm_tile(int64_t kc, const float *restrict a, const float *restrict b, float alpha,
                      float beta, float *restrict c, int64_t ldc, int rows, int cols) {
    tile_product(kc, a, 1, MR, b, alpha, beta, c, ldc, rows, cols);
}

/* The same with A row-major (row r at a + r * lda): the broadcasts come from 14 rows instead
 * of one packed sliver. Zen 4 issues a zmm FMA per cycle and three loads, so the extra
 * address arithmetic costs nothing. */
static void gemm_tile_rows(int64_t kc, const float *restrict a, int64_t lda, const float *restrict b, float alpha,
                           float beta, float *restrict c, int64_t ldc, int rows, int cols) {
    tile_product(kc, a, lda, 1, b, alpha, beta, c, ldc, rows, cols);
}

/* In-register transpose of a 16 x 16 block: v[r] lane p becomes v[p] lane r. Pairs of rows
 * are interleaved by floats, then by float pairs, which leaves within each 128-bit lane l
 * of b[4i + c] the column 4l + c of rows 4i..4i+3; a 4 x 4 transpose of 128-bit lanes
 * finishes the job. */
static void transpose16(__m512 v[16]) {
    __m512 a[16], b[16];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
        a[2 * i] = _mm512_unpacklo_ps(v[2 * i], v[2 * i + 1]);
        a[2 * i + 1] = _mm512_unpackhi_ps(v[2 * i], v[2 * i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
        __m512d lo0 = _mm512_castps_pd(a[4 * i]), lo1 = _mm512_castps_pd(a[4 * i + 2]);
        __m512d hi0 = _mm512_castps_pd(a[4 * i + 1]), hi1 = _mm512_castps_pd(a[4 * i + 3]);
        b[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
        b[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
        b[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
        b[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
    }
#pragma GCC unroll 4
    for (int c = 0; c < 4; c++) {
        __m512 d0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x44), d1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xEE);
        __m512 d2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x44), d3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xEE);
        v[c] = _mm512_shuffle_f32x4(d0, d2, 0x88);
        v[4 + c] = _mm512_shuffle_f32x4(d0, d2, 0xDD);
        v[8 + c] = _mm512_shuffle_f32x4(d1, d3, 0x88);
        v[12 + c] = _mm512_shuffle_f32x4(d1, d3, 0xDD);
    }
}

/* Groups of 16 rows x 16 k steps: masked loads (missing rows and k steps read as 0), one
 * transpose, masked stores of the group's part of each k step. */
static void pack_transposed(int64_t kc, int rows, int width, const float *restrict src, int64_t ld,
                            float *restrict dst) {
    for (int r0 = 0; r0 < width; r0 += 16) {
        int group_rows = rows - r0 < 0 ? 0 : rows - r0 < 16 ? rows - r0 : 16;
        int lanes = width - r0 < 16 ? width - r0 : 16;
        __mmask16 store_mask = (__mmask16)((1u << lanes) - 1);
        for (int64_t p0 = 0; p0 < kc; p0 += 16) {
            int steps = kc - p0 < 16 ? (int)(kc - p0) : 16;
            __mmask16 load_mask = (__mmask16)((1u << steps) - 1);
            __m512 v[16];
#pragma GCC unroll 16
            for (int r = 0; r < 16; r++)
                v[r] = r < group_rows ? _mm512_maskz_loadu_ps(load_mask, src + (int64_t)(r0 + r) * ld + p0)
                                      : _mm512_setzero_ps();
            transpose16(v);
#pragma GCC unroll 16
            for (int p = 0; p < 16; p++)
                if (p < steps) _mm512_mask_storeu_ps(dst + (p0 + p) * width + r0, store_mask, v[p]);
        }
    }
}

/* 16 independent zmm chains x <- x * s + t (s < 1: the values converge instead of growing). */
#define FMA_CHAINS 16

static float fma_loop(int64_t iterations) {
    __m512 acc[FMA_CHAINS];
    __m512 s = _mm512_set1_ps(0.999999f), t = _mm512_set1_ps(1e-6f);
#pragma GCC unroll 16
    for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm512_set1_ps((float)i);
    for (int64_t it = 0; it < iterations; it++) {
#pragma GCC unroll 16
        for (int i = 0; i < FMA_CHAINS; i++) acc[i] = _mm512_fmadd_ps(acc[i], s, t);
    }
    __m512 sum = acc[0];
#pragma GCC unroll 16
    for (int i = 1; i < FMA_CHAINS; i++) sum = _mm512_add_ps(sum, acc[i]);
    return _mm512_reduce_add_ps(sum);
}

static void stream_copy(float *dst, const float *src, int64_t count) {
    int64_t i = 0;
    for (; i + 64 <= count; i += 64) {
        __m512 x0 = _mm512_load_ps(src + i), x1 = _mm512_load_ps(src + i + 16);
        __m512 x2 = _mm512_load_ps(src + i + 32), x3 = _mm512_load_ps(src + i + 48);
        _mm512_stream_ps(dst + i, x0);
        _mm512_stream_ps(dst + i + 16, x1);
        _mm512_stream_ps(dst + i + 32, x2);
        _mm512_stream_ps(dst + i + 48, x3);
    }
    for (; i < count; i += 16) _mm512_stream_ps(dst + i, _mm512_load_ps(src + i));
    _mm_sfence(); /* streaming stores are weakly ordered */
}

const ambient_cpu_kernels ambient_cpu_kernels_avx512 = {
    .name = "avx512",
    .mr = MR,
    .nr = NR,
    .mc = MR * 12,
    .kc = 512,
    .nc = NR * 128,
    .gemm_tile = gemm_tile,
    .gemm_tile_rows = gemm_tile_rows,
    .pack_transposed = pack_transposed,
    .fma_loop = fma_loop,
    .fma_flops_per_iteration = 2 * 16 * FMA_CHAINS,
    .stream_copy = stream_copy,
};
