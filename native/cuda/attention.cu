/*
 * EDM2's multi-head cosine attention on the GPU, flash-style (same semantics as
 * cpu/attention.c): keys are visited in tiles with an online softmax, nothing of size
 * length x length is stored.
 *
 * Layout: qkv is n x L x H x 3 x d (per token and head: q, k, v), out and dout n x L x H x d,
 * lse n x H x L; scale = 1 / sqrt(d), S = scale q k^T per sample and head.
 *
 * Two paths. With AMBIENT_CUDA_MATMUL = bf16 (the default) or tf32, head_dim <= 128 and blocks
 * that fit the device's shared memory, the tensor-core kernels of attention_mma.cuh run
 * (flash attention 2 on mma.sync). Otherwise (fp32, larger heads) the float32 SIMT kernels
 * below, which are simple rather than fast:
 *
 * Forward: a block per (query tile of T queries, sample and head). Q and the running output O
 * stay in shared memory; for each key tile K and V are staged, S = scale Q K^T is computed
 * (a thread per entry), then each query row's max m and sum l are updated by a warp (online
 * softmax: P = exp(S - m_new), O <- exp(m_old - m_new) O + P V). At the end out = O / l and
 * lse = m + log l.
 * Backward (flash-attention's, P recomputed from lse): D_i = <dO_i, O_i> first (a warp per
 * row, both paths), then two kernels that need no atomics, so results are deterministic:
 *   dK, dV: a block per key tile loops over all query tiles:
 *           P = exp(S - lse), dP = dO V^T, dS = P (dP - D); dV += P^T dO, dK += dS^T Q
 *   dQ:     a block per query tile loops over all key tiles: dQ += dS K
 * (S and P are computed twice; dK and dQ get the factor scale at the end).
 * The tile T is the largest of 32, 16, ..., 1 whose buffers fit 48 KiB of shared memory for
 * the given head_dim (T = 32 forward and 16 backward at d = 64). Products are dot products
 * over d read from shared memory (rows an odd number of floats apart, against bank
 * conflicts), one output per thread.
 *
 * Both paths were compiled, not yet run on a GPU: the parity harness checks them there, and
 * test_cuda_attention runs the tensor-core block bodies on the host with emulated warps.
 */
#include "attention_mma.cuh"
#include "internal.cuh"

#include <atomic>
#include <cmath>

#define THREADS 128
#define WARPS (THREADS / 32)
#define MAX_TILE 32
#define SMEM_LIMIT (48 * 1024)

/* Shared-memory rows of d values are ld = d rounded up to an odd number apart, so that 32
 * threads reading 32 different rows (the key side of the dot products) hit 32 banks. */
static __host__ __device__ int64_t row_stride(int64_t d) { return d | 1; }
static int64_t forward_floats(int64_t t, int64_t d) { return 4 * t * row_stride(d) + t * (t + 1) + 3 * t; }
static int64_t dkdv_floats(int64_t t, int64_t d) { return 6 * t * row_stride(d) + 2 * t * (t + 1) + 2 * t; }
static int64_t dq_floats(int64_t t, int64_t d) { return 5 * t * row_stride(d) + t * (t + 1) + 2 * t; }

/* Largest tile whose buffers fit; 0 when even one row does not. */
static int pick_tile(int64_t (*floats)(int64_t, int64_t), int64_t d) {
    for (int t = MAX_TILE; t >= 1; t /= 2)
        if (floats(t, d) * (int64_t)sizeof(float) <= SMEM_LIMIT) return t;
    return 0;
}

/* Rows [r0, r0 + T) of one of q, k, v (which = 0, 1, 2) of head h of sample b into dst (T rows
 * of d, ld apart), zero past length. base = qkv of (b, h). */
static __device__ __forceinline__ void load_rows(float *dst, const float *base, int64_t tok, int which, int64_t r0,
                                                 int64_t length, int t, int64_t d) {
    const int64_t ld = row_stride(d);
    for (int64_t e = threadIdx.x; e < t * d; e += THREADS) {
        int64_t r = e / d, c = e % d;
        dst[r * ld + c] = r0 + r < length ? base[(r0 + r) * tok + which * d + c] : 0.0f;
    }
}

static __device__ __forceinline__ float dot(const float *a, const float *b, int64_t d) {
    float s = 0.0f;
    for (int64_t c = 0; c < d; c++) s = fmaf(a[c], b[c], s);
    return s;
}

/* ---- Forward -------------------------------------------------------------------------------- */

static __global__ void __launch_bounds__(THREADS)
attention_forward_kernel(int64_t length, int64_t heads, int64_t d, int t, float scale, const float *qkv, float *out,
                         float *lse) {
    AMBIENT_DYNAMIC_SHARED(float, sm);
    const int64_t ld = row_stride(d);
    float *qs = sm, *ks = qs + t * ld, *vs = ks + t * ld, *os = vs + t * ld, *ss = os + t * ld;
    float *m_s = ss + t * (t + 1), *l_s = m_s + t, *a_s = l_s + t;
    const int64_t bh = blockIdx.x, b = bh / heads, h = bh % heads, q0 = (int64_t)blockIdx.y * t;
    const int64_t tok = 3 * heads * d;
    const float *base = qkv + (b * length * heads + h) * 3 * d;
    const int lane = threadIdx.x & 31, warp = threadIdx.x / 32;

    load_rows(qs, base, tok, 0, q0, length, t, d);
    for (int64_t e = threadIdx.x; e < t * ld; e += THREADS) os[e] = 0.0f;
    for (int i = threadIdx.x; i < t; i += THREADS) {
        m_s[i] = -INFINITY;
        l_s[i] = 0.0f;
    }
    for (int64_t k0 = 0; k0 < length; k0 += t) {
        __syncthreads(); /* the previous tile's K, V and P are no longer read */
        load_rows(ks, base, tok, 1, k0, length, t, d);
        load_rows(vs, base, tok, 2, k0, length, t, d);
        __syncthreads();
        for (int e = threadIdx.x; e < t * t; e += THREADS) {
            int i = e / t, j = e % t;
            ss[i * (t + 1) + j] = k0 + j < length ? dot(qs + i * ld, ks + j * ld, d) * scale : -INFINITY;
        }
        __syncthreads();
        for (int i = warp; i < t; i += WARPS) {
            float *row = ss + i * (t + 1);
            float mx = -INFINITY;
            for (int j = lane; j < t; j += 32) mx = fmaxf(mx, row[j]);
#pragma unroll
            for (int o = 16; o > 0; o /= 2) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
            float m_old = m_s[i], m_new = fmaxf(m_old, mx); /* finite: every tile has a real key */
            float sum = 0.0f;
            for (int j = lane; j < t; j += 32) {
                float p = expf(row[j] - m_new); /* -inf (padding) -> 0 */
                row[j] = p;
                sum += p;
            }
#pragma unroll
            for (int o = 16; o > 0; o /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, o);
            __syncwarp();
            if (lane == 0) {
                float alpha = expf(m_old - m_new); /* 0 on the first tile */
                a_s[i] = alpha;
                l_s[i] = alpha * l_s[i] + sum;
                m_s[i] = m_new;
            }
        }
        __syncthreads();
        for (int64_t e = threadIdx.x; e < t * d; e += THREADS) {
            int64_t i = e / d, c = e % d;
            const float *p = ss + i * (t + 1);
            float acc = a_s[i] * os[i * ld + c];
            for (int j = 0; j < t; j++) acc = fmaf(p[j], vs[j * ld + c], acc);
            os[i * ld + c] = acc;
        }
    }
    __syncthreads();
    for (int64_t e = threadIdx.x; e < t * d; e += THREADS) {
        int64_t i = e / d, c = e % d;
        if (q0 + i < length) out[((b * length + q0 + i) * heads + h) * d + c] = os[i * ld + c] / l_s[i];
    }
    if (lse)
        for (int i = threadIdx.x; i < t; i += THREADS)
            if (q0 + i < length) lse[(b * heads + h) * length + q0 + i] = m_s[i] + logf(l_s[i]);
}

/* ---- Backward ------------------------------------------------------------------------------- */

/* D[(b, h), l] = <dout, out> of that row: a warp per row (rows in out's order b, l, h). */
static __global__ void attention_rowdot_kernel(int64_t rows, int64_t length, int64_t heads, int64_t d,
                                               const float *out, const float *dout, float *dd) {
    const int lane = threadIdx.x & 31;
    for (int64_t r = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) / 32; r < rows;
         r += (int64_t)gridDim.x * blockDim.x / 32) {
        const float *o = out + r * d, *g = dout + r * d;
        float s = 0.0f;
        for (int64_t c = lane; c < d; c += 32) s = fmaf(o[c], g[c], s);
#pragma unroll
        for (int off = 16; off > 0; off /= 2) s += __shfl_xor_sync(0xffffffffu, s, off);
        if (lane == 0) {
            int64_t h = r % heads, l = (r / heads) % length, b = r / heads / length;
            dd[(b * heads + h) * length + l] = s;
        }
    }
}

/* P and dS of query tile q0 against key tile k0 into ps and dss (t x (t + 1), 0 outside). */
static __device__ __forceinline__ void probs_tile(int t, int64_t d, int64_t length, int64_t q0, int64_t k0, float scale,
                                                  const float *qs, const float *dos, const float *ks, const float *vs,
                                                  const float *lse_s, const float *d_s, float *ps, float *dss) {
    for (int e = threadIdx.x; e < t * t; e += THREADS) {
        int i = e / t, j = e % t;
        float p = 0.0f, ds = 0.0f;
        if (q0 + i < length && k0 + j < length) {
            const int64_t ld = row_stride(d);
            p = expf(dot(qs + i * ld, ks + j * ld, d) * scale - lse_s[i]);
            ds = p * (dot(dos + i * ld, vs + j * ld, d) - d_s[i]);
        }
        if (ps) ps[i * (t + 1) + j] = p;
        dss[i * (t + 1) + j] = ds;
    }
}

/* lse and D of query rows [q0, q0 + t) into lse_s and d_s (0 past length). */
static __device__ __forceinline__ void load_row_stats(int t, int64_t length, int64_t q0, const float *lse_bh,
                                                      const float *dd_bh, float *lse_s, float *d_s) {
    for (int i = threadIdx.x; i < t; i += THREADS) {
        bool valid = q0 + i < length;
        lse_s[i] = valid ? lse_bh[q0 + i] : 0.0f;
        d_s[i] = valid ? dd_bh[q0 + i] : 0.0f;
    }
}

static __global__ void __launch_bounds__(THREADS)
attention_dkdv_kernel(int64_t length, int64_t heads, int64_t d, int t, float scale, const float *qkv,
                      const float *lse, const float *dout, const float *dd, float *dqkv) {
    AMBIENT_DYNAMIC_SHARED(float, sm);
    const int64_t ld = row_stride(d);
    float *ks = sm, *vs = ks + t * ld, *dks = vs + t * ld, *dvs = dks + t * ld, *qs = dvs + t * ld, *dos = qs + t * ld;
    float *ps = dos + t * ld, *dss = ps + t * (t + 1), *lse_s = dss + t * (t + 1), *d_s = lse_s + t;
    const int64_t bh = blockIdx.x, b = bh / heads, h = bh % heads, k0 = (int64_t)blockIdx.y * t;
    const int64_t tok = 3 * heads * d, orow = heads * d;
    const float *base = qkv + (b * length * heads + h) * 3 * d;
    const float *dout_bh = dout + b * length * orow + h * d;

    load_rows(ks, base, tok, 1, k0, length, t, d);
    load_rows(vs, base, tok, 2, k0, length, t, d);
    for (int64_t e = threadIdx.x; e < t * ld; e += THREADS) dks[e] = dvs[e] = 0.0f;
    for (int64_t q0 = 0; q0 < length; q0 += t) {
        __syncthreads();
        load_rows(qs, base, tok, 0, q0, length, t, d);
        load_rows(dos, dout_bh, orow, 0, q0, length, t, d);
        load_row_stats(t, length, q0, lse + bh * length, dd + bh * length, lse_s, d_s);
        __syncthreads();
        probs_tile(t, d, length, q0, k0, scale, qs, dos, ks, vs, lse_s, d_s, ps, dss);
        __syncthreads();
        for (int64_t e = threadIdx.x; e < t * d; e += THREADS) {
            int64_t j = e / d, c = e % d;
            float dv = dvs[j * ld + c], dk = dks[j * ld + c];
            for (int i = 0; i < t; i++) {
                dv = fmaf(ps[i * (t + 1) + j], dos[i * ld + c], dv);
                dk = fmaf(dss[i * (t + 1) + j], qs[i * ld + c], dk);
            }
            dvs[j * ld + c] = dv;
            dks[j * ld + c] = dk;
        }
    }
    __syncthreads();
    float *dbase = dqkv + (b * length * heads + h) * 3 * d;
    for (int64_t e = threadIdx.x; e < t * d; e += THREADS) {
        int64_t j = e / d, c = e % d;
        if (k0 + j >= length) continue;
        dbase[(k0 + j) * tok + d + c] = dks[j * ld + c] * scale;
        dbase[(k0 + j) * tok + 2 * d + c] = dvs[j * ld + c];
    }
}

static __global__ void __launch_bounds__(THREADS)
attention_dq_kernel(int64_t length, int64_t heads, int64_t d, int t, float scale, const float *qkv, const float *lse,
                    const float *dout, const float *dd, float *dqkv) {
    AMBIENT_DYNAMIC_SHARED(float, sm);
    const int64_t ld = row_stride(d);
    float *qs = sm, *dos = qs + t * ld, *dqs = dos + t * ld, *ks = dqs + t * ld, *vs = ks + t * ld;
    float *dss = vs + t * ld, *lse_s = dss + t * (t + 1), *d_s = lse_s + t;
    const int64_t bh = blockIdx.x, b = bh / heads, h = bh % heads, q0 = (int64_t)blockIdx.y * t;
    const int64_t tok = 3 * heads * d, orow = heads * d;
    const float *base = qkv + (b * length * heads + h) * 3 * d;

    load_rows(qs, base, tok, 0, q0, length, t, d);
    load_rows(dos, dout + b * length * orow + h * d, orow, 0, q0, length, t, d);
    load_row_stats(t, length, q0, lse + bh * length, dd + bh * length, lse_s, d_s);
    for (int64_t e = threadIdx.x; e < t * ld; e += THREADS) dqs[e] = 0.0f;
    for (int64_t k0 = 0; k0 < length; k0 += t) {
        __syncthreads();
        load_rows(ks, base, tok, 1, k0, length, t, d);
        load_rows(vs, base, tok, 2, k0, length, t, d);
        __syncthreads();
        probs_tile(t, d, length, q0, k0, scale, qs, dos, ks, vs, lse_s, d_s, nullptr, dss);
        __syncthreads();
        for (int64_t e = threadIdx.x; e < t * d; e += THREADS) {
            int64_t i = e / d, c = e % d;
            float acc = dqs[i * ld + c];
            for (int j = 0; j < t; j++) acc = fmaf(dss[i * (t + 1) + j], ks[j * ld + c], acc);
            dqs[i * ld + c] = acc;
        }
    }
    __syncthreads();
    float *dbase = dqkv + (b * length * heads + h) * 3 * d;
    for (int64_t e = threadIdx.x; e < t * d; e += THREADS) {
        int64_t i = e / d, c = e % d;
        if (q0 + i < length) dbase[(q0 + i) * tok + c] = dqs[i * ld + c] * scale;
    }
}

/* ---- The tensor-core path ------------------------------------------------------------------------ */

template <int P, int DP>
static __global__ void __launch_bounds__(ATTENTION_MMA_THREADS) attention_mma_forward_kernel(attention_mma_args a) {
    AMBIENT_DYNAMIC_SHARED(uint32_t, mma_smem);
    attention_mma_forward_block<P, DP>(a, blockIdx.x, (int64_t)blockIdx.y * ATTENTION_MMA_ROWS, threadIdx.x, mma_smem);
}

template <int P, int DP>
static __global__ void __launch_bounds__(ATTENTION_MMA_THREADS) attention_mma_dq_kernel(attention_mma_args a) {
    AMBIENT_DYNAMIC_SHARED(uint32_t, mma_smem);
    attention_mma_dq_block<P, DP>(a, blockIdx.x, (int64_t)blockIdx.y * ATTENTION_MMA_ROWS, threadIdx.x, mma_smem);
}

template <int P, int DP>
static __global__ void __launch_bounds__(ATTENTION_MMA_THREADS) attention_mma_dkdv_kernel(attention_mma_args a) {
    AMBIENT_DYNAMIC_SHARED(uint32_t, mma_smem);
    attention_mma_dkdv_block<P, DP>(a, blockIdx.x, (int64_t)blockIdx.y * ATTENTION_MMA_ROWS, threadIdx.x, mma_smem);
}

/* A block per (64 rows, sample and head) of KERNEL, with `words` of shared memory. Past 48 KiB
 * the kernel opts in once per device (a bit per device, here for the first 64; any later one
 * asks every time) rather than at every launch. */
template <void (*KERNEL)(attention_mma_args)>
static cudaError_t launch_mma(const ambient_cuda_context &ctx, int64_t n, const attention_mma_args &a, int64_t words) {
    static std::atomic<uint64_t> opted_in{0};
    const size_t bytes = (size_t)words * sizeof(uint32_t);
    const uint64_t bit = ctx.device < 64 ? UINT64_C(1) << ctx.device : 0;
    if (bytes > 48 * 1024 && !(opted_in.load(std::memory_order_acquire) & bit)) {
        cudaError_t error = cudaFuncSetAttribute(KERNEL, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes);
        if (error != cudaSuccess) return error;
        opted_in.fetch_or(bit, std::memory_order_release);
    }
    dim3 grid((unsigned)(n * a.heads), (unsigned)((a.length + ATTENTION_MMA_ROWS - 1) / ATTENTION_MMA_ROWS));
    AMBIENT_LAUNCH(grid, ATTENTION_MMA_THREADS, bytes, ctx.stream, KERNEL)(a);
    return cudaGetLastError();
}

template <int P, int DP>
static cudaError_t mma_forward(const ambient_cuda_context &ctx, int64_t n, const attention_mma_args &a) {
    return launch_mma<attention_mma_forward_kernel<P, DP>>(ctx, n, a, attention_mma_forward_shape<P, DP>::WORDS);
}

template <int P, int DP>
static cudaError_t mma_backward(const ambient_cuda_context &ctx, int64_t n, const attention_mma_args &a) {
    cudaError_t error = launch_mma<attention_mma_dkdv_kernel<P, DP>>(ctx, n, a, attention_mma_dkdv_shape<P, DP>::WORDS);
    if (error != cudaSuccess) return error;
    return launch_mma<attention_mma_dq_kernel<P, DP>>(ctx, n, a, attention_mma_dq_shape<P, DP>::WORDS);
}

typedef cudaError_t (*mma_launcher)(const ambient_cuda_context &, int64_t, const attention_mma_args &);

/* The tensor-core launcher for the context's precision and head_dim, or NULL when the SIMT
 * kernels run: fp32, head_dim > 128, or blocks larger than the device's shared memory. */
static mma_launcher pick_mma(const ambient_cuda_context &ctx, int64_t head_dim, bool backward) {
    const int dp = attention_mma_dim(head_dim);
#define AMBIENT_ATTENTION_MMA_CASE(P, DP)                                                                      \
    if (ctx.precision == P && dp == DP) {                                                                      \
        int64_t words = backward ? (attention_mma_dq_shape<P, DP>::WORDS > attention_mma_dkdv_shape<P, DP>::WORDS \
                                        ? attention_mma_dq_shape<P, DP>::WORDS                                \
                                        : attention_mma_dkdv_shape<P, DP>::WORDS)                             \
                                 : attention_mma_forward_shape<P, DP>::WORDS;                                 \
        if (words * (int64_t)sizeof(uint32_t) > ctx.shared_optin) return nullptr;                              \
        return backward ? mma_backward<P, DP> : mma_forward<P, DP>;                                            \
    }
    AMBIENT_ATTENTION_MMA_CASE(AMBIENT_MATMUL_BF16, 64)
    AMBIENT_ATTENTION_MMA_CASE(AMBIENT_MATMUL_BF16, 128)
    AMBIENT_ATTENTION_MMA_CASE(AMBIENT_MATMUL_TF32, 64)
    AMBIENT_ATTENTION_MMA_CASE(AMBIENT_MATMUL_TF32, 128)
#undef AMBIENT_ATTENTION_MMA_CASE
    return nullptr;
}

/* ---- Entry points (the CPU backend's checks) ---------------------------------------------------- */

static int check_shape(const char *function, int64_t n, int64_t length, int64_t heads, int64_t head_dim) {
    const int64_t dims[4] = {n, length, heads, head_dim};
    const char *names[4] = {"n", "length", "heads", "head_dim"};
    for (int i = 0; i < 4; i++)
        AMBIENT_REQUIRE(dims[i] >= 0 && dims[i] <= AMBIENT_MAX_COUNT, "%s: %s = %lld is %s", function, names[i],
                        (long long)dims[i], dims[i] < 0 ? "negative" : "too large");
    int64_t total = 3;
    for (int i = 0; i < 4; i++)
        AMBIENT_REQUIRE(!__builtin_mul_overflow(total, dims[i], &total) && total <= AMBIENT_MAX_COUNT,
                        "%s: qkv of n x length x heads x 3 x head_dim = %lld x %lld x %lld x 3 x %lld elements is too large",
                        function, (long long)n, (long long)length, (long long)heads, (long long)head_dim);
    AMBIENT_REQUIRE(head_dim > 0 || n == 0 || length == 0 || heads == 0,
                    "%s: head_dim = 0 (scale 1/sqrt(head_dim) is undefined); it must be positive", function);
    return AMBIENT_STATUS_OK;
}

/* The launch limits of this backend: tiles that fit shared memory, n * heads blocks along
 * grid.x, query or key tiles along grid.y. */
static int check_launch(const char *function, int64_t n, int64_t length, int64_t heads, int64_t head_dim, int tile) {
    AMBIENT_REQUIRE(tile > 0, "%s: head_dim = %lld needs more shared memory than this backend's attention uses",
                    function, (long long)head_dim);
    AMBIENT_REQUIRE(n * heads < INT64_C(2147483647) && (length + tile - 1) / tile < 65536,
                    "%s: n x heads = %lld x %lld or length = %lld is more than one launch covers", function,
                    (long long)n, (long long)heads, (long long)length);
    return AMBIENT_STATUS_OK;
}

int ambient_attention_forward(int64_t n, int64_t length, int64_t heads, int64_t head_dim, const float *qkv, float *out,
                              float *lse) {
    ambient_cuda_clear_error();
    int status = check_shape(__func__, n, length, heads, head_dim);
    if (status) return status;
    if (n == 0 || length == 0 || heads == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(qkv);
    AMBIENT_REQUIRE_POINTER(out);
    const int64_t f = (int64_t)sizeof(float);
    int64_t in_bytes = n * length * heads * 3 * head_dim * f, out_bytes = in_bytes / 3, lse_bytes = n * heads * length * f;
    AMBIENT_REQUIRE(!ambient_overlaps(out, out_bytes, qkv, in_bytes), "%s: out = %p overlaps qkv = %p", __func__,
                    (void *)out, (const void *)qkv);
    if (lse != NULL) {
        AMBIENT_REQUIRE(!ambient_overlaps(lse, lse_bytes, qkv, in_bytes), "%s: lse = %p overlaps qkv = %p", __func__,
                        (void *)lse, (const void *)qkv);
        AMBIENT_REQUIRE(!ambient_overlaps(lse, lse_bytes, out, out_bytes), "%s: lse = %p overlaps out = %p", __func__,
                        (void *)lse, (void *)out);
    }
    int tile = pick_tile(forward_floats, head_dim);
    status = check_launch(__func__, n, length, heads, head_dim, tile);
    if (status) return status;
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    float scale = (float)(1.0 / std::sqrt((double)head_dim));
    if (mma_launcher launch = pick_mma(ctx, head_dim, false)) {
        attention_mma_args a = {length, heads, head_dim, scale, qkv, out, lse, nullptr, nullptr, nullptr, nullptr};
        AMBIENT_CUDA_CHECK(launch(ctx, n, a));
        return AMBIENT_STATUS_OK;
    }
    dim3 grid((unsigned)(n * heads), (unsigned)((length + tile - 1) / tile));
    size_t smem = (size_t)forward_floats(tile, head_dim) * sizeof(float);
    AMBIENT_LAUNCH(grid, THREADS, smem, ctx.stream, attention_forward_kernel)(
        length, heads, head_dim, tile, scale, qkv, out, lse);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    return AMBIENT_STATUS_OK;
}

int ambient_attention_backward(int64_t n, int64_t length, int64_t heads, int64_t head_dim, const float *qkv,
                               const float *out, const float *lse, const float *dout, float *dqkv) {
    ambient_cuda_clear_error();
    int status = check_shape(__func__, n, length, heads, head_dim);
    if (status) return status;
    if (n == 0 || length == 0 || heads == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(qkv);
    AMBIENT_REQUIRE_POINTER(out);
    AMBIENT_REQUIRE_POINTER(lse);
    AMBIENT_REQUIRE_POINTER(dout);
    AMBIENT_REQUIRE_POINTER(dqkv);
    const int64_t f = (int64_t)sizeof(float);
    int64_t in_bytes = n * length * heads * 3 * head_dim * f, out_bytes = in_bytes / 3, lse_bytes = n * heads * length * f;
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, qkv, in_bytes), "%s: dqkv = %p overlaps qkv = %p", __func__,
                    (void *)dqkv, (const void *)qkv);
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, out, out_bytes), "%s: dqkv = %p overlaps out = %p", __func__,
                    (void *)dqkv, (const void *)out);
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, lse, lse_bytes), "%s: dqkv = %p overlaps lse = %p", __func__,
                    (void *)dqkv, (const void *)lse);
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, dout, out_bytes), "%s: dqkv = %p overlaps dout = %p", __func__,
                    (void *)dqkv, (const void *)dout);
    int tile_kv = pick_tile(dkdv_floats, head_dim), tile_q = pick_tile(dq_floats, head_dim);
    status = check_launch(__func__, n, length, heads, head_dim, tile_kv < tile_q ? tile_kv : tile_q);
    if (status) return status;
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    ambient_cuda_scratch scratch(ctx);
    void *dd = nullptr;
    status = scratch.take(__func__, lse_bytes, &dd);
    if (status) return status;
    float scale = (float)(1.0 / std::sqrt((double)head_dim));
    int64_t rows = n * length * heads;
    AMBIENT_LAUNCH(ambient_cuda_blocks(rows, 256 / 32, ctx.sm_count, 8), 256, 0, ctx.stream, attention_rowdot_kernel)(
        rows, length, heads, head_dim, out, dout, (float *)dd);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    if (mma_launcher launch = pick_mma(ctx, head_dim, true)) {
        attention_mma_args a = {length, heads, head_dim, scale, qkv, nullptr, nullptr, lse, dout, (const float *)dd, dqkv};
        AMBIENT_CUDA_CHECK(launch(ctx, n, a));
        return AMBIENT_STATUS_OK;
    }
    dim3 grid_kv((unsigned)(n * heads), (unsigned)((length + tile_kv - 1) / tile_kv));
    const size_t dkdv_bytes = (size_t)dkdv_floats(tile_kv, head_dim) * sizeof(float);
    AMBIENT_LAUNCH(grid_kv, THREADS, dkdv_bytes, ctx.stream, attention_dkdv_kernel)(
        length, heads, head_dim, tile_kv, scale, qkv, lse, dout, (const float *)dd, dqkv);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    dim3 grid_q((unsigned)(n * heads), (unsigned)((length + tile_q - 1) / tile_q));
    const size_t dq_bytes = (size_t)dq_floats(tile_q, head_dim) * sizeof(float);
    AMBIENT_LAUNCH(grid_q, THREADS, dq_bytes, ctx.stream, attention_dq_kernel)(
        length, heads, head_dim, tile_q, scale, qkv, lse, dout, (const float *)dd, dqkv);
    AMBIENT_CUDA_CHECK(cudaGetLastError());
    return AMBIENT_STATUS_OK;
}
