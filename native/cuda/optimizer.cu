/*
 * Optimizer and bookkeeping passes on the GPU (same semantics as cpu/optimizer.c):
 *   sum_squares  *result (+)= sum x^2 in double. Deterministic: x is cut into chunks whose size
 *                depends on count alone (at least SUM_CHUNK elements, at most MAX_SLOTS chunks);
 *                a block per chunk sums it (threads strided, then ambient_block_sum's fixed
 *                tree) into a double slot of the scratch block, and one block adds the slots in
 *                a fixed pattern, adds the old *result when accumulating, and rounds once.
 *   nan_guard    x = 0 where x is NaN or +-Inf; the count comes back through a counter in the
 *                scratch block (integer atomics: order does not matter) and a copy to the host.
 *   adam_step    Adam with bias correction; the clipping factor c = min(1, max_norm / norm) is
 *                computed by every thread from the device float *grad_sum_squares (in double, as
 *                the CPU does on the host), so the norm never travels to the host.
 *   ema_update   ema += (1 - beta) (param - ema).
 * All memory-bound grid-stride loops.
 */
#include "internal.cuh"

#include <cmath>

#define SUM_CHUNK 16384
#define MAX_SLOTS 4096
#define SUM_THREADS 256

/* ---- sum_squares -------------------------------------------------------------------------- */

static __global__ void __launch_bounds__(SUM_THREADS)
sum_squares_chunks_kernel(int64_t count, int64_t chunk, const float *x, double *slots) {
    __shared__ double scratch[32];
    int64_t begin = (int64_t)blockIdx.x * chunk, end = begin + chunk < count ? begin + chunk : count;
    double acc = 0;
    for (int64_t i = begin + threadIdx.x; i < end; i += SUM_THREADS) {
        double v = x[i];
        acc += v * v;
    }
    acc = ambient_block_sum(acc, scratch);
    if (threadIdx.x == 0) slots[blockIdx.x] = acc;
}

static __global__ void __launch_bounds__(SUM_THREADS)
sum_squares_final_kernel(int64_t chunks, const double *slots, int accumulate, float *result) {
    __shared__ double scratch[32];
    double acc = 0;
    for (int64_t c = threadIdx.x; c < chunks; c += SUM_THREADS) acc += slots[c];
    acc = ambient_block_sum(acc, scratch);
    if (threadIdx.x == 0) *result = (float)((accumulate ? (double)*result : 0.0) + acc);
}

int ambient_sum_squares(int64_t count, const float *x, int32_t accumulate, float *result) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE_POINTER(result);
    if (count > 0) AMBIENT_REQUIRE_POINTER(x);
    if (count > 0)
        AMBIENT_REQUIRE(!ambient_overlaps(result, (int64_t)sizeof(float), x, count * (int64_t)sizeof(float)),
                        "%s: result overlaps x", __func__);
    int64_t chunk = (count + MAX_SLOTS - 1) / MAX_SLOTS;
    chunk = chunk < SUM_CHUNK ? SUM_CHUNK : chunk;
    int64_t chunks = (count + chunk - 1) / chunk;
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    ambient_cuda_scratch scratch(ctx);
    void *slots = nullptr;
    status = scratch.take(__func__, (chunks > 0 ? chunks : 1) * (int64_t)sizeof(double), &slots);
    if (status) return status;
    if (chunks > 0) {
        AMBIENT_LAUNCH((unsigned)chunks, SUM_THREADS, 0, ctx.stream, sum_squares_chunks_kernel)(
            count, chunk, x, (double *)slots);
        AMBIENT_CUDA_CHECK(cudaGetLastError());
    }
    AMBIENT_LAUNCH(1, SUM_THREADS, 0, ctx.stream, sum_squares_final_kernel)(
        chunks, (const double *)slots, accumulate != 0, result);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    return AMBIENT_STATUS_OK;
}

/* ---- nan_guard ---------------------------------------------------------------------------- */

static __global__ void nan_guard_kernel(int64_t count, float *x, unsigned long long *bad_total) {
    unsigned long long bad = 0;
    uint32_t *bits = reinterpret_cast<uint32_t *>(x);
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += (int64_t)gridDim.x * blockDim.x) {
        uint32_t b = bits[i];
        if ((b & 0x7F800000u) == 0x7F800000u) { /* exponent all ones: NaN or infinite */
            bits[i] = 0u;
            bad++;
        }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) bad += __shfl_xor_sync(0xffffffffu, bad, offset);
    if ((threadIdx.x & 31u) == 0 && bad) atomicAdd(bad_total, bad);
}

int ambient_nan_guard(int64_t count, float *x, int64_t *host_bad_count) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE_POINTER(host_bad_count);
    if (count == 0) {
        *host_bad_count = 0;
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE_POINTER(x);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    ambient_cuda_scratch scratch(ctx);
    void *counter = nullptr;
    status = scratch.take(__func__, (int64_t)sizeof(unsigned long long), &counter);
    if (status) return status;
    AMBIENT_CUDA_CHECK(cudaMemsetAsync(counter, 0, sizeof(unsigned long long), ctx.stream));
    unsigned blocks = ambient_cuda_blocks(count, 256, ctx.sm_count, 8);
    AMBIENT_LAUNCH(blocks, 256, 0, ctx.stream, nan_guard_kernel)(count, x, (unsigned long long *)counter);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    unsigned long long bad = 0;
    AMBIENT_CUDA_CHECK(cudaMemcpyAsync(&bad, counter, sizeof bad, cudaMemcpyDeviceToHost, ctx.stream));
    AMBIENT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    *host_bad_count = (int64_t)bad;
    return AMBIENT_STATUS_OK;
}

/* ---- adam_step ---------------------------------------------------------------------------- */

struct adam_op {
    float b1, one_minus_b1, b2, one_minus_b2, step_size, inv_sqrt_bc2, eps, max_norm;
    const float *grad_sum_squares; /* NULL: no clipping */
    float *param;
    const float *grad;
    float *m, *v;
    __device__ void operator()(int64_t i) const {
        float c = 1.0f;
        if (grad_sum_squares) {
            /* as the CPU: a zero norm needs no clipping, NaN propagates, Inf gives c = 0 */
            double norm = sqrt((double)*grad_sum_squares), cd = 1.0;
            if (norm > 0) cd = fmin(1.0, (double)max_norm / norm);
            if (isnan(norm)) cd = norm;
            c = (float)cd;
        }
        float g = grad[i] * c;
        float mi = b1 * m[i] + one_minus_b1 * g;
        float vi = b2 * v[i] + one_minus_b2 * (g * g);
        m[i] = mi;
        v[i] = vi;
        param[i] -= step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
};

int ambient_adam_step(int64_t count, float lr, float beta1, float beta2, float eps, int64_t step,
                      const float *grad_sum_squares, float max_norm, float *param, const float *grad, float *m,
                      float *v) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(std::isfinite(lr) && lr >= 0, "%s: lr = %g must be non-negative and finite", __func__, (double)lr);
    AMBIENT_REQUIRE(beta1 >= 0 && beta1 < 1, "%s: beta1 = %g must be in [0, 1)", __func__, (double)beta1);
    AMBIENT_REQUIRE(beta2 >= 0 && beta2 < 1, "%s: beta2 = %g must be in [0, 1)", __func__, (double)beta2);
    AMBIENT_REQUIRE(std::isfinite(eps) && eps > 0, "%s: eps = %g must be positive and finite", __func__, (double)eps);
    AMBIENT_REQUIRE(step >= 1, "%s: step = %lld must be >= 1", __func__, (long long)step);
    if (grad_sum_squares)
        AMBIENT_REQUIRE(std::isfinite(max_norm) && max_norm > 0,
                        "%s: max_norm = %g must be positive and finite when clipping", __func__, (double)max_norm);
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
            AMBIENT_REQUIRE(!ambient_overlaps(all[a], bytes, all[b], bytes), "%s: %s overlaps %s", __func__, names[a],
                            names[b]);
    if (grad_sum_squares)
        for (int a = 0; a < 4; a++)
            AMBIENT_REQUIRE(!ambient_overlaps(grad_sum_squares, (int64_t)sizeof(float), all[a], bytes),
                            "%s: grad_sum_squares overlaps %s", __func__, names[a]);
    double bc1 = 1.0 - std::pow((double)beta1, (double)step), bc2 = 1.0 - std::pow((double)beta2, (double)step);
    adam_op op{beta1, (float)(1.0 - beta1), beta2, (float)(1.0 - beta2), (float)(lr / bc1),
               (float)(1.0 / std::sqrt(bc2)), eps, max_norm, grad_sum_squares, param, grad, m, v};
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, count, op));
    return AMBIENT_STATUS_OK;
}

/* ---- ema_update --------------------------------------------------------------------------- */

struct ema_op {
    float t;
    const float *param;
    float *ema;
    __device__ void operator()(int64_t i) const { ema[i] += t * (param[i] - ema[i]); }
};

int ambient_ema_update(int64_t count, float beta, const float *param, float *ema) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(count);
    AMBIENT_REQUIRE(beta >= 0 && beta <= 1, "%s: beta = %g must be in [0, 1]", __func__, (double)beta);
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(param);
    AMBIENT_REQUIRE_POINTER(ema);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(param, bytes, ema, bytes), "%s: ema overlaps param", __func__);
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, count, ema_op{(float)(1.0 - (double)beta), param, ema}));
    return AMBIENT_STATUS_OK;
}
