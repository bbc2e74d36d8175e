/*
 * Magnitude-preserving elementwise ops of EDM2 ("Analyzing and Improving the Training
 * Dynamics of Diffusion Models", Karras et al. 2024, section 2.1 of our spec):
 *   mp_silu(x)      = silu(x) / 0.596        (0.596: RMS of silu over a standard normal)
 *   mp_sum(a, b, t) = ((1-t) a + t b) / sqrt((1-t)^2 + t^2)
 * with their gradients. Memory-bound: one pass, chunks split over OpenMP threads; the inner
 * loops are plain C compiled for AVX-512, AVX2 and baseline x86-64, picked at load time
 * (target_clones), so exp must be vectorisable: see fast_expf.
 */
#include "internal.h"

#include <math.h>

#define MP_SILU_SCALE (1.0f / 0.596f)
/* Below this many elements a thread team costs more than it saves. */
#define PARALLEL_THRESHOLD 32768
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

/* exp(x) for float, vectorisable: x = n ln2 + r with |r| <= ln2/2, a degree-6 polynomial for
 * e^r (relative error below 2e-7 on that interval), and 2^n built in the exponent bits.
 * n is rounded by adding 1.5 * 2^23 (no rounding instruction needed, so every ISA vectorises
 * it). Inputs are clamped so that the result stays finite and positive; silu only needs that. */
static inline __attribute__((always_inline)) float fast_expf(float x) {
    const float shifter = 12582912.0f; /* 1.5 * 2^23 */
    x = x < -87.0f ? -87.0f : x; /* plain compares: fminf/fmaxf are calls without -ffast-math */
    x = x > 88.0f ? 88.0f : x;
    float shifted = x * 1.44269504088896341f + shifter;
    float n = shifted - shifter;
    /* ln2 in two parts (Cody-Waite); n * 0.693359375 is exact for |n| <= 128 */
    float r = x - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r;
    p += 1.0f;
    union { float f; int32_t i; } bits = { .f = shifted }, scale;
    scale.i = (bits.i - 0x4B400000 + 127) << 23; /* the low bits of `shifted` hold n */
    return p * scale.f;
}

SIMD_CLONES
static void mp_silu_forward_range(int64_t begin, int64_t end, const float *x, float *y) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        float s = 1.0f / (1.0f + fast_expf(-v)); /* one division per vector, as in backward */
        y[i] = v * s * MP_SILU_SCALE;
    }
}

SIMD_CLONES
static void mp_silu_backward_range(int64_t begin, int64_t end, const float *x, const float *dy,
                                   float *dx) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        float s = 1.0f / (1.0f + fast_expf(-v));
        /* d/dx [x s(x)] = s + x s (1 - s) */
        dx[i] = dy[i] * (s * (1.0f + v * (1.0f - s))) * MP_SILU_SCALE;
    }
}

SIMD_CLONES
static void axpby_range(int64_t begin, int64_t end, float wa, const float *a, float wb,
                        const float *b, float *y) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) y[i] = wa * a[i] + wb * b[i];
}

SIMD_CLONES
static void scale2_range(int64_t begin, int64_t end, const float *dy, float wa, float *da,
                         float wb, float *db) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float g = dy[i];
        da[i] = wa * g;
        db[i] = wb * g;
    }
}

int ambient_mp_silu_forward(int64_t count, const float *x, float *y) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, mp_silu_forward_range(begin, end, x, y));
    return AMBIENT_STATUS_OK;
}

int ambient_mp_silu_backward(int64_t count, const float *x, const float *dy, float *dx) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, mp_silu_backward_range(begin, end, x, dy, dx));
    return AMBIENT_STATUS_OK;
}

static float mp_sum_norm(float t) { return sqrtf((1.0f - t) * (1.0f - t) + t * t); }

int ambient_mp_sum_forward(int64_t count, const float *a, const float *b, float t, float *y) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(isfinite(t), "%s: t = %g is not finite", __func__, t);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(a);
    AMBIENT_REQUIRE_POINTER(b);
    AMBIENT_REQUIRE_POINTER(y);
    float s = mp_sum_norm(t), wa = (1.0f - t) / s, wb = t / s;
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, axpby_range(begin, end, wa, a, wb, b, y));
    return AMBIENT_STATUS_OK;
}

int ambient_mp_sum_backward(int64_t count, const float *dy, float t, float *da, float *db) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(isfinite(t), "%s: t = %g is not finite", __func__, t);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(da);
    AMBIENT_REQUIRE_POINTER(db);
    AMBIENT_REQUIRE(!ambient_overlaps(da, count * (int64_t)sizeof(float), db, count * (int64_t)sizeof(float)),
                    "%s: da and db overlap", __func__);
    float s = mp_sum_norm(t);
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, scale2_range(begin, end, dy, (1.0f - t) / s, da, t / s, db));
    return AMBIENT_STATUS_OK;
}
