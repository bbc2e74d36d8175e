/*
 * Magnitude-preserving elementwise ops of EDM2 ("Analyzing and Improving the Training
 * Dynamics of Diffusion Models", Karras et al. 2024, section 2.1 of our spec):
 *   mp_silu(x)      = silu(x) / 0.596        (0.596: RMS of silu over a standard normal)
 *   mp_sum(a, b, t) = ((1-t) a + t b) / sqrt((1-t)^2 + t^2)
 * with their gradients. Memory-bound: one pass, chunks split over OpenMP threads; the inner
 * loops are plain C compiled for AVX-512, AVX2 and baseline x86-64, picked at load time
 * (target_clones), so exp must be vectorisable: fast_math.h's ambient_fast_expf.
 */
#include "internal.h"
#include "fast_math.h"

#include <math.h>

#define MP_SILU_SCALE (1.0f / 0.596f)
/* Below this many elements a thread team costs more than it saves. */
#define PARALLEL_THRESHOLD 32768
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

SIMD_CLONES
static void mp_silu_forward_range(int64_t begin, int64_t end, const float *x, float *y) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        float s = 1.0f / (1.0f + ambient_fast_expf(-v)); /* one division per vector, as in backward */
        y[i] = v * s * MP_SILU_SCALE;
    }
}

SIMD_CLONES
static void mp_silu_backward_range(int64_t begin, int64_t end, const float *x, const float *dy,
                                   float *dx) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        float s = 1.0f / (1.0f + ambient_fast_expf(-v));
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

/*
 * mp_cat of EDM2 (concatenation along channels that keeps unit magnitude): rows of ca
 * channels of a and cb of b become rows of ca + cb,
 *   y = [wa a, wb b],  wa = s (1 - t) / sqrt(ca),  wb = s t / sqrt(cb),
 *   s = sqrt((ca + cb) / ((1 - t)^2 + t^2)),
 * and its gradient da = wa dy[:, :ca], db = wb dy[:, ca:]. a: rows x ca, b: rows x cb,
 * y and dy: rows x (ca + cb). Memory-bound: each row is two scaled copies. The weights are
 * computed in double and rounded once.
 */
#define PARALLEL_THRESHOLD_CAT 32768

static void mp_cat_weights(int64_t ca, int64_t cb, float t, float *wa, float *wb) {
    double u = (double)t, s = sqrt((double)(ca + cb) / ((1.0 - u) * (1.0 - u) + u * u));
    *wa = (float)(s * (1.0 - u) / sqrt((double)ca));
    *wb = (float)(s * u / sqrt((double)cb));
}

SIMD_CLONES
static void mp_cat_forward_rows(int64_t begin, int64_t end, int64_t ca, int64_t cb, float wa,
                                const float *a, float wb, const float *b, float *y) {
    for (int64_t r = begin; r < end; r++) {
        const float *ar = a + r * ca, *br = b + r * cb;
        float *yr = y + r * (ca + cb);
#pragma omp simd
        for (int64_t c = 0; c < ca; c++) yr[c] = wa * ar[c];
#pragma omp simd
        for (int64_t c = 0; c < cb; c++) yr[ca + c] = wb * br[c];
    }
}

SIMD_CLONES
static void mp_cat_backward_rows(int64_t begin, int64_t end, int64_t ca, int64_t cb,
                                 const float *dy, float wa, float *da, float wb, float *db) {
    for (int64_t r = begin; r < end; r++) {
        const float *gr = dy + r * (ca + cb);
        float *ar = da + r * ca, *br = db + r * cb;
#pragma omp simd
        for (int64_t c = 0; c < ca; c++) ar[c] = wa * gr[c];
#pragma omp simd
        for (int64_t c = 0; c < cb; c++) br[c] = wb * gr[ca + c];
    }
}

static int mp_cat_check(const char *function, int64_t rows, int64_t ca, int64_t cb, float t) {
    AMBIENT_REQUIRE(rows >= 0, "%s: rows = %lld is negative", function, (long long)rows);
    AMBIENT_REQUIRE(ca > 0 && cb > 0, "%s: ca = %lld and cb = %lld must be positive", function,
                    (long long)ca, (long long)cb);
    AMBIENT_REQUIRE(ca <= AMBIENT_MAX_COUNT - cb && rows <= AMBIENT_MAX_COUNT / (ca + cb),
                    "%s: rows * (ca + cb) = %lld * (%lld + %lld) is too large", function,
                    (long long)rows, (long long)ca, (long long)cb);
    AMBIENT_REQUIRE(isfinite(t), "%s: t = %g is not finite", function, t);
    return AMBIENT_STATUS_OK;
}

int ambient_mp_cat_forward(int64_t rows, int64_t ca, int64_t cb, float t, const float *a,
                           const float *b, float *y) {
    ambient_clear_error();
    int status = mp_cat_check(__func__, rows, ca, cb, t);
    if (status) return status;
    if (rows == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(a);
    AMBIENT_REQUIRE_POINTER(b);
    AMBIENT_REQUIRE_POINTER(y);
    int64_t fa = (int64_t)sizeof(float), ybytes = rows * (ca + cb) * fa;
    AMBIENT_REQUIRE(!ambient_overlaps(y, ybytes, a, rows * ca * fa) &&
                        !ambient_overlaps(y, ybytes, b, rows * cb * fa),
                    "%s: y overlaps a or b", __func__);
    float wa, wb;
    mp_cat_weights(ca, cb, t, &wa, &wb);
    int64_t threshold = PARALLEL_THRESHOLD_CAT / (ca + cb) + 1;
    AMBIENT_PARALLEL_CHUNKS(rows, threshold, mp_cat_forward_rows(begin, end, ca, cb, wa, a, wb, b, y));
    return AMBIENT_STATUS_OK;
}

int ambient_mp_cat_backward(int64_t rows, int64_t ca, int64_t cb, float t, const float *dy,
                            float *da, float *db) {
    ambient_clear_error();
    int status = mp_cat_check(__func__, rows, ca, cb, t);
    if (status) return status;
    if (rows == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(da);
    AMBIENT_REQUIRE_POINTER(db);
    int64_t fa = (int64_t)sizeof(float), abytes = rows * ca * fa, bbytes = rows * cb * fa,
            ybytes = rows * (ca + cb) * fa;
    AMBIENT_REQUIRE(!ambient_overlaps(da, abytes, dy, ybytes) && !ambient_overlaps(db, bbytes, dy, ybytes) &&
                        !ambient_overlaps(da, abytes, db, bbytes),
                    "%s: da, db and dy must not overlap", __func__);
    float wa, wb;
    mp_cat_weights(ca, cb, t, &wa, &wb);
    int64_t threshold = PARALLEL_THRESHOLD_CAT / (ca + cb) + 1;
    AMBIENT_PARALLEL_CHUNKS(rows, threshold, mp_cat_backward_rows(begin, end, ca, cb, dy, wa, da, wb, db));
    return AMBIENT_STATUS_OK;
}
