/*
 * The machine's ceilings, which benchmarks divide their results by:
 *   FMA peak:   every thread runs the kernel table's fma_loop (independent chains of fused
 *               multiply-adds in the widest registers, enough to hide the FMA latency) for
 *               about `seconds`; GFLOP/s = sum over threads of 2 * lanes * FMAs / time.
 *   bandwidth:  a parallel streaming copy between two buffers of bytes / 2, repeated for
 *               about `seconds`; GB/s = (read + written bytes) / time of the best repetition.
 *   matmul:     ambient_gemm (float32) on n x n x n, repeated for about `seconds` after one
 *               unmeasured call; GFLOP/s = 2 n^3 calls / time.
 */
#define _POSIX_C_SOURCE 200809L
#include "internal.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int require_seconds(const char *function, double seconds) {
    if (!(seconds > 0.0 && seconds <= 60.0))
        return ambient_fail(AMBIENT_STATUS_INVALID_ARGUMENT, "%s: seconds = %g is not in (0, 60]",
                            function, seconds);
    return AMBIENT_STATUS_OK;
}

/* Written with every result so the compiler cannot drop the loops. */
static volatile float benchmark_sink;

int ambient_benchmark_fma_peak(double seconds, double *gflops) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(gflops);
    *gflops = 0.0;
    int status = require_seconds(__func__, seconds);
    if (status) return status;

    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    /* Size a round so that it lasts about a millisecond: short enough to stop on time,
     * long enough that reading the clock costs nothing. */
    int64_t iterations = 1000;
    for (;;) {
        double t0 = now_seconds();
        benchmark_sink = kern->fma_loop(iterations);
        double dt = now_seconds() - t0;
        if (dt >= 2e-4 || iterations >= (INT64_C(1) << 40)) {
            iterations = (int64_t)((double)iterations * 1e-3 / (dt > 1e-9 ? dt : 1e-9)) + 1;
            break;
        }
        iterations *= 4;
    }

    double total = 0.0;
    int threads = ambient_cpu_threads();
#pragma omp parallel num_threads(threads) reduction(+ : total)
    {
        float sink = 0.0f;
        /* A tenth of the time (at most 0.2 s) unmeasured, for clocks and power states to settle. */
        double warm = now_seconds() + fmin(0.1 * seconds, 0.2);
        while (now_seconds() < warm) sink += kern->fma_loop(iterations);
#pragma omp barrier
        double start = now_seconds(), elapsed;
        int64_t rounds = 0;
        do {
            sink += kern->fma_loop(iterations);
            rounds++;
            elapsed = now_seconds() - start;
        } while (elapsed < seconds);
        total += (double)rounds * (double)iterations * (double)kern->fma_flops_per_iteration / elapsed;
        benchmark_sink = sink;
    }
    *gflops = total * 1e-9;
    return AMBIENT_STATUS_OK;
}

#define MIN_BANDWIDTH_BYTES (INT64_C(1) << 20)
#define MAX_BANDWIDTH_BYTES (INT64_C(1) << 40)

int ambient_benchmark_memory_bandwidth(int64_t bytes, double seconds, double *gb_per_s) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(gb_per_s);
    *gb_per_s = 0.0;
    AMBIENT_REQUIRE(bytes >= MIN_BANDWIDTH_BYTES && bytes <= MAX_BANDWIDTH_BYTES,
                    "%s: bytes = %lld is not in [1 MiB, 1 TiB]", __func__, (long long)bytes);
    int status = require_seconds(__func__, seconds);
    if (status) return status;

    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    /* Two buffers of bytes / 2, in whole 64-byte lines (16 floats). */
    int64_t count = bytes / 2 / 64 * 16;
    size_t buffer_bytes = (size_t)count * sizeof(float);
    float *src = aligned_alloc(64, buffer_bytes), *dst = aligned_alloc(64, buffer_bytes);
    if (src == NULL || dst == NULL) {
        free(src);
        free(dst);
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate two buffers of %lld bytes",
                            __func__, (long long)buffer_bytes);
    }
    int threads = ambient_cpu_threads();
    int64_t lines = count / 16;

    /* Touch both buffers first (with the threads that will copy them), so that page faults
     * are not measured. */
#pragma omp parallel num_threads(threads)
    {
        int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        int64_t begin = lines * t / nt * 16, end = lines * (t + 1) / nt * 16;
        for (int64_t i = begin; i < end; i++) src[i] = (float)(i & 1023);
        memset(dst + begin, 0, (size_t)(end - begin) * sizeof(float));
    }

    double best = 0.0, start = now_seconds();
    int repetitions = 0;
    do {
        double t0 = now_seconds();
#pragma omp parallel num_threads(threads)
        {
            int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
            int64_t begin = lines * t / nt * 16, end = lines * (t + 1) / nt * 16;
            kern->stream_copy(dst + begin, src + begin, end - begin);
        }
        double dt = now_seconds() - t0;
        double rate = 2.0 * (double)buffer_bytes / dt;
        if (rate > best) best = rate;
        repetitions++;
    } while (now_seconds() - start < seconds || repetitions < 2);

    benchmark_sink = dst[count / 2];
    free(src);
    free(dst);
    *gb_per_s = best * 1e-9;
    return AMBIENT_STATUS_OK;
}

#define MIN_MATMUL_N 64
#define MAX_MATMUL_N 16384

int ambient_benchmark_matmul_peak(int64_t n, double seconds, double *gflops) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(gflops);
    *gflops = 0.0;
    AMBIENT_REQUIRE(n >= MIN_MATMUL_N && n <= MAX_MATMUL_N, "%s: n = %lld is not in [%d, %d]", __func__, (long long)n,
                    MIN_MATMUL_N, MAX_MATMUL_N);
    int status = require_seconds(__func__, seconds);
    if (status) return status;

    size_t bytes = (size_t)(n * n) * sizeof(float);
    float *a = aligned_alloc(64, bytes), *b = aligned_alloc(64, bytes), *c = aligned_alloc(64, bytes);
    if (a == NULL || b == NULL || c == NULL) {
        free(a);
        free(b);
        free(c);
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate three %lld x %lld matrices", __func__,
                            (long long)n, (long long)n);
    }
    for (int64_t i = 0; i < n * n; i++) {
        a[i] = (float)(i % 251) * (1.0f / 251.0f) + 0.01f;
        b[i] = (float)(i % 241) * (1.0f / 241.0f) - 0.5f;
    }
    /* One unmeasured call: page faults, packing buffers, clocks. */
    status = ambient_gemm(0, 0, 1, n, n, n, 1.0f, a, n, 0, b, n, 0, 0.0f, c, n, 0);
    double start = now_seconds(), elapsed = 0.0;
    int64_t calls = 0;
    while (status == AMBIENT_STATUS_OK && (elapsed < seconds || calls < 1)) {
        status = ambient_gemm(0, 0, 1, n, n, n, 1.0f, a, n, 0, b, n, 0, 0.0f, c, n, 0);
        calls++;
        elapsed = now_seconds() - start;
    }
    benchmark_sink = c[n * n / 2];
    free(a);
    free(b);
    free(c);
    if (status) return status;
    *gflops = 2.0 * (double)n * (double)n * (double)n * (double)calls / elapsed * 1e-9;
    return AMBIENT_STATUS_OK;
}

/* ---- Timer: CPU calls finish before they return, so wall-clock time is the work's time ---- */

static _Thread_local double timer_started = -1.0;

int ambient_timer_start(void) {
    ambient_clear_error();
    timer_started = now_seconds();
    return AMBIENT_STATUS_OK;
}

int ambient_timer_elapsed(double *milliseconds) {
    ambient_clear_error();
    AMBIENT_REQUIRE_POINTER(milliseconds);
    *milliseconds = 0.0;
    AMBIENT_REQUIRE(timer_started >= 0.0, "%s: no ambient_timer_start on this thread", __func__);
    *milliseconds = 1e3 * (now_seconds() - timer_started);
    return AMBIENT_STATUS_OK;
}
