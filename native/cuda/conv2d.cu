/*
 * 2-D convolution of EDM2's MPConv layers on the GPU: NHWC float32, stride 1, square kernel 1
 * or 3 with "same" zero padding, weight OHWI (c_out x k x k x c_in); same semantics as
 * cpu/conv2d.c. Every pass is one matrix product over "patches" (the patch of pixel p is the
 * T * C values its T = k^2 taps read, tap-major, zero outside the image), M = n h w pixels:
 *   forward          y[M, c_out]      = patches(x)[M, T c_in] W^T         B[k, o] = W[o, k]
 *   backward_input   dx[M, c_in]      = patches(dy)[M, T c_out] W'        W'[(t, o), i] = W[o, T-1-t, i]
 *   backward_weight  dW[c_out, T c_in] = dy^T[c_out, M] patches(x)[M, T c_in]
 * Implicit GEMM: patches are never stored; the tile loaders read them straight from the NHWC
 * tensor. Plain float32 FMA (no TF32: results match the CPU to float32 rounding).
 *
 * One kernel, three modes: a block computes a 64 x 64 tile of the output with 256 threads
 * (4 x 4 outputs each, rows ty + 16 i, columns tx + 16 j), walking the reduction in slices of
 * 16 that are staged in shared memory (A k-major, B k-major, padded by one float against bank
 * conflicts). Loads follow memory order (consecutive threads on consecutive channels), every
 * load is bounds-checked, so any size works. The pixel coordinates a tile needs are computed
 * once per tile (forward, input gradient) or per slice (weight gradient) into shared memory.
 *
 * The weight gradient reduces over all M pixels while its output is small, so the pixels are
 * split into `splits` ranges (a function of M only, so results do not depend on the GPU): each
 * range's partial product goes to the scratch block and a second kernel adds the ranges in
 * order and applies beta (deterministic). beta == 0 never reads the output.
 *
 * Not yet here: tensor cores (TF32/BF16 mma), double buffering, the Winograd transform the CPU
 * uses. This file was compiled, not yet run on a GPU: the parity harness checks it there.
 */
#include "internal.cuh"

#include <cmath>

#define BM 64
#define BN 64
#define BK 16
#define THREADS 256
/* The weight gradient: about this many pixels per split, at most MAX_SPLITS splits. */
#define SPLIT_PIXELS 1024
#define MAX_SPLITS 64
/* ... and at most this many floats of partial products in the scratch block. */
#define MAX_PARTIAL_FLOATS (INT64_C(1) << 24)

enum { CONV_FORWARD = 0, CONV_INPUT = 1, CONV_WEIGHT = 2 };

struct conv_args {
    const float *src;    /* patch source: x (forward, weight) or dy (input) */
    const float *weight; /* forward, input */
    const float *dy;     /* weight: the A operand */
    float *out;          /* y, dx, dweight or the split partials */
    float beta;
    int64_t m, n;        /* output rows and columns */
    int64_t reduce;      /* reduction length: T * C (forward, input) or pixels (weight) */
    int64_t h, w, c_in, c_out;
    int64_t chunk;       /* weight: pixels per split (a multiple of BK) */
    int partial;         /* weight with splits > 1: write raw products to out + z m n */
};

template <int MODE, int KS>
static __global__ void __launch_bounds__(THREADS)
conv_kernel(conv_args a) {
    constexpr int T = KS * KS, PAD = KS / 2;
    __shared__ float As[BK][BM + 1];
    __shared__ float Bs[BK][BN + 1];
    __shared__ int pix_y[BM > BK ? BM : BK], pix_x[BM > BK ? BM : BK];

    const int tid = threadIdx.x, tx = tid % 16, ty = tid / 16;
    const int64_t m0 = (int64_t)blockIdx.x * BM, n0 = (int64_t)blockIdx.y * BN;
    /* the channels of the patch source and of the tensor the pixels index */
    const int64_t csrc = MODE == CONV_INPUT ? a.c_out : a.c_in;
    int64_t r_begin = 0, r_end = a.reduce;
    if (MODE == CONV_WEIGHT) {
        r_begin = (int64_t)blockIdx.z * a.chunk;
        r_end = r_begin + a.chunk < a.reduce ? r_begin + a.chunk : a.reduce;
    }

    if (MODE != CONV_WEIGHT && tid < BM) { /* output pixels of this tile */
        int64_t p = m0 + tid;
        pix_x[tid] = p < a.m ? (int)(p % a.w) : -(1 << 29);
        pix_y[tid] = p < a.m ? (int)((p / a.w) % a.h) : -(1 << 29);
    }

    float acc[4][4];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) acc[i][j] = 0.0f;

    for (int64_t r0 = r_begin; r0 < r_end; r0 += BK) {
        if (MODE == CONV_WEIGHT) {
            __syncthreads(); /* the previous slice's pixel coordinates are no longer read */
            if (tid < BK) {
                int64_t p = r0 + tid;
                pix_x[tid] = p < r_end ? (int)(p % a.w) : -(1 << 29);
                pix_y[tid] = p < r_end ? (int)((p / a.w) % a.h) : -(1 << 29);
            }
        }
        __syncthreads(); /* coordinates visible; the previous slice's tiles are no longer read */
#pragma unroll
        for (int q = 0; q < BM * BK / THREADS; q++) {
            const int l = tid + q * THREADS;
            if (MODE == CONV_WEIGHT) {
                /* A[o, p] = dy[p, o]: consecutive threads on consecutive o */
                int mm = l % BM, kk = l / BM;
                int64_t o = m0 + mm, p = r0 + kk;
                As[kk][mm] = (o < a.m && p < r_end) ? a.dy[p * a.c_out + o] : 0.0f;
                /* B[p, k] = patches(x)[p, k]: consecutive threads on consecutive k */
                int nn = l % BN;
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
                int kk = l % BK, mm = l / BK;
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
                    int nn = l % BN, kb = l / BN;
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
        for (int kk = 0; kk < BK; kk++) {
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
    dim3 grid((unsigned)((a.m + BM - 1) / BM), (unsigned)((a.n + BN - 1) / BN), (unsigned)splits);
    if (kernel == 1) conv_kernel<MODE, 1><<<grid, THREADS, 0, ctx.stream>>>(a);
    else conv_kernel<MODE, 3><<<grid, THREADS, 0, ctx.stream>>>(a);
    return cudaGetLastError();
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
    AMBIENT_REQUIRE(h < (1 << 28) && w < (1 << 28) && (px + BM - 1) / BM < INT64_C(2147483647) &&
                        (c_max * kernel * kernel + BN - 1) / BN < 65536 && (c_out + BM - 1) / BM < INT64_C(2147483647),
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
    conv_args a{x, weight, nullptr, y, beta, m, c_out, kernel * kernel * c_in, h, w, c_in, c_out, 0, 0};
    AMBIENT_CUDA_CHECK(conv_launch<CONV_FORWARD>(ctx, kernel, a, 1));
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
    conv_args a{dy, weight, nullptr, dx, beta, m, c_in, kernel * kernel * c_out, h, w, c_in, c_out, 0, 0};
    AMBIENT_CUDA_CHECK(conv_launch<CONV_INPUT>(ctx, kernel, a, 1));
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
    /* Splits of the pixel range: a function of m alone (deterministic on every GPU). */
    int64_t splits = (m + SPLIT_PIXELS - 1) / SPLIT_PIXELS;
    splits = splits > MAX_SPLITS ? MAX_SPLITS : splits;
    if (splits > MAX_PARTIAL_FLOATS / w_count) splits = MAX_PARTIAL_FLOATS / w_count;
    if (splits < 1) splits = 1;
    int64_t chunk = ((m + splits - 1) / splits + BK - 1) / BK * BK;
    splits = (m + chunk - 1) / chunk;
    conv_args a{x, nullptr, dy, dweight, beta, c_out, k_cols, m, h, w, c_in, c_out, chunk, splits > 1};
    if (splits == 1) {
        AMBIENT_CUDA_CHECK(conv_launch<CONV_WEIGHT>(ctx, kernel, a, 1));
        return AMBIENT_STATUS_OK;
    }
    ambient_cuda_scratch scratch(ctx);
    void *partial = nullptr;
    status = scratch.take(__func__, splits * w_count * F, &partial);
    if (status) return status;
    a.out = (float *)partial;
    AMBIENT_CUDA_CHECK(conv_launch<CONV_WEIGHT>(ctx, kernel, a, (int)splits));
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, w_count, split_sum_op{w_count, (int)splits, (const float *)partial, beta, dweight}));
    return AMBIENT_STATUS_OK;
}
