/*
 * The GPU's ceilings, which benchmarks divide their results by:
 *   FMA peak:   fma_peak_kernel runs 8 independent chains x <- x * s + t (fused) per thread,
 *               on 8 blocks of 256 threads per SM (full occupancy on sm_80 / sm_90), each
 *               launch sized to last about 10 ms; launches repeat for about `seconds` after a
 *               short warm-up, timed with CUDA events. GFLOP/s = 2 * FMAs / time.
 *   bandwidth:  a device-to-device copy between two buffers of bytes / 2 (cudaMemcpyAsync),
 *               repeated for about `seconds`; GB/s = (read + written bytes) / time of the best
 *               repetition, each timed with CUDA events.
 *   matmul:     ambient_gemm on n x n x n (float32 tensors, so the operands' conversion is
 *               counted) in the precision AMBIENT_CUDA_MATMUL chose: the tensor-core ceiling
 *               (bf16 by default) that convolution rates are read against. One unmeasured
 *               call, then back-to-back calls between two CUDA events for about `seconds`;
 *               GFLOP/s = 2 n^3 calls / time.
 * Same argument rules as the CPU backend (seconds in (0, 60], bytes in [1 MiB, 1 TiB],
 * n in [64, 16384]).
 */
#include "internal.cuh"

#include <chrono>

#define FMA_CHAINS 8
#define FMA_THREADS 256
#define FMA_BLOCKS_PER_SM 8

/* ---- Kernel ----------------------------------------------------------------------------- */

/* Each thread: iterations * FMA_CHAINS fused multiply-adds in FMA_CHAINS independent chains
 * (enough to hide the FMA latency with 16 warps per scheduler). The result is stored only if
 * it equals `never`, which it does not, but the compiler cannot know that. */
static __global__ void __launch_bounds__(FMA_THREADS)
fma_peak_kernel(int iterations, float s, float t, float never, float *sink) {
    float x[FMA_CHAINS];
#pragma unroll
    for (int c = 0; c < FMA_CHAINS; c++) x[c] = (float)(threadIdx.x + c) * 1e-3f;
    /* Unrolled so that loop control takes a negligible share of the issue slots. */
#pragma unroll 16
    for (int i = 0; i < iterations; i++) {
#pragma unroll
        for (int c = 0; c < FMA_CHAINS; c++) x[c] = fmaf(x[c], s, t);
    }
    float total = 0.0f;
#pragma unroll
    for (int c = 0; c < FMA_CHAINS; c++) total += x[c];
    if (total == never) *sink = total;
}

/* ---- Launchers ---------------------------------------------------------------------------- */

static unsigned fma_blocks(const ambient_cuda_context &ctx) {
    return (unsigned)ctx.sm_count * FMA_BLOCKS_PER_SM;
}

static double fma_flops(const ambient_cuda_context &ctx, int iterations) {
    return 2.0 * FMA_CHAINS * (double)iterations * fma_blocks(ctx) * FMA_THREADS;
}

static cudaError_t fma_peak_launch(const ambient_cuda_context &ctx, int iterations, float *sink) {
    AMBIENT_LAUNCH(fma_blocks(ctx), FMA_THREADS, 0, ctx.stream, fma_peak_kernel)(iterations, 0.999999f, 1e-6f,
                                                                     -12345.0f, sink);
    return cudaGetLastError();
}

/* Events and device blocks of one measurement, released on every return path. */
struct benchmark_resources {
    cudaStream_t stream;
    cudaEvent_t start = nullptr, stop = nullptr;
    void *block0 = nullptr, *block1 = nullptr;
    explicit benchmark_resources(cudaStream_t s) : stream(s) {}
    ~benchmark_resources() {
        /* Nothing queued may still use the blocks (errors here were already reported). */
        if (block0 || block1) (void)cudaStreamSynchronize(stream);
        if (start) cudaEventDestroy(start);
        if (stop) cudaEventDestroy(stop);
        if (block0) cudaFree(block0);
        if (block1) cudaFree(block1);
        (void)cudaGetLastError(); /* a failure here must not be blamed on a later launch */
    }
};

static double wall_seconds(void) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

static int require_seconds(const char *function, double seconds) {
    if (!(seconds > 0.0 && seconds <= 60.0))
        return ambient_cuda_fail(AMBIENT_STATUS_INVALID_ARGUMENT, "%s: seconds = %g is not in (0, 60]",
                                 function, seconds);
    return AMBIENT_STATUS_OK;
}

/* ---- Entry points ------------------------------------------------------------------------- */

int ambient_benchmark_fma_peak(double seconds, double *gflops) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(gflops);
    *gflops = 0.0;
    int status = require_seconds(__func__, seconds);
    if (status) return status;
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;

    benchmark_resources r(ctx.stream);
    AMBIENT_CUDA_CHECK(cudaEventCreate(&r.start));
    AMBIENT_CUDA_CHECK(cudaEventCreate(&r.stop));
    AMBIENT_CUDA_CHECK(cudaMalloc(&r.block0, sizeof(float)));
    float *sink = (float *)r.block0;

    /* Size a launch to about 10 ms: long against launch gaps, short against the time limit. */
    int iterations = 1024;
    float ms = 0.0f;
    for (;;) {
        AMBIENT_CUDA_CHECK(cudaEventRecord(r.start, ctx.stream));
        AMBIENT_CUDA_CHECK(fma_peak_launch(ctx, iterations, sink));
        AMBIENT_CUDA_CHECK(cudaEventRecord(r.stop, ctx.stream));
        AMBIENT_CUDA_CHECK(cudaEventSynchronize(r.stop));
        AMBIENT_CUDA_CHECK(cudaEventElapsedTime(&ms, r.start, r.stop));
        if (ms >= 1.0f || iterations >= (1 << 24)) break;
        iterations *= 4;
    }
    double scaled = (double)iterations * 10.0 / (ms > 1e-3f ? ms : 1e-3);
    iterations = (int)(scaled < 1.0 ? 1.0 : scaled > (double)(1 << 28) ? (double)(1 << 28) : scaled);

    /* A tenth of the time (at most 0.2 s) unmeasured, for clocks and power states to settle. */
    double warm_until = wall_seconds() + (0.1 * seconds < 0.2 ? 0.1 * seconds : 0.2);
    do {
        AMBIENT_CUDA_CHECK(fma_peak_launch(ctx, iterations, sink));
        AMBIENT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    } while (wall_seconds() < warm_until);

    int64_t rounds = 0;
    double elapsed = 0.0;
    AMBIENT_CUDA_CHECK(cudaEventRecord(r.start, ctx.stream));
    do {
        AMBIENT_CUDA_CHECK(fma_peak_launch(ctx, iterations, sink));
        rounds++;
        AMBIENT_CUDA_CHECK(cudaEventRecord(r.stop, ctx.stream));
        AMBIENT_CUDA_CHECK(cudaEventSynchronize(r.stop));
        AMBIENT_CUDA_CHECK(cudaEventElapsedTime(&ms, r.start, r.stop));
        elapsed = 1e-3 * ms;
    } while (elapsed < seconds);
    *gflops = (double)rounds * fma_flops(ctx, iterations) / elapsed * 1e-9;
    return AMBIENT_STATUS_OK;
}

#define MIN_BANDWIDTH_BYTES (INT64_C(1) << 20)
#define MAX_BANDWIDTH_BYTES (INT64_C(1) << 40)

int ambient_benchmark_memory_bandwidth(int64_t bytes, double seconds, double *gb_per_s) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(gb_per_s);
    *gb_per_s = 0.0;
    AMBIENT_REQUIRE(bytes >= MIN_BANDWIDTH_BYTES && bytes <= MAX_BANDWIDTH_BYTES,
                    "%s: bytes = %lld is not in [1 MiB, 1 TiB]", __func__, (long long)bytes);
    int status = require_seconds(__func__, seconds);
    if (status) return status;
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;

    /* Two buffers of bytes / 2, in whole 256-byte blocks. */
    size_t half = (size_t)(bytes / 2 / 256 * 256);
    benchmark_resources r(ctx.stream);
    AMBIENT_CUDA_CHECK(cudaEventCreate(&r.start));
    AMBIENT_CUDA_CHECK(cudaEventCreate(&r.stop));
    AMBIENT_CUDA_CHECK(cudaMalloc(&r.block0, half));
    AMBIENT_CUDA_CHECK(cudaMalloc(&r.block1, half));
    /* Touch both buffers and copy once, so that first-use costs are not measured. */
    AMBIENT_CUDA_CHECK(cudaMemsetAsync(r.block0, 1, half, ctx.stream));
    AMBIENT_CUDA_CHECK(cudaMemsetAsync(r.block1, 0, half, ctx.stream));
    AMBIENT_CUDA_CHECK(cudaMemcpyAsync(r.block1, r.block0, half, cudaMemcpyDeviceToDevice, ctx.stream));
    AMBIENT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));

    double best = 0.0, start = wall_seconds();
    int repetitions = 0;
    do {
        AMBIENT_CUDA_CHECK(cudaEventRecord(r.start, ctx.stream));
        AMBIENT_CUDA_CHECK(cudaMemcpyAsync(r.block1, r.block0, half, cudaMemcpyDeviceToDevice, ctx.stream));
        AMBIENT_CUDA_CHECK(cudaEventRecord(r.stop, ctx.stream));
        AMBIENT_CUDA_CHECK(cudaEventSynchronize(r.stop));
        float ms = 0.0f;
        AMBIENT_CUDA_CHECK(cudaEventElapsedTime(&ms, r.start, r.stop));
        double rate = 2.0 * (double)half / (1e-3 * (ms > 1e-4f ? ms : 1e-4f));
        if (rate > best) best = rate;
        repetitions++;
    } while (wall_seconds() - start < seconds || repetitions < 2);
    *gb_per_s = best * 1e-9;
    return AMBIENT_STATUS_OK;
}

#define MIN_MATMUL_N 64
#define MAX_MATMUL_N 16384

/* Non-zero, not all equal operands for the matmul ceiling (value i of a buffer). */
struct matmul_fill_op {
    float *x;
    float scale, offset;
    __device__ void operator()(int64_t i) const { x[i] = (float)(i % 251) * scale + offset; }
};

int ambient_benchmark_matmul_peak(int64_t n, double seconds, double *gflops) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(gflops);
    *gflops = 0.0;
    AMBIENT_REQUIRE(n >= MIN_MATMUL_N && n <= MAX_MATMUL_N, "%s: n = %lld is not in [%d, %d]", __func__,
                    (long long)n, MIN_MATMUL_N, MAX_MATMUL_N);
    int status = require_seconds(__func__, seconds);
    if (status) return status;
    ambient_cuda_context ctx;
    status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;

    benchmark_resources r(ctx.stream);
    AMBIENT_CUDA_CHECK(cudaEventCreate(&r.start));
    AMBIENT_CUDA_CHECK(cudaEventCreate(&r.stop));
    const int64_t count = n * n;
    /* A and B in one block, C in the other. */
    AMBIENT_CUDA_CHECK(cudaMalloc(&r.block0, 2 * (size_t)count * sizeof(float)));
    AMBIENT_CUDA_CHECK(cudaMalloc(&r.block1, (size_t)count * sizeof(float)));
    float *a = (float *)r.block0, *b = a + count, *c = (float *)r.block1;
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, count, matmul_fill_op{a, 1.0f / 251.0f, 0.01f}));
    AMBIENT_CUDA_CHECK(ambient_for_each(ctx, count, matmul_fill_op{b, 1.0f / 251.0f, -0.5f}));

    /* ambient_gemm queues on ctx.stream, between the events; its message names it. */
#define MATMUL_CALL()                                                                              \
    do {                                                                                           \
        status = ambient_gemm(0, 0, 1, n, n, n, 1.0f, a, n, 0, b, n, 0, 0.0f, c, n, 0);            \
        if (status) return status;                                                                 \
    } while (0)
    MATMUL_CALL();
    AMBIENT_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    int64_t calls = 0;
    double elapsed = 0.0;
    double started = wall_seconds();
    AMBIENT_CUDA_CHECK(cudaEventRecord(r.start, ctx.stream));
    do {
        /* Queue about a tenth of the time between checks, so the GPU never waits for the host. */
        double queued_until = wall_seconds() + 0.1 * seconds;
        do {
            MATMUL_CALL();
            calls++;
        } while (wall_seconds() < queued_until && calls % 64 != 0);
        AMBIENT_CUDA_CHECK(cudaEventRecord(r.stop, ctx.stream));
        AMBIENT_CUDA_CHECK(cudaEventSynchronize(r.stop));
        float ms = 0.0f;
        AMBIENT_CUDA_CHECK(cudaEventElapsedTime(&ms, r.start, r.stop));
        elapsed = 1e-3 * ms;
    } while (elapsed < seconds && wall_seconds() - started < 4.0 * seconds + 1.0);
#undef MATMUL_CALL
    *gflops = 2.0 * (double)n * (double)n * (double)n * (double)calls / elapsed * 1e-9;
    return AMBIENT_STATUS_OK;
}

/* ---- Timer: two events on the library's stream ------------------------------------------------ */

namespace {
/* The calling thread's events, created on first use on a device and re-created when the
 * thread's device changes (never destroyed: a pair per thread that times). Zero-initialised,
 * so that the thread-local needs no initialisation function. */
struct thread_timer {
    bool created, started;
    int device;
    cudaEvent_t start, stop;
};
thread_local thread_timer timer;
} // namespace

int ambient_timer_start(void) {
    ambient_cuda_clear_error();
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    if (!timer.created || timer.device != ctx.device) {
        if (timer.created) {
            (void)cudaEventDestroy(timer.start);
            (void)cudaEventDestroy(timer.stop);
        }
        timer.created = timer.started = false;
        AMBIENT_CUDA_CHECK(cudaEventCreate(&timer.start));
        cudaError_t error = cudaEventCreate(&timer.stop);
        if (error != cudaSuccess) {
            (void)cudaEventDestroy(timer.start);
            return ambient_cuda_fail_call(__func__, error, "cudaEventCreate(&timer.stop)", __FILE__, __LINE__);
        }
        timer.created = true;
        timer.device = ctx.device;
    }
    AMBIENT_CUDA_CHECK(cudaEventRecord(timer.start, ctx.stream));
    timer.started = true;
    return AMBIENT_STATUS_OK;
}

int ambient_timer_elapsed(double *milliseconds) {
    ambient_cuda_clear_error();
    AMBIENT_REQUIRE_POINTER(milliseconds);
    *milliseconds = 0.0;
    ambient_cuda_context ctx;
    int status = ambient_cuda_begin(__func__, &ctx);
    if (status) return status;
    AMBIENT_REQUIRE(timer.created && timer.started && timer.device == ctx.device,
                    "%s: no ambient_timer_start on this thread and device %d", __func__, ctx.device);
    AMBIENT_CUDA_CHECK(cudaEventRecord(timer.stop, ctx.stream));
    AMBIENT_CUDA_CHECK(cudaEventSynchronize(timer.stop));
    float ms = 0.0f;
    AMBIENT_CUDA_CHECK(cudaEventElapsedTime(&ms, timer.start, timer.stop));
    *milliseconds = (double)ms;
    return AMBIENT_STATUS_OK;
}
