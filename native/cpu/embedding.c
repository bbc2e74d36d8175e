/*
 * The embedding path of EDM2 (networks_edm2.py):
 *
 * MPFourier, the noise-level embedding: one scalar x[i] per sample (c_noise) becomes
 *   y[i, k] = sqrt(2) cos(x[i] freqs[k] + phases[k])       x: n, freqs, phases: C, y: n x C
 * with dx[i] = -sqrt(2) sum_k dy[i, k] freqs[k] sin(x[i] freqs[k] + phases[k]) (freqs and phases
 * are fixed buffers, so they get no gradient). Tiny (n x C, C ~ 192): the argument and the
 * cosine are evaluated in double and rounded once, so the result is within an ulp of the exact
 * value for float inputs (EDM2 rounds the argument to float first; |x f| stays below ~100, so
 * the two differ by at most ~1e-5).
 *
 * Channel scaling, the block's embedding modulation (y = x * c with c = emb_linear(emb) + 1):
 *   y[i, p, k] = x[i, p, k] (1 + s[i, k])          x, y: n x P x C (P = H W pixels), s: n x C
 *   dx = dy (1 + s),  ds[i, k] = sum_p dy[i, p, k] x[i, p, k]
 * and the same followed by mp_silu (the block applies it next), y = mp_silu(x (1 + s)): one
 * pass instead of two, and its backward recomputes u = x (1 + s) instead of reading it, with
 * g = dy mp_silu'(u) in place of dy above. mp_silu as in mp_ops.c (fast_math.h's exp).
 * Memory-bound. Forward splits rows of pixels over OpenMP threads. Backward fuses dx and ds
 * in one pass: work items are (sample, block of channels), each summing its ds over all P
 * pixels in double, in pixel order, so ds does not depend on the thread count. Loops over
 * channels are compiled for AVX-512, AVX2 and baseline x86-64 (target_clones).
 * Benchmark: LayerBenchmark (channel_scale_forward).
 */
#include "internal.h"
#include "fast_math.h"

#include <math.h>
#include <string.h>

#define SQRT2 1.4142135623730950488
#define MP_SILU_SCALE (1.0f / 0.596f)
/* Rows that the fused channel_scale_silu scales before mp_silu runs over them. */
#define SILU_RUN_ROWS 16
#define PARALLEL_THRESHOLD 32768
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
/* Widest channel block of a channel_scale backward work item; a multiple of 16 floats, so
 * that items of one sample touch different cache lines when C is a multiple of 16. */
#define CHANNEL_BLOCK 64

/* ---- MPFourier ------------------------------------------------------------------------ */

/* Elements [begin, end) of y, flattened over n x channels. */
static void fourier_forward_range(int64_t begin, int64_t end, int64_t channels, const float *x,
                                  const float *freqs, const float *phases, float *y) {
    for (int64_t e = begin; e < end; e++) {
        int64_t i = e / channels, k = e % channels;
        y[e] = (float)(SQRT2 * cos((double)x[i] * freqs[k] + phases[k]));
    }
}

static void fourier_backward_range(int64_t begin, int64_t end, int64_t channels, const float *x,
                                   const float *freqs, const float *phases, const float *dy,
                                   float *dx) {
    for (int64_t i = begin; i < end; i++) {
        double sum = 0, xi = x[i];
        const float *g = dy + i * channels;
        for (int64_t k = 0; k < channels; k++) sum += g[k] * (double)freqs[k] * sin(xi * freqs[k] + phases[k]);
        dx[i] = (float)(-SQRT2 * sum);
    }
}

static int fourier_check(const char *function, int64_t n, int64_t channels) {
    AMBIENT_REQUIRE(n >= 0 && channels >= 0, "%s: n = %lld and channels = %lld must be non-negative",
                    function, (long long)n, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || n <= AMBIENT_MAX_COUNT / channels,
                    "%s: n x channels = %lld x %lld is too large", function, (long long)n,
                    (long long)channels);
    return AMBIENT_STATUS_OK;
}

int ambient_mp_fourier_forward(int64_t n, int64_t channels, const float *x, const float *freqs,
                               const float *phases, float *y) {
    ambient_clear_error();
    int status = fourier_check(__func__, n, channels);
    if (status) return status;
    if (n == 0 || channels == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(freqs);
    AMBIENT_REQUIRE_POINTER(phases);
    AMBIENT_REQUIRE_POINTER(y);
    int64_t ybytes = n * channels * (int64_t)sizeof(float), cbytes = channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(y, ybytes, x, n * (int64_t)sizeof(float)) &&
                        !ambient_overlaps(y, ybytes, freqs, cbytes) &&
                        !ambient_overlaps(y, ybytes, phases, cbytes),
                    "%s: y overlaps x, freqs or phases", __func__);
    AMBIENT_PARALLEL_CHUNKS(n * channels, PARALLEL_THRESHOLD,
                            fourier_forward_range(begin, end, channels, x, freqs, phases, y));
    return AMBIENT_STATUS_OK;
}

int ambient_mp_fourier_backward(int64_t n, int64_t channels, const float *x, const float *freqs,
                                const float *phases, const float *dy, float *dx) {
    ambient_clear_error();
    int status = fourier_check(__func__, n, channels);
    if (status) return status;
    if (n == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dx);
    if (channels == 0) { /* an empty sum */
        AMBIENT_REQUIRE(!ambient_overlaps(dx, n * (int64_t)sizeof(float), x, n * (int64_t)sizeof(float)),
                        "%s: dx overlaps x", __func__);
        memset(dx, 0, (size_t)n * sizeof(float));
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE_POINTER(freqs);
    AMBIENT_REQUIRE_POINTER(phases);
    AMBIENT_REQUIRE_POINTER(dy);
    int64_t xbytes = n * (int64_t)sizeof(float), cbytes = channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(dx, xbytes, x, xbytes) &&
                        !ambient_overlaps(dx, xbytes, dy, n * cbytes) &&
                        !ambient_overlaps(dx, xbytes, freqs, cbytes) &&
                        !ambient_overlaps(dx, xbytes, phases, cbytes),
                    "%s: dx overlaps x, dy, freqs or phases", __func__);
    AMBIENT_PARALLEL_CHUNKS(n, PARALLEL_THRESHOLD / channels + 1,
                            fourier_backward_range(begin, end, channels, x, freqs, phases, dy, dx));
    return AMBIENT_STATUS_OK;
}

/* ---- Channel scaling ---------------------------------------------------------------------- */

SIMD_CLONES
static void scale_rows(int64_t begin, int64_t end, int64_t positions, int64_t channels, int silu,
                       const float *x, const float *s, float *y) {
    for (int64_t r0 = begin; r0 < end; r0 += SILU_RUN_ROWS) {
        int64_t r1 = r0 + SILU_RUN_ROWS < end ? r0 + SILU_RUN_ROWS : end;
        for (int64_t r = r0; r < r1; r++) {
            const float *xr = x + r * channels, *sr = s + (r / positions) * channels;
            float *yr = y + r * channels;
#pragma omp simd
            for (int64_t k = 0; k < channels; k++) yr[k] = xr[k] * (1.0f + sr[k]);
        }
        if (!silu) continue;
        /* mp_silu over the run, still in L1, as one long loop (row by row, a few channels'
         * worth of exp at a time left its latency exposed: slower than two passes) */
        float *v = y + r0 * channels;
        int64_t count = (r1 - r0) * channels;
#pragma omp simd
        for (int64_t e = 0; e < count; e++) v[e] = v[e] * (1.0f / (1.0f + ambient_fast_expf(-v[e]))) * MP_SILU_SCALE;
    }
}

/* One work item of the backward pass: sample i, channels [k0, k0 + width), width <= CHANNEL_BLOCK. */
SIMD_CLONES
static void scale_backward_block(int64_t positions, int64_t channels, int64_t k0, int64_t width, int silu,
                                 const float *x, const float *s, const float *dy, float *dx,
                                 float *ds) {
    double acc[CHANNEL_BLOCK];
    float factor[CHANNEL_BLOCK];
    for (int64_t k = 0; k < width; k++) {
        acc[k] = 0;
        factor[k] = 1.0f + s[k0 + k];
    }
    /* with mp_silu: its derivative at u = x (1 + s) for a run of positions, in one long loop
     * over a local buffer (as in the forward pass), then the products as without it */
    float slope[SILU_RUN_ROWS * CHANNEL_BLOCK];
    for (int64_t p0 = 0; p0 < positions; p0 += SILU_RUN_ROWS) {
        int64_t p1 = p0 + SILU_RUN_ROWS < positions ? p0 + SILU_RUN_ROWS : positions;
        if (silu) {
            for (int64_t p = p0; p < p1; p++) {
                const float *xp = x + p * channels + k0;
                float *up = slope + (p - p0) * width;
#pragma omp simd
                for (int64_t k = 0; k < width; k++) up[k] = xp[k] * factor[k];
            }
            int64_t count = (p1 - p0) * width;
#pragma omp simd
            for (int64_t e = 0; e < count; e++) {
                float u = slope[e], sg = 1.0f / (1.0f + ambient_fast_expf(-u));
                /* d/du [u sigmoid(u)] = sigmoid (1 + u (1 - sigmoid)), as mp_silu's backward */
                slope[e] = sg * (1.0f + u * (1.0f - sg)) * MP_SILU_SCALE;
            }
        }
        for (int64_t p = p0; p < p1; p++) {
            const float *xp = x + p * channels + k0, *gp = dy + p * channels + k0, *sp = slope + (p - p0) * width;
            float *dp = dx + p * channels + k0;
#pragma omp simd
            for (int64_t k = 0; k < width; k++) {
                float g = silu ? gp[k] * sp[k] : gp[k];
                acc[k] += (double)g * xp[k];
                dp[k] = g * factor[k]; /* after reading dy: dx may be dy */
            }
        }
    }
    for (int64_t k = 0; k < width; k++) ds[k0 + k] = (float)acc[k];
}

static int scale_check(const char *function, int64_t n, int64_t positions, int64_t channels) {
    AMBIENT_REQUIRE(n >= 0 && positions >= 0 && channels >= 0,
                    "%s: n = %lld, positions = %lld and channels = %lld must be non-negative",
                    function, (long long)n, (long long)positions, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || positions == 0 ||
                        (positions <= AMBIENT_MAX_COUNT / channels &&
                         n <= AMBIENT_MAX_COUNT / (positions * channels)),
                    "%s: n x positions x channels = %lld x %lld x %lld is too large", function,
                    (long long)n, (long long)positions, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || n <= AMBIENT_MAX_COUNT / channels,
                    "%s: n x channels = %lld x %lld is too large", function, (long long)n, (long long)channels);
    return AMBIENT_STATUS_OK;
}

static int scale_forward(const char *function, int silu, int64_t n, int64_t positions, int64_t channels,
                         const float *x, const float *s, float *y) {
    int status = scale_check(function, n, positions, channels);
    if (status) return status;
    int64_t count = n * positions * channels;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(x != NULL, "%s: x is NULL", function);
    AMBIENT_REQUIRE(s != NULL, "%s: s is NULL", function);
    AMBIENT_REQUIRE(y != NULL, "%s: y is NULL", function);
    int64_t bytes = count * (int64_t)sizeof(float), sbytes = n * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(x == y || !ambient_overlaps(y, bytes, x, bytes), "%s: y partly overlaps x", function);
    AMBIENT_REQUIRE(!ambient_overlaps(y, bytes, s, sbytes), "%s: y overlaps s", function);
    AMBIENT_PARALLEL_CHUNKS(n * positions, PARALLEL_THRESHOLD / channels + 1,
                            scale_rows(begin, end, positions, channels, silu, x, s, y));
    return AMBIENT_STATUS_OK;
}

int ambient_channel_scale_forward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                  const float *s, float *y) {
    ambient_clear_error();
    return scale_forward(__func__, 0, n, positions, channels, x, s, y);
}

int ambient_channel_scale_silu_forward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                       const float *s, float *y) {
    ambient_clear_error();
    return scale_forward(__func__, 1, n, positions, channels, x, s, y);
}

static int scale_backward(const char *function, int silu, int64_t n, int64_t positions, int64_t channels,
                          const float *x, const float *s, const float *dy, float *dx, float *ds) {
    int status = scale_check(function, n, positions, channels);
    if (status) return status;
    if (n == 0 || channels == 0) return AMBIENT_STATUS_OK;
    int64_t count = n * positions * channels, sbytes = n * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(s != NULL, "%s: s is NULL", function);
    AMBIENT_REQUIRE(ds != NULL, "%s: ds is NULL", function);
    AMBIENT_REQUIRE(!ambient_overlaps(ds, sbytes, s, sbytes), "%s: ds overlaps s", function);
    if (positions == 0) { /* sums over no pixels */
        memset(ds, 0, (size_t)sbytes);
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE(x != NULL, "%s: x is NULL", function);
    AMBIENT_REQUIRE(dy != NULL, "%s: dy is NULL", function);
    AMBIENT_REQUIRE(dx != NULL, "%s: dx is NULL", function);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(dx == dy || !ambient_overlaps(dx, bytes, dy, bytes), "%s: dx partly overlaps dy", function);
    AMBIENT_REQUIRE(!ambient_overlaps(dx, bytes, x, bytes) && !ambient_overlaps(dx, bytes, s, sbytes) &&
                        !ambient_overlaps(dx, bytes, ds, sbytes),
                    "%s: dx overlaps x, s or ds", function);
    AMBIENT_REQUIRE(!ambient_overlaps(ds, sbytes, x, bytes) && !ambient_overlaps(ds, sbytes, dy, bytes),
                    "%s: ds overlaps x or dy", function);
    /* Enough channel blocks per sample to give every thread a few items when n is small. */
    int threads = count >= PARALLEL_THRESHOLD ? ambient_cpu_threads() : 1;
    int64_t blocks = (4 * (int64_t)threads + n - 1) / n;
    int64_t max_blocks = (channels + 15) / 16;
    blocks = blocks < 1 ? 1 : blocks > max_blocks ? max_blocks : blocks;
    int64_t width = ((channels + blocks - 1) / blocks + 15) / 16 * 16;
    if (width > CHANNEL_BLOCK) width = CHANNEL_BLOCK;
    if (width > channels) width = channels;
    int64_t per_sample = (channels + width - 1) / width, items = n * per_sample;
#pragma omp parallel for schedule(static) num_threads(threads) if (threads > 1)
    for (int64_t item = 0; item < items; item++) {
        int64_t i = item / per_sample, k0 = (item % per_sample) * width;
        int64_t w = channels - k0 < width ? channels - k0 : width;
        int64_t offset = i * positions * channels;
        scale_backward_block(positions, channels, k0, w, silu, x + offset, s + i * channels, dy + offset,
                             dx + offset, ds + i * channels);
    }
    return AMBIENT_STATUS_OK;
}

int ambient_channel_scale_backward(int64_t n, int64_t positions, int64_t channels,
                                   const float *x, const float *s, const float *dy, float *dx,
                                   float *ds) {
    ambient_clear_error();
    return scale_backward(__func__, 0, n, positions, channels, x, s, dy, dx, ds);
}

int ambient_channel_scale_silu_backward(int64_t n, int64_t positions, int64_t channels,
                                        const float *x, const float *s, const float *dy, float *dx,
                                        float *ds) {
    ambient_clear_error();
    return scale_backward(__func__, 1, n, positions, channels, x, s, dy, dx, ds);
}
