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
 * Memory-bound. Forward splits rows of pixels over OpenMP threads. Backward fuses dx and ds
 * in one pass: work items are (sample, block of channels), each summing its ds over all P
 * pixels in double, in pixel order, so ds does not depend on the thread count. Loops over
 * channels are compiled for AVX-512, AVX2 and baseline x86-64 (target_clones).
 * Benchmark: LayerBenchmark (channel_scale_forward).
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#define SQRT2 1.4142135623730950488
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
static void scale_rows(int64_t begin, int64_t end, int64_t positions, int64_t channels,
                       const float *x, const float *s, float *y) {
    for (int64_t r = begin; r < end; r++) {
        const float *xr = x + r * channels, *sr = s + (r / positions) * channels;
        float *yr = y + r * channels;
#pragma omp simd
        for (int64_t k = 0; k < channels; k++) yr[k] = xr[k] * (1.0f + sr[k]);
    }
}

/* One work item of the backward pass: sample i, channels [k0, k0 + width), width <= CHANNEL_BLOCK. */
SIMD_CLONES
static void scale_backward_block(int64_t positions, int64_t channels, int64_t k0, int64_t width,
                                 const float *x, const float *s, const float *dy, float *dx,
                                 float *ds) {
    double acc[CHANNEL_BLOCK];
    float factor[CHANNEL_BLOCK];
    for (int64_t k = 0; k < width; k++) {
        acc[k] = 0;
        factor[k] = 1.0f + s[k0 + k];
    }
    for (int64_t p = 0; p < positions; p++) {
        const float *xp = x + p * channels + k0, *gp = dy + p * channels + k0;
        float *dp = dx + p * channels + k0;
#pragma omp simd
        for (int64_t k = 0; k < width; k++) {
            float g = gp[k];
            acc[k] += (double)g * xp[k];
            dp[k] = g * factor[k]; /* after reading g: dx may be dy */
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

int ambient_channel_scale_forward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                  const float *s, float *y) {
    ambient_clear_error();
    int status = scale_check(__func__, n, positions, channels);
    if (status) return status;
    int64_t count = n * positions * channels;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(s);
    AMBIENT_REQUIRE_POINTER(y);
    int64_t bytes = count * (int64_t)sizeof(float), sbytes = n * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(x == y || !ambient_overlaps(y, bytes, x, bytes), "%s: y partly overlaps x", __func__);
    AMBIENT_REQUIRE(!ambient_overlaps(y, bytes, s, sbytes), "%s: y overlaps s", __func__);
    AMBIENT_PARALLEL_CHUNKS(n * positions, PARALLEL_THRESHOLD / channels + 1,
                            scale_rows(begin, end, positions, channels, x, s, y));
    return AMBIENT_STATUS_OK;
}

int ambient_channel_scale_backward(int64_t n, int64_t positions, int64_t channels,
                                   const float *x, const float *s, const float *dy, float *dx,
                                   float *ds) {
    ambient_clear_error();
    int status = scale_check(__func__, n, positions, channels);
    if (status) return status;
    if (n == 0 || channels == 0) return AMBIENT_STATUS_OK;
    int64_t count = n * positions * channels, sbytes = n * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE_POINTER(s);
    AMBIENT_REQUIRE_POINTER(ds);
    AMBIENT_REQUIRE(!ambient_overlaps(ds, sbytes, s, sbytes), "%s: ds overlaps s", __func__);
    if (positions == 0) { /* sums over no pixels */
        memset(ds, 0, (size_t)sbytes);
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(dx == dy || !ambient_overlaps(dx, bytes, dy, bytes), "%s: dx partly overlaps dy", __func__);
    AMBIENT_REQUIRE(!ambient_overlaps(dx, bytes, x, bytes) && !ambient_overlaps(dx, bytes, s, sbytes) &&
                        !ambient_overlaps(dx, bytes, ds, sbytes),
                    "%s: dx overlaps x, s or ds", __func__);
    AMBIENT_REQUIRE(!ambient_overlaps(ds, sbytes, x, bytes) && !ambient_overlaps(ds, sbytes, dy, bytes),
                    "%s: ds overlaps x or dy", __func__);
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
        scale_backward_block(positions, channels, k0, w, x + offset, s + i * channels, dy + offset,
                             dx + offset, ds + i * channels);
    }
    return AMBIENT_STATUS_OK;
}
