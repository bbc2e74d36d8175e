/*
 * ambient.h: the one contract between Ambient's Java layer and its native backends.
 *
 * libambient_cpu.so (C11 + OpenMP) and libambient_cuda.so (CUDA) both export exactly these
 * symbols. Java binds one generated class to either library (bindings/ reads this file), and
 * the C parity harness loads both and compares them.
 *
 * Rules every function follows:
 *   - It returns an int status (AMBIENT_STATUS_*); on anything but OK, ambient_last_error()
 *     gives a message for the calling thread. Nothing here exits, aborts or throws.
 *   - Sizes, counts and strides are int64_t; negative ones are rejected.
 *   - Tensor pointers are "device pointers": host memory for the CPU backend, GPU memory for
 *     the CUDA backend. Only ambient_memory_copy_* take host pointers, and say which.
 *   - Layout is NHWC float32. A "row" is one pixel's C channels.
 *   - Outputs may alias inputs only where a function says so.
 *
 * The file is written in a constrained C that the binding generator understands: #define of
 * integer constants, typedef'd enums with explicit values, and function declarations over
 * int32_t, int64_t, float, double, void and pointers. Keep it that way.
 */
#ifndef AMBIENT_H
#define AMBIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AMBIENT_VERSION_MAJOR 0
#define AMBIENT_VERSION_MINOR 1
#define AMBIENT_VERSION_PATCH 0

typedef enum ambient_status {
    AMBIENT_STATUS_OK = 0,
    AMBIENT_STATUS_INVALID_ARGUMENT = 1,
    AMBIENT_STATUS_OUT_OF_MEMORY = 2,
    AMBIENT_STATUS_NO_DEVICE = 3,
    AMBIENT_STATUS_DEVICE_ERROR = 4,
    AMBIENT_STATUS_INTERNAL = 5
} ambient_status;

typedef enum ambient_backend {
    AMBIENT_BACKEND_CPU = 0,
    AMBIENT_BACKEND_CUDA = 1
} ambient_backend;

/* ---- Library ------------------------------------------------------------------------- */

/* major * 10000 + minor * 100 + patch of the library actually loaded. */
int32_t ambient_library_version(void);

/* AMBIENT_BACKEND_CPU or AMBIENT_BACKEND_CUDA. */
int32_t ambient_library_backend(void);

/* Message of the last failed call on this thread; "" when none. Valid until the next call. */
const char *ambient_last_error(void);

/* ---- Devices ------------------------------------------------------------------------- */

/* Number of usable devices. The CPU backend has exactly one. The CUDA backend returns
 * AMBIENT_STATUS_NO_DEVICE (and sets *count = 0) when no driver or no GPU answers. */
int ambient_device_count(int32_t *count);

/* Selects the device that later calls on this thread use (CUDA); 0 is the only CPU device. */
int ambient_device_select(int32_t device);

/* Human-readable device name, NUL-terminated, truncated to capacity bytes. */
int ambient_device_name(int32_t device, char *name, int64_t capacity);

/* Free and total memory of the device, in bytes. */
int ambient_device_memory(int32_t device, int64_t *free_bytes, int64_t *total_bytes);

/* Waits for all work queued by this library on the selected device. */
int ambient_device_synchronize(void);

/* Worker threads used by CPU kernels (<= 0 restores the default); CUDA ignores it. */
int ambient_threads_set(int32_t threads);
int ambient_threads_get(int32_t *threads);

/* ---- Memory (device pointers unless named host) ---------------------------------------- */

/* 64-byte aligned (CPU) or cudaMalloc'd (CUDA) block of bytes > 0. */
int ambient_memory_alloc(int64_t bytes, void **ptr);
int ambient_memory_free(void *ptr);
int ambient_memory_copy_to_device(void *device_dst, const void *host_src, int64_t bytes);
int ambient_memory_copy_to_host(void *host_dst, const void *device_src, int64_t bytes);
int ambient_memory_copy_on_device(void *device_dst, const void *device_src, int64_t bytes);
/* Sets every byte to the low 8 bits of value. */
int ambient_memory_set(void *device_dst, int32_t value, int64_t bytes);

/* ---- Machine ceilings (what benchmarks divide by) ---------------------------------------- */

/* float32 fused multiply-add throughput of the whole device, GFLOP/s (2 flops per FMA),
 * measured for about `seconds`. */
int ambient_benchmark_fma_peak(double seconds, double *gflops);

/* Memory bandwidth of a large copy (read + write bytes counted), GB/s, on a working set of
 * `bytes`, measured for about `seconds`. */
int ambient_benchmark_memory_bandwidth(int64_t bytes, double seconds, double *gb_per_s);

/* ---- GEMM ---------------------------------------------------------------------------- */

/* Batched row-major matrix multiply, for b in [0, batch):
 *   C_b = alpha * op(A_b) * op(B_b) + beta * C_b
 * op(A_b) is m x k: A_b is m x k with row stride lda >= k, or k x m (lda >= m) when
 * transpose_a != 0. op(B_b) is k x n: B_b is k x n (ldb >= n), or n x k (ldb >= k) when
 * transposed. C_b is m x n (ldc >= n). X_b starts at x + b * stride_x.
 * When beta == 0, C is not read (so it may hold NaN). C must not overlap A or B, and with
 * batch > 1 the C matrices must not overlap each other (stride_c >= (m - 1) * ldc + n);
 * A and B may be shared across the batch (stride 0). */
int ambient_gemm(int32_t transpose_a, int32_t transpose_b,
                 int64_t batch, int64_t m, int64_t n, int64_t k,
                 float alpha,
                 const float *a, int64_t lda, int64_t stride_a,
                 const float *b, int64_t ldb, int64_t stride_b,
                 float beta,
                 float *c, int64_t ldc, int64_t stride_c);

/* ---- Magnitude-preserving elementwise ops (EDM2) ------------------------------------------ */

/* y = silu(x) / 0.596, over count elements. y may equal x. */
int ambient_mp_silu_forward(int64_t count, const float *x, float *y);

/* dx = dy * silu'(x) / 0.596. dx may equal dy. */
int ambient_mp_silu_backward(int64_t count, const float *x, const float *dy, float *dx);

/* y = ((1 - t) * a + t * b) / sqrt((1 - t)^2 + t^2). y may equal a or b. */
int ambient_mp_sum_forward(int64_t count, const float *a, const float *b, float t, float *y);

/* da = dy * (1 - t) / s, db = dy * t / s with s = sqrt((1 - t)^2 + t^2). Either output may
 * equal dy; da and db must differ. */
int ambient_mp_sum_backward(int64_t count, const float *dy, float t, float *da, float *db);

/* ---- Pixel normalisation (EDM2 normalize over channels) ----------------------------------- */

/* For each of `rows` rows of `channels` values: y = x / (eps + |x| / sqrt(channels)).
 * y may equal x. */
int ambient_pixel_norm_forward(int64_t rows, int64_t channels, float eps,
                               const float *x, float *y);

/* Gradient of the above with respect to x, given dy. dx must not overlap x or dy. */
int ambient_pixel_norm_backward(int64_t rows, int64_t channels, float eps,
                                const float *x, const float *dy, float *dx);

#ifdef __cplusplus
}
#endif

#endif /* AMBIENT_H */
