/*
 * Magnitude-preserving elementwise ops of EDM2 on the GPU (same formulas as cpu/mp_ops.c):
 *   mp_silu(x)      = silu(x) / 0.596,   d/dx = (s + x s (1 - s)) / 0.596 with s = sigmoid(x)
 *   mp_sum(a, b, t) = wa a + wb b,       wa = (1-t) / n, wb = t / n, n = sqrt((1-t)^2 + t^2)
 * with their gradients (the weights are computed on the host, in float, as the CPU does),
 * and below them mp_cat (EDM2's magnitude-preserving concatenation), one thread per element.
 *
 * Memory-bound: grid-stride loops, 256 threads per block, at most 8 blocks per SM. When
 * every pointer is 16-byte aligned a thread moves a float4 per step and the last count % 4
 * elements go one at a time. Outputs may alias inputs where ambient.h allows: each element
 * (or float4) is read before the same thread writes it.
 */
#include "internal.cuh"

#include <cmath>

#define THREADS 256
#define BLOCKS_PER_SM 8


static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

/* Work items of a launch: float4 groups (plus one item for a partial tail) or elements. */
static inline int64_t items_of(int64_t count, bool vec4) { return vec4 ? (count + 3) / 4 : count; }

/* ---- mp_silu forward ------------------------------------------------------------------ */

static __global__ void mp_silu_forward_kernel(int64_t count, bool vec4, const float *x, float *y) {
    int64_t start = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t done = 0;
    if (vec4) {
        int64_t groups = count / 4;
        for (int64_t g = start; g < groups; g += stride) {
            float4 v = reinterpret_cast<const float4 *>(x)[g];
            v.x = ambient_mp_silu(v.x);
            v.y = ambient_mp_silu(v.y);
            v.z = ambient_mp_silu(v.z);
            v.w = ambient_mp_silu(v.w);
            reinterpret_cast<float4 *>(y)[g] = v;
        }
        done = groups * 4;
    }
    for (int64_t i = done + start; i < count; i += stride) y[i] = ambient_mp_silu(x[i]);
}

static cudaError_t mp_silu_forward_launch(const ambient_cuda_context &ctx, int64_t count,
                                          const float *x, float *y) {
    bool vec4 = aligned16(x) && aligned16(y);
    unsigned blocks = ambient_cuda_blocks(items_of(count, vec4), THREADS, ctx.sm_count, BLOCKS_PER_SM);
    AMBIENT_LAUNCH(blocks, THREADS, 0, ctx.stream, mp_silu_forward_kernel)(count, vec4, x, y);
    return cudaGetLastError();
}

int ambient_mp_silu_forward(int64_t count, const float *x, float *y) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(mp_silu_forward_launch(ctx, count, x, y));
    return AMBIENT_STATUS_OK;
}

/* ---- mp_silu backward ----------------------------------------------------------------- */

static __global__ void mp_silu_backward_kernel(int64_t count, bool vec4, const float *x,
                                               const float *dy, float *dx) {
    int64_t start = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t done = 0;
    if (vec4) {
        int64_t groups = count / 4;
        for (int64_t g = start; g < groups; g += stride) {
            float4 v = reinterpret_cast<const float4 *>(x)[g];
            float4 d = reinterpret_cast<const float4 *>(dy)[g];
            d.x = ambient_mp_silu_grad(v.x, d.x);
            d.y = ambient_mp_silu_grad(v.y, d.y);
            d.z = ambient_mp_silu_grad(v.z, d.z);
            d.w = ambient_mp_silu_grad(v.w, d.w);
            reinterpret_cast<float4 *>(dx)[g] = d;
        }
        done = groups * 4;
    }
    for (int64_t i = done + start; i < count; i += stride) dx[i] = ambient_mp_silu_grad(x[i], dy[i]);
}

static cudaError_t mp_silu_backward_launch(const ambient_cuda_context &ctx, int64_t count,
                                           const float *x, const float *dy, float *dx) {
    bool vec4 = aligned16(x) && aligned16(dy) && aligned16(dx);
    unsigned blocks = ambient_cuda_blocks(items_of(count, vec4), THREADS, ctx.sm_count, BLOCKS_PER_SM);
    AMBIENT_LAUNCH(blocks, THREADS, 0, ctx.stream, mp_silu_backward_kernel)(count, vec4, x, dy, dx);
    return cudaGetLastError();
}

int ambient_mp_silu_backward(int64_t count, const float *x, const float *dy, float *dx) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(mp_silu_backward_launch(ctx, count, x, dy, dx));
    return AMBIENT_STATUS_OK;
}

/* ---- mp_sum forward: y = wa a + wb b --------------------------------------------------- */

static __global__ void mp_sum_forward_kernel(int64_t count, bool vec4, float wa, const float *a,
                                             float wb, const float *b, float *y) {
    int64_t start = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t done = 0;
    if (vec4) {
        int64_t groups = count / 4;
        for (int64_t g = start; g < groups; g += stride) {
            float4 u = reinterpret_cast<const float4 *>(a)[g];
            float4 v = reinterpret_cast<const float4 *>(b)[g];
            u.x = wa * u.x + wb * v.x;
            u.y = wa * u.y + wb * v.y;
            u.z = wa * u.z + wb * v.z;
            u.w = wa * u.w + wb * v.w;
            reinterpret_cast<float4 *>(y)[g] = u;
        }
        done = groups * 4;
    }
    for (int64_t i = done + start; i < count; i += stride) y[i] = wa * a[i] + wb * b[i];
}

static cudaError_t mp_sum_forward_launch(const ambient_cuda_context &ctx, int64_t count, float wa,
                                         const float *a, float wb, const float *b, float *y) {
    bool vec4 = aligned16(a) && aligned16(b) && aligned16(y);
    unsigned blocks = ambient_cuda_blocks(items_of(count, vec4), THREADS, ctx.sm_count, BLOCKS_PER_SM);
    AMBIENT_LAUNCH(blocks, THREADS, 0, ctx.stream, mp_sum_forward_kernel)(count, vec4, wa, a, wb, b, y);
    return cudaGetLastError();
}

static float mp_sum_norm(float t) { return sqrtf((1.0f - t) * (1.0f - t) + t * t); }

int ambient_mp_sum_forward(int64_t count, const float *a, const float *b, float t, float *y) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(std::isfinite(t), "%s: t = %g is not finite", __func__, (double)t);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(a);
    AMBIENT_REQUIRE_POINTER(b);
    AMBIENT_REQUIRE_POINTER(y);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    float s = mp_sum_norm(t);
    AMBIENT_CUDA_CHECK(mp_sum_forward_launch(ctx, count, (1.0f - t) / s, a, t / s, b, y));
    return AMBIENT_STATUS_OK;
}

/* ---- mp_sum backward: da = wa dy, db = wb dy -------------------------------------------- */

static __global__ void mp_sum_backward_kernel(int64_t count, bool vec4, const float *dy, float wa,
                                              float *da, float wb, float *db) {
    int64_t start = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    int64_t done = 0;
    if (vec4) {
        int64_t groups = count / 4;
        for (int64_t g = start; g < groups; g += stride) {
            float4 d = reinterpret_cast<const float4 *>(dy)[g];
            reinterpret_cast<float4 *>(da)[g] = make_float4(wa * d.x, wa * d.y, wa * d.z, wa * d.w);
            reinterpret_cast<float4 *>(db)[g] = make_float4(wb * d.x, wb * d.y, wb * d.z, wb * d.w);
        }
        done = groups * 4;
    }
    for (int64_t i = done + start; i < count; i += stride) {
        float g = dy[i];
        da[i] = wa * g;
        db[i] = wb * g;
    }
}

static cudaError_t mp_sum_backward_launch(const ambient_cuda_context &ctx, int64_t count,
                                          const float *dy, float wa, float *da, float wb, float *db) {
    bool vec4 = aligned16(dy) && aligned16(da) && aligned16(db);
    unsigned blocks = ambient_cuda_blocks(items_of(count, vec4), THREADS, ctx.sm_count, BLOCKS_PER_SM);
    AMBIENT_LAUNCH(blocks, THREADS, 0, ctx.stream, mp_sum_backward_kernel)(count, vec4, dy, wa, da, wb, db);
    return cudaGetLastError();
}

int ambient_mp_sum_backward(int64_t count, const float *dy, float t, float *da, float *db) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(std::isfinite(t), "%s: t = %g is not finite", __func__, (double)t);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(da);
    AMBIENT_REQUIRE_POINTER(db);
    AMBIENT_REQUIRE(!ambient_overlaps(da, count * (int64_t)sizeof(float), db, count * (int64_t)sizeof(float)),
                    "%s: da and db overlap", __func__);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    float s = mp_sum_norm(t);
    AMBIENT_CUDA_CHECK(mp_sum_backward_launch(ctx, count, dy, (1.0f - t) / s, da, t / s, db));
    return AMBIENT_STATUS_OK;
}

/* ---- mp_cat: y = [wa a, wb b] along channels (cpu/mp_ops.c) --------------------------------
 * wa = s (1 - t) / sqrt(ca), wb = s t / sqrt(cb), s = sqrt((ca + cb) / ((1 - t)^2 + t^2)), in
 * double and rounded once, as the CPU does. One thread per element of y (or dy). */

static void mp_cat_weights(int64_t ca, int64_t cb, float t, float *wa, float *wb) {
    double u = (double)t, s = std::sqrt((double)(ca + cb) / ((1.0 - u) * (1.0 - u) + u * u));
    *wa = (float)(s * (1.0 - u) / std::sqrt((double)ca));
    *wb = (float)(s * u / std::sqrt((double)cb));
}

struct mp_cat_forward_op {
    int64_t ca, cb;
    float wa, wb;
    const float *a, *b;
    float *y;
    __device__ void operator()(int64_t e) const {
        int64_t width = ca + cb, r = e / width, c = e % width;
        y[e] = c < ca ? wa * a[r * ca + c] : wb * b[r * cb + (c - ca)];
    }
};

struct mp_cat_backward_op {
    int64_t ca, cb;
    float wa, wb;
    const float *dy;
    float *da, *db;
    __device__ void operator()(int64_t e) const {
        int64_t width = ca + cb, r = e / width, c = e % width;
        if (c < ca) da[r * ca + c] = wa * dy[e];
        else db[r * cb + (c - ca)] = wb * dy[e];
    }
};

static int mp_cat_check(const char *function, int64_t rows, int64_t ca, int64_t cb, float t) {
    AMBIENT_REQUIRE(rows >= 0, "%s: rows = %lld is negative", function, (long long)rows);
    AMBIENT_REQUIRE(ca > 0 && cb > 0, "%s: ca = %lld and cb = %lld must be positive", function, (long long)ca,
                    (long long)cb);
    AMBIENT_REQUIRE(ca <= AMBIENT_MAX_COUNT - cb && rows <= AMBIENT_MAX_COUNT / (ca + cb),
                    "%s: rows * (ca + cb) = %lld * (%lld + %lld) is too large", function, (long long)rows,
                    (long long)ca, (long long)cb);
    AMBIENT_REQUIRE(std::isfinite(t), "%s: t = %g is not finite", function, (double)t);
    return AMBIENT_STATUS_OK;
}

int ambient_mp_cat_forward(int64_t rows, int64_t ca, int64_t cb, float t, const float *a, const float *b,
                           float *y) {
    ambient_cuda_clear_error();
    int status = mp_cat_check(__func__, rows, ca, cb, t);
    if (status) return status;
    if (rows == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(a);
    AMBIENT_REQUIRE_POINTER(b);
    AMBIENT_REQUIRE_POINTER(y);
    int64_t f = (int64_t)sizeof(float), ybytes = rows * (ca + cb) * f;
    AMBIENT_REQUIRE(!ambient_overlaps(y, ybytes, a, rows * ca * f) && !ambient_overlaps(y, ybytes, b, rows * cb * f),
                    "%s: y overlaps a or b", __func__);
    float wa, wb;
    mp_cat_weights(ca, cb, t, &wa, &wb);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, rows * (ca + cb), mp_cat_forward_op{ca, cb, wa, wb, a, b, y}));
    return AMBIENT_STATUS_OK;
}

int ambient_mp_cat_backward(int64_t rows, int64_t ca, int64_t cb, float t, const float *dy, float *da,
                            float *db) {
    ambient_cuda_clear_error();
    int status = mp_cat_check(__func__, rows, ca, cb, t);
    if (status) return status;
    if (rows == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(da);
    AMBIENT_REQUIRE_POINTER(db);
    int64_t f = (int64_t)sizeof(float), abytes = rows * ca * f, bbytes = rows * cb * f, ybytes = rows * (ca + cb) * f;
    AMBIENT_REQUIRE(!ambient_overlaps(da, abytes, dy, ybytes) && !ambient_overlaps(db, bbytes, dy, ybytes) &&
                        !ambient_overlaps(da, abytes, db, bbytes),
                    "%s: da, db and dy must not overlap", __func__);
    float wa, wb;
    mp_cat_weights(ca, cb, t, &wa, &wb);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, rows * (ca + cb), mp_cat_backward_op{ca, cb, wa, wb, dy, da, db}));
    return AMBIENT_STATUS_OK;
}
