/*
 * Per-sample scaling, for the model layer's bookkeeping over a batch of n samples of `size`
 * elements each (x, y, out: n x size; alpha, beta: n):
 *   out[i, e] = alpha[i] x[i, e] + beta[i] y[i, e]      (or alpha[i] x[i, e] without y)
 * EDM's preconditioning D = c_skip x + c_out F with c_skip, c_out per sample, its gradients
 * (dx = c_skip dD, dF = c_out dD) and gradient accumulation (beta = 1, out = y) are all this.
 * Memory-bound, one pass: the flat range of n x size elements is split into one contiguous
 * chunk per OpenMP thread, and each chunk walks the pieces of the samples it covers, so the
 * work is balanced whether the batch has many small samples or few large ones. The loop over
 * a piece is plain C compiled for AVX-512, AVX2 and baseline x86-64 (target_clones).
 * out may be x or y exactly: each element is read before it is written.
 */
#include "internal.h"

#define PARALLEL_THRESHOLD 32768
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

SIMD_CLONES
static void axpby_piece(int64_t count, float a, const float *x, float b, const float *y, float *out) {
#pragma omp simd
    for (int64_t e = 0; e < count; e++) out[e] = a * x[e] + b * y[e];
}

SIMD_CLONES
static void scale_piece(int64_t count, float a, const float *x, float *out) {
#pragma omp simd
    for (int64_t e = 0; e < count; e++) out[e] = a * x[e];
}

/* Flat elements [begin, end), cut at sample boundaries; y == NULL means no beta term. */
static void sample_axpby_range(int64_t begin, int64_t end, int64_t size, const float *alpha,
                               const float *x, const float *beta, const float *y, float *out) {
    for (int64_t e = begin; e < end;) {
        int64_t i = e / size, stop = (i + 1) * size < end ? (i + 1) * size : end;
        if (y) axpby_piece(stop - e, alpha[i], x + e, beta[i], y + e, out + e);
        else scale_piece(stop - e, alpha[i], x + e, out + e);
        e = stop;
    }
}

int ambient_sample_axpby(int64_t n, int64_t size, const float *alpha, const float *x,
                         const float *beta, const float *y, float *out) {
    ambient_clear_error();
    AMBIENT_REQUIRE(n >= 0 && size >= 0, "%s: n = %lld and size = %lld must be non-negative", __func__,
                    (long long)n, (long long)size);
    AMBIENT_REQUIRE(size == 0 || n <= AMBIENT_MAX_COUNT / size, "%s: n x size = %lld x %lld is too large",
                    __func__, (long long)n, (long long)size);
    AMBIENT_REQUIRE((beta == NULL) == (y == NULL), "%s: beta and y must be both NULL or both given (beta %s, y %s)",
                    __func__, beta ? "given" : "NULL", y ? "given" : "NULL");
    int64_t count = n * size;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(alpha);
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(out);
    int64_t bytes = count * (int64_t)sizeof(float), scalars = n * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(out == x || !ambient_overlaps(out, bytes, x, bytes), "%s: out partly overlaps x", __func__);
    AMBIENT_REQUIRE(!ambient_overlaps(out, bytes, alpha, scalars), "%s: out overlaps alpha", __func__);
    if (y) {
        AMBIENT_REQUIRE(out == y || !ambient_overlaps(out, bytes, y, bytes), "%s: out partly overlaps y", __func__);
        AMBIENT_REQUIRE(!ambient_overlaps(out, bytes, beta, scalars), "%s: out overlaps beta", __func__);
    }
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD,
                            sample_axpby_range(begin, end, size, alpha, x, beta, y, out));
    return AMBIENT_STATUS_OK;
}
