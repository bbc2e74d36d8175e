/*
 * The embedding path of EDM2 on the GPU (same formulas as cpu/embedding.c):
 *   MPFourier:      y[i, k] = sqrt(2) cos(x[i] freqs[k] + phases[k])       x: n, y: n x C
 *                   dx[i] = -sqrt(2) sum_k dy[i, k] freqs[k] sin(x[i] freqs[k] + phases[k])
 *                   argument and cosine in double, rounded once (as the CPU does)
 *   channel scale:  y[i, p, k] = x[i, p, k] (1 + s[i, k])                  x, y: n x P x C
 *                   dx = dy (1 + s),  ds[i, k] = sum_p dy[i, p, k] x[i, p, k]
 * Reductions are deterministic: MPFourier's backward gives each sample one warp (lanes over
 * channels in a fixed pattern, then a shuffle tree); channel scale's backward gives each block
 * 32 channels of one sample, 8 rows of threads over the pixels, each summing in double and in
 * pixel order, and the 8 partial sums are added in row order. dx is written in the same pass
 * (after reading dy, so dx may be dy).
 */
#include "internal.cuh"

#include <cmath>

#define SQRT2 1.4142135623730950488

/* ---- MPFourier ------------------------------------------------------------------------------ */

struct fourier_forward_op {
    int64_t channels;
    const float *x, *freqs, *phases;
    float *y;
    __device__ void operator()(int64_t e) const {
        int64_t i = e / channels, k = e % channels;
        y[e] = (float)(SQRT2 * cos((double)x[i] * freqs[k] + phases[k]));
    }
};

#define FOURIER_THREADS 256

static __global__ void __launch_bounds__(FOURIER_THREADS)
fourier_backward_kernel(int64_t n, int64_t channels, const float *x, const float *freqs,
                        const float *phases, const float *dy, float *dx) {
    const int lane = threadIdx.x & 31, warps = FOURIER_THREADS / 32;
    for (int64_t i = (int64_t)blockIdx.x * warps + threadIdx.x / 32; i < n; i += (int64_t)gridDim.x * warps) {
        double xi = x[i], sum = 0;
        const float *g = dy + i * channels;
        for (int64_t k = lane; k < channels; k += 32) sum += g[k] * (double)freqs[k] * sin(xi * freqs[k] + phases[k]);
#pragma unroll
        for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
        if (lane == 0) dx[i] = (float)(-SQRT2 * sum);
    }
}

static int fourier_check(const char *function, int64_t n, int64_t channels) {
    AMBIENT_REQUIRE(n >= 0 && channels >= 0, "%s: n = %lld and channels = %lld must be non-negative",
                    function, (long long)n, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || n <= AMBIENT_MAX_COUNT / channels,
                    "%s: n x channels = %lld x %lld is too large", function, (long long)n, (long long)channels);
    return AMBIENT_STATUS_OK;
}

int ambient_mp_fourier_forward(int64_t n, int64_t channels, const float *x, const float *freqs,
                               const float *phases, float *y) {
    ambient_cuda_clear_error();
    int status = fourier_check(__func__, n, channels);
    if (status) return status;
    if (n == 0 || channels == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(freqs);
    AMBIENT_REQUIRE_POINTER(phases);
    AMBIENT_REQUIRE_POINTER(y);
    int64_t ybytes = n * channels * (int64_t)sizeof(float), cbytes = channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(!ambient_overlaps(y, ybytes, x, n * (int64_t)sizeof(float)) &&
                        !ambient_overlaps(y, ybytes, freqs, cbytes) && !ambient_overlaps(y, ybytes, phases, cbytes),
                    "%s: y overlaps x, freqs or phases", __func__);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, n * channels, fourier_forward_op{channels, x, freqs, phases, y}));
    return AMBIENT_STATUS_OK;
}

int ambient_mp_fourier_backward(int64_t n, int64_t channels, const float *x, const float *freqs,
                                const float *phases, const float *dy, float *dx) {
    ambient_cuda_clear_error();
    int status = fourier_check(__func__, n, channels);
    if (status) return status;
    if (n == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dx);
    int64_t xbytes = n * (int64_t)sizeof(float), cbytes = channels * (int64_t)sizeof(float);
    if (channels == 0) { /* an empty sum */
        AMBIENT_REQUIRE(!ambient_overlaps(dx, xbytes, x, xbytes), "%s: dx overlaps x", __func__);
        ambient_cuda_context ctx;
        status = ambient_cuda_begin(__func__, &ctx);
        if (status) return status;
        AMBIENT_CUDA_CHECK(cudaMemsetAsync(dx, 0, (size_t)xbytes, ctx.stream));
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE_POINTER(freqs);
    AMBIENT_REQUIRE_POINTER(phases);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE(!ambient_overlaps(dx, xbytes, x, xbytes) && !ambient_overlaps(dx, xbytes, dy, n * cbytes) &&
                        !ambient_overlaps(dx, xbytes, freqs, cbytes) && !ambient_overlaps(dx, xbytes, phases, cbytes),
                    "%s: dx overlaps x, dy, freqs or phases", __func__);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    unsigned blocks = ambient_cuda_blocks(n, FOURIER_THREADS / 32, ctx.sm_count, 8);
    AMBIENT_LAUNCH(blocks, FOURIER_THREADS, 0, ctx.stream, fourier_backward_kernel)(
        n, channels, x, freqs, phases, dy, dx);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    return AMBIENT_STATUS_OK;
}

/* ---- Channel scaling -------------------------------------------------------------------------- */

/* y = x (1 + s), then mp_silu when silu (the fused form, see ambient.h) */
struct scale_forward_op {
    int64_t positions, channels;
    bool silu;
    const float *x, *s;
    float *y;
    __device__ void operator()(int64_t e) const {
        int64_t k = e % channels, i = e / channels / positions;
        float u = x[e] * (1.0f + s[i * channels + k]);
        y[e] = silu ? ambient_mp_silu(u) : u;
    }
};

#define SCALE_LANES 32
#define SCALE_ROWS 8

/* Block (channel block, sample): 32 channels x 8 rows of threads over the pixels. */
static __global__ void __launch_bounds__(SCALE_LANES * SCALE_ROWS)
scale_backward_kernel(int64_t positions, int64_t channels, bool silu, const float *x, const float *s,
                      const float *dy, float *dx, float *ds) {
    __shared__ double partial[SCALE_ROWS][SCALE_LANES];
    const int lane = threadIdx.x % SCALE_LANES, row = threadIdx.x / SCALE_LANES;
    const int64_t i = blockIdx.y, k = (int64_t)blockIdx.x * SCALE_LANES + lane;
    double acc = 0;
    if (k < channels) {
        float factor = 1.0f + s[i * channels + k];
        const int64_t base = i * positions * channels + k;
        for (int64_t p = row; p < positions; p += SCALE_ROWS) {
            int64_t e = base + p * channels;
            float xv = x[e], g = silu ? ambient_mp_silu_grad(xv * factor, dy[e]) : dy[e];
            acc += (double)g * xv;
            dx[e] = g * factor; /* after reading dy: dx may be dy */
        }
    }
    partial[row][lane] = acc;
    __syncthreads();
    if (row == 0 && k < channels) {
        double sum = 0;
        for (int r = 0; r < SCALE_ROWS; r++) sum += partial[r][lane];
        ds[i * channels + k] = (float)sum;
    }
}

static int scale_check(const char *function, int64_t n, int64_t positions, int64_t channels) {
    AMBIENT_REQUIRE(n >= 0 && positions >= 0 && channels >= 0,
                    "%s: n = %lld, positions = %lld and channels = %lld must be non-negative", function,
                    (long long)n, (long long)positions, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || positions == 0 ||
                        (positions <= AMBIENT_MAX_COUNT / channels && n <= AMBIENT_MAX_COUNT / (positions * channels)),
                    "%s: n x positions x channels = %lld x %lld x %lld is too large", function, (long long)n,
                    (long long)positions, (long long)channels);
    AMBIENT_REQUIRE(channels == 0 || n <= AMBIENT_MAX_COUNT / channels, "%s: n x channels = %lld x %lld is too large",
                    function, (long long)n, (long long)channels);
    return AMBIENT_STATUS_OK;
}

static int scale_forward(const char *function, bool silu, int64_t n, int64_t positions, int64_t channels,
                         const float *x, const float *s, float *y) {
    int status = scale_check(function, n, positions, channels);
    if (status) return status;
    int64_t count = n * positions * channels;
    if (count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE(x != NULL, "%s: x is NULL", function);
    AMBIENT_REQUIRE(s != NULL, "%s: s is NULL", function);
    AMBIENT_REQUIRE(y != NULL, "%s: y is NULL", function);
    int64_t bytes = count * (int64_t)sizeof(float), sbytes = n * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(x == y || !ambient_overlaps(y, bytes, x, bytes), "%s: y partly overlaps x", function);
    AMBIENT_REQUIRE(!ambient_overlaps(y, bytes, s, sbytes), "%s: y overlaps s", function);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(function, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK_AS(function, ambient_for_each(ctx, count, scale_forward_op{positions, channels, silu, x, s, y}));
    return AMBIENT_STATUS_OK;
}

int ambient_channel_scale_forward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                  const float *s, float *y) {
    ambient_cuda_clear_error();
    return scale_forward(__func__, false, n, positions, channels, x, s, y);
}

int ambient_channel_scale_silu_forward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                       const float *s, float *y) {
    ambient_cuda_clear_error();
    return scale_forward(__func__, true, n, positions, channels, x, s, y);
}

static int scale_backward(const char *function, bool silu, int64_t n, int64_t positions, int64_t channels,
                          const float *x, const float *s, const float *dy, float *dx, float *ds) {
    int status = scale_check(function, n, positions, channels);
    if (status) return status;
    if (n == 0 || channels == 0) return AMBIENT_STATUS_OK;
    int64_t count = n * positions * channels, sbytes = n * channels * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(s != NULL, "%s: s is NULL", function);
    AMBIENT_REQUIRE(ds != NULL, "%s: ds is NULL", function);
    AMBIENT_REQUIRE(!ambient_overlaps(ds, sbytes, s, sbytes), "%s: ds overlaps s", function);
    ambient_cuda_context ctx;
    if (positions == 0) { /* sums over no pixels */
        status = ambient_cuda_begin(function, &ctx);
        if (status) return status;
        AMBIENT_CUDA_CHECK_AS(function, cudaMemsetAsync(ds, 0, (size_t)sbytes, ctx.stream));
        return AMBIENT_STATUS_OK;
    }
    AMBIENT_REQUIRE(x != NULL, "%s: x is NULL", function);
    AMBIENT_REQUIRE(dy != NULL, "%s: dy is NULL", function);
    AMBIENT_REQUIRE(dx != NULL, "%s: dx is NULL", function);
    int64_t bytes = count * (int64_t)sizeof(float);
    AMBIENT_REQUIRE(dx == dy || !ambient_overlaps(dx, bytes, dy, bytes), "%s: dx partly overlaps dy", function);
    AMBIENT_REQUIRE(!ambient_overlaps(dx, bytes, x, bytes) && !ambient_overlaps(dx, bytes, s, sbytes) &&
                        !ambient_overlaps(dx, bytes, ds, sbytes),
                    "%s: dx overlaps x, s or ds", function);
    AMBIENT_REQUIRE(!ambient_overlaps(ds, sbytes, x, bytes) && !ambient_overlaps(ds, sbytes, dy, bytes),
                    "%s: ds overlaps x or dy", function);
    status = ambient_cuda_begin(function, &ctx);
    if (status) return status;
    /* grid.y covers at most 65535 samples: larger batches take several launches. */
    for (int64_t i0 = 0; i0 < n; i0 += 65535) {
        int64_t samples = n - i0 < 65535 ? n - i0 : 65535, off = i0 * positions * channels;
        dim3 grid((unsigned)((channels + SCALE_LANES - 1) / SCALE_LANES), (unsigned)samples);
        AMBIENT_LAUNCH(grid, SCALE_LANES * SCALE_ROWS, 0, ctx.stream, scale_backward_kernel)(
            positions, channels, silu, x + off, s + i0 * channels, dy + off, dx + off, ds + i0 * channels);
        AMBIENT_CUDA_CHECK_AS(function, cudaGetLastError());
    }
    return AMBIENT_STATUS_OK;
}

int ambient_channel_scale_backward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                   const float *s, const float *dy, float *dx, float *ds) {
    ambient_cuda_clear_error();
    return scale_backward(__func__, false, n, positions, channels, x, s, dy, dx, ds);
}

int ambient_channel_scale_silu_backward(int64_t n, int64_t positions, int64_t channels, const float *x,
                                        const float *s, const float *dy, float *dx, float *ds) {
    ambient_cuda_clear_error();
    return scale_backward(__func__, true, n, positions, channels, x, s, dy, dx, ds);
}
