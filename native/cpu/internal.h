/*
 * Shared by the CPU backend's files: exported-symbol visibility, error recording and the
 * argument checks every entry point starts with.
 */
#ifndef AMBIENT_CPU_INTERNAL_H
#define AMBIENT_CPU_INTERNAL_H

/* The library is built with hidden visibility; only what ambient.h declares is exported. */
#pragma GCC visibility push(default)
#include "ambient.h"
#pragma GCC visibility pop

#include <omp.h>
#include <stdint.h>

/* Records a printf-style message for ambient_last_error() and returns status. */
int ambient_fail(int status, const char *format, ...) __attribute__((format(printf, 2, 3)));

/* Clears the thread's error message; every entry point calls it first. */
void ambient_clear_error(void);

/* Number of OpenMP threads CPU kernels use (set by ambient_threads_set). */
int ambient_cpu_threads(void);

/* Returns from the calling function with INVALID_ARGUMENT when cond is false. */
#define AMBIENT_REQUIRE(cond, ...)                                               \
    do {                                                                         \
        if (!(cond)) return ambient_fail(AMBIENT_STATUS_INVALID_ARGUMENT, __VA_ARGS__); \
    } while (0)

#define AMBIENT_REQUIRE_POINTER(p) AMBIENT_REQUIRE((p) != NULL, "%s: %s is NULL", __func__, #p)
/* Element counts are non-negative and small enough that count * 16 bytes cannot overflow. */
#define AMBIENT_MAX_COUNT (INT64_C(1) << 58)
#define AMBIENT_REQUIRE_COUNT(n)                                                           \
    AMBIENT_REQUIRE((n) >= 0 && (n) <= AMBIENT_MAX_COUNT, "%s: %s = %lld is %s", __func__, #n, \
                    (long long)(n), (n) < 0 ? "negative" : "too large")

/* Runs body over [0, count) split into contiguous [begin, end) chunks, one per OpenMP
 * thread; below `threshold` items a single thread does it all. */
#define AMBIENT_PARALLEL_CHUNKS(count, threshold, body)                                 \
    do {                                                                               \
        int64_t n_ = (count);                                                          \
        int threads_ = n_ >= (threshold) ? ambient_cpu_threads() : 1;                  \
        _Pragma("omp parallel num_threads(threads_) if(threads_ > 1)")                 \
        {                                                                              \
            int64_t t_ = omp_get_thread_num(), nt_ = omp_get_num_threads();            \
            int64_t begin = n_ * t_ / nt_, end = n_ * (t_ + 1) / nt_;                  \
            body;                                                                      \
        }                                                                              \
    } while (0)

/* A 64-byte aligned scratch block of at least `floats` floats, reused from the op family's
 * cache slot when it is big enough (cpu/scratch.c); NULL when memory runs out. Give it back
 * with ambient_scratch_give on the same slot. */
float *ambient_scratch_take(void **slot, int64_t floats);
void ambient_scratch_give(void **slot, float *scratch);

/* True when the byte ranges [a, a+abytes) and [b, b+bbytes) intersect. */
static inline int ambient_overlaps(const void *a, int64_t abytes, const void *b, int64_t bbytes) {
    const char *pa = (const char *)a, *pb = (const char *)b;
    return pa < pb + bbytes && pb < pa + abytes;
}

#endif
