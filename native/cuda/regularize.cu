/*
 * Regularising elementwise ops of EDM2's blocks on the GPU (same semantics as
 * cpu/regularize.c):
 *   clip:     y = min(max(x, -limit), limit), NaN passes through; dx = dy where -limit < x < limit
 *   dropout:  element e kept when uniform (seed, stream, offset + e) >= p, then scaled by
 *             1 / (1 - p); backward regenerates the same mask. The uniform is (word >> 8) 2^-24,
 *             so "kept" is the integer compare (word >> 8) >= ceil(p 2^24) on Philox words
 *             (philox.cuh, the CPU's generator), bit-identical to the CPU's mask.
 * Memory-bound grid-stride loops; dropout gives a thread one Philox group (4 elements).
 * In place is allowed (y = x, dx = dy): each element is read before the same thread writes it.
 */
#include "internal.cuh"
#include "philox.cuh"

#include <cmath>

/* ---- clip --------------------------------------------------------------------------------- */

struct clip_forward_op {
    float limit;
    const float *x;
    float *y;
    __device__ void operator()(int64_t i) const {
        float v = x[i];
        v = v < -limit ? -limit : v; /* plain compares keep NaN; fminf/fmaxf would drop it */
        v = v > limit ? limit : v;
        y[i] = v;
    }
};

struct clip_backward_op {
    float limit;
    const float *x, *dy;
    float *dx;
    __device__ void operator()(int64_t i) const {
        float v = x[i];
        dx[i] = (v > -limit && v < limit) ? dy[i] : 0.0f;
    }
};

static int check_limit(const char *function, int64_t count, float limit) {
    AMBIENT_REQUIRE(count >= 0 && count <= AMBIENT_MAX_COUNT, "%s: count = %lld is %s", function,
                    (long long)count, count < 0 ? "negative" : "too large");
    AMBIENT_REQUIRE(std::isfinite(limit) && limit >= 0, "%s: limit = %g must be finite and non-negative",
                    function, (double)limit);
    return AMBIENT_STATUS_OK;
}

int ambient_clip_forward(int64_t count, float limit, const float *x, float *y) {
    ambient_cuda_clear_error();
    int status = check_limit(__func__, count, limit);
    if (status) return status;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(x == y || !ambient_overlaps(x, bytes, y, bytes), "%s: y partly overlaps x", __func__);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, count, clip_forward_op{limit, x, y}));
    return AMBIENT_STATUS_OK;
}

int ambient_clip_backward(int64_t count, float limit, const float *x, const float *dy, float *dx) {
    ambient_cuda_clear_error();
    int status = check_limit(__func__, count, limit);
    if (status) return status;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(dx == dy || !ambient_overlaps(dx, bytes, dy, bytes), "%s: dx partly overlaps dy", __func__);
    AMBIENT_REQUIRE(dx == x || !ambient_overlaps(dx, bytes, x, bytes), "%s: dx partly overlaps x", __func__);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, count, clip_backward_op{limit, x, dy, dx}));
    return AMBIENT_STATUS_OK;
}

/* ---- dropout ------------------------------------------------------------------------------ */

/* Work item g: Philox group first_group + g, i.e. stream elements 4 (first_group + g) + q,
 * which are call elements e = that - offset when 0 <= e < count. */
struct dropout_op {
    int64_t count;
    uint64_t seed, stream, offset, first_group;
    int32_t threshold;
    float scale;
    const float *x;
    float *y;
    __device__ void operator()(int64_t g) const {
        uint32_t bits[4];
        uint64_t group = first_group + (uint64_t)g;
        ambient_philox4x32(seed, stream, group, bits);
#pragma unroll
        for (int q = 0; q < 4; q++) {
            int64_t e = (int64_t)(4 * group + (uint64_t)q - offset);
            if (4 * group + (uint64_t)q < offset || e >= count) continue;
            y[e] = (int32_t)(bits[q] >> 8) >= threshold ? x[e] * scale : 0.0f;
        }
    }
};

static int dropout(const char *function, const char *in_name, const char *out_name, int64_t count,
                   float probability, int64_t seed, int64_t stream, int64_t offset, const float *x, float *y) {
    AMBIENT_REQUIRE(count >= 0 && count <= AMBIENT_MAX_COUNT, "%s: count = %lld is %s", function,
                    (long long)count, count < 0 ? "negative" : "too large");
    AMBIENT_REQUIRE(probability >= 0.0f && probability < 1.0f, "%s: probability = %g must be in [0, 1)",
                    function, (double)probability);
    AMBIENT_REQUIRE(offset >= 0, "%s: offset = %lld is negative", function, (long long)offset);
    AMBIENT_REQUIRE(offset <= INT64_MAX - count, "%s: offset + count = %lld + %lld overflows", function,
                    (long long)offset, (long long)count);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(x != NULL, "%s: %s is NULL", function, in_name);
    AMBIENT_REQUIRE(y != NULL, "%s: %s is NULL", function, out_name);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(x == y || !ambient_overlaps(x, bytes, y, bytes), "%s: %s partly overlaps %s", function,
                    out_name, in_name);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(function, &ctx);
    if (status) return status;
    if (probability == 0.0f) { /* identity: every uniform is >= 0 */
        if (x != y)
            AMBIENT_CUDA_CHECK_AS(function, cudaMemcpyAsync(y, x, (size_t)bytes, cudaMemcpyDeviceToDevice, ctx.stream));
        return AMBIENT_STATUS_OK;
    }
    float scale = (float)(1.0 / (1.0 - (double)probability));
    int32_t threshold = (int32_t)ceilf(probability * 16777216.0f);
    uint64_t first = (uint64_t)offset / 4, last = ((uint64_t)offset + (uint64_t)count - 1) / 4;
    dropout_op op{count, (uint64_t)seed, (uint64_t)stream, (uint64_t)offset, first, threshold, scale, x, y};
    AMBIENT_CUDA_CHECK_AS(function, ambient_for_each(ctx, (int64_t)(last - first + 1), op));
    return AMBIENT_STATUS_OK;
}

int ambient_dropout_forward(int64_t count, float probability, int64_t seed, int64_t stream, int64_t offset,
                            const float *x, float *y) {
    ambient_cuda_clear_error();
    return dropout(__func__, "x", "y", count, probability, seed, stream, offset, x, y);
}

int ambient_dropout_backward(int64_t count, float probability, int64_t seed, int64_t stream, int64_t offset,
                             const float *dy, float *dx) {
    ambient_cuda_clear_error();
    return dropout(__func__, "dy", "dx", count, probability, seed, stream, offset, dy, dx);
}
