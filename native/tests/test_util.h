/*
 * Helpers shared by the C tests: a seeded random generator, poisoning of outputs, the
 * tolerance check |got - want| <= atol + rtol * |want| that prints the first few failures
 * and the worst one, and a clock and median for the programs that time kernels.
 */
#ifndef AMBIENT_TEST_UTIL_H
#define AMBIENT_TEST_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int test_failures;

#define CHECK(cond, ...)                                              \
    do {                                                              \
        if (!(cond)) {                                                \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                             \
            fprintf(stderr, "\n");                                    \
            test_failures++;                                          \
        }                                                             \
    } while (0)

/* splitmix64: small, seedable, good enough for test data. */
static uint64_t test_rng_state = 0x9e3779b97f4a7c15ull;
static inline void test_seed(uint64_t seed) { test_rng_state = seed * 0x9e3779b97f4a7c15ull + 1; }
static inline uint64_t test_next_u64(void) {
    uint64_t z = (test_rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
/* Uniform in [-1, 1), never exactly zero. */
static inline float test_uniform(void) {
    float u = (float)((test_next_u64() >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
    return u == 0.0f ? 0.5f : u;
}
static inline void test_fill(float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = scale * test_uniform();
}
/* Outputs are filled with NaN before a call so that an element the kernel forgets stays NaN. */
static inline void test_poison(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = NAN;
}
static inline float *test_alloc(int64_t n) {
    float *p = (float *)malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Returns 1 when every element is within atol + rtol * |want|. */
static inline int test_close(const char *what, const float *got, const double *want, int64_t n,
                      double atol, double rtol) {
    int64_t bad = 0, worst = -1;
    double worst_excess = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        double bound = atol + rtol * fabs(want[i]);
        if (!(err <= bound)) {
            if (bad < 5)
                fprintf(stderr, "  %s[%lld]: got %.9g want %.9g\n", what, (long long)i, got[i], want[i]);
            double excess = isnan(err) ? INFINITY : err / bound;
            if (worst < 0 || excess > worst_excess) { worst = i; worst_excess = excess; }
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "  %s: %lld of %lld elements out of tolerance; worst [%lld] got %.9g want %.9g\n",
                what, (long long)bad, (long long)n, (long long)worst, got[worst], want[worst]);
        test_failures++;
        return 0;
    }
    return 1;
}

/* Seconds on the monotonic clock. */
static inline double test_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}
static inline int test_compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}
/* The median of v[0 .. n), which it sorts. */
static inline double test_median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, test_compare_doubles);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static inline int test_finish(const char *name) {
    if (test_failures) {
        fprintf(stderr, "%s: %d failure(s)\n", name, test_failures);
        return 1;
    }
    printf("%s: all checks passed\n", name);
    return 0;
}

#endif
