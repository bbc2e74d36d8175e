/*
 * CPU ambient_gemm against a float64 reference: all four transpose combinations over sizes
 * that are and are not multiples of the register tiles and cache blocks, padded leading
 * dimensions, batches with strides (including a shared A), alpha/beta variants, k = 0,
 * beta = 0 over a NaN-poisoned C, thread counts that split the work unevenly (and products
 * split along k), calls from
 * several application threads at once, and the argument checks. ctest runs it once per
 * instruction set (AMBIENT_CPU_ISA). Also a short run of the two benchmarks, which use the
 * same kernel tables.
 */
#include "ambient.h"
#include "test_util.h"

#include <pthread.h>

/* Elements between C's rows and matrices hold this and must keep it. */
#define GAP_VALUE 7777.0f

typedef struct {
    int ta, tb;
    int64_t batch, m, n, k;
    float alpha, beta;
    int64_t pad_ld;     /* added to every leading dimension */
    int64_t pad_stride; /* added to every batch stride */
    int shared_a;       /* stride_a = 0: one A for the whole batch */
} gemm_case;

static void run_case(const gemm_case *t) {
    int64_t a_rows = t->ta ? t->k : t->m, a_cols = t->ta ? t->m : t->k;
    int64_t b_rows = t->tb ? t->n : t->k, b_cols = t->tb ? t->k : t->n;
    int64_t lda = a_cols + t->pad_ld, ldb = b_cols + t->pad_ld, ldc = t->n + t->pad_ld;
    int64_t stride_a = t->shared_a ? 0 : a_rows * lda + t->pad_stride;
    int64_t stride_b = b_rows * ldb + t->pad_stride, stride_c = t->m * ldc + t->pad_stride;
    int64_t a_len = (t->batch - 1) * stride_a + a_rows * lda;
    int64_t b_len = (t->batch - 1) * stride_b + b_rows * ldb;
    int64_t c_len = (t->batch - 1) * stride_c + t->m * ldc;
    float *a = test_alloc(a_len), *b = test_alloc(b_len), *c = test_alloc(c_len), *c0 = test_alloc(c_len);
    test_fill(a, a_len, 1.0f);
    test_fill(b, b_len, 1.0f);
    for (int64_t i = 0; i < c_len; i++) c[i] = GAP_VALUE;
    for (int64_t e = 0; e < t->batch; e++)
        for (int64_t i = 0; i < t->m; i++) {
            float *row = c + e * stride_c + i * ldc;
            if (t->beta == 0.0f) test_poison(row, t->n);
            else test_fill(row, t->n, 1.0f);
        }
    memcpy(c0, c, (size_t)c_len * sizeof(float));

    char label[160];
    snprintf(label, sizeof label, "gemm ta=%d tb=%d batch=%lld m=%lld n=%lld k=%lld alpha=%g beta=%g pad=%lld",
             t->ta, t->tb, (long long)t->batch, (long long)t->m, (long long)t->n, (long long)t->k,
             t->alpha, t->beta, (long long)t->pad_ld);
    int status = ambient_gemm(t->ta, t->tb, t->batch, t->m, t->n, t->k, t->alpha, a, lda, stride_a,
                              b, ldb, stride_b, t->beta, c, ldc, stride_c);
    CHECK(status == AMBIENT_STATUS_OK, "%s: status %d (%s)", label, status, ambient_last_error());
    CHECK(ambient_last_error()[0] == '\0', "%s: error set after success: %s", label, ambient_last_error());

    int64_t mn = t->m * t->n;
    float *got = test_alloc(t->batch * mn);
    double *want = (double *)malloc((size_t)(t->batch * mn > 0 ? t->batch * mn : 1) * sizeof(double));
    for (int64_t e = 0; e < t->batch; e++) {
        const float *ae = a + e * stride_a, *be = b + e * stride_b;
        for (int64_t i = 0; i < t->m; i++)
            for (int64_t j = 0; j < t->n; j++) {
                double sum = 0.0;
                for (int64_t p = 0; p < t->k; p++) {
                    double x = t->ta ? ae[p * lda + i] : ae[i * lda + p];
                    double y = t->tb ? be[j * ldb + p] : be[p * ldb + j];
                    sum += x * y;
                }
                double old = c0[e * stride_c + i * ldc + j];
                want[e * mn + i * t->n + j] = t->alpha * sum + (t->beta == 0.0f ? 0.0 : t->beta * old);
                got[e * mn + i * t->n + j] = c[e * stride_c + i * ldc + j];
            }
    }
    /* float32 dot products of length k: rounding grows about like sqrt(k) for random signs. */
    double atol = 1e-5 * (fabs(t->alpha) * sqrt((double)(t->k > 1 ? t->k : 1)) + fabs(t->beta));
    test_close(label, got, want, t->batch * mn, atol, 1e-5);

    /* Nothing outside the m x n matrices may change. */
    int64_t touched = 0;
    for (int64_t i = 0; i < c_len; i++) {
        int64_t e = i / stride_c, r = i % stride_c, row = r / ldc, col = r % ldc;
        int inside = e < t->batch && row < t->m && col < t->n;
        if (!inside && memcmp(&c[i], &c0[i], sizeof(float)) != 0) touched++;
    }
    CHECK(touched == 0, "%s: %lld elements outside C changed", label, (long long)touched);

    free(a);
    free(b);
    free(c);
    free(c0);
    free(got);
    free(want);
}

static void test_products(void) {
    static const int64_t sizes[] = {1, 3, 17, 31, 64, 65, 129, 257};
    static const float alphas[] = {1.0f, -0.75f, 2.5f}, betas[] = {0.0f, 1.0f, -0.5f};
    for (int t = 0; t < 4; t++)
        for (int mi = 0; mi < 8; mi++)
            for (int ni = 0; ni < 8; ni++) {
                gemm_case g = {
                    .ta = t & 1, .tb = t >> 1,
                    .batch = (mi + ni) % 4 == 0 ? 3 : 1,
                    .m = sizes[mi], .n = sizes[ni], .k = sizes[(mi + 2 * ni + 3 * t) % 8],
                    .alpha = alphas[(mi + ni) % 3], .beta = betas[(mi * ni + t) % 3],
                    .pad_ld = (mi + ni + t) % 3 == 0 ? 0 : 5,
                    .pad_stride = (mi + t) % 2 ? 0 : 11,
                };
                run_case(&g);
            }

    /* Larger than the cache blocks in every direction (k > kc, m > mc), all transposes. */
    for (int t = 0; t < 4; t++) {
        gemm_case g = {.ta = t & 1, .tb = t >> 1, .batch = 1, .m = 300, .n = 200, .k = 500,
                       .alpha = 0.5f, .beta = t % 2 ? 0.25f : 0.0f, .pad_ld = t % 3 ? 7 : 0};
        run_case(&g);
    }
    /* n wider than the widest nc panel. */
    run_case(&(gemm_case){.ta = 1, .tb = 0, .batch = 1, .m = 17, .n = 4200, .k = 70,
                          .alpha = 1.0f, .beta = 0.0f, .pad_ld = 3});
    /* k = 0: C = beta * C, or 0 without reading the poisoned C. */
    run_case(&(gemm_case){.ta = 0, .tb = 0, .batch = 2, .m = 5, .n = 7, .k = 0,
                          .alpha = 1.0f, .beta = 0.0f, .pad_ld = 2, .pad_stride = 3});
    run_case(&(gemm_case){.ta = 1, .tb = 1, .batch = 2, .m = 5, .n = 7, .k = 0,
                          .alpha = 1.0f, .beta = 0.5f, .pad_ld = 2, .pad_stride = 3});
    /* Many small matrices (one per thread), with and without a shared A. */
    run_case(&(gemm_case){.ta = 0, .tb = 1, .batch = 37, .m = 20, .n = 24, .k = 18,
                          .alpha = 1.5f, .beta = 1.0f, .pad_ld = 1, .pad_stride = 9});
    run_case(&(gemm_case){.ta = 1, .tb = 0, .batch = 9, .m = 33, .n = 40, .k = 64,
                          .alpha = -1.0f, .beta = 0.0f, .pad_stride = 4, .shared_a = 1});

    /* Few tiles of C and a long k: split along k, all transposes, beta 0 over poison and not. */
    for (int t = 0; t < 4; t++)
        run_case(&(gemm_case){.ta = t & 1, .tb = t >> 1, .batch = 1, .m = t < 2 ? 20 : 33, .n = t < 2 ? 40 : 17,
                              .k = 4500 + 7 * t, .alpha = t % 2 ? -0.75f : 1.0f, .beta = t == 1 ? 0.0f : 0.5f,
                              .pad_ld = t % 2 ? 3 : 0});

    /* Thread counts that do not divide the tiles evenly, and one thread. */
    ambient_threads_set(3);
    run_case(&(gemm_case){.ta = 1, .tb = 0, .batch = 1, .m = 32, .n = 64, .k = 5001,
                          .alpha = 1.0f, .beta = 0.0f, .pad_ld = 2});
    run_case(&(gemm_case){.ta = 0, .tb = 0, .batch = 1, .m = 129, .n = 257, .k = 65,
                          .alpha = 1.0f, .beta = -0.5f, .pad_ld = 5});
    run_case(&(gemm_case){.ta = 1, .tb = 1, .batch = 1, .m = 3, .n = 300, .k = 31,
                          .alpha = 2.0f, .beta = 0.0f});
    run_case(&(gemm_case){.ta = 0, .tb = 1, .batch = 5, .m = 31, .n = 17, .k = 64,
                          .alpha = 1.0f, .beta = 1.0f, .pad_stride = 2});
    ambient_threads_set(1);
    run_case(&(gemm_case){.ta = 1, .tb = 0, .batch = 2, .m = 65, .n = 31, .k = 300,
                          .alpha = 1.0f, .beta = 0.0f, .pad_ld = 4});
    ambient_threads_set(0);
}

/* Calls from several application threads at once share nothing but the cached packing
 * workspace; each must still get its own right answer. */
typedef struct {
    int64_t m, n, k;
    const float *a, *b;
    float *c;
    int status;
} concurrent_call;

static void *concurrent_worker(void *arg) {
    concurrent_call *call = (concurrent_call *)arg;
    for (int round = 0; round < 20 && call->status == AMBIENT_STATUS_OK; round++)
        call->status = ambient_gemm(0, 1, 1, call->m, call->n, call->k, 1.0f, call->a, call->k, 0,
                                    call->b, call->k, 0, 0.0f, call->c, call->n, 0);
    return NULL;
}

static void test_concurrent_calls(void) {
    enum { CALLERS = 3 };
    concurrent_call calls[CALLERS];
    pthread_t threads[CALLERS];
    for (int t = 0; t < CALLERS; t++) {
        int64_t m = 40 + 30 * t, n = 70 - 10 * t, k = 300 + 100 * t;
        float *a = test_alloc(m * k), *b = test_alloc(n * k), *c = test_alloc(m * n);
        test_fill(a, m * k, 1.0f);
        test_fill(b, n * k, 1.0f);
        test_poison(c, m * n);
        calls[t] = (concurrent_call){m, n, k, a, b, c, AMBIENT_STATUS_OK};
    }
    for (int t = 0; t < CALLERS; t++) CHECK(pthread_create(&threads[t], NULL, concurrent_worker, &calls[t]) == 0, "pthread_create");
    for (int t = 0; t < CALLERS; t++) pthread_join(threads[t], NULL);
    for (int t = 0; t < CALLERS; t++) {
        concurrent_call *call = &calls[t];
        CHECK(call->status == AMBIENT_STATUS_OK, "concurrent call %d: status %d", t, call->status);
        double *want = (double *)malloc((size_t)(call->m * call->n) * sizeof(double));
        for (int64_t i = 0; i < call->m; i++)
            for (int64_t j = 0; j < call->n; j++) {
                double sum = 0.0;
                for (int64_t p = 0; p < call->k; p++) sum += (double)call->a[i * call->k + p] * call->b[j * call->k + p];
                want[i * call->n + j] = sum;
            }
        test_close("concurrent gemm", call->c, want, call->m * call->n, 1e-5 * sqrt((double)call->k), 1e-5);
        free(want);
        free((void *)call->a);
        free((void *)call->b);
        free(call->c);
    }
}

/* Expects INVALID_ARGUMENT and a message that names the function. */
#define EXPECT_INVALID(call)                                                                  \
    do {                                                                                      \
        int status_ = (call);                                                                 \
        CHECK(status_ == AMBIENT_STATUS_INVALID_ARGUMENT, "%s returned %d", #call, status_);  \
        CHECK(strstr(ambient_last_error(), "ambient_") != NULL, "%s: message \"%s\"", #call,  \
              ambient_last_error());                                                          \
    } while (0)

static void test_arguments(void) {
    float *a = test_alloc(256), *b = test_alloc(256), *c = test_alloc(256);
    test_fill(a, 256, 1.0f);
    test_fill(b, 256, 1.0f);
    test_fill(c, 256, 1.0f);
    const float *na = NULL;
    float *nc = NULL;

    /* Negative sizes. */
    EXPECT_INVALID(ambient_gemm(0, 0, -1, 4, 4, 4, 1, a, 4, 16, b, 4, 16, 0, c, 4, 16));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, -4, 4, 4, 1, a, 4, 16, b, 4, 16, 0, c, 4, 16));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 4, -4, 4, 1, a, 4, 16, b, 4, 16, 0, c, 4, 16));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 4, 4, -4, 1, a, 4, 16, b, 4, 16, 0, c, 4, 16));
    CHECK(strstr(ambient_last_error(), "k = -4") != NULL, "message names k: %s", ambient_last_error());
    /* Leading dimensions too small for the (transposed) shapes: m = 4, n = 5, k = 6. */
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 4, 5, 6, 1, a, 5, 0, b, 5, 0, 0, c, 5, 0)); /* lda < k */
    CHECK(strstr(ambient_last_error(), "lda = 5") != NULL, "message names lda: %s", ambient_last_error());
    EXPECT_INVALID(ambient_gemm(1, 0, 1, 4, 5, 6, 1, a, 3, 0, b, 5, 0, 0, c, 5, 0)); /* lda < m */
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 4, 5, 6, 1, a, 6, 0, b, 4, 0, 0, c, 5, 0)); /* ldb < n */
    EXPECT_INVALID(ambient_gemm(0, 1, 1, 4, 5, 6, 1, a, 6, 0, b, 5, 0, 0, c, 5, 0)); /* ldb < k */
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 4, 5, 6, 1, a, 6, 0, b, 5, 0, 0, c, 4, 0)); /* ldc < n */
    /* Negative strides. */
    EXPECT_INVALID(ambient_gemm(0, 0, 2, 2, 2, 2, 1, a, 2, -4, b, 2, 4, 0, c, 2, 4));
    EXPECT_INVALID(ambient_gemm(0, 0, 2, 2, 2, 2, 1, a, 2, 4, b, 2, -4, 0, c, 2, 4));
    EXPECT_INVALID(ambient_gemm(0, 0, 2, 2, 2, 2, 1, a, 2, 4, b, 2, 4, 0, c, 2, -4));
    CHECK(strstr(ambient_last_error(), "stride_c") != NULL, "message names stride_c: %s", ambient_last_error());
    /* Missing pointers when there is work. */
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 2, 2, 2, 1, na, 2, 0, b, 2, 0, 0, c, 2, 0));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 2, 2, 2, 1, a, 2, 0, na, 2, 0, 0, c, 2, 0));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 2, 2, 2, 1, a, 2, 0, b, 2, 0, 0, nc, 2, 0));
    /* Index arithmetic past int64 / 2^58 elements. */
    EXPECT_INVALID(ambient_gemm(0, 0, INT64_C(1) << 40, 1, 1, 1, 1, a, 1, INT64_C(1) << 40, b, 1, 0, 0, c, 1, 1));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 2, 1, 1, 1, a, INT64_C(1) << 62, 0, b, 1, 0, 0, c, 1, 0));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, INT64_C(1) << 60, 1, 1, 1, a, 1, 0, b, 1, 0, 0, c, 1, 0));
    EXPECT_INVALID(ambient_gemm(0, 0, 2, 2, 2, 2, 1, a, 2, 4, b, 2, 4, 0, c, INT64_MAX / 2, 4));
    /* C overlapping A or B (over their full extents), or its own batch. */
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 4, 4, 4, 1, a, 4, 0, b, 4, 0, 0, (float *)a + 10, 4, 0));
    EXPECT_INVALID(ambient_gemm(0, 0, 1, 4, 4, 4, 1, a, 4, 0, c + 3, 4, 0, 0, c, 4, 0));
    EXPECT_INVALID(ambient_gemm(0, 0, 2, 4, 4, 4, 1, a, 4, 0, b, 4, 0, 0, c, 4, 8));
    CHECK(strstr(ambient_last_error(), "overlap") != NULL, "message says overlap: %s", ambient_last_error());

    /* No work: no pointers needed, and the error is cleared again. */
    CHECK(ambient_gemm(0, 0, 1, 0, 4, 4, 1, na, 4, 0, na, 4, 0, 0, nc, 4, 0) == AMBIENT_STATUS_OK, "m = 0");
    CHECK(ambient_last_error()[0] == '\0', "error cleared: %s", ambient_last_error());
    CHECK(ambient_gemm(0, 0, 1, 4, 0, 4, 1, na, 4, 0, na, 0, 0, 0, nc, 0, 0) == AMBIENT_STATUS_OK, "n = 0");
    CHECK(ambient_gemm(1, 1, 0, 4, 4, 4, 1, na, 4, 0, na, 4, 0, 0, nc, 4, 0) == AMBIENT_STATUS_OK, "batch = 0");
    /* k = 0 reads neither A nor B. */
    for (int i = 0; i < 6; i++) c[i] = NAN;
    CHECK(ambient_gemm(0, 0, 1, 2, 3, 0, 1, na, 0, 0, na, 3, 0, 0, c, 3, 0) == AMBIENT_STATUS_OK, "k = 0");
    for (int i = 0; i < 6; i++) CHECK(c[i] == 0.0f, "k = 0, beta = 0: c[%d] = %g", i, c[i]);
    /* A shared B (stride 0) is fine; so are A and B overlapping each other. */
    CHECK(ambient_gemm(0, 0, 2, 4, 4, 4, 1, a, 4, 16, a, 4, 0, 0, c, 4, 16) == AMBIENT_STATUS_OK,
          "shared B: %s", ambient_last_error());

    free(a);
    free(b);
    free(c);
}

static void test_benchmarks(void) {
    double gflops = 0, gbs = 0;
    CHECK(ambient_benchmark_fma_peak(0.02, &gflops) == AMBIENT_STATUS_OK && gflops > 0.1, "peak %g", gflops);
    CHECK(ambient_benchmark_memory_bandwidth(4 << 20, 0.02, &gbs) == AMBIENT_STATUS_OK && gbs > 0.1,
          "bandwidth %g", gbs);
    printf("fma peak %.1f GFLOP/s, copy bandwidth %.1f GB/s\n", gflops, gbs);
    EXPECT_INVALID(ambient_benchmark_fma_peak(0.0, &gflops));
    EXPECT_INVALID(ambient_benchmark_fma_peak(61.0, &gflops));
    EXPECT_INVALID(ambient_benchmark_fma_peak(NAN, &gflops));
    EXPECT_INVALID(ambient_benchmark_fma_peak(0.01, NULL));
    EXPECT_INVALID(ambient_benchmark_memory_bandwidth(1000, 0.01, &gbs));
    EXPECT_INVALID(ambient_benchmark_memory_bandwidth(4 << 20, -1.0, &gbs));
    EXPECT_INVALID(ambient_benchmark_memory_bandwidth(4 << 20, 0.01, NULL));
}

int main(void) {
    const char *isa = getenv("AMBIENT_CPU_ISA");
    printf("test_cpu_gemm: AMBIENT_CPU_ISA=%s\n", isa ? isa : "(unset)");
    test_seed(20240611);
    test_products();
    test_concurrent_calls();
    test_arguments();
    test_benchmarks();
    return test_finish("test_cpu_gemm");
}
