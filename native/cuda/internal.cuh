/*
 * Shared by the CUDA backend's files: exported-symbol visibility, error recording, the
 * argument checks every entry point starts with (same rules and messages as the CPU
 * backend), the CUDA status check, and the per-call context (selected device, its stream).
 *
 * Each .cu file has three tiers per op: a `static __global__` kernel, a `static` launcher
 * that takes the stream, sizes the grid and returns cudaGetLastError(), and the exported
 * ambient_* entry that validates its arguments, calls ambient_cuda_begin and launches
 * through AMBIENT_CUDA_CHECK. Nothing exits: every CUDA failure becomes a status plus a
 * message for ambient_last_error().
 */
#ifndef AMBIENT_CUDA_INTERNAL_CUH
#define AMBIENT_CUDA_INTERNAL_CUH

/* The library is built with hidden visibility; only what ambient.h declares is exported. */
#pragma GCC visibility push(default)
#include "ambient.h"
#pragma GCC visibility pop

#include <cuda_runtime.h>
#include <stdint.h>

#include "mma.cuh" /* ambient_cuda_precision */

static_assert(AMBIENT_MATMUL_FP32 == (int)AMBIENT_PRECISION_FP32 && AMBIENT_MATMUL_TF32 == (int)AMBIENT_PRECISION_TF32 &&
                  AMBIENT_MATMUL_BF16 == (int)AMBIENT_PRECISION_BF16,
              "the library's precisions are the ones ambient.h names");

/* Records a printf-style message for ambient_last_error() and returns status. */
int ambient_cuda_fail(int status, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Clears the thread's error message; every entry point calls it first. */
void ambient_cuda_clear_error(void);

/* AMBIENT_STATUS_* for a CUDA error: OUT_OF_MEMORY for allocation failures, NO_DEVICE when
 * no driver or no GPU answers, DEVICE_ERROR otherwise. */
int ambient_cuda_status(cudaError_t error);

/* Records "function: statement failed at file:line: text (name)", clears the runtime's
 * non-sticky last error so that it is not blamed on a later launch, and returns
 * ambient_cuda_status(error). */
int ambient_cuda_fail_call(const char *function, cudaError_t error, const char *statement,
                           const char *file, int line);

/* llm.c's cudaCheck, except that it returns a status from the calling entry point instead of
 * exiting. */
#define AMBIENT_CUDA_CHECK_AS(function, statement)                                          \
    do {                                                                                    \
        cudaError_t ambient_error_ = (statement);                                           \
        if (ambient_error_ != cudaSuccess)                                                  \
            return ambient_cuda_fail_call(function, ambient_error_, #statement, __FILE__,   \
                                          __LINE__);                                        \
    } while (0)
#define AMBIENT_CUDA_CHECK(statement) AMBIENT_CUDA_CHECK_AS(__func__, statement)

/* What an entry point needs to launch work: the thread's selected device (made current),
 * the library's non-blocking stream on it, its multiprocessor count for grid sizing, the most
 * shared memory a block may opt in to, and the precision of matrix products (GEMM,
 * convolution, attention) that AMBIENT_CUDA_MATMUL chose. */
struct ambient_cuda_context {
    int device = 0;
    cudaStream_t stream = nullptr;
    int sm_count = 1;
    int64_t shared_optin = 48 * 1024;
    ambient_cuda_precision precision = AMBIENT_MATMUL_BF16;
};

/* The environment variable that chooses the precision of matrix products, read once per
 * process when the library first initialises: bf16 (the default when unset or empty), tf32
 * or fp32 (the float32 SIMT kernels), any case. Any other value makes every call that needs
 * the device fail with AMBIENT_STATUS_INVALID_ARGUMENT and a message naming it. */
#define AMBIENT_CUDA_MATMUL_VARIABLE "AMBIENT_CUDA_MATMUL"

/* Probes the devices (once per process) and reads AMBIENT_CUDA_MATMUL, makes the thread's
 * selected device current and creates its stream on first use (thread-safe). Returns
 * INVALID_ARGUMENT naming the variable when its value is unknown (checked first), and
 * NO_DEVICE with "function: no CUDA device (cudaGetDeviceCount: ...)" when there is none. */
int ambient_cuda_begin(const char *function, ambient_cuda_context *context);

/* A kernel launch, AMBIENT_LAUNCH(grid, block, shared_bytes, stream, kernel)(arguments), and a
 * kernel's dynamic shared memory, AMBIENT_DYNAMIC_SHARED(type, name) (16-byte aligned): the
 * CUDA forms. The emulated CUDA library of the tests (native/tests/cuda_emulation/device.h),
 * which compiles these files with the host compiler, defines its own. */
#ifndef AMBIENT_LAUNCH
#define AMBIENT_LAUNCH(grid, block, shared_bytes, stream, ...) __VA_ARGS__<<<grid, block, shared_bytes, stream>>>
#define AMBIENT_DYNAMIC_SHARED(type, name) extern __shared__ __align__(16) type name[]
#endif

/* Returns from the calling function with INVALID_ARGUMENT when cond is false. */
#define AMBIENT_REQUIRE(cond, ...)                                                          \
    do {                                                                                    \
        if (!(cond)) return ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT, __VA_ARGS__); \
    } while (0)

#define AMBIENT_REQUIRE_POINTER(p) AMBIENT_REQUIRE((p) != NULL, "%s: %s is NULL", __func__, #p)
/* Element counts are non-negative and small enough that count * 16 bytes cannot overflow. */
#define AMBIENT_MAX_COUNT (INT64_C(1) << 58)
#define AMBIENT_REQUIRE_COUNT(n)                                                            \
    AMBIENT_REQUIRE((n) >= 0 && (n) <= AMBIENT_MAX_COUNT, "%s: %s = %lld is %s", __func__, #n, \
                    (long long)(n), (n) < 0 ? "negative" : "too large")

/* True when the byte ranges [a, a+abytes) and [b, b+bbytes) intersect. */
static inline int ambient_overlaps(const void *a, int64_t abytes, const void *b, int64_t bbytes) {
    const char *pa = (const char *)a, *pb = (const char *)b;
    return pa < pb + bbytes && pb < pa + abytes;
}

/* Blocks for a grid-stride loop over `items` work items with `threads` per block: enough to
 * cover them, at most `per_sm` blocks per multiprocessor (the loop does the rest). */
static inline unsigned ambient_cuda_blocks(int64_t items, int threads, int sm_count, int per_sm) {
    int64_t needed = (items + threads - 1) / threads;
    int64_t cap = (int64_t)(sm_count > 0 ? sm_count : 1) * per_sm;
    int64_t blocks = needed < cap ? needed : cap;
    return (unsigned)(blocks > 0 ? blocks : 1);
}

/* ---- Scratch -------------------------------------------------------------------------------- */

/* The selected device's scratch block (partial sums, staged host arguments), shared by every
 * entry point and kept between calls so that hot paths do not allocate. Holding a lease locks
 * it: take() may grow the block (waiting for the stream first, so that no queued kernel still
 * uses the old one), and the lease must live until every kernel that uses the pointer has been
 * queued; later work on the same stream runs after those kernels, so the next lease may reuse
 * the memory at once. */
class ambient_cuda_scratch {
public:
    explicit ambient_cuda_scratch(const ambient_cuda_context &context);
    ~ambient_cuda_scratch();
    ambient_cuda_scratch(const ambient_cuda_scratch &) = delete;
    ambient_cuda_scratch &operator=(const ambient_cuda_scratch &) = delete;
    /* *ptr <- at least `bytes` (> 0) bytes, 256-byte aligned; a status (with the message
     * under `function`) when the block cannot grow. */
    int take(const char *function, int64_t bytes, void **ptr);

private:
    const ambient_cuda_context &context_;
};

/* ---- Device helpers shared by the kernels ------------------------------------------------------ */

/* Sum of v over the block (blockDim.x a multiple of 32, at most 1024 threads), in a fixed order
 * (warp shuffles, then warp sums in warp order), so that a reduction's result depends only on
 * which thread held which value. Every thread of the block must call it; all get the sum.
 * scratch: 32 values of shared memory. */
template <typename T>
static __device__ __forceinline__ T ambient_block_sum(T v, T *scratch) {
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
    __syncthreads(); /* scratch is free (a previous call may still be reading it) */
    if ((threadIdx.x & 31u) == 0) scratch[threadIdx.x / 32] = v;
    __syncthreads();
    T total = 0;
    for (unsigned w = 0; w < blockDim.x / 32; w++) total += scratch[w];
    return total;
}

/* EDM2's mp_silu(v) = silu(v) / 0.596 and g times its derivative, (s + v s (1 - s)) / 0.596
 * with s = sigmoid(v) (mp_ops.cu, and the fused channel scaling of embedding.cu). */
#define AMBIENT_MP_SILU_SCALE (1.0f / 0.596f)
static __device__ __forceinline__ float ambient_mp_silu(float v) {
    return v / (1.0f + expf(-v)) * AMBIENT_MP_SILU_SCALE;
}

static __device__ __forceinline__ float ambient_mp_silu_grad(float v, float g) {
    float s = 1.0f / (1.0f + expf(-v));
    return g * (s * (1.0f + v * (1.0f - s))) * AMBIENT_MP_SILU_SCALE;
}

/* Grid-stride loop over [0, count): f(i) for every i, f a __device__ functor. */
template <typename F>
static __global__ void ambient_for_each_kernel(int64_t count, F f) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < count;
         i += (int64_t)gridDim.x * blockDim.x)
        f(i);
}

template <typename F>
static inline cudaError_t ambient_for_each(const ambient_cuda_context &ctx, int64_t count, F f) {
    if (count <= 0) return cudaSuccess;
    unsigned blocks = ambient_cuda_blocks(count, 256, ctx.sm_count, 8);
    AMBIENT_LAUNCH(blocks, 256, 0, ctx.stream, ambient_for_each_kernel<F>)(count, f);
    return cudaGetLastError();
}

/* y[i] = beta * y[i] over count floats; beta == 0 writes zeros without reading y (NaN there
 * does not survive), as every "+ beta * out" of ambient.h requires. */
struct ambient_scale_op {
    float *y;
    float beta;
    __device__ void operator()(int64_t i) const { y[i] = beta == 0.0f ? 0.0f : beta * y[i]; }
};

#endif
