/*
 * Regularising elementwise ops of EDM2's blocks (networks_edm2.py Block.forward):
 *
 * Activation clipping (clip_act = 256): y = min(max(x, -limit), limit), NaN passes through
 * (as torch.clamp); dx = dy where -limit < x < limit, else 0.
 *
 * Inverted dropout (EDM2 uses p = 0 to 0.13 depending on the model): element e is kept when
 * the uniform number (seed, stream, offset + e) of random.c is >= p, and then scaled by
 * 1 / (1 - p); backward regenerates the same uniforms, so no mask is stored:
 *   y = keep ? x / (1 - p) : 0,   dx = keep ? dy / (1 - p) : 0,   0 <= p < 1, p = 0: a copy.
 * The uniform is u = k 2^-24 with k = word >> 8, so u >= p exactly when k >= ceil(p 2^24):
 * the mask is an integer compare on Philox words (philox_block.h), made in blocks that stay
 * in L1, never converted to float.
 * Both ops are memory-bound loops over chunks split across OpenMP threads and compiled for
 * AVX-512, AVX2 and baseline x86-64 (target_clones). Benchmark: LayerBenchmark (clip_forward,
 * dropout_forward).
 */
#include "internal.h"
#include "kernels.h"
#include "philox_block.h"

#include <math.h>
#include <string.h>

#define PARALLEL_THRESHOLD 32768
#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
/* Elements per block: 4 KB of Philox words. */
#define DROPOUT_BLOCK 1024
/* From this many elements on (32 MB read and written), y bypasses the caches. */
#define DROPOUT_STREAM_COUNT (INT64_C(1) << 22)

/* ---- clip ------------------------------------------------------------------------------- */

SIMD_CLONES
static void clip_range(int64_t begin, int64_t end, float limit, const float *x, float *y) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        v = v < -limit ? -limit : v; /* plain compares keep NaN; fminf/fmaxf would drop it */
        v = v > limit ? limit : v;
        y[i] = v;
    }
}

SIMD_CLONES
static void clip_backward_range(int64_t begin, int64_t end, float limit, const float *x,
                                const float *dy, float *dx) {
#pragma omp simd
    for (int64_t i = begin; i < end; i++) {
        float v = x[i];
        dx[i] = (v > -limit && v < limit) ? dy[i] : 0.0f;
    }
}

static int check_limit(const char *function, int64_t count, float limit) {
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(isfinite(limit) && limit >= 0, "%s: limit = %g must be finite and non-negative",
                    function, limit);
    return AMBIENT_STATUS_OK;
}

int ambient_clip_forward(int64_t count, float limit, const float *x, float *y) {
    ambient_clear_error();
    int status = check_limit(__func__, count, limit);
    if (status) return status;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(x == y || !ambient_overlaps(x, bytes, y, bytes), "%s: y partly overlaps x", __func__);
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, clip_range(begin, end, limit, x, y));
    return AMBIENT_STATUS_OK;
}

int ambient_clip_backward(int64_t count, float limit, const float *x, const float *dy, float *dx) {
    ambient_clear_error();
    int status = check_limit(__func__, count, limit);
    if (status) return status;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(dx == dy || !ambient_overlaps(dx, bytes, dy, bytes), "%s: dx partly overlaps dy", __func__);
    AMBIENT_REQUIRE(dx == x || !ambient_overlaps(dx, bytes, x, bytes), "%s: dx partly overlaps x", __func__);
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD, clip_backward_range(begin, end, limit, x, dy, dx));
    return AMBIENT_STATUS_OK;
}

/* ---- dropout ---------------------------------------------------------------------------- */

SIMD_CLONES
static void dropout_apply(int64_t count, int32_t threshold, float scale, const uint32_t *bits,
                          const float *x, float *y) {
#pragma omp simd
    for (int64_t i = 0; i < count; i++) y[i] = (int32_t)(bits[i] >> 8) >= threshold ? x[i] * scale : 0.0f;
}

/* Elements [begin, end) of a call, DROPOUT_BLOCK at a time: the block's Philox words (from the
 * group holding its first element), then the mask. With `stream`, y is written with the
 * kernel table's cache-bypassing stores from an L1 buffer (blocks made to end on 64-byte
 * boundaries of y, so that they start on one): a large y is not worth keeping in cache, and
 * plain stores would also read every line of it first. */
static void dropout_range(int64_t begin, int64_t end, int32_t threshold, float scale, uint64_t seed,
                          uint64_t stream_id, uint64_t offset, const float *x, float *y, int stream) {
    uint32_t bits[DROPOUT_BLOCK + 4] __attribute__((aligned(64)));
    float out[DROPOUT_BLOCK] __attribute__((aligned(64)));
    const ambient_cpu_kernels *kern = stream ? ambient_cpu_kernels_get() : NULL;
    for (int64_t i = begin; i < end;) {
        uint64_t first = offset + (uint64_t)i;
        int64_t skip = (int64_t)(first % 4); /* lanes of the first group before element i */
        int64_t m = end - i < DROPOUT_BLOCK ? end - i : DROPOUT_BLOCK;
        float *dst = y + i;
        int64_t misaligned = (int64_t)(((uintptr_t)(dst + m) / sizeof(float)) % 16);
        if (kern && m == DROPOUT_BLOCK && misaligned) m -= misaligned;
        ambient_philox_bits_block(seed, stream_id, first / 4, (skip + m + 3) / 4, bits);
        if (kern && (uintptr_t)dst % 64 == 0 && m % 16 == 0) {
            dropout_apply(m, threshold, scale, bits + skip, x + i, out);
            kern->stream_copy(dst, out, m);
        } else {
            dropout_apply(m, threshold, scale, bits + skip, x + i, dst);
        }
        i += m;
    }
}

/* Shared by forward (x -> y) and backward (dy -> dx): the same mask and scale. */
static int dropout(const char *function, const char *in_name, const char *out_name, int64_t count,
                   float probability, int64_t seed, int64_t stream, int64_t offset, const float *x,
                   float *y) {
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(probability >= 0.0f && probability < 1.0f,
                    "%s: probability = %g must be in [0, 1)", function, probability);
    AMBIENT_REQUIRE(offset >= 0, "%s: offset = %lld is negative", function, (long long)offset);
    AMBIENT_REQUIRE(offset <= INT64_MAX - count, "%s: offset + count = %lld + %lld overflows",
                    function, (long long)offset, (long long)count);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(x != NULL, "%s: %s is NULL", function, in_name);
    AMBIENT_REQUIRE(y != NULL, "%s: %s is NULL", function, out_name);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(x == y || !ambient_overlaps(x, bytes, y, bytes), "%s: %s partly overlaps %s",
                    function, out_name, in_name);
    if (probability == 0.0f) { /* identity: every uniform is >= 0 */
        if (x != y) memcpy(y, x, (size_t)bytes);
        return AMBIENT_STATUS_OK;
    }
    float scale = (float)(1.0 / (1.0 - (double)probability));
    /* k 2^-24 >= p  <=>  k >= p 2^24 (exact in float) <=>  k >= ceil(p 2^24), in [1, 2^24) */
    int32_t threshold = (int32_t)ceilf(probability * 16777216.0f);
    AMBIENT_PARALLEL_CHUNKS(count, PARALLEL_THRESHOLD / 4,
                            dropout_range(begin, end, threshold, scale, (uint64_t)seed, (uint64_t)stream,
                                          (uint64_t)offset, x, y, count >= DROPOUT_STREAM_COUNT));
    return AMBIENT_STATUS_OK;
}

int ambient_dropout_forward(int64_t count, float probability, int64_t seed, int64_t stream,
                            int64_t offset, const float *x, float *y) {
    ambient_clear_error();
    return dropout(__func__, "x", "y", count, probability, seed, stream, offset, x, y);
}

int ambient_dropout_backward(int64_t count, float probability, int64_t seed, int64_t stream,
                             int64_t offset, const float *dy, float *dx) {
    ambient_clear_error();
    return dropout(__func__, "dy", "dx", count, probability, seed, stream, offset, dy, dx);
}
