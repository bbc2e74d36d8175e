/*
 * Pixel normalisation of EDM2 (normalize over the channel dimension, eps = 1e-4 in the
 * network): for each row x of C channels (one NHWC pixel),
 *   r = |x| / sqrt(C),  y = x / (eps + r)
 * and its gradient, with d = eps + r and g = <dy, x>:
 *   dx = dy / d - x * g / (d^2 * C * r)        (the second term is 0 where r = 0)
 * Norms and dot products accumulate in double (vectorised: omp simd reductions may reorder
 * the sums), and the row loops are compiled for AVX-512, AVX2 and baseline x86-64, picked at
 * load time. The op is memory-bound: one read of x (and dy), one write.
 */
#include "internal.h"

#include <math.h>

#define PARALLEL_THRESHOLD_ROWS 256
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

SIMD_CLONES
static void forward_rows(int64_t begin, int64_t end, int64_t channels, float eps,
                         const float *x, float *y) {
    for (int64_t row = begin; row < end; row++) {
        const float *xr = x + row * channels;
        float *yr = y + row * channels;
        double sum = 0;
#pragma omp simd reduction(+ : sum)
        for (int64_t c = 0; c < channels; c++) sum += (double)xr[c] * xr[c];
        float inv = (float)(1.0 / (eps + sqrt(sum / (double)channels)));
#pragma omp simd
        for (int64_t c = 0; c < channels; c++) yr[c] = xr[c] * inv;
    }
}

SIMD_CLONES
static void backward_rows(int64_t begin, int64_t end, int64_t channels, float eps,
                          const float *x, const float *dy, float *dx) {
    for (int64_t row = begin; row < end; row++) {
        const float *xr = x + row * channels, *gr = dy + row * channels;
        float *out = dx + row * channels;
        double sum = 0, dot = 0;
#pragma omp simd reduction(+ : sum, dot)
        for (int64_t c = 0; c < channels; c++) {
            sum += (double)xr[c] * xr[c];
            dot += (double)gr[c] * xr[c];
        }
        double r = sqrt(sum / (double)channels), d = eps + r;
        float a = (float)(1.0 / d);
        float b = r > 0 ? (float)(dot / (d * d * (double)channels * r)) : 0.0f;
#pragma omp simd
        for (int64_t c = 0; c < channels; c++) out[c] = gr[c] * a - xr[c] * b;
    }
}

static int check_shape(const char *function, int64_t rows, int64_t channels, float eps) {
    AMBIENT_REQUIRE(rows >= 0 && channels >= 0, "%s: rows = %lld and channels = %lld must be non-negative",
                    function, (long long)rows, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || rows <= AMBIENT_MAX_COUNT / channels,
                    "%s: rows * channels = %lld * %lld is too large", function, (long long)rows,
                    (long long)channels);
    AMBIENT_REQUIRE(isfinite(eps) && eps > 0, "%s: eps = %g must be positive and finite",
                    function, eps);
    return AMBIENT_STATUS_OK;
}

int ambient_pixel_norm_forward(int64_t rows, int64_t channels, float eps, const float *x,
                               float *y) {
    ambient_clear_error();
    int status = check_shape(__func__, rows, channels, eps);
    if (status) return status;
    if (rows == 0 || channels == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    AMBIENT_PARALLEL_CHUNKS(rows, PARALLEL_THRESHOLD_ROWS,
                            forward_rows(begin, end, channels, eps, x, y));
    return AMBIENT_STATUS_OK;
}

int ambient_pixel_norm_backward(int64_t rows, int64_t channels, float eps, const float *x,
                                const float *dy, float *dx) {
    ambient_clear_error();
    int status = check_shape(__func__, rows, channels, eps);
    if (status) return status;
    if (rows == 0 || channels == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    int64_t bytes = rows * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(dx, bytes, x, bytes) && !ambient_overlaps(dx, bytes, dy, bytes),
                    "%s: dx overlaps x or dy", __func__);
    AMBIENT_PARALLEL_CHUNKS(rows, PARALLEL_THRESHOLD_ROWS,
                            backward_rows(begin, end, channels, eps, x, dy, dx));
    return AMBIENT_STATUS_OK;
}
