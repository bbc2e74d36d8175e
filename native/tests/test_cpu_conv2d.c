/*
 * CPU convolution (forward, input and weight gradients; kernel 1 and 3, NHWC, OHWI) and the
 * weight normalisation of EDM2's MPConv:
 *   - every pass against a direct float64 convolution (the gradients in their scatter form,
 *     independent of the kernels' gather form), outputs poisoned with NaN for beta = 0 and
 *     random for beta != 0, at odd shapes, shapes that span several cache blocks, and thread
 *     counts that split the work unevenly; 3x3 by Winograd (where it applies; the library's
 *     choice of tile, then F(2x2) and F(4x4) forced by AMBIENT_WINOGRAD_TILE) and by implicit
 *     GEMM (AMBIENT_CONV_ALGO=gemm), and per forced instruction set (tests/CMakeLists.txt);
 *   - both gradients against central finite differences of the float64 forward, and against
 *     the adjoint identities <conv(x, W), dy> = <x, dx(dy, W)> = <W, dW(x, dy)>;
 *   - weight norm forward, force and backward (finite differences for dw and dgain, gain 0);
 *   - bad arguments rejected with a message.
 */
#include "ambient.h"
#include "test_util.h"

/* ---- float64 references -------------------------------------------------------------------- */

typedef struct {
    int64_t n, h, w, c_in, c_out, k;
} shape;

static int64_t pixels(const shape *s) { return s->n * s->h * s->w; }
static int64_t weight_count(const shape *s) { return s->c_out * s->k * s->k * s->c_in; }

/* Calls f(p, q, t) for every output pixel p, tap t and the input pixel q that tap reads. */
#define FOR_EACH_TAP(s, body)                                                                     \
    for (int64_t img = 0; img < (s)->n; img++)                                                    \
        for (int64_t oy = 0; oy < (s)->h; oy++)                                                      \
            for (int64_t ox = 0; ox < (s)->w; ox++)                                                  \
                for (int64_t ky = 0; ky < (s)->k; ky++)                                           \
                    for (int64_t kx = 0; kx < (s)->k; kx++) {                                     \
                        int64_t yy = oy + ky - (s)->k / 2, xx = ox + kx - (s)->k / 2;               \
                        if (yy < 0 || yy >= (s)->h || xx < 0 || xx >= (s)->w) continue;           \
                        int64_t p = (img * (s)->h + oy) * (s)->w + ox;                              \
                        int64_t q = (img * (s)->h + yy) * (s)->w + xx;                            \
                        int64_t t = ky * (s)->k + kx;                                             \
                        body;                                                                     \
                    }

/* y = conv(x, W); mag = sum of |terms| (the scale of the rounding error). */
static void conv_ref(const shape *s, const double *x, const double *wt, double *y, double *mag) {
    int64_t co = s->c_out, ci = s->c_in, kk = s->k * s->k;
    memset(y, 0, (size_t)(pixels(s) * co) * sizeof(double));
    if (mag) memset(mag, 0, (size_t)(pixels(s) * co) * sizeof(double));
    FOR_EACH_TAP(s, {
        for (int64_t o = 0; o < co; o++)
            for (int64_t i = 0; i < ci; i++) {
                double term = x[q * ci + i] * wt[(o * kk + t) * ci + i];
                y[p * co + o] += term;
                if (mag) mag[p * co + o] += fabs(term);
            }
    })
}

/* dx[q] += dy[p] W[t] : scattered from each output pixel, not gathered as the kernel does. */
static void backward_input_ref(const shape *s, const double *dy, const double *wt, double *dx, double *mag) {
    int64_t co = s->c_out, ci = s->c_in, kk = s->k * s->k;
    memset(dx, 0, (size_t)(pixels(s) * ci) * sizeof(double));
    memset(mag, 0, (size_t)(pixels(s) * ci) * sizeof(double));
    FOR_EACH_TAP(s, {
        for (int64_t o = 0; o < co; o++)
            for (int64_t i = 0; i < ci; i++) {
                double term = dy[p * co + o] * wt[(o * kk + t) * ci + i];
                dx[q * ci + i] += term;
                mag[q * ci + i] += fabs(term);
            }
    })
}

static void backward_weight_ref(const shape *s, const double *x, const double *dy, double *dw, double *mag) {
    int64_t co = s->c_out, ci = s->c_in, kk = s->k * s->k;
    memset(dw, 0, (size_t)weight_count(s) * sizeof(double));
    memset(mag, 0, (size_t)weight_count(s) * sizeof(double));
    FOR_EACH_TAP(s, {
        for (int64_t o = 0; o < co; o++)
            for (int64_t i = 0; i < ci; i++) {
                double term = dy[p * co + o] * x[q * ci + i];
                dw[(o * kk + t) * ci + i] += term;
                mag[(o * kk + t) * ci + i] += fabs(term);
            }
    })
}

static double *to_double(const float *v, int64_t n) {
    double *d = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    for (int64_t i = 0; i < n; i++) d[i] = v[i];
    return d;
}

static double *dalloc(int64_t n) { return (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

/* Rounding allowed per unit of the sum of |products| (mag): 2e-6 for the direct sums and
 * F(2x2) Winograd (whose worst case here is ~3e-7), 1e-5 while a 3x3 forward or input gradient
 * may take F(4x4) (worst ~3.3e-6: its transforms scale by up to 8). */
#define TOLERANCE_EXACT 2e-6
#define TOLERANCE_F4 1e-5
static double sum_tolerance = TOLERANCE_EXACT;

/* |got - (want + beta * old)| <= sum_tolerance * (mag + |beta old|) + 1e-6 per element. */
static void check_sum(const char *what, const float *got, const double *want, const double *mag, const float *old,
                      float beta, int64_t count) {
    int64_t bad = 0;
    for (int64_t i = 0; i < count; i++) {
        double prior = beta == 0.0f ? 0.0 : (double)beta * old[i];
        double expect = want[i] + prior, bound = sum_tolerance * (mag[i] + fabs(prior)) + 1e-6;
        if (!(fabs(got[i] - expect) <= bound)) {
            if (bad < 5) fprintf(stderr, "  %s[%lld]: got %.9g want %.9g\n", what, (long long)i, got[i], expect);
            bad++;
        }
    }
    CHECK(bad == 0, "%s: %lld of %lld elements out of tolerance", what, (long long)bad, (long long)count);
}

/* ---- Convolution against the references ---------------------------------------------------------- */

static void test_conv(shape s, float beta) {
    int64_t m = pixels(&s), nx = m * s.c_in, ny = m * s.c_out, nw = weight_count(&s);
    float *x = test_alloc(nx), *wt = test_alloc(nw), *dy = test_alloc(ny);
    float *y = test_alloc(ny), *dx = test_alloc(nx), *dw = test_alloc(nw);
    float *y0 = test_alloc(ny), *dx0 = test_alloc(nx), *dw0 = test_alloc(nw);
    test_fill(x, nx, 1.0f);
    test_fill(wt, nw, 1.0f);
    test_fill(dy, ny, 1.0f);
    if (beta == 0.0f) {
        test_poison(y, ny);
        test_poison(dx, nx);
        test_poison(dw, nw);
    } else {
        test_fill(y, ny, 1.0f);
        test_fill(dx, nx, 1.0f);
        test_fill(dw, nw, 1.0f);
    }
    memcpy(y0, y, (size_t)ny * sizeof(float));
    memcpy(dx0, dx, (size_t)nx * sizeof(float));
    memcpy(dw0, dw, (size_t)nw * sizeof(float));
    double *xd = to_double(x, nx), *wd = to_double(wt, nw), *dyd = to_double(dy, ny);
    double *want = dalloc(nx + ny + nw), *mag = dalloc(nx + ny + nw);
    char label[200];

    snprintf(label, sizeof label, "conv%lldx%lld forward %lldx%lldx%lldx%lld->%lld beta=%g", (long long)s.k,
             (long long)s.k, (long long)s.n, (long long)s.h, (long long)s.w, (long long)s.c_in, (long long)s.c_out, beta);
    CHECK(ambient_conv2d_forward(s.n, s.h, s.w, s.c_in, s.c_out, s.k, x, wt, beta, y) == AMBIENT_STATUS_OK, "%s: %s",
          label, ambient_last_error());
    conv_ref(&s, xd, wd, want, mag);
    check_sum(label, y, want, mag, y0, beta, ny);

    label[0] = 0;
    snprintf(label, sizeof label, "conv%lld backward_input %lldx%lldx%lldx%lld->%lld beta=%g", (long long)s.k,
             (long long)s.n, (long long)s.h, (long long)s.w, (long long)s.c_in, (long long)s.c_out, beta);
    CHECK(ambient_conv2d_backward_input(s.n, s.h, s.w, s.c_in, s.c_out, s.k, dy, wt, beta, dx) == AMBIENT_STATUS_OK,
          "%s: %s", label, ambient_last_error());
    backward_input_ref(&s, dyd, wd, want, mag);
    check_sum(label, dx, want, mag, dx0, beta, nx);

    snprintf(label, sizeof label, "conv%lld backward_weight %lldx%lldx%lldx%lld->%lld beta=%g", (long long)s.k,
             (long long)s.n, (long long)s.h, (long long)s.w, (long long)s.c_in, (long long)s.c_out, beta);
    CHECK(ambient_conv2d_backward_weight(s.n, s.h, s.w, s.c_in, s.c_out, s.k, x, dy, beta, dw) == AMBIENT_STATUS_OK,
          "%s: %s", label, ambient_last_error());
    backward_weight_ref(&s, xd, dyd, want, mag);
    check_sum(label, dw, want, mag, dw0, beta, nw);

    free(x); free(wt); free(dy); free(y); free(dx); free(dw); free(y0); free(dx0); free(dw0);
    free(xd); free(wd); free(dyd); free(want); free(mag);
}

/* ---- Finite differences of the float64 forward ----------------------------------------------------- */

/* L(x, W) = <conv(x, W), dy> in float64. */
static double loss_ref(const shape *s, const double *x, const double *wt, const double *dy, double *scratch) {
    conv_ref(s, x, wt, scratch, NULL);
    double l = 0;
    for (int64_t i = 0; i < pixels(s) * s->c_out; i++) l += scratch[i] * dy[i];
    return l;
}

static void test_finite_differences(shape s) {
    int64_t m = pixels(&s), nx = m * s.c_in, ny = m * s.c_out, nw = weight_count(&s);
    float *x = test_alloc(nx), *wt = test_alloc(nw), *dy = test_alloc(ny), *dx = test_alloc(nx), *dw = test_alloc(nw);
    test_fill(x, nx, 1.0f);
    test_fill(wt, nw, 1.0f);
    test_fill(dy, ny, 1.0f);
    test_poison(dx, nx);
    test_poison(dw, nw);
    CHECK(ambient_conv2d_backward_input(s.n, s.h, s.w, s.c_in, s.c_out, s.k, dy, wt, 0.0f, dx) == AMBIENT_STATUS_OK,
          "%s", ambient_last_error());
    CHECK(ambient_conv2d_backward_weight(s.n, s.h, s.w, s.c_in, s.c_out, s.k, x, dy, 0.0f, dw) == AMBIENT_STATUS_OK,
          "%s", ambient_last_error());
    double *xd = to_double(x, nx), *wd = to_double(wt, nw), *dyd = to_double(dy, ny), *scratch = dalloc(ny);
    double *want_dx = dalloc(nx), *want_dw = dalloc(nw);
    const double step = 1e-3;
    for (int64_t i = 0; i < nx; i++) {
        double keep = xd[i];
        xd[i] = keep + step;
        double lp = loss_ref(&s, xd, wd, dyd, scratch);
        xd[i] = keep - step;
        double lm = loss_ref(&s, xd, wd, dyd, scratch);
        xd[i] = keep;
        want_dx[i] = (lp - lm) / (2 * step);
    }
    for (int64_t i = 0; i < nw; i++) {
        double keep = wd[i];
        wd[i] = keep + step;
        double lp = loss_ref(&s, xd, wd, dyd, scratch);
        wd[i] = keep - step;
        double lm = loss_ref(&s, xd, wd, dyd, scratch);
        wd[i] = keep;
        want_dw[i] = (lp - lm) / (2 * step);
    }
    test_close("backward_input vs finite differences", dx, want_dx, nx, 1e-5, 1e-5);
    test_close("backward_weight vs finite differences", dw, want_dw, nw, 1e-5, 1e-5);
    free(x); free(wt); free(dy); free(dx); free(dw); free(xd); free(wd); free(dyd); free(scratch);
    free(want_dx); free(want_dw);
}

/* <conv(x, W), dy> = <x, backward_input(dy, W)> = <W, backward_weight(x, dy)>, all from the float
 * kernels, summed in double. */
static void test_adjoint(shape s) {
    int64_t m = pixels(&s), nx = m * s.c_in, ny = m * s.c_out, nw = weight_count(&s);
    float *x = test_alloc(nx), *wt = test_alloc(nw), *dy = test_alloc(ny);
    float *y = test_alloc(ny), *dx = test_alloc(nx), *dw = test_alloc(nw);
    test_fill(x, nx, 1.0f);
    test_fill(wt, nw, 1.0f);
    test_fill(dy, ny, 1.0f);
    test_poison(y, ny);
    test_poison(dx, nx);
    test_poison(dw, nw);
    CHECK(ambient_conv2d_forward(s.n, s.h, s.w, s.c_in, s.c_out, s.k, x, wt, 0.0f, y) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    CHECK(ambient_conv2d_backward_input(s.n, s.h, s.w, s.c_in, s.c_out, s.k, dy, wt, 0.0f, dx) == AMBIENT_STATUS_OK,
          "%s", ambient_last_error());
    CHECK(ambient_conv2d_backward_weight(s.n, s.h, s.w, s.c_in, s.c_out, s.k, x, dy, 0.0f, dw) == AMBIENT_STATUS_OK,
          "%s", ambient_last_error());
    double a = 0, b = 0, c = 0, scale = 0;
    for (int64_t i = 0; i < ny; i++) { a += (double)y[i] * dy[i]; scale += fabs((double)y[i] * dy[i]); }
    for (int64_t i = 0; i < nx; i++) b += (double)x[i] * dx[i];
    for (int64_t i = 0; i < nw; i++) c += (double)wt[i] * dw[i];
    CHECK(fabs(a - b) <= 1e-5 * scale && fabs(a - c) <= 1e-5 * scale,
          "adjoint k=%lld: <y, dy> = %.9g, <x, dx> = %.9g, <W, dW> = %.9g", (long long)s.k, a, b, c);
    free(x); free(wt); free(dy); free(y); free(dx); free(dw);
}

/* ---- Weight normalisation ------------------------------------------------------------------------ */

static void weight_norm_ref(int64_t f, const double *w, double eps, double gain, double *out) {
    double sum = 0;
    for (int64_t i = 0; i < f; i++) sum += w[i] * w[i];
    double scale = gain / ((eps + sqrt(sum) / sqrt((double)f)) * sqrt((double)f));
    for (int64_t i = 0; i < f; i++) out[i] = w[i] * scale;
}

static void test_weight_norm(int64_t filters, int64_t fan_in, float gain) {
    const float eps = 1e-4f;
    int64_t n = filters * fan_in;
    float *w = test_alloc(n), *wh = test_alloc(n), *g = test_alloc(n), *dw = test_alloc(n);
    double *want = dalloc(n), *row = dalloc(fan_in), *plus = dalloc(fan_in), *minus = dalloc(fan_in);
    test_fill(w, n, 2.0f);
    test_fill(g, n, 1.0f);
    char label[120];
    snprintf(label, sizeof label, "weight_norm %lldx%lld gain=%g", (long long)filters, (long long)fan_in, gain);

    test_poison(wh, n);
    CHECK(ambient_weight_norm_forward(filters, fan_in, eps, gain, w, wh) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    for (int64_t r = 0; r < filters; r++) {
        for (int64_t i = 0; i < fan_in; i++) row[i] = w[r * fan_in + i];
        weight_norm_ref(fan_in, row, eps, gain, want + r * fan_in);
    }
    test_close(label, wh, want, n, 1e-7, 1e-5);
    if (gain != 0.0f) {
        /* |w_hat| ~ gain per filter */
        for (int64_t r = 0; r < filters; r++) {
            double sum = 0;
            for (int64_t i = 0; i < fan_in; i++) sum += (double)wh[r * fan_in + i] * wh[r * fan_in + i];
            CHECK(fabs(sqrt(sum) - fabs(gain)) <= 1e-3 * fabs(gain), "|w_hat| = %g, gain %g", sqrt(sum), gain);
        }
    }
    /* in place */
    memcpy(wh, w, (size_t)n * sizeof(float));
    CHECK(ambient_weight_norm_forward(filters, fan_in, eps, gain, wh, wh) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    test_close("weight_norm forward in place", wh, want, n, 1e-7, 1e-5);

    /* backward: L = <g, w_hat(w, gain)>, central differences in w and in gain */
    float dgain = NAN;
    test_poison(dw, n);
    CHECK(ambient_weight_norm_backward(filters, fan_in, eps, gain, w, g, dw, &dgain) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    double want_dgain = 0, dgain_scale = 0;
    for (int64_t r = 0; r < filters; r++) {
        const float *gr = g + r * fan_in;
        for (int64_t j = 0; j < fan_in; j++) {
            for (int64_t i = 0; i < fan_in; i++) row[i] = w[r * fan_in + i];
            double h = 1e-6 * fmax(1.0, fabs(row[j]));
            row[j] += h;
            weight_norm_ref(fan_in, row, eps, gain, plus);
            row[j] -= 2 * h;
            weight_norm_ref(fan_in, row, eps, gain, minus);
            double d = 0;
            for (int64_t i = 0; i < fan_in; i++) d += gr[i] * (plus[i] - minus[i]);
            want[r * fan_in + j] = d / (2 * h);
        }
        for (int64_t i = 0; i < fan_in; i++) row[i] = w[r * fan_in + i];
        weight_norm_ref(fan_in, row, eps, gain + 1e-3, plus);
        weight_norm_ref(fan_in, row, eps, gain - 1e-3, minus);
        for (int64_t i = 0; i < fan_in; i++) {
            want_dgain += gr[i] * (plus[i] - minus[i]) / 2e-3;
            dgain_scale += fabs(gr[i] * (plus[i] - minus[i]) / 2e-3);
        }
    }
    snprintf(label, sizeof label, "weight_norm backward %lldx%lld gain=%g", (long long)filters, (long long)fan_in, gain);
    test_close(label, dw, want, n, 1e-6, 1e-4);
    CHECK(fabs(dgain - want_dgain) <= 1e-5 * dgain_scale + 1e-6, "%s: dgain = %.9g, want %.9g", label, dgain,
          want_dgain);
    /* dgain is optional */
    CHECK(ambient_weight_norm_backward(filters, fan_in, eps, gain, w, g, dw, NULL) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());

    /* force: w = w / (eps + |w| / sqrt(F)), i.e. forward with gain sqrt(F) */
    memcpy(wh, w, (size_t)n * sizeof(float));
    CHECK(ambient_weight_norm_force(filters, fan_in, eps, wh) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    for (int64_t r = 0; r < filters; r++) {
        for (int64_t i = 0; i < fan_in; i++) row[i] = w[r * fan_in + i];
        weight_norm_ref(fan_in, row, eps, sqrt((double)fan_in), want + r * fan_in);
    }
    test_close("weight_norm force", wh, want, n, 1e-7, 1e-5);
    free(w); free(wh); free(g); free(dw); free(want); free(row); free(plus); free(minus);
}

/* ---- Bad arguments --------------------------------------------------------------------------------- */

static int message_has(const char *part) { return strstr(ambient_last_error(), part) != NULL; }

static void test_bad_arguments(void) {
    float *x = test_alloc(1000), *wt = test_alloc(1000), *y = test_alloc(1000);
    test_fill(x, 1000, 1.0f);
    test_fill(wt, 1000, 1.0f);
    CHECK(ambient_conv2d_forward(1, 4, 4, 2, 2, 2, x, wt, 0.0f, y) == AMBIENT_STATUS_INVALID_ARGUMENT, "kernel 2");
    CHECK(message_has("kernel = 2"), "message: %s", ambient_last_error());
    CHECK(ambient_conv2d_backward_weight(1, 4, 4, 2, 2, 5, x, wt, 0.0f, y) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "kernel 5");
    CHECK(ambient_conv2d_forward(1, -4, 4, 2, 2, 3, x, wt, 0.0f, y) == AMBIENT_STATUS_INVALID_ARGUMENT, "negative h");
    CHECK(message_has("h = -4 is negative"), "message: %s", ambient_last_error());
    CHECK(ambient_conv2d_backward_input(1, 4, 4, -2, 2, 3, x, wt, 0.0f, y) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "negative c_in");
    CHECK(ambient_conv2d_forward(INT64_C(1) << 40, 1 << 20, 1 << 20, 2, 2, 3, x, wt, 0.0f, y) ==
              AMBIENT_STATUS_INVALID_ARGUMENT, "overflow");
    CHECK(message_has("too large"), "message: %s", ambient_last_error());
    CHECK(ambient_conv2d_forward(1, 4, 4, 2, 2, 3, x, wt, NAN, y) == AMBIENT_STATUS_INVALID_ARGUMENT, "NaN beta");
    CHECK(ambient_conv2d_forward(1, 4, 4, 2, 2, 3, NULL, wt, 0.0f, y) == AMBIENT_STATUS_INVALID_ARGUMENT, "NULL x");
    CHECK(message_has("x is NULL"), "message: %s", ambient_last_error());
    /* overlaps: y over x, y over weight, dx over dy, dweight over x */
    CHECK(ambient_conv2d_forward(1, 4, 4, 2, 2, 3, x, wt, 0.0f, x + 8) == AMBIENT_STATUS_INVALID_ARGUMENT, "y in x");
    CHECK(message_has("overlaps"), "message: %s", ambient_last_error());
    CHECK(ambient_conv2d_forward(1, 4, 4, 2, 2, 3, x, wt, 0.0f, wt + 30) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "y in weight");
    CHECK(ambient_conv2d_backward_input(1, 4, 4, 2, 2, 1, x, wt, 0.0f, x) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "dx == dy");
    CHECK(ambient_conv2d_backward_weight(1, 4, 4, 2, 2, 3, x, wt, 0.0f, x + 4) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "dweight in x");
    /* empty is fine and clears the message; c_in = 0 gives y = beta * y */
    CHECK(ambient_conv2d_forward(0, 4, 4, 2, 2, 3, NULL, NULL, 0.0f, NULL) == AMBIENT_STATUS_OK, "empty");
    CHECK(ambient_last_error()[0] == '\0', "a successful call clears the message");
    for (int i = 0; i < 32; i++) y[i] = NAN;
    CHECK(ambient_conv2d_forward(1, 4, 4, 0, 2, 3, NULL, NULL, 0.0f, y) == AMBIENT_STATUS_OK, "c_in 0");
    int zeros = 1;
    for (int i = 0; i < 32; i++) zeros &= y[i] == 0.0f;
    CHECK(zeros, "c_in = 0, beta = 0 leaves zeros");

    float dgain;
    CHECK(ambient_weight_norm_forward(2, 4, 0.0f, 1.0f, x, y) == AMBIENT_STATUS_INVALID_ARGUMENT, "eps 0");
    CHECK(message_has("eps"), "message: %s", ambient_last_error());
    CHECK(ambient_weight_norm_force(2, 4, -1e-4f, x) == AMBIENT_STATUS_INVALID_ARGUMENT, "eps < 0");
    CHECK(ambient_weight_norm_backward(2, 4, NAN, 1.0f, x, wt, y, &dgain) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "eps NaN");
    CHECK(ambient_weight_norm_forward(2, 4, 1e-4f, INFINITY, x, y) == AMBIENT_STATUS_INVALID_ARGUMENT, "gain inf");
    CHECK(ambient_weight_norm_forward(-2, 4, 1e-4f, 1.0f, x, y) == AMBIENT_STATUS_INVALID_ARGUMENT, "negative");
    CHECK(message_has("negative"), "message: %s", ambient_last_error());
    CHECK(ambient_weight_norm_forward(INT64_MAX, 4, 1e-4f, 1.0f, x, y) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "overflow");
    CHECK(ambient_weight_norm_forward(2, 4, 1e-4f, 1.0f, x, x + 1) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "partial overlap");
    CHECK(ambient_weight_norm_backward(2, 4, 1e-4f, 1.0f, x, wt, x, &dgain) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "dw == w");
    CHECK(ambient_weight_norm_backward(2, 4, 1e-4f, 1.0f, x, wt, wt + 4, &dgain) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "dw over dw_hat");
    CHECK(ambient_weight_norm_backward(2, 4, 1e-4f, 1.0f, x, wt, y, y + 3) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "dgain in dw");
    CHECK(ambient_weight_norm_backward(2, 4, 1e-4f, 1.0f, x, NULL, y, &dgain) == AMBIENT_STATUS_INVALID_ARGUMENT,
          "NULL dw_hat");
    free(x); free(wt); free(y);
}

int main(void) {
    test_seed(20261128);
    const shape shapes[] = {
        {1, 5, 7, 3, 17, 1}, {1, 5, 7, 3, 17, 3}, {2, 9, 11, 67, 33, 1}, {2, 9, 11, 67, 33, 3},
        {1, 1, 1, 5, 4, 3}, {1, 2, 1, 1, 1, 3}, {3, 1, 6, 16, 45, 3},
        /* several row blocks, k steps and (for the weight gradient) threads */
        {2, 16, 16, 64, 40, 3}, {1, 13, 12, 128, 128, 3}, {4, 8, 8, 96, 31, 1},
        /* Winograd's two ways of feeding V to the micro-kernel (row-major up to 256 input
         * channels on AVX-512, packed above) */
        {1, 5, 6, 272, 40, 3}};
    const int nshapes = (int)(sizeof shapes / sizeof shapes[0]);
    /* the library's own choice of Winograd tile (F(4x4) for the larger images: 16x16 above) */
    sum_tolerance = TOLERANCE_F4;
    for (int i = 0; i < nshapes; i++) {
        test_conv(shapes[i], 0.0f);
        test_conv(shapes[i], 0.75f);
    }
    /* each tile forced: F(2x2) to the direct sums' tolerance, F(4x4) also on partial tiles
     * (5, 6, 7, 9, 11, 13 pixels) and images smaller than one tile */
    setenv("AMBIENT_WINOGRAD_TILE", "2", 1);
    sum_tolerance = TOLERANCE_EXACT;
    for (int i = 0; i < nshapes; i++) test_conv(shapes[i], i % 2 ? 0.75f : 0.0f);
    setenv("AMBIENT_WINOGRAD_TILE", "4", 1);
    sum_tolerance = TOLERANCE_F4;
    for (int i = 0; i < nshapes; i++) test_conv(shapes[i], i % 2 ? 0.0f : 0.75f);
    test_conv((shape){2, 3, 2, 20, 9, 3}, 0.0f);
    ambient_threads_set(3);
    test_conv((shape){3, 12, 10, 40, 24, 3}, 0.5f);
    ambient_threads_set(0);
    unsetenv("AMBIENT_WINOGRAD_TILE");
    test_conv(shapes[1], 1.0f);
    test_conv(shapes[3], 1.0f);
    /* other thread counts, including more threads than cores (the Winograd weight gradient
     * splits its work by thread count: 1 and 3 split the tiles, 4 the transform rows) */
    int32_t threads = 0;
    ambient_threads_get(&threads);
    for (int t = 1; t <= 4; t++) {
        if (t == 2) continue;
        ambient_threads_set(t);
        test_conv(shapes[3], 0.0f);
        test_conv(shapes[7], 0.5f);
        test_conv((shape){3, 12, 10, 40, 24, 3}, 0.0f);
        /* fewer tiles than ranges of tiles, after a call that leaves its scratch dirty */
        test_conv((shape){1, 6, 6, 160, 96, 3}, 0.0f);
        test_conv((shape){1, 2, 3, 160, 96, 3}, 0.0f);
    }
    ambient_threads_set(threads);
    /* the implicit GEMM where Winograd would serve (the shapes above take Winograd when h, w >= 2
     * and, for the weight gradient, when there are enough channels) */
    setenv("AMBIENT_CONV_ALGO", "gemm", 1);
    sum_tolerance = TOLERANCE_EXACT;
    test_conv(shapes[3], 0.0f);
    test_conv(shapes[7], 0.75f);
    test_conv((shape){1, 13, 12, 128, 128, 3}, 1.0f);
    unsetenv("AMBIENT_CONV_ALGO");

    test_finite_differences((shape){1, 3, 4, 3, 5, 3});
    test_finite_differences((shape){2, 2, 3, 4, 3, 1});
    test_adjoint((shape){2, 9, 11, 67, 33, 3});
    test_adjoint((shape){2, 9, 11, 67, 33, 1});
    test_adjoint((shape){2, 16, 16, 128, 128, 3});

    test_weight_norm(1, 1, 1.0f);
    test_weight_norm(3, 5, 1.0f);
    test_weight_norm(17, 27, 0.7f);
    test_weight_norm(33, 9 * 67, -1.3f);
    test_weight_norm(128, 1152, 1.0f); /* over the parallel threshold */
    test_weight_norm(5, 12, 0.0f);     /* gain 0: w_hat = 0, dw = 0, dgain still defined */
    test_bad_arguments();
    return test_finish("test_cpu_conv2d");
}
