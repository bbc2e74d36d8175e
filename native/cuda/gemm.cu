/*
 * ambient_gemm on the GPU: for each b in [0, batch), C_b = alpha * op(A_b) * op(B_b) + beta * C_b,
 * row-major float32 at the interface (see ambient.h), in the precision AMBIENT_CUDA_MATMUL
 * chooses (read once per process, library.cu):
 *   bf16 (default)  tensor cores, mma.sync m16n8k16 with bf16 operands and float32 accumulation
 *                   (mma.cuh): each operand is rounded once to bf16 (8 significant bits, relative
 *                   error <= 2^-8), so results differ from float32 by ~2e-3 of their rms
 *   tf32            tensor cores, mma.sync m16n8k8 with tf32 operands (11 significant bits),
 *                   ~3e-4 of the rms
 *   fp32            the float32 SIMT kernel below, the exact path (float32 rounding only)
 * All three have the same semantics: any m, n, k, leading dimension and alignment, both
 * transposes, batches, beta == 0 never reads C, k == 0 gives C = beta * C.
 *
 * Tensor cores (gemm_mma_kernel): a block computes a 128 x 128 tile of C with 8 warps (or a
 * 64 x 64 tile with 4 warps when 128-tiles would not give every SM one), staging op(A) and
 * op(B) slices into shared memory k-contiguous, converted on the way; see mma.cuh. Compiled for
 * sm_80 and sm_90, never run on a GPU yet (native/tests/test_cuda_mma.cu emulates the block's
 * data movement and fragments on the host; native/tests/test_parity.c checks it on a GPU).
 *
 * SIMT float32 (gemm_kernel): shared-memory tiled SGEMM with register blocking. A block
 * computes a BM x BM tile of C (BM = 128 with 256 threads, or BM = 64 with 64 threads when
 * 128-tiles would not fill the SMs); each thread owns 8 x 8 outputs: rows {ty*4 .. ty*4+3} and {BM/2 + ty*4 ..} and the
 * same split for columns, so its shared-memory reads are two float4 per operand per k step.
 * The k loop walks BK = 8 wide slices: op(A) and op(B) slices are stored k-major in shared
 * memory (As[k][row], Bs[k][col], padded by 4 floats against bank conflicts), double
 * buffered: the next slice is fetched from global memory into registers while the current
 * one is multiplied, so there is one __syncthreads per slice. The global loads follow the
 * stored layout (the transposes are template parameters), so that consecutive threads read
 * consecutive addresses; every load and store is bounds-checked, so any m, n, k, leading
 * dimension and alignment works.
 * Registers: 64 accumulators + 16 operands; at most 128 per thread for BM = 128 (two blocks,
 * 16 warps, per SM), no spills (check with nvcc --resource-usage).
 * Grid: x over column tiles, y over row tiles, z over the batch, one tile per block; problems
 * past CUDA's grid limits are cut into several launches. beta == 0 never reads C. k == 0
 * (no products) is a separate grid-stride kernel, C = beta * C.
 */
#include "internal.cuh"
#include "mma.cuh"

#define BK 8
#define PAD 4

/* ---- Kernel ------------------------------------------------------------------------------- */

/* One operand's part of a BM x BK slice: element (mn, kk) of op(X) is at
 * x[mn * ld + kk] when CONTIG_K (k runs along the stored rows), at x[kk * ld + mn] otherwise.
 * Each of the THREADS threads fetches E = BM * BK / THREADS elements that are consecutive in
 * memory, keeps them in registers, then stores them to the k-major shared slice. */
template <int BM, int THREADS, bool CONTIG_K>
struct slice_loader {
    static constexpr int E = BM * BK / THREADS;
    static_assert(E == 4 || E == 8, "a thread loads 4 or 8 elements");
    const float *p; /* this thread's first element of the current slice */
    int64_t step;   /* p's advance from one slice to the next */
    int64_t k_left; /* k_total minus the current slice's k0 plus this thread's kk */
    int mn, kk;     /* this thread's first element within the slice */
    int mn_left;    /* how many of this thread's elements along mn are inside op(X), 0..E */
    float regs[E];

    /* op(X)'s elements with mn in [mn0, mn0 + BM), of extent rows/columns along mn. */
    __device__ __forceinline__ void init(int tid, const float *x, int64_t ld, int64_t mn0,
                                         int64_t extent, int64_t k_total) {
        if (CONTIG_K) {
            mn = tid / (BK / E);
            kk = (tid % (BK / E)) * E;
        } else {
            kk = tid / (BM / E);
            mn = (tid % (BM / E)) * E;
        }
        int64_t left = extent - (mn0 + mn);
        if (CONTIG_K) {
            mn_left = left > 0 ? 1 : 0;
            p = x + (left > 0 ? (mn0 + mn) * ld + kk : 0);
            step = BK;
        } else {
            mn_left = left <= 0 ? 0 : left >= E ? E : (int)left;
            p = x + (mn_left > 0 ? kk * ld + mn0 + mn : 0);
            step = BK * ld;
        }
        k_left = k_total - kk;
    }

    /* Registers <- the current slice, zero outside op(X); then move on to the next slice. */
    __device__ __forceinline__ void fetch() {
        if (CONTIG_K) {
#pragma unroll
            for (int q = 0; q < E; q++) regs[q] = (mn_left > 0 && q < k_left) ? p[q] : 0.0f;
        } else {
#pragma unroll
            for (int q = 0; q < E; q++) regs[q] = (k_left > 0 && q < mn_left) ? p[q] : 0.0f;
        }
        k_left -= BK;
        if (k_left > 0) p += step; /* never forms a pointer past the last slice */
    }

    __device__ __forceinline__ void store(float (*slice)[BM + PAD]) const {
        if (CONTIG_K) {
#pragma unroll
            for (int q = 0; q < E; q++) slice[kk + q][mn] = regs[q];
        } else {
#pragma unroll
            for (int q = 0; q < E; q += 4)
                *reinterpret_cast<float4 *>(&slice[kk][mn + q]) =
                    make_float4(regs[q], regs[q + 1], regs[q + 2], regs[q + 3]);
        }
    }
};

template <int BM, bool TA, bool TB>
static __global__ void __launch_bounds__((BM / 8) * (BM / 8), BM == 128 ? 2 : 1)
gemm_kernel(int64_t m, int64_t n, int64_t k, float alpha,
            const float *__restrict__ a, int64_t lda, int64_t stride_a,
            const float *__restrict__ b, int64_t ldb, int64_t stride_b, float beta,
            float *__restrict__ c, int64_t ldc, int64_t stride_c) {
    constexpr int T = BM / 8;          /* threads along each side of the tile */
    constexpr int THREADS = T * T;
    constexpr int HALF = BM / 2;
    __shared__ __align__(16) float As[2][BK][BM + PAD];
    __shared__ __align__(16) float Bs[2][BK][BM + PAD];

    const int tid = threadIdx.x;
    const int tx = tid % T, ty = tid / T;
    const int64_t k_slices = (k + BK - 1) / BK;
    const int64_t e = blockIdx.z, m0 = (int64_t)blockIdx.y * BM, n0 = (int64_t)blockIdx.x * BM;
    /* op(A) is m x k: stored k x m when transposed, so k runs along rows unless TA. */
    slice_loader<BM, THREADS, !TA> load_a;
    /* op(B) is k x n: stored n x k when transposed, so k runs along rows only if TB. */
    slice_loader<BM, THREADS, TB> load_b;
    load_a.init(tid, a + e * stride_a, lda, m0, m, k);
    load_b.init(tid, b + e * stride_b, ldb, n0, n, k);

    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; i++)
#pragma unroll
        for (int j = 0; j < 8; j++) acc[i][j] = 0.0f;

    if (k_slices > 0) {
        load_a.fetch();
        load_b.fetch();
        load_a.store(As[0]);
        load_b.store(Bs[0]);
        __syncthreads();
        for (int64_t s = 0; s < k_slices; s++) {
            const int cur = (int)(s & 1);
            const bool more = s + 1 < k_slices;
            if (more) {
                load_a.fetch();
                load_b.fetch();
            }
#pragma unroll
            for (int kk = 0; kk < BK; kk++) {
                float4 a0 = *reinterpret_cast<const float4 *>(&As[cur][kk][ty * 4]);
                float4 a1 = *reinterpret_cast<const float4 *>(&As[cur][kk][HALF + ty * 4]);
                float4 b0 = *reinterpret_cast<const float4 *>(&Bs[cur][kk][tx * 4]);
                float4 b1 = *reinterpret_cast<const float4 *>(&Bs[cur][kk][HALF + tx * 4]);
                const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
                const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
                for (int i = 0; i < 8; i++)
#pragma unroll
                    for (int j = 0; j < 8; j++) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
            }
            if (more) {
                load_a.store(As[cur ^ 1]);
                load_b.store(Bs[cur ^ 1]);
            }
            /* The next slice is visible, and nobody still reads the one it replaces. */
            __syncthreads();
        }
    }

    float *ce = c + e * stride_c;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int64_t row = m0 + (i < 4 ? ty * 4 + i : HALF + ty * 4 + (i - 4));
        if (row >= m) continue;
        float *crow = ce + row * ldc;
#pragma unroll
        for (int j = 0; j < 8; j++) {
            const int64_t col = n0 + (j < 4 ? tx * 4 + j : HALF + tx * 4 + (j - 4));
            if (col >= n) continue;
            float v = alpha * acc[i][j];
            crow[col] = beta == 0.0f ? v : v + beta * crow[col];
        }
    }
}

/* The tensor-core kernel: the block of mma.cuh over op(A) (rows m) and op(B)^T (rows n), matrix
 * blockIdx.z of the batch. */
struct gemm_mma_args {
    int64_t m, n, k;
    float alpha;
    const float *a;
    int64_t lda, stride_a;
    const float *b;
    int64_t ldb, stride_b;
    float beta;
    float *c;
    int64_t ldc, stride_c;
};

template <int P, class CFG, bool TA, bool TB>
static __global__ void __launch_bounds__(CFG::THREADS) gemm_mma_kernel(gemm_mma_args g) {
    const int64_t e = blockIdx.z;
    /* op(A)[i, kk] is a[i * lda + kk] (k contiguous) unless transposed; op(B)^T[j, kk] is
     * b[j * ldb + kk] (k contiguous) only when B is transposed. */
    const gemm_operand<!TA> a{g.a + e * g.stride_a, g.lda, g.m};
    const gemm_operand<TB> b{g.b + e * g.stride_b, g.ldb, g.n};
    const mma_output out{g.c + e * g.stride_c, g.ldc, g.m, g.n, g.alpha, g.beta, false};
    __shared__ __align__(16) uint32_t smem[mma_block_shared<CFG>::WORDS];
    mma_block_tile<P, CFG>(a, b, out, (int64_t)blockIdx.y * CFG::BM, (int64_t)blockIdx.x * CFG::BN, 0, g.k, threadIdx.x,
                           smem);
}

/* ---- Launchers ---------------------------------------------------------------------------- */

/* One launch of either kernel family over a problem within CUDA's grid limits:
 * grid (column tiles, row tiles, matrices). */
typedef cudaError_t (*gemm_grid_launcher)(const ambient_cuda_context &ctx, bool ta, bool tb, int64_t batch,
                                          int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                          int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                                          int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c);

template <int BM>
static cudaError_t gemm_launch_grid(const ambient_cuda_context &ctx, bool ta, bool tb,
                                    int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
                                    const float *a, int64_t lda, int64_t stride_a,
                                    const float *b, int64_t ldb, int64_t stride_b, float beta,
                                    float *c, int64_t ldc, int64_t stride_c) {
    dim3 grid((unsigned)((n + BM - 1) / BM), (unsigned)((m + BM - 1) / BM), (unsigned)batch);
    dim3 block((BM / 8) * (BM / 8));
#define AMBIENT_GEMM_LAUNCH(TA, TB)                                                         \
    AMBIENT_LAUNCH(grid, block, 0, ctx.stream, gemm_kernel<BM, TA, TB>)(m, n, k, alpha, a, lda,         \
                                                            stride_a, b, ldb, stride_b, beta, \
                                                            c, ldc, stride_c)
    if (!ta && !tb) AMBIENT_GEMM_LAUNCH(false, false);
    else if (!ta && tb) AMBIENT_GEMM_LAUNCH(false, true);
    else if (ta && !tb) AMBIENT_GEMM_LAUNCH(true, false);
    else AMBIENT_GEMM_LAUNCH(true, true);
#undef AMBIENT_GEMM_LAUNCH
    return cudaGetLastError();
}

template <int P, class CFG>
static cudaError_t gemm_mma_launch_grid(const ambient_cuda_context &ctx, bool ta, bool tb, int64_t batch,
                                        int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                                        int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                                        int64_t stride_b, float beta, float *c, int64_t ldc, int64_t stride_c) {
    static_assert(CFG::BM == CFG::BN, "gemm_launch_tiles cuts square tiles");
    dim3 grid((unsigned)((n + CFG::BN - 1) / CFG::BN), (unsigned)((m + CFG::BM - 1) / CFG::BM), (unsigned)batch);
    const gemm_mma_args g{m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c};
    if (!ta && !tb) AMBIENT_LAUNCH(grid, CFG::THREADS, 0, ctx.stream, gemm_mma_kernel<P, CFG, false, false>)(g);
    else if (!ta && tb) AMBIENT_LAUNCH(grid, CFG::THREADS, 0, ctx.stream, gemm_mma_kernel<P, CFG, false, true>)(g);
    else if (ta && !tb) AMBIENT_LAUNCH(grid, CFG::THREADS, 0, ctx.stream, gemm_mma_kernel<P, CFG, true, false>)(g);
    else AMBIENT_LAUNCH(grid, CFG::THREADS, 0, ctx.stream, gemm_mma_kernel<P, CFG, true, true>)(g);
    return cudaGetLastError();
}

/* One grid covers up to 2^31 - 1 column tiles, 65535 row tiles and 65535 matrices; larger
 * problems are cut into several launches of `launch` with square tiles of `tile` (a grid-stride
 * loop inside the kernels would cost them about a hundred registers). */
static cudaError_t gemm_launch_tiles(gemm_grid_launcher launch, int64_t tile, const ambient_cuda_context &ctx,
                                     bool ta, bool tb, int64_t batch, int64_t m, int64_t n, int64_t k,
                                     float alpha, const float *a, int64_t lda, int64_t stride_a,
                                     const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                                     int64_t ldc, int64_t stride_c) {
    const int64_t max_batch = 65535, max_m = INT64_C(65535) * tile, max_n = INT64_C(2147483647) * tile;
    for (int64_t e0 = 0; e0 < batch; e0 += max_batch)
        for (int64_t i0 = 0; i0 < m; i0 += max_m)
            for (int64_t j0 = 0; j0 < n; j0 += max_n) {
                int64_t eb = batch - e0 < max_batch ? batch - e0 : max_batch;
                int64_t mb = m - i0 < max_m ? m - i0 : max_m;
                int64_t nb = n - j0 < max_n ? n - j0 : max_n;
                /* Sub-problem origin: matrix e0, rows i0 of op(A) and C, columns j0 of op(B) and C. */
                const float *as = a + e0 * stride_a + (ta ? i0 : i0 * lda);
                const float *bs = b + e0 * stride_b + (tb ? j0 * ldb : j0);
                float *cs = c + e0 * stride_c + i0 * ldc + j0;
                cudaError_t error = launch(ctx, ta, tb, eb, mb, nb, k, alpha, as, lda, stride_a, bs, ldb, stride_b,
                                           beta, cs, ldc, stride_c);
                if (error != cudaSuccess) return error;
            }
    return cudaSuccess;
}

/* C = beta * C for k == 0 (no products); beta == 0 writes zeros without reading C. */
static __global__ void gemm_scale_kernel(int64_t batch, int64_t m, int64_t n, float beta,
                                         float *c, int64_t ldc, int64_t stride_c) {
    int64_t total = batch * m * n;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (int64_t)gridDim.x * blockDim.x) {
        int64_t j = i % n, row = (i / n) % m, e = i / (n * m);
        float *p = c + e * stride_c + row * ldc + j;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

/* The kernel family and tile size for a problem in the context's precision. */
static void gemm_choose(const ambient_cuda_context &ctx, int64_t batch, int64_t m, int64_t n,
                        gemm_grid_launcher *launch, int64_t *tile) {
    int64_t big_tiles = ((m + 127) / 128) * ((n + 127) / 128);
    double big_blocks = (double)big_tiles * (double)batch;
    switch (ctx.precision) {
    case AMBIENT_MATMUL_FP32: /* 128-tiles when there are enough of them for two per SM */
        if (big_blocks >= 2.0 * ctx.sm_count) *launch = gemm_launch_grid<128>, *tile = 128;
        else *launch = gemm_launch_grid<64>, *tile = 64;
        return;
    case AMBIENT_MATMUL_TF32: /* 128-tiles (one block of 8 warps per SM) when every SM gets one */
        if (big_blocks >= ctx.sm_count) *launch = gemm_mma_launch_grid<AMBIENT_MATMUL_TF32, mma_config_large>;
        else *launch = gemm_mma_launch_grid<AMBIENT_MATMUL_TF32, mma_config_small>;
        break;
    default:
        if (big_blocks >= ctx.sm_count) *launch = gemm_mma_launch_grid<AMBIENT_MATMUL_BF16, mma_config_large>;
        else *launch = gemm_mma_launch_grid<AMBIENT_MATMUL_BF16, mma_config_small>;
        break;
    }
    *tile = big_blocks >= ctx.sm_count ? mma_config_large::BM : mma_config_small::BM;
}

static cudaError_t gemm_launch(const ambient_cuda_context &ctx, bool ta, bool tb, int64_t batch,
                               int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                               int64_t lda, int64_t stride_a, const float *b, int64_t ldb,
                               int64_t stride_b, float beta, float *c, int64_t ldc,
                               int64_t stride_c) {
    if (k == 0) {
        unsigned blocks = ambient_cuda_blocks(batch * m * n, 256, ctx.sm_count, 8);
        AMBIENT_LAUNCH(blocks, 256, 0, ctx.stream, gemm_scale_kernel)(batch, m, n, beta, c, ldc, stride_c);
        return cudaGetLastError();
    }
    gemm_grid_launcher launch;
    int64_t tile;
    gemm_choose(ctx, batch, m, n, &launch, &tile);
    return gemm_launch_tiles(launch, tile, ctx, ta, tb, batch, m, n, k, alpha, a, lda, stride_a, b, ldb, stride_b,
                             beta, c, ldc, stride_c);
}

/* ---- Entry point (the CPU backend's argument checks) --------------------------------------- */

/* Elements from the first to the last one of `batch` rows x cols matrices with row stride ld
 * and matrix stride stride; 0 when empty, -1 past AMBIENT_MAX_COUNT (or int64 overflow). */
static int64_t span(int64_t batch, int64_t rows, int64_t cols, int64_t ld, int64_t stride) {
    if (batch == 0 || rows == 0 || cols == 0) return 0;
    int64_t x, y, s;
    if (__builtin_mul_overflow(batch - 1, stride, &x) || __builtin_mul_overflow(rows - 1, ld, &y) ||
        __builtin_add_overflow(x, y, &s) || __builtin_add_overflow(s, cols, &s) || s > AMBIENT_MAX_COUNT)
        return -1;
    return s;
}

int ambient_gemm(int32_t transpose_a, int32_t transpose_b, int64_t batch, int64_t m, int64_t n,
                 int64_t k, float alpha, const float *a, int64_t lda, int64_t stride_a,
                 const float *b, int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                 int64_t stride_c) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_COUNT(batch);
    AMBIENT_REQUIRE_COUNT(m);
    AMBIENT_REQUIRE_COUNT(n);
    AMBIENT_REQUIRE_COUNT(k);
    /* Stored shapes: A is a_rows x a_cols, B is b_rows x b_cols. */
    int64_t a_rows = transpose_a ? k : m, a_cols = transpose_a ? m : k;
    int64_t b_rows = transpose_b ? n : k, b_cols = transpose_b ? k : n;
    AMBIENT_REQUIRE(lda >= a_cols, "%s: lda = %lld is less than %s = %lld (A is %s)", __func__,
                    (long long)lda, transpose_a ? "m" : "k", (long long)a_cols,
                    transpose_a ? "k x m, transposed" : "m x k");
    AMBIENT_REQUIRE(ldb >= b_cols, "%s: ldb = %lld is less than %s = %lld (B is %s)", __func__,
                    (long long)ldb, transpose_b ? "k" : "n", (long long)b_cols,
                    transpose_b ? "n x k, transposed" : "k x n");
    AMBIENT_REQUIRE(ldc >= n, "%s: ldc = %lld is less than n = %lld", __func__, (long long)ldc,
                    (long long)n);
    AMBIENT_REQUIRE(stride_a >= 0, "%s: stride_a = %lld is negative", __func__, (long long)stride_a);
    AMBIENT_REQUIRE(stride_b >= 0, "%s: stride_b = %lld is negative", __func__, (long long)stride_b);
    AMBIENT_REQUIRE(stride_c >= 0, "%s: stride_c = %lld is negative", __func__, (long long)stride_c);
    if (batch == 0 || m == 0 || n == 0) return AMBIENT_STATUS_OK;

    AMBIENT_REQUIRE_POINTER(c);
    int64_t c_span = span(batch, m, n, ldc, stride_c);
    AMBIENT_REQUIRE(c_span >= 0, "%s: C spans more than 2^58 elements (batch = %lld, m = %lld, ldc = %lld, stride_c = %lld)",
                    __func__, (long long)batch, (long long)m, (long long)ldc, (long long)stride_c);
    /* Matrices of C written in parallel must not share elements. */
    AMBIENT_REQUIRE(batch == 1 || stride_c >= span(1, m, n, ldc, 0),
                    "%s: stride_c = %lld is less than one m x n matrix of C (%lld elements with ldc = %lld), so the batch overlaps itself",
                    __func__, (long long)stride_c, (long long)span(1, m, n, ldc, 0), (long long)ldc);
    if (k > 0) {
        AMBIENT_REQUIRE_POINTER(a);
        AMBIENT_REQUIRE_POINTER(b);
        int64_t a_span = span(batch, a_rows, a_cols, lda, stride_a);
        int64_t b_span = span(batch, b_rows, b_cols, ldb, stride_b);
        AMBIENT_REQUIRE(a_span >= 0, "%s: A spans more than 2^58 elements (batch = %lld, lda = %lld, stride_a = %lld)",
                        __func__, (long long)batch, (long long)lda, (long long)stride_a);
        AMBIENT_REQUIRE(b_span >= 0, "%s: B spans more than 2^58 elements (batch = %lld, ldb = %lld, stride_b = %lld)",
                        __func__, (long long)batch, (long long)ldb, (long long)stride_b);
        int64_t f = (int64_t)sizeof(float);
        AMBIENT_REQUIRE(!ambient_overlaps(c, c_span * f, a, a_span * f),
                        "%s: c = %p overlaps a = %p (C spans %lld elements, A %lld)", __func__,
                        (void *)c, (const void *)a, (long long)c_span, (long long)a_span);
        AMBIENT_REQUIRE(!ambient_overlaps(c, c_span * f, b, b_span * f),
                        "%s: c = %p overlaps b = %p (C spans %lld elements, B %lld)", __func__,
                        (void *)c, (const void *)b, (long long)c_span, (long long)b_span);
    }

    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_CUDA_CHECK(gemm_launch(ctx, transpose_a != 0, transpose_b != 0, batch, m, n, k, alpha,
                                   a, lda, stride_a, b, ldb, stride_b, beta, c, ldc, stride_c));
    return AMBIENT_STATUS_OK;
}
