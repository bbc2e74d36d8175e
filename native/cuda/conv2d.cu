/*
 * 2-D convolution of EDM2's MPConv layers on the GPU: NHWC float32, stride 1, square kernel 1
 * or 3 with "same" zero padding, weight OHWI (c_out x k x k x c_in); same semantics as
 * cpu/conv2d.c. Every pass is one matrix product over "patches" (the patch of pixel p is the
 * T * C values its T = k^2 taps read, tap-major, zero outside the image), M = n h w pixels:
 *   forward          y[M, c_out]      = patches(x)[M, T c_in] W^T         B[k, o] = W[o, k]
 *   backward_input   dx[M, c_in]      = patches(dy)[M, T c_out] W'        W'[(t, o), i] = W[o, T-1-t, i]
 *   backward_weight  dW[c_out, T c_in] = dy^T[c_out, M] patches(x)[M, T c_in]
 * Implicit GEMM: patches are never stored; the tile loaders read them straight from the NHWC
 * tensor. The precision is AMBIENT_CUDA_MATMUL's (read once per process, library.cu), as for
 * ambient_gemm:
 *   bf16 (default)  tensor cores, mma.sync m16n8k16 with bf16 operands, float32 accumulation:
 *                   the block of mma.cuh over the sources of conv2d_operands.cuh (x, dy and W
 *                   are rounded to bf16 as they are staged into shared memory), 128 x 128
 *                   tiles with 8 warps, or 64 x 64 with 4 warps when 128-tiles would not give
 *                   every SM one; results differ from float32 by ~2e-3 of their rms
 *   tf32            the same with mma.sync m16n8k8 on tf32 operands, ~3e-4 of the rms
 *   fp32            the float32 SIMT kernel below (conv_kernel), the exact path
 * The tensor-core path covers fewer than 2^31 pixels per call (its pixel coordinates use
 * 32-bit division by constants); larger calls are refused with a message (fp32 takes them).
 * It was compiled for sm_80 and sm_90 but has never run on a GPU: the host emulation of
 * native/tests/test_cuda_mma.cu checks its sources, staging and fragments against a direct
 * float64 convolution, and native/tests/test_parity.c is what checks it on a GPU.
 *
 * SIMT float32, one kernel, three modes: a block computes a 64 x 64 tile of the output with 256 threads
 * (4 x 4 outputs each, rows ty + 16 i, columns tx + 16 j), walking the reduction in slices of
 * 16 that are staged in shared memory (A k-major, B k-major, padded by one float against bank
 * conflicts). Loads follow memory order (consecutive threads on consecutive channels), every
 * load is bounds-checked, so any size works. The pixel coordinates a tile needs are computed
 * once per tile (forward, input gradient) or per slice (weight gradient) into shared memory.
 *
 * The weight gradient reduces over all M pixels while its output is small, so the pixels are
 * split into `splits` ranges (a function of the sizes only, so results do not depend on the
 * GPU; conv_weight_splits): each range's partial product goes to the scratch block and a
 * second kernel adds the ranges in order and applies beta (deterministic), in every precision.
 * beta == 0 never reads the output.
 *
 * Not yet here: double buffering in the SIMT kernel, the Winograd transform the CPU uses,
 * Hopper's wgmma. This file was compiled, not yet run on a GPU: the parity harness checks it
 * there.
 */
#include "conv2d_operands.cuh"
#include "internal.cuh"

#include <cmath>

#define SIMT_BM 64
#define SIMT_BN 64
#define SIMT_BK 16
#define SIMT_THREADS 256

struct conv_args {
    const float *src;    /* patch source: x (forward, weight) or dy (input) */
    const float *weight; /* forward, input */
    const float *dy;     /* weight: the A operand */
    float *out;          /* y, dx, dweight or the split partials */
    float beta;
    int64_t m, n;        /* output rows and columns */
    int64_t reduce;      /* reduction length: T * C (forward, input) or pixels (weight) */
    int64_t h, w, c_in, c_out;
    int64_t chunk;       /* weight: pixels per split (a multiple of SIMT_BK) */
    int partial;         /* weight with splits > 1: write raw products to out + z m n */
};

template <int MODE, int KS>
static __global__ void __launch_bounds__(SIMT_THREADS)
conv_kernel(conv_args a) {
    constexpr int T = KS * KS, PAD = KS / 2;
    __shared__ float As[SIMT_BK][SIMT_BM + 1];
    __shared__ float Bs[SIMT_BK][SIMT_BN + 1];
    __shared__ int pix_y[SIMT_BM > SIMT_BK ? SIMT_BM : SIMT_BK], pix_x[SIMT_BM > SIMT_BK ? SIMT_BM : SIMT_BK];

    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t m0 = (int64_t)blockIdx.x * SIMT_BM, n0 = (int64_t)blockIdx.y * SIMT_BN;
    /* the channels of the patch source and of the tensor the pixels index */
    const int64_t csrc = MODE == CONV_INPUT ? a.c_out : a.c_in;
    int64_t r_begin = 0, r_end = a.reduce;
    if (MODE == CONV_WEIGHT) {
        r_begin = (int64_t)blockIdx.z * a.chunk;
        r_end = r_begin + a.chunk < a.reduce ? r_begin + a.chunk : a.reduce;
    }

    if (MODE != CONV_WEIGHT && tid < SIMT_BM) { /* output pixels of this tile */
        int64_t p = m0 + tid;
        pix_x[tid] = p < a.m ? (int)(p % a.w) : -(1 << 29);
        pix_y[tid] = p < a.m ? (int)((p / a.w) % a.h) : -(1 << 29);
    }

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int64_t r0 = r_begin; r0 < r_end; r0 += SIMT_BK) {
        if (MODE == CONV_WEIGHT) {
            __syncthreads(); /* the previous slice's pixel coordinates are no longer read */
            if (tid < SIMT_BK) {
                int64_t p = r0 + tid;
                pix_x[tid] = p < r_end ? (int)(p % a.w) : -(1 << 29);
                pix_y[tid] = p < r_end ? (int)((p / a.w) % a.h) : -(1 << 29);
            }
        }
        __syncthreads(); /* coordinates visible; the previous slice's tiles are no longer read */
#pragma unroll
        for (int q = 0; q < SIMT_BM * SIMT_BK / SIMT_THREADS; q++) {
            const int l = tid + q * SIMT_THREADS;
            if (MODE == CONV_WEIGHT) {
                /* A[o, p] = dy[p, o]: consecutive threads on consecutive o */
                int mm = l % SIMT_BM, kk = l / SIMT_BM;
                int64_t o = m0 + mm, p = r0 + kk;
                As[kk][mm] = (o < a.m && p < r_end) ? a.dy[p * a.c_out + o] : 0.0f;
                /* B[p, k] = patches(x)[p, k]: consecutive threads on consecutive k */
                int nn = l % SIMT_BN;
                int64_t k = n0 + nn;
                float v = 0.0f;
                if (k < a.n) {
                    int t = (int)(k / csrc);
                    int64_t c = k - (int64_t)t * csrc;
                    int dy = t / KS - PAD, dx = t % KS - PAD;
                    int yy = pix_y[kk] + dy, xx = pix_x[kk] + dx;
                    if (yy >= 0 && yy < a.h && xx >= 0 && xx < a.w)
                        v = a.src[(p + (int64_t)dy * a.w + dx) * csrc + c];
                }
                Bs[kk][nn] = v;
            } else {
                /* A[p, k] = patches(src)[p, k]: consecutive threads on consecutive k */
                int kk = l % SIMT_BK, mm = l / SIMT_BK;
                int64_t k = r0 + kk;
                float v = 0.0f;
                if (k < r_end) {
                    int t = (int)(k / csrc);
                    int64_t c = k - (int64_t)t * csrc;
                    int dy = t / KS - PAD, dx = t % KS - PAD;
                    int yy = pix_y[mm] + dy, xx = pix_x[mm] + dx;
                    if (yy >= 0 && yy < a.h && xx >= 0 && xx < a.w)
                        v = a.src[(m0 + mm + (int64_t)dy * a.w + dx) * csrc + c];
                }
                As[kk][mm] = v;
                if (MODE == CONV_FORWARD) {
                    /* B[k, o] = W[o, k]: consecutive threads on consecutive k */
                    int64_t o = n0 + mm;
                    Bs[kk][mm] = (k < r_end && o < a.n) ? a.weight[o * a.reduce + k] : 0.0f;
                } else {
                    /* B[(t, o), i] = W[o, T-1-t, i]: consecutive threads on consecutive i */
                    int nn = l % SIMT_BN, kb = l / SIMT_BN;
                    int64_t kb_k = r0 + kb, i = n0 + nn;
                    float b = 0.0f;
                    if (kb_k < r_end && i < a.n) {
                        int t = (int)(kb_k / a.c_out);
                        int64_t o = kb_k - (int64_t)t * a.c_out;
                        b = a.weight[(o * T + (T - 1 - t)) * a.c_in + i];
                    }
                    Bs[kb][nn] = b;
                }
            }
        }
        __syncthreads();
#pragma unroll
        for (int kk = 0; kk < SIMT_BK; kk++) {
            float av[4], bv[4];
#pragma unroll
            for (int i = 0; i < 4; i++) av[i] = As[kk][ty + 16 * i];
#pragma unroll
            for (int j = 0; j < 4; j++) bv[j] = Bs[kk][tx + 16 * j];
#pragma unroll
            for (int i = 0; i < 4; i++)
#pragma unroll
                for (int j = 0; j < 4; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
        }
    }

    float *out = a.out + (a.partial ? (int64_t)blockIdx.z * a.m * a.n : 0);
#pragma unroll
    for (int i = 0; i < 4; i++) {
        int64_t row = m0 + ty + 16 * i;
        if (row >= a.m) continue;
#pragma unroll
        for (int j = 0; j < 4; j++) {
            int64_t col = n0 + tx + 16 * j;
            if (col >= a.n) continue;
            float *o = out + row * a.n + col;
            *o = (a.partial || a.beta == 0.0f) ? acc[i][j] : acc[i][j] + a.beta * *o;
        }
    }
}

/* dweight[e] = sum over splits of partial[s][e] (in split order) + beta dweight[e]. */
struct split_sum_op {
    int64_t count;
    int splits;
    const float *partial;
    float beta;
    float *out;
    __device__ void operator()(int64_t e) const {
        float sum = 0.0f;
        for (int s = 0; s < splits; s++) sum += partial[s * count + e];
        out[e] = beta == 0.0f ? sum : sum + beta * out[e];
    }
};

template <int MODE>
static cudaError_t conv_launch(const ambient_cuda_context &ctx, int64_t kernel, const conv_args &a, int splits) {
    dim3 grid((unsigned)((a.m + SIMT_BM - 1) / SIMT_BM), (unsigned)((a.n + SIMT_BN - 1) / SIMT_BN), (unsigned)splits);
    if (kernel == 1) AMBIENT_LAUNCH(grid, SIMT_THREADS, 0, ctx.stream, conv_kernel<MODE, 1>)(a);
    else AMBIENT_LAUNCH(grid, SIMT_THREADS, 0, ctx.stream, conv_kernel<MODE, 3>)(a);
    return cudaGetLastError();
}

/* ---- Tensor cores ---------------------------------------------------------------------------- */

/* One output tile of one pass: the block of mma.cuh over the pass's two sources. */
template <int P, class CFG, int MODE>
static __global__ void __launch_bounds__(CFG::THREADS) conv_mma_kernel(conv_mma_args a) {
    const int64_t m0 = (int64_t)blockIdx.x * CFG::BM, n0 = (int64_t)blockIdx.y * CFG::BN;
    __shared__ __align__(16) uint32_t smem[mma_block_shared<CFG>::WORDS];
    conv_mma_pass<MODE>(a, blockIdx.z, [&](const auto &src_a, const auto &src_b, const mma_output &out,
                                           int64_t k_begin, int64_t k_end) {
        mma_block_tile<P, CFG>(src_a, src_b, out, m0, n0, k_begin, k_end, threadIdx.x, smem);
    });
}

template <int P, class CFG, int MODE>
static cudaError_t conv_mma_launch_config(const ambient_cuda_context &ctx, const conv_mma_args &a, int splits) {
    dim3 grid((unsigned)((a.m + CFG::BM - 1) / CFG::BM), (unsigned)((a.n + CFG::BN - 1) / CFG::BN), (unsigned)splits);
    AMBIENT_LAUNCH(grid, CFG::THREADS, 0, ctx.stream, conv_mma_kernel<P, CFG, MODE>)(a);
    return cudaGetLastError();
}

/* 128-tiles (one block of 8 warps per SM) when every SM gets at least one, 64-tiles otherwise. */
template <int MODE>
static cudaError_t conv_mma_launch(const ambient_cuda_context &ctx, const conv_mma_args &a, int splits) {
    double large = (double)((a.m + 127) / 128) * (double)((a.n + 127) / 128) * splits;
    bool big = large >= ctx.sm_count;
    if (ctx.precision == AMBIENT_MATMUL_TF32)
        return big ? conv_mma_launch_config<AMBIENT_MATMUL_TF32, mma_config_large, MODE>(ctx, a, splits)
                   : conv_mma_launch_config<AMBIENT_MATMUL_TF32, mma_config_small, MODE>(ctx, a, splits);
    return big ? conv_mma_launch_config<AMBIENT_MATMUL_BF16, mma_config_large, MODE>(ctx, a, splits)
               : conv_mma_launch_config<AMBIENT_MATMUL_BF16, mma_config_small, MODE>(ctx, a, splits);
}

/* The tensor-core path's limit: pixel indices go through 32-bit division. */
static int require_mma_pixels(const char *function, const ambient_cuda_context &ctx, int64_t pixels) {
    if (ctx.precision == AMBIENT_MATMUL_FP32 || pixels <= INT64_C(2147483647)) return AMBIENT_STATUS_OK;
    return ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT,
                             "%s: n x h x w = %lld pixels is more than the tensor-core convolution takes in one call "
                             "(2^31 - 1); split the batch, or set %s=fp32",
                             function, (long long)pixels, AMBIENT_CUDA_MATMUL_VARIABLE);
}

/* ---- Entry points (the CPU backend's checks) ------------------------------------------------ */

static int check_conv(const char *function, int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out,
                      int64_t kernel, float beta, int64_t *m) {
    const struct {
        const char *name;
        int64_t value;
    } sizes[] = {{"n", n}, {"h", h}, {"w", w}, {"c_in", c_in}, {"c_out", c_out}};
    for (int i = 0; i < 5; i++)
        AMBIENT_REQUIRE(sizes[i].value >= 0 && sizes[i].value <= AMBIENT_MAX_COUNT, "%s: %s = %lld is %s", function,
                        sizes[i].name, (long long)sizes[i].value, sizes[i].value < 0 ? "negative" : "too large");
    AMBIENT_REQUIRE(kernel == 1 || kernel == 3, "%s: kernel = %lld is not supported (1 or 3)", function,
                    (long long)kernel);
    AMBIENT_REQUIRE(std::isfinite(beta), "%s: beta = %g is not finite", function, (double)beta);
    int64_t px, c_max = c_in > c_out ? c_in : c_out, e;
    bool ovf = __builtin_mul_overflow(n, h, &px) || __builtin_mul_overflow(px, w, &px) ||
               __builtin_mul_overflow(px, c_max, &e) || e > AMBIENT_MAX_COUNT ||
               __builtin_mul_overflow(c_in * kernel * kernel, c_out, &e) || e > AMBIENT_MAX_COUNT;
    AMBIENT_REQUIRE(!ovf, "%s: n x h x w x c = %lld x %lld x %lld x %lld (or the weight, %lld x %lld x %lld x %lld) is too large",
                    function, (long long)n, (long long)h, (long long)w, (long long)c_max, (long long)c_out,
                    (long long)kernel, (long long)kernel, (long long)c_in);
    /* What one launch covers: pixel coordinates are int, grid.x < 2^31 tiles, grid.y < 65536. */
    AMBIENT_REQUIRE(h < (1 << 28) && w < (1 << 28) && (px + SIMT_BM - 1) / SIMT_BM < INT64_C(2147483647) &&
                        (c_max * kernel * kernel + SIMT_BN - 1) / SIMT_BN < 65536 && (c_out + SIMT_BM - 1) / SIMT_BM < INT64_C(2147483647),
                    "%s: n x h x w x c = %lld x %lld x %lld x %lld is larger than this backend's launches cover",
                    function, (long long)n, (long long)h, (long long)w, (long long)c_max);
    *m = px;
    return AMBIENT_STATUS_OK;
}

#define F ((int64_t)sizeof(float))
#define REQUIRE_DISJOINT(out, out_count, in, in_count)                                                          \
    AMBIENT_REQUIRE(!ambient_overlaps(out, (out_count) * F, in, (in_count) * F), "%s: %s = %p overlaps %s = %p", \
                    __func__, #out, (void *)(out), #in, (const void *)(in))

/* out = beta * out over count elements (a pass with nothing to multiply). */
static int scale_only(const char *function, int64_t count, float beta, float *out) {
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(function, &ctx);
    if (status) return status;
    if (beta != 1.0f) AMBIENT_CUDA_CHECK_AS(function, ambient_for_each(ctx, count, ambient_scale_op{out, beta}));
    return AMBIENT_STATUS_OK;
}

int ambient_conv2d_forward(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kernel,
                           const float *x, const float *weight, float beta, float *y) {
    ambient_cuda_clear_error();
    int64_t m = 0;
    int status = check_conv(__func__, n, h, w, c_in, c_out, kernel, beta, &m);
    if (status) return status;
    int64_t y_count = m * c_out, x_count = m * c_in, w_count = c_out * kernel * kernel * c_in;
    if (y_count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(y);
    if (c_in == 0) return scale_only(__func__, y_count, beta, y);
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(weight);
    REQUIRE_DISJOINT(y, y_count, x, x_count);
    REQUIRE_DISJOINT(y, y_count, weight, w_count);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    status = require_mma_pixels(__func__, ctx, m);
    if (status) return status;
    conv_args a{x, weight, nullptr, y, beta, m, c_out, kernel * kernel * c_in, h, w, c_in, c_out, 0, 0};
    if (ctx.precision == AMBIENT_MATMUL_FP32) AMBIENT_CUDA_CHECK(conv_launch<CONV_FORWARD>(ctx, kernel, a, 1));
    else
        AMBIENT_CUDA_CHECK(conv_mma_launch<CONV_FORWARD>(
            ctx, conv_mma_args_make(CONV_FORWARD, m, h, w, c_in, c_out, kernel, x, nullptr, weight, y, beta, 0, false), 1));
    return AMBIENT_STATUS_OK;
}

int ambient_conv2d_backward_input(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kernel,
                                  const float *dy, const float *weight, float beta, float *dx) {
    ambient_cuda_clear_error();
    int64_t m = 0;
    int status = check_conv(__func__, n, h, w, c_in, c_out, kernel, beta, &m);
    if (status) return status;
    int64_t dx_count = m * c_in, dy_count = m * c_out, w_count = c_out * kernel * kernel * c_in;
    if (dx_count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dx);
    if (c_out == 0) return scale_only(__func__, dx_count, beta, dx);
    AMBIENT_REQUIRE_POINTER(dy);
    AMBIENT_REQUIRE_POINTER(weight);
    REQUIRE_DISJOINT(dx, dx_count, dy, dy_count);
    REQUIRE_DISJOINT(dx, dx_count, weight, w_count);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    status = require_mma_pixels(__func__, ctx, m);
    if (status) return status;
    conv_args a{dy, weight, nullptr, dx, beta, m, c_in, kernel * kernel * c_out, h, w, c_in, c_out, 0, 0};
    if (ctx.precision == AMBIENT_MATMUL_FP32) AMBIENT_CUDA_CHECK(conv_launch<CONV_INPUT>(ctx, kernel, a, 1));
    else
        AMBIENT_CUDA_CHECK(conv_mma_launch<CONV_INPUT>(
            ctx, conv_mma_args_make(CONV_INPUT, m, h, w, c_in, c_out, kernel, nullptr, dy, weight, dx, beta, 0, false), 1));
    return AMBIENT_STATUS_OK;
}

int ambient_conv2d_backward_weight(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t kernel,
                                   const float *x, const float *dy, float beta, float *dweight) {
    ambient_cuda_clear_error();
    int64_t m = 0;
    int status = check_conv(__func__, n, h, w, c_in, c_out, kernel, beta, &m);
    if (status) return status;
    int64_t k_cols = kernel * kernel * c_in, w_count = c_out * k_cols, x_count = m * c_in, dy_count = m * c_out;
    if (w_count == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(dweight);
    if (m == 0) return scale_only(__func__, w_count, beta, dweight);
    AMBIENT_REQUIRE_POINTER(x);
    AMBIENT_REQUIRE_POINTER(dy);
    REQUIRE_DISJOINT(dweight, w_count, x, x_count);
    REQUIRE_DISJOINT(dweight, w_count, dy, dy_count);
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    status = require_mma_pixels(__func__, ctx, m);
    if (status) return status;
    const bool simt = ctx.precision == AMBIENT_MATMUL_FP32;
    /* Splits of the pixel range: a function of the sizes alone (deterministic on every GPU),
     * in whole slices of the kernel that runs. */
    int64_t splits = 1, chunk = 0;
    conv_weight_splits(m, w_count, simt ? SIMT_BK : mma_precision<AMBIENT_MATMUL_BF16>::SLICE_K, &splits, &chunk);
    conv_args a{x, nullptr, dy, dweight, beta, c_out, k_cols, m, h, w, c_in, c_out, chunk, splits > 1};
    ambient_cuda_scratch scratch(ctx);
    if (splits > 1) {
        void *partial = nullptr;
        status = scratch.take(__func__, splits * w_count * F, &partial);
        if (status) return status;
        a.out = (float *)partial;
    }
    if (simt) AMBIENT_CUDA_CHECK(conv_launch<CONV_WEIGHT>(ctx, kernel, a, (int)splits));
    else
        AMBIENT_CUDA_CHECK(conv_mma_launch<CONV_WEIGHT>(
            ctx, conv_mma_args_make(CONV_WEIGHT, m, h, w, c_in, c_out, kernel, x, dy, nullptr, a.out, beta, chunk, splits > 1),
            (int)splits));
    if (splits > 1)
        AMBIENT_CUDA_CHECK(ambient_for_each(ctx, w_count, split_sum_op{w_count, (int)splits, (const float *)a.out, beta, dweight}));
    return AMBIENT_STATUS_OK;
}
