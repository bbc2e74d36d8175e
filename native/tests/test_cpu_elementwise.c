/*
 * CPU backend: EDM2's magnitude-preserving elementwise ops and pixel normalisation against
 * double-precision references on random inputs, outputs poisoned first; gradients checked
 * against central finite differences of the double reference; per-sample axpby (sample_ops.c);
 * bad arguments rejected.
 */
#include "ambient.h"
#include "test_util.h"

static double silu_ref(double x) { return x / (1.0 + exp(-x)) / 0.596; }

static void test_mp_silu(int64_t n) {
    float *x = test_alloc(n), *y = test_alloc(n), *dy = test_alloc(n), *dx = test_alloc(n);
    double *want = (double *)malloc((size_t)n * sizeof(double));
    test_fill(x, n, 6.0f);
    test_fill(dy, n, 1.0f);
    if (n > 2) { x[0] = -90.0f; x[1] = 90.0f; } /* saturated ends must stay finite */
    test_poison(y, n);
    CHECK(ambient_mp_silu_forward(n, x, y) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int64_t i = 0; i < n; i++) want[i] = silu_ref(x[i]);
    test_close("mp_silu_forward", y, want, n, 1e-6, 2e-6);

    test_poison(dx, n);
    CHECK(ambient_mp_silu_backward(n, x, dy, dx) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int64_t i = 0; i < n; i++) {
        double h = 1e-4 * fmax(1.0, fabs(x[i]));
        want[i] = dy[i] * (silu_ref(x[i] + h) - silu_ref(x[i] - h)) / (2 * h);
    }
    test_close("mp_silu_backward", dx, want, n, 1e-5, 1e-5);

    /* in place: y = x */
    memcpy(y, x, (size_t)n * sizeof(float));
    CHECK(ambient_mp_silu_forward(n, y, y) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int64_t i = 0; i < n; i++) want[i] = silu_ref(x[i]);
    test_close("mp_silu_forward in place", y, want, n, 1e-6, 2e-6);
    free(x); free(y); free(dy); free(dx); free(want);
}

static void test_mp_sum(int64_t n, float t) {
    float *a = test_alloc(n), *b = test_alloc(n), *y = test_alloc(n), *da = test_alloc(n), *db = test_alloc(n);
    double *want = (double *)malloc((size_t)n * sizeof(double));
    test_fill(a, n, 2.0f);
    test_fill(b, n, 2.0f);
    double s = sqrt((1.0 - t) * (1.0 - t) + (double)t * t);
    test_poison(y, n);
    CHECK(ambient_mp_sum_forward(n, a, b, t, y) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int64_t i = 0; i < n; i++) want[i] = ((1.0 - t) * a[i] + (double)t * b[i]) / s;
    test_close("mp_sum_forward", y, want, n, 1e-6, 1e-6);
    test_poison(da, n);
    test_poison(db, n);
    CHECK(ambient_mp_sum_backward(n, a, t, da, db) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int64_t i = 0; i < n; i++) want[i] = a[i] * (1.0 - t) / s;
    test_close("mp_sum_backward da", da, want, n, 1e-6, 1e-6);
    for (int64_t i = 0; i < n; i++) want[i] = a[i] * (double)t / s;
    test_close("mp_sum_backward db", db, want, n, 1e-6, 1e-6);
    free(a); free(b); free(y); free(da); free(db); free(want);
}

static void pixel_norm_ref(int64_t c, const double *x, double eps, double *y) {
    double sum = 0;
    for (int64_t i = 0; i < c; i++) sum += x[i] * x[i];
    double d = eps + sqrt(sum / (double)c);
    for (int64_t i = 0; i < c; i++) y[i] = x[i] / d;
}

static void test_pixel_norm(int64_t rows, int64_t c) {
    const float eps = 1e-4f;
    int64_t n = rows * c;
    float *x = test_alloc(n), *y = test_alloc(n), *dy = test_alloc(n), *dx = test_alloc(n);
    double *want = (double *)malloc((size_t)n * sizeof(double));
    double *xr = (double *)malloc((size_t)c * sizeof(double)), *yp = (double *)malloc((size_t)c * sizeof(double)),
           *ym = (double *)malloc((size_t)c * sizeof(double));
    test_fill(x, n, 3.0f);
    test_fill(dy, n, 1.0f);
    test_poison(y, n);
    CHECK(ambient_pixel_norm_forward(rows, c, eps, x, y) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t i = 0; i < c; i++) xr[i] = x[r * c + i];
        pixel_norm_ref(c, xr, eps, want + r * c);
    }
    test_close("pixel_norm_forward", y, want, n, 1e-6, 1e-5);

    test_poison(dx, n);
    CHECK(ambient_pixel_norm_backward(rows, c, eps, x, dy, dx) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    /* finite differences of sum(dy * y(x)) with respect to each x */
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t j = 0; j < c; j++) {
            for (int64_t i = 0; i < c; i++) xr[i] = x[r * c + i];
            double h = 1e-5;
            xr[j] += h;
            pixel_norm_ref(c, xr, eps, yp);
            xr[j] -= 2 * h;
            pixel_norm_ref(c, xr, eps, ym);
            double g = 0;
            for (int64_t i = 0; i < c; i++) g += dy[r * c + i] * (yp[i] - ym[i]) / (2 * h);
            want[r * c + j] = g;
        }
    }
    test_close("pixel_norm_backward", dx, want, n, 1e-5, 1e-4);
    free(x); free(y); free(dy); free(dx); free(want); free(xr); free(yp); free(ym);
}

static void test_bad_arguments(void) {
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 2, 3, 4};
    CHECK(ambient_mp_silu_forward(-1, a, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "negative count");
    CHECK(strstr(ambient_last_error(), "negative") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_mp_silu_forward(4, NULL, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "NULL x");
    CHECK(strstr(ambient_last_error(), "x is NULL") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_mp_sum_forward(4, a, b, NAN, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "NaN t");
    CHECK(ambient_mp_sum_backward(4, a, 0.3f, b, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "da == db");
    CHECK(ambient_pixel_norm_forward(2, 2, 0.0f, a, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "eps 0");
    CHECK(ambient_pixel_norm_forward(INT64_MAX, 2, 1e-4f, a, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "overflow");
    CHECK(ambient_pixel_norm_backward(2, 2, 1e-4f, a, b, a) == AMBIENT_STATUS_INVALID_ARGUMENT, "dx == x");
    CHECK(ambient_mp_silu_forward(0, NULL, NULL) == AMBIENT_STATUS_OK, "empty is fine");
    CHECK(ambient_last_error()[0] == '\0', "a successful call clears the message");
}

/* out = alpha x + beta y per sample, against double; in place on x and on y; without y. */
static void test_sample_axpby(int64_t n, int64_t size) {
    int64_t count = n * size;
    float *alpha = test_alloc(n), *beta = test_alloc(n), *x = test_alloc(count), *y = test_alloc(count),
          *out = test_alloc(count), *inplace = test_alloc(count);
    double *want = (double *)malloc((size_t)(count > 0 ? count : 1) * sizeof(double)),
           *want_scale = (double *)malloc((size_t)(count > 0 ? count : 1) * sizeof(double));
    test_fill(alpha, n, 2.0f);
    test_fill(beta, n, 2.0f);
    test_fill(x, count, 3.0f);
    test_fill(y, count, 3.0f);
    for (int64_t i = 0; i < n; i++)
        for (int64_t e = 0; e < size; e++) {
            int64_t k = i * size + e;
            want[k] = (double)alpha[i] * x[k] + (double)beta[i] * y[k];
            want_scale[k] = (double)alpha[i] * x[k];
        }
    /* one rounding of each product and one of the sum */
    test_poison(out, count);
    CHECK(ambient_sample_axpby(n, size, alpha, x, beta, y, out) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    test_close("sample_axpby", out, want, count, 1e-6, 1e-6);
    test_poison(out, count);
    CHECK(ambient_sample_axpby(n, size, alpha, x, NULL, NULL, out) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    test_close("sample_axpby without y", out, want_scale, count, 0, 1e-7);
    memcpy(inplace, x, (size_t)count * sizeof(float));
    CHECK(ambient_sample_axpby(n, size, alpha, inplace, beta, y, inplace) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    test_close("sample_axpby out = x", inplace, want, count, 1e-6, 1e-6);
    memcpy(inplace, y, (size_t)count * sizeof(float));
    CHECK(ambient_sample_axpby(n, size, alpha, x, beta, inplace, inplace) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    test_close("sample_axpby out = y", inplace, want, count, 1e-6, 1e-6);
    memcpy(inplace, x, (size_t)count * sizeof(float));
    CHECK(ambient_sample_axpby(n, size, alpha, inplace, NULL, NULL, inplace) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    test_close("sample_axpby without y, out = x", inplace, want_scale, count, 0, 1e-7);
    free(alpha); free(beta); free(x); free(y); free(out); free(inplace); free(want); free(want_scale);
}

/* Small integers: every product and sum is exact in float, so the result must be too; and y is
 * read where beta is 0 (a NaN there shows through). */
static void test_sample_axpby_exact(void) {
    float alpha[3] = {2, -3, 0}, beta[3] = {1, 0, 4}, x[6] = {1, 2, 3, 4, 5, 6}, y[6] = {7, 8, NAN, 10, 11, 12};
    float out[6], want[6] = {9, 12, NAN, -12, 44, 48};
    test_poison(out, 6);
    CHECK(ambient_sample_axpby(3, 2, alpha, x, beta, y, out) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int i = 0; i < 6; i++)
        CHECK(isnan(want[i]) ? isnan(out[i]) : out[i] == want[i], "exact [%d]: got %g want %g", i, out[i], want[i]);
}

static void test_sample_axpby_bad_arguments(void) {
    float a[8] = {1, 2, 3, 4, 5, 6, 7, 8}, b[8] = {1, 2, 3, 4, 5, 6, 7, 8}, c[8], s[2] = {1, 2};
    CHECK(ambient_sample_axpby(-1, 4, s, a, s, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "negative n");
    CHECK(strstr(ambient_last_error(), "non-negative") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_sample_axpby(2, -4, s, a, s, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "negative size");
    CHECK(ambient_sample_axpby(INT64_MAX, 2, s, a, s, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "overflow");
    CHECK(strstr(ambient_last_error(), "too large") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_sample_axpby(2, 4, s, a, NULL, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "y without beta");
    CHECK(strstr(ambient_last_error(), "both NULL") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_sample_axpby(2, 4, s, a, s, NULL, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "beta without y");
    CHECK(ambient_sample_axpby(2, 4, NULL, a, s, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "NULL alpha");
    CHECK(strstr(ambient_last_error(), "alpha is NULL") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_sample_axpby(2, 4, s, NULL, s, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "NULL x");
    CHECK(ambient_sample_axpby(2, 4, s, a, s, b, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "NULL out");
    CHECK(ambient_sample_axpby(2, 3, s, a, s, b, a + 1) == AMBIENT_STATUS_INVALID_ARGUMENT, "out partly over x");
    CHECK(strstr(ambient_last_error(), "partly overlaps x") != NULL, "message: %s", ambient_last_error());
    CHECK(ambient_sample_axpby(2, 3, s, a, s, b, b + 2) == AMBIENT_STATUS_INVALID_ARGUMENT, "out partly over y");
    CHECK(ambient_sample_axpby(1, 2, a + 1, b, NULL, NULL, a) == AMBIENT_STATUS_INVALID_ARGUMENT, "out over alpha");
    CHECK(ambient_sample_axpby(1, 2, s, b, a + 1, c, a) == AMBIENT_STATUS_INVALID_ARGUMENT, "out over beta");
    CHECK(ambient_sample_axpby(0, 4, NULL, NULL, NULL, NULL, NULL) == AMBIENT_STATUS_OK, "n = 0 is a no-op");
    CHECK(ambient_sample_axpby(2, 0, NULL, NULL, NULL, NULL, NULL) == AMBIENT_STATUS_OK, "size = 0 is a no-op");
    CHECK(ambient_last_error()[0] == '\0', "a successful call clears the message");
    /* x == y is fine (both only read) */
    CHECK(ambient_sample_axpby(2, 4, s, a, s, a, c) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int i = 0; i < 8; i++) CHECK(c[i] == 2 * s[i / 4] * a[i], "x == y [%d]: %g", i, c[i]);
}

int main(void) {
    test_seed(20261128);
    int64_t counts[] = {1, 7, 1000, 65537, 200003};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) test_mp_silu(counts[i]);
    float ts[] = {0.0f, 0.3f, 0.5f, 1.0f};
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) test_mp_sum(70001, ts[i]);
    test_mp_sum(5, 0.3f);
    test_pixel_norm(1, 1);
    test_pixel_norm(3, 5);
    test_pixel_norm(37, 64);
    test_pixel_norm(300, 3);   /* over the parallel threshold, C = 3 as in images */
    test_pixel_norm(1000, 17);
    test_bad_arguments();
    int64_t samples[][2] = {{1, 1}, {1, 7}, {3, 5}, {7, 1}, {1, 100003}, {5, 3 * 32 * 32}, {64, 3 * 16 * 16 + 1},
                            {300, 131}};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) test_sample_axpby(samples[i][0], samples[i][1]);
    test_sample_axpby_exact();
    test_sample_axpby_bad_arguments();
    return test_finish("test_cpu_elementwise");
}
