/*
 * Pixel normalisation of EDM2 on the GPU (same formulas as cpu/pixel_norm.c): for each row x
 * of C channels,
 *   r = |x| / sqrt(C),  y = x / (eps + r)
 * and, with d = eps + r and g = <dy, x>,
 *   dx = dy / d - x * g / (d^2 * C * r)        (the second term is 0 where r = 0).
 *
 * A group of G threads handles one row at a time (grid-stride over rows): each thread
 * accumulates its strided share of |x|^2 (and <dy, x>) in double, the group sums with
 * warp shuffles (and shared memory when G spans several warps), then the row is scaled in
 * a second pass, which hits the cache. G follows the row length: 4 threads for C <= 32,
 * a warp for C <= 4096, a 256-thread block beyond. Blocks have 256 threads; at most 8
 * blocks per SM.
 */
#include "internal.cuh"

#include <cmath>

#define THREADS 256
#define BLOCKS_PER_SM 8

/* Sum of v over the G threads of the calling thread's group; every thread of the group gets
 * the same value. For G > 32, scratch holds G / 32 doubles and the whole block (one group)
 * must call it. For G <= 32 only the group's lanes take part. */
template <int G>
static __device__ __forceinline__ double group_sum(double v, double *scratch) {
    constexpr int width = G < 32 ? G : 32;
    unsigned mask = 0xffffffffu;
    if constexpr (G < 32) mask = ((1u << width) - 1u) << ((threadIdx.x & 31u) & ~(unsigned)(width - 1));
#pragma unroll
    for (int offset = width / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(mask, v, offset);
    if constexpr (G > 32) {
        __syncthreads(); /* every thread is done reading scratch from a previous call */
        if ((threadIdx.x & 31u) == 0) scratch[threadIdx.x / 32] = v;
        __syncthreads();
        v = 0.0;
#pragma unroll
        for (int w = 0; w < G / 32; w++) v += scratch[w];
    }
    return v;
}

/* ---- Forward --------------------------------------------------------------------------- */

template <int G>
static __global__ void __launch_bounds__(THREADS)
pixel_norm_forward_kernel(int64_t rows, int64_t channels, float eps, const float *x, float *y) {
    constexpr int rows_per_block = THREADS / G;
    __shared__ double scratch[G > 32 ? G / 32 : 1];
    int lane = threadIdx.x % G;
    for (int64_t row = (int64_t)blockIdx.x * rows_per_block + threadIdx.x / G; row < rows;
         row += (int64_t)gridDim.x * rows_per_block) {
        const float *xr = x + row * channels;
        float *yr = y + row * channels;
        double sum = 0.0;
        for (int64_t c = lane; c < channels; c += G) {
            double v = xr[c];
            sum += v * v;
        }
        sum = group_sum<G>(sum, scratch);
        float inv = (float)(1.0 / ((double)eps + sqrt(sum / (double)channels)));
        for (int64_t c = lane; c < channels; c += G) yr[c] = xr[c] * inv;
    }
}

static unsigned row_blocks(const ambient_cuda_context &ctx, int64_t rows, int group) {
    return ambient_cuda_blocks(rows, THREADS / group, ctx.sm_count, BLOCKS_PER_SM);
}

static cudaError_t pixel_norm_forward_launch(const ambient_cuda_context &ctx, int64_t rows,
                                             int64_t channels, float eps, const float *x, float *y) {
    if (channels <= 32)
        AMBIENT_LAUNCH(row_blocks(ctx, rows, 4), THREADS, 0, ctx.stream, pixel_norm_forward_kernel<4>)(
            rows, channels, eps, x, y);
    else if (channels <= 4096)
        AMBIENT_LAUNCH(row_blocks(ctx, rows, 32), THREADS, 0, ctx.stream, pixel_norm_forward_kernel<32>)(
            rows, channels, eps, x, y);
    else
        AMBIENT_LAUNCH(row_blocks(ctx, rows, THREADS), THREADS, 0, ctx.stream, pixel_norm_forward_kernel<THREADS>)(
            rows, channels, eps, x, y);
    return cudaGetLastError();
}

/* ---- Backward -------------------------------------------------------------------------- */

template <int G>
static __global__ void __launch_bounds__(THREADS)
pixel_norm_backward_kernel(int64_t rows, int64_t channels, float eps, const float *x,
                           const float *dy, float *dx) {
    constexpr int rows_per_block = THREADS / G;
    __shared__ double scratch_sum[G > 32 ? G / 32 : 1], scratch_dot[G > 32 ? G / 32 : 1];
    int lane = threadIdx.x % G;
    for (int64_t row = (int64_t)blockIdx.x * rows_per_block + threadIdx.x / G; row < rows;
         row += (int64_t)gridDim.x * rows_per_block) {
        const float *xr = x + row * channels, *gr = dy + row * channels;
        float *out = dx + row * channels;
        double sum = 0.0, dot = 0.0;
        for (int64_t c = lane; c < channels; c += G) {
            double v = xr[c];
            sum += v * v;
            dot += (double)gr[c] * v;
        }
        sum = group_sum<G>(sum, scratch_sum);
        dot = group_sum<G>(dot, scratch_dot);
        double r = sqrt(sum / (double)channels), d = (double)eps + r;
        float a = (float)(1.0 / d);
        float b = r > 0.0 ? (float)(dot / (d * d * (double)channels * r)) : 0.0f;
        for (int64_t c = lane; c < channels; c += G) out[c] = gr[c] * a - xr[c] * b;
    }
}

static cudaError_t pixel_norm_backward_launch(const ambient_cuda_context &ctx, int64_t rows,
                                              int64_t channels, float eps, const float *x,
                                              const float *dy, float *dx) {
    if (channels <= 32)
        AMBIENT_LAUNCH(row_blocks(ctx, rows, 4), THREADS, 0, ctx.stream, pixel_norm_backward_kernel<4>)(
            rows, channels, eps, x, dy, dx);
    else if (channels <= 4096)
        AMBIENT_LAUNCH(row_blocks(ctx, rows, 32), THREADS, 0, ctx.stream, pixel_norm_backward_kernel<32>)(
            rows, channels, eps, x, dy, dx);
    else
        AMBIENT_LAUNCH(row_blocks(ctx, rows, THREADS), THREADS, 0, ctx.stream, pixel_norm_backward_kernel<THREADS>)(
            rows, channels, eps, x, dy, dx);
    return cudaGetLastError();
}

/* ---- Entry points ------------------------------------------------------------------------ */

static int check_shape(const char *function, int64_t rows, int64_t channels, float eps) {
    AMBIENT_REQUIRE(rows >= 0 && channels >= 0, "%s: rows = %lld and channels = %lld must be non-negative",
                    function, (long long)rows, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || rows <= AMBIENT_MAX_COUNT / channels,
                    "%s: rows * channels = %lld * %lld is too large", function, (long long)rows,
                    (long long)channels);
    AMBIENT_REQUIRE(std::isfinite(eps) && eps > 0, "%s: eps = %g must be positive and finite",
                    function, (double)eps);
    return AMBIENT_STATUS_OK;
}

int ambient_pixel_norm_forward(int64_t rows, int64_t channels, float eps, const float *x,
                               float *y) {
    ambient_cuda_clear_error();
    int status = check_shape(__func__, rows, channels, eps);
    if (status) return status;
    if (rows == 0 || channels == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(y);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(pixel_norm_forward_launch(ctx, rows, channels, eps, x, y));
    return AMBIENT_STATUS_OK;
}

int ambient_pixel_norm_backward(int64_t rows, int64_t channels, float eps, const float *x,
                                const float *dy, float *dx) {
    ambient_cuda_clear_error();
    int status = check_shape(__func__, rows, channels, eps);
    if (status) return status;
    if (rows == 0 || channels == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(dx);
    int64_t bytes = rows * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(dx, bytes, x, bytes) && !ambient_overlaps(dx, bytes, dy, bytes),
                    "%s: dx overlaps x or dy", __func__);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(pixel_norm_backward_launch(ctx, rows, channels, eps, x, dy, dx));
    return AMBIENT_STATUS_OK;
}
