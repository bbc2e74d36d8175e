/*
 * Forced weight normalisation of EDM2's MPConv on the GPU (same formulas as
 * cpu/weight_norm.c), per output filter, a row of F = fan_in weights:
 *   d = eps + |w| / sqrt(F)
 *   forward:  w_hat = s w / d,  s = gain / sqrt(F)
 *   force:    w = w / d (in place)
 *   backward: g = <dw_hat, w>,  dw = s (dw_hat / d - w g / (d^2 sqrt(F) |w|))   (0 where |w| = 0)
 *             dgain = sum over rows of g / (d sqrt(F))
 * A block per row (grid-stride over rows): norms and dot products in double, threads strided
 * over the row and then ambient_block_sum's fixed tree, so results do not depend on the grid.
 * dgain: each row's share goes to a double slot of the scratch block, and one block adds the
 * slots in a fixed pattern (deterministic).
 */
#include "internal.cuh"

#include <cmath>

#define THREADS 256

static __global__ void __launch_bounds__(THREADS)
weight_norm_forward_kernel(int64_t filters, int64_t fan_in, double eps, double gain, const float *w, float *w_hat) {
    __shared__ double scratch[32];
    double root = sqrt((double)fan_in);
    for (int64_t row = blockIdx.x; row < filters; row += gridDim.x) {
        const float *wr = w + row * fan_in;
        float *out = w_hat + row * fan_in;
        double sum = 0;
        for (int64_t i = threadIdx.x; i < fan_in; i += THREADS) sum += (double)wr[i] * wr[i];
        sum = ambient_block_sum(sum, scratch);
        float scale = (float)(gain / ((eps + sqrt(sum) / root) * root));
        for (int64_t i = threadIdx.x; i < fan_in; i += THREADS) out[i] = wr[i] * scale; /* w_hat may be w */
    }
}

static __global__ void __launch_bounds__(THREADS)
weight_norm_force_kernel(int64_t filters, int64_t fan_in, double eps, float *w) {
    __shared__ double scratch[32];
    double root = sqrt((double)fan_in);
    for (int64_t row = blockIdx.x; row < filters; row += gridDim.x) {
        float *wr = w + row * fan_in;
        double sum = 0;
        for (int64_t i = threadIdx.x; i < fan_in; i += THREADS) sum += (double)wr[i] * wr[i];
        sum = ambient_block_sum(sum, scratch);
        float scale = (float)(1.0 / (eps + sqrt(sum) / root));
        for (int64_t i = threadIdx.x; i < fan_in; i += THREADS) wr[i] *= scale;
    }
}

static __global__ void __launch_bounds__(THREADS)
weight_norm_backward_kernel(int64_t filters, int64_t fan_in, double eps, double gain, const float *w,
                            const float *dw_hat, float *dw, double *row_dgain) {
    __shared__ double scratch[32];
    double root = sqrt((double)fan_in);
    for (int64_t row = blockIdx.x; row < filters; row += gridDim.x) {
        const float *wr = w + row * fan_in, *gr = dw_hat + row * fan_in;
        float *out = dw + row * fan_in;
        double sum = 0, dot = 0;
        for (int64_t i = threadIdx.x; i < fan_in; i += THREADS) {
            sum += (double)wr[i] * wr[i];
            dot += (double)gr[i] * wr[i];
        }
        sum = ambient_block_sum(sum, scratch);
        dot = ambient_block_sum(dot, scratch);
        double norm = sqrt(sum), d = eps + norm / root, s = gain / root;
        float a = (float)(s / d);
        float b = norm > 0 ? (float)(s * dot / (d * d * root * norm)) : 0.0f;
        for (int64_t i = threadIdx.x; i < fan_in; i += THREADS) out[i] = gr[i] * a - wr[i] * b;
        if (row_dgain && threadIdx.x == 0) row_dgain[row] = dot / (d * root);
    }
}

static __global__ void __launch_bounds__(THREADS)
dgain_final_kernel(int64_t filters, const double *row_dgain, float *dgain) {
    __shared__ double scratch[32];
    double acc = 0;
    for (int64_t r = threadIdx.x; r < filters; r += THREADS) acc += row_dgain[r];
    acc = ambient_block_sum(acc, scratch);
    if (threadIdx.x == 0) *dgain = (float)acc;
}

static unsigned row_blocks(const ambient_cuda_context &ctx, int64_t filters) {
    return ambient_cuda_blocks(filters, 1, ctx.sm_count, 8);
}

static int check_shape(const char *function, int64_t filters, int64_t fan_in, float eps) {
    AMBIENT_REQUIRE(filters >= 0, "%s: filters = %lld is negative", function, (long long)filters);
    AMBIENT_REQUIRE(fan_in >= 0, "%s: fan_in = %lld is negative", function, (long long)fan_in);
    AMBIENT_REQUIRE(fan_in == 0 || filters <= AMBIENT_MAX_COUNT / fan_in, "%s: filters * fan_in = %lld * %lld is too large",
                    function, (long long)filters, (long long)fan_in);
    AMBIENT_REQUIRE(std::isfinite(eps) && eps > 0, "%s: eps = %g must be positive and finite", function, (double)eps);
    return AMBIENT_STATUS_OK;
}

int ambient_weight_norm_forward(int64_t filters, int64_t fan_in, float eps, float gain, const float *w, float *w_hat) {
    ambient_cuda_clear_error();
    int status = check_shape(__func__, filters, fan_in, eps);
    if (status) return status;
    AMBIENT_REQUIRE(std::isfinite(gain), "%s: gain = %g is not finite", __func__, (double)gain);
    int64_t count = filters * fan_in;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(w);
    AMBIENT_REQUIRE_POINTER(w_hat);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(w_hat == w || !ambient_overlaps(w_hat, bytes, w, bytes),
                    "%s: w_hat = %p partly overlaps w = %p (it may equal it)", __func__, (void *)w_hat, (const void *)w);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_LAUNCH(row_blocks(ctx, filters), THREADS, 0, ctx.stream, weight_norm_forward_kernel)(
        filters, fan_in, eps, gain, w, w_hat);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    return AMBIENT_STATUS_OK;
}

int ambient_weight_norm_backward(int64_t filters, int64_t fan_in, float eps, float gain, const float *w,
                                 const float *dw_hat, float *dw, float *dgain) {
    ambient_cuda_clear_error();
    int status = check_shape(__func__, filters, fan_in, eps);
    if (status) return status;
    AMBIENT_REQUIRE(std::isfinite(gain), "%s: gain = %g is not finite", __func__, (double)gain);
    int64_t count = filters * fan_in, bytes = count * (int64_t)sizeof(float);
    if (count > 0) {
        AMBIENT_REQUIRE_POINTER(w);
        AMBIENT_REQUIRE_POINTER(dw_hat);
        AMBIENT_REQUIRE_POINTER(dw);
        AMBIENT_REQUIRE(!ambient_overlaps(dw, bytes, w, bytes), "%s: dw = %p overlaps w = %p", __func__, (void *)dw,
                        (const void *)w);
        AMBIENT_REQUIRE(!ambient_overlaps(dw, bytes, dw_hat, bytes), "%s: dw = %p overlaps dw_hat = %p", __func__,
                        (void *)dw, (const void *)dw_hat);
    }
    if (dgain != NULL && count > 0) {
        int64_t f = (int64_t)sizeof(float);
        AMBIENT_REQUIRE(!ambient_overlaps(dgain, f, dw, bytes) && !ambient_overlaps(dgain, f, w, bytes) &&
                            !ambient_overlaps(dgain, f, dw_hat, bytes),
                        "%s: dgain = %p overlaps w, dw_hat or dw", __func__, (void *)dgain);
    }
    if (count == 0 && dgain == NULL) return AMBIENT_STATUS_OK;
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    if (count == 0) { /* no rows with weights: dgain is an empty sum */
        AMBIENT_CUDA_CHECK(cudaMemsetAsync(dgain, 0, sizeof(float), ctx.stream));
        return AMBIENT_STATUS_OK;
    }
    ambient_cuda_scratch scratch(ctx);
    void *slots = nullptr;
    if (dgain) {
        status = scratch.take(__func__, filters * (int64_t)sizeof(double), &slots);
        if (status) return status;
    }
    AMBIENT_LAUNCH(row_blocks(ctx, filters), THREADS, 0, ctx.stream, weight_norm_backward_kernel)(
        filters, fan_in, eps, gain, w, dw_hat, dw, (double *)slots);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    if (dgain) {
        AMBIENT_LAUNCH(1, THREADS, 0, ctx.stream, dgain_final_kernel)(filters, (const double *)slots, dgain);
        AMBIENT_CUDA_CHECK(cudaGetLastError());
    }
    return AMBIENT_STATUS_OK;
}

int ambient_weight_norm_force(int64_t filters, int64_t fan_in, float eps, float *w) {
    ambient_cuda_clear_error();
    int status = check_shape(__func__, filters, fan_in, eps);
    if (status) return status;
    if (filters * fan_in == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(w);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_LAUNCH(row_blocks(ctx, filters), THREADS, 0, ctx.stream, weight_norm_force_kernel)(filters, fan_in, eps, w);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    return AMBIENT_STATUS_OK;
}
