/*
 * Optimizer and bookkeeping passes over the flat parameter, gradient and moment buffers
 * (one contiguous allocation each, so each op is a single pass):
 *   sum_squares  *result (+)= sum x^2            gradient norm for clipping; double sums
 *   nan_guard    x = 0 where x is NaN or +-Inf    returns how many
 *   adam_step    Adam (Kingma & Ba 2015) with bias correction and clipping by global norm:
 *                g = c grad, c = min(1, max_norm / sqrt(sum g^2)),
 *                m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
 *                param -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
 *   ema_update   ema += (1 - beta) (param - ema)  (EDM/EDM2 power-function or fixed EMA)
 * All are memory-bound: the loops are plain C compiled for AVX-512, AVX2 and baseline x86-64
 * (target_clones) and split into contiguous chunks over OpenMP threads. sum_squares reduces
 * fixed chunks (their size depends on count only) into slots that are added in order, so its
 * result is bit-identical for any thread count. Benchmark: TrainingKernelsBenchmark
 * (op adam_step, ema_update).
 */
#include "internal.h"

#include <math.h>

#define PARALLEL_THRESHOLD 32768
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

/* sum_squares: at least this many elements per chunk, and at most MAX_SLOTS chunks. */
#define SUM_CHUNK 65536
#define MAX_SLOTS 4096
/* nan_guard scans this many elements before deciding whether to write. */
#define GUARD_BLOCK 4096

/* Sum of x^2 over [0, count) in double: 32 accumulators (four AVX-512 vectors of doubles)
 * added in a fixed order. */
SIMD_CLONES
static double sum_squares_range(int64_t count, const float *x) {
    double acc[32] = {0};
    int64_t k = 0;
    for (; k + 32 <= count; k += 32)
#pragma omp simd
        for (int j = 0; j < 32; j++) acc[j] += (double)x[k + j] * x[k + j];
    for (int j = 0; k < count; k++, j++) acc[j] += (double)x[k] * x[k];
    double sum = 0;
    for (int j = 0; j < 32; j++) sum += acc[j];
    return sum;
}

int ambient_sum_squares(int64_t count, const float *x, int32_t accumulate, float *result) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE_POINTER(result);
    if (count > 0) AMBIENT_REQUIRE_POINTER(x);
    if (count > 0)
        AMBIENT_REQUIRE(!ambient_overlaps(result, (int64_t)sizeof(float), x, count * (int64_t)sizeof(float)),
                        "%s: result overlaps x", __func__);
    int64_t chunk = (count + MAX_SLOTS - 1) / MAX_SLOTS;
    chunk = chunk < SUM_CHUNK ? SUM_CHUNK : chunk;
    int64_t chunks = (count + chunk - 1) / chunk;
    double slots[MAX_SLOTS];
    int threads = chunks > 1 ? ambient_cpu_threads() : 1;
#pragma omp parallel for schedule(static) num_threads(threads) if(threads > 1)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t begin = c * chunk, end = begin + chunk < count ? begin + chunk : count;
        slots[c] = sum_squares_range(end - begin, x + begin);
    }
    double sum = accumulate ? (double)*result : 0.0;
    for (int64_t c = 0; c < chunks; c++) sum += slots[c];
    *result = (float)sum;
    return AMBIENT_STATUS_OK;
}

/* Number of non-finite elements (exponent bits all ones) in [0, count). */
SIMD_CLONES
static int64_t count_bad(int64_t count, const float *x) {
    const uint32_t *bits = (const uint32_t *)x;
    int32_t bad = 0; /* count <= GUARD_BLOCK */
#pragma omp simd reduction(+ : bad)
    for (int64_t k = 0; k < count; k++) bad += (bits[k] & 0x7F800000u) == 0x7F800000u;
    return bad;
}

SIMD_CLONES
static void zero_bad(int64_t count, float *x) {
    uint32_t *bits = (uint32_t *)x;
#pragma omp simd
    for (int64_t k = 0; k < count; k++) bits[k] = (bits[k] & 0x7F800000u) == 0x7F800000u ? 0u : bits[k];
}

/* Reads each block once and writes it only when it holds a bad value (rare). */
static int64_t guard_range(int64_t begin, int64_t end, float *x) {
    int64_t total = 0;
    for (int64_t b = begin; b < end; b += GUARD_BLOCK) {
        int64_t len = end - b < GUARD_BLOCK ? end - b : GUARD_BLOCK;
        int64_t bad = count_bad(len, x + b);
        if (bad) zero_bad(len, x + b);
        total += bad;
    }
    return total;
}

int ambient_nan_guard(int64_t count, float *x, int64_t *host_bad_count) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE_POINTER(host_bad_count);
    if (count > 0) AMBIENT_REQUIRE_POINTER(x);
    int64_t total = 0;
    int threads = count >= PARALLEL_THRESHOLD ? ambient_cpu_threads() : 1;
#pragma omp parallel num_threads(threads) if(threads > 1) reduction(+ : total)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        total += guard_range(count * t / nt, count * (t + 1) / nt, x);
    }
    *host_bad_count = total;
    return AMBIENT_STATUS_OK;
}

typedef struct {
    float b1, one_minus_b1, b2, one_minus_b2, c, step_size, inv_sqrt_bc2, eps;
} adam_constants;

SIMD_CLONES
static void adam_range(int64_t begin, int64_t end, adam_constants k, float *param, const float *grad, float *m,
                       float *v) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float g = grad[i] * k.c;
        float mi = k.b1 * m[i] + k.one_minus_b1 * g;
        float vi = k.b2 * v[i] + k.one_minus_b2 * (g * g);
        m[i] = mi;
        v[i] = vi;
        param[i] -= k.step_size * mi / (sqrtf(vi) * k.inv_sqrt_bc2 + k.eps);
    }
}

int ambient_adam_step(int64_t count, float lr, float beta1, float beta2, float eps, int64_t step,
                      const float *grad_sum_squares, float max_norm, float *param, const float *grad, float *m,
                      float *v) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(isfinite(lr) && lr >= 0, "%s: lr = %g must be non-negative and finite", __func__, lr);
    AMBIENT_REQUIRE(beta1 >= 0 && beta1 < 1, "%s: beta1 = %g must be in [0, 1)", __func__, beta1);
    AMBIENT_REQUIRE(beta2 >= 0 && beta2 < 1, "%s: beta2 = %g must be in [0, 1)", __func__, beta2);
    AMBIENT_REQUIRE(isfinite(eps) && eps > 0, "%s: eps = %g must be positive and finite", __func__, eps);
    AMBIENT_REQUIRE(step >= 1, "%s: step = %lld must be >= 1", __func__, (long long)step);
    if (grad_sum_squares)
        AMBIENT_REQUIRE(isfinite(max_norm) && max_norm > 0,
                        "%s: max_norm = %g must be positive and finite when clipping", __func__, max_norm);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(param);
    AMBIENT_REQUIRE_POINTER(grad);
    AMBIENT_REQUIRE_POINTER(m);
    AMBIENT_REQUIRE_POINTER(v);
    int64_t bytes = count * (int64_t)sizeof(float);
    const void *all[4] = {param, grad, m, v};
    const char *names[4] = {"param", "grad", "m", "v"};
    for (int a = 0; a < 4; a++)
        for (int b = a + 1; b < 4; b++)
            AMBIENT_REQUIRE(!ambient_overlaps(all[a], bytes, all[b], bytes), "%s: %s overlaps %s", __func__,
                            names[a], names[b]);
    if (grad_sum_squares)
        for (int a = 0; a < 4; a++)
            AMBIENT_REQUIRE(!ambient_overlaps(grad_sum_squares, (int64_t)sizeof(float), all[a], bytes),
                            "%s: grad_sum_squares overlaps %s", __func__, names[a]);

    double c = 1.0;
    if (grad_sum_squares) {
        /* a zero norm needs no clipping; NaN or Inf propagate as they would in PyTorch */
        double norm = sqrt((double)*grad_sum_squares);
        if (norm > 0) c = fmin(1.0, (double)max_norm / norm);
        if (isnan(norm)) c = NAN;
    }
    double bc1 = 1.0 - pow((double)beta1, (double)step), bc2 = 1.0 - pow((double)beta2, (double)step);
    adam_constants k = {
        .b1 = beta1, .one_minus_b1 = (float)(1.0 - beta1), .b2 = beta2, .one_minus_b2 = (float)(1.0 - beta2),
        .c = (float)c, .step_size = (float)(lr / bc1), .inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2)), .eps = eps};
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, adam_range(begin, end, k, param, grad, m, v));
    return AMBIENT_STATUS_OK;
}

SIMD_CLONES
static void ema_range(int64_t begin, int64_t end, float t, const float *param, float *ema) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) ema[i] += t * (param[i] - ema[i]);
}

int ambient_ema_update(int64_t count, float beta, const float *param, float *ema) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(beta >= 0 && beta <= 1, "%s: beta = %g must be in [0, 1]", __func__, beta);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(param);
    AMBIENT_REQUIRE_POINTER(ema);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(param, bytes, ema, bytes), "%s: ema overlaps param", __func__);
    float t = (float)(1.0 - (double)beta);
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, ema_range(begin, end, t, param, ema));
    return AMBIENT_STATUS_OK;
}
