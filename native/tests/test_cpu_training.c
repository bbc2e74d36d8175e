/*
 * CPU backend: the Ambient noising and loss, and the optimizer passes (sum of squares, NaN
 * guard, Adam, EMA), against double-precision references on random inputs with outputs
 * poisoned first. Noise is recomputed here with philox.h; gradients of the loss are checked
 * against central finite differences of the double loss; results must be bit-identical for
 * 1, 2 and 3 threads; bad arguments are rejected with a message. The Philox generator has one
 * version per instruction set, so the noising cases run again in child processes with
 * AMBIENT_CPU_ISA=avx2 and scalar.
 */
#include "ambient.h"
#include "test_util.h"

#include "../cpu/philox.h"

#include <sys/wait.h>
#include <unistd.h>

static double *dalloc(int64_t n) {
    double *p = (double *)malloc((size_t)(n > 0 ? n : 1) * sizeof(double));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Element e of a normal stream, as philox.h defines it. */
static float philox_normal(uint64_t seed, uint64_t stream, int64_t e) {
    float four[4];
    ambient_philox_normal4(seed, stream, (uint64_t)e / 4, four);
    return four[e % 4];
}

/* Compares per element with a bound given per element; prints the first failures. */
static int check_bounded(const char *what, const float *got, const double *want, const double *bound, int64_t n) {
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        if (!(err <= bound[i])) {
            if (bad < 5) fprintf(stderr, "  %s[%lld]: got %.9g want %.9g (bound %.3g)\n", what, (long long)i, got[i], want[i], bound[i]);
            bad++;
        }
    }
    if (bad) {
        fprintf(stderr, "  %s: %lld of %lld out of tolerance\n", what, (long long)bad, (long long)n);
        test_failures++;
    }
    return bad == 0;
}

/* ---- Noising ------------------------------------------------------------------------- */

static void test_noising(int64_t n, int64_t size, int64_t fixed_seed, int64_t step_seed) {
    int64_t count = n * size;
    float *x = test_alloc(count), *x_tn = test_alloc(count), *x_t = test_alloc(count);
    float *st = test_alloc(n), *stn = test_alloc(n);
    int64_t *ids = (int64_t *)malloc((size_t)n * sizeof(int64_t));
    double *want = dalloc(count), *bound = dalloc(count);
    test_fill(x, count, 2.0f);
    for (int64_t i = 0; i < n; i++) {
        st[i] = 0.05f + 3.0f * fabsf(test_uniform());
        switch (i % 4) {
        case 0: stn[i] = st[i] * 0.5f * fabsf(test_uniform()); break;
        case 1: stn[i] = 0.0f; break;            /* clean sample: no z */
        case 2: stn[i] = st[i]; break;           /* sigma_tn = sigma_t: no eps */
        default: stn[i] = st[i] * 0.999f; break;
        }
        ids[i] = (int64_t)(test_next_u64() >> (i % 3 == 0 ? 1 : 40)) * (i % 5 == 4 ? -1 : 1);
    }
    test_poison(x_tn, count);
    test_poison(x_t, count);
    CHECK(ambient_ambient_noising(n, size, x, st, stn, ids, fixed_seed, step_seed, x_tn, x_t) == AMBIENT_STATUS_OK,
          "%s", ambient_last_error());
    for (int64_t i = 0; i < n; i++) {
        for (int64_t e = 0; e < size; e++) {
            int64_t k = i * size + e;
            double z = philox_normal((uint64_t)fixed_seed, (uint64_t)ids[i], e);
            want[k] = x[k] + stn[i] * z;
            /* a few float ulps of the normal and of the sums */
            bound[k] = 1e-6 * stn[i] * fabs(z) + 2.5e-7 * (fabs(x[k]) + fabs(want[k])) + 1e-30;
        }
    }
    check_bounded("noising x_tn - x = sigma_tn z", x_tn, want, bound, count);
    for (int64_t i = 0; i < n; i++) {
        double s = sqrt(((double)st[i] - stn[i]) * ((double)st[i] + stn[i]));
        for (int64_t e = 0; e < size; e++) {
            int64_t k = i * size + e;
            double eps = philox_normal((uint64_t)step_seed, (uint64_t)i, e);
            want[k] = (double)x_tn[k] + s * eps;
            bound[k] = 1e-6 * s * fabs(eps) + 2.5e-7 * (fabs(x_tn[k]) + fabs(want[k])) + 1e-30;
        }
    }
    check_bounded("noising x_t - x_tn = sqrt(st^2 - stn^2) eps", x_t, want, bound, count);
    /* clean samples are copied exactly */
    for (int64_t i = 1; i < n; i += 4)
        CHECK(memcmp(x_tn + i * size, x + i * size, (size_t)size * sizeof(float)) == 0, "sigma_tn = 0 keeps x");
    free(x); free(x_tn); free(x_t); free(st); free(stn); free(ids); free(want); free(bound);
}

/* The same sample id gives the same z wherever it sits in the batch and at any step; eps
 * changes with the step seed. */
static void test_noising_identity(int64_t size) {
    float *x = test_alloc(2 * size), *xs = test_alloc(2 * size);
    float *tn1 = test_alloc(2 * size), *t1 = test_alloc(2 * size), *tn2 = test_alloc(2 * size), *t2 = test_alloc(2 * size);
    test_fill(x, 2 * size, 1.0f);
    memcpy(xs, x + size, (size_t)size * sizeof(float)); /* swapped rows */
    memcpy(xs + size, x, (size_t)size * sizeof(float));
    float st[2] = {1.3f, 0.7f}, stn[2] = {0.4f, 0.2f}, sts[2] = {0.7f, 1.3f}, stns[2] = {0.2f, 0.4f};
    int64_t ids[2] = {5, 123456789012345}, idss[2] = {123456789012345, 5};
    CHECK(ambient_ambient_noising(2, size, x, st, stn, ids, 77, 1001, tn1, t1) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(ambient_ambient_noising(2, size, xs, sts, stns, idss, 77, 1002, tn2, t2) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(memcmp(tn1, tn2 + size, (size_t)size * sizeof(float)) == 0, "sample 5's x_tn moves with it");
    CHECK(memcmp(tn1 + size, tn2, (size_t)size * sizeof(float)) == 0, "the other sample's x_tn moves with it");
    int64_t differ = 0;
    for (int64_t e = 0; e < size; e++) differ += t1[e] != t2[size + e];
    CHECK(differ > size / 2, "eps must change with the step seed (%lld of %lld differ)", (long long)differ, (long long)size);
    /* the fixed seed matters too */
    CHECK(ambient_ambient_noising(2, size, x, st, stn, ids, 78, 1001, tn2, t2) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    differ = 0;
    for (int64_t e = 0; e < size; e++) differ += tn1[e] != tn2[e];
    CHECK(differ > size / 2, "z must change with the fixed seed");
    free(x); free(xs); free(tn1); free(t1); free(tn2); free(t2);
}

/* ---- Loss ------------------------------------------------------------------------------- */

typedef struct {
    int64_t n, size, channels;
    const float *x0, *xt, *xtn, *st, *stn, *logvar, *mask;
    double sigma_data, scale;
} loss_problem;

/* L_i in double for sample i, with x0 of that sample replaced by x0d (double). */
static double loss_ref(const loss_problem *p, int64_t i, const double *x0d, double u_override, int use_override) {
    double t = p->st[i], tn = p->stn[i], sd = p->sigma_data;
    double r = tn * tn / (t * t), w = (t * t + sd * sd) / (t * t * sd * sd);
    double s = 0, msum = 0;
    for (int64_t e = 0; e < p->size; e++) {
        int64_t k = i * p->size + e;
        double m = p->mask ? p->mask[k / p->channels] : 1.0;
        double res = r * p->xt[k] + (1 - r) * x0d[e] - p->xtn[k];
        s += m * res * res;
        msum += m;
    }
    double l = w / ((1 - r) * (1 - r)) * s;
    if (p->logvar || use_override) {
        double u = use_override ? u_override : p->logvar[i];
        l = l / exp(u) + u * msum;
    }
    return l;
}

static void run_loss(const loss_problem *p, float *loss, float *grad, float *glv) {
    CHECK(ambient_ambient_loss(p->n, p->size, p->channels, (float)p->sigma_data, p->x0, p->xt, p->xtn, p->st, p->stn,
                               p->logvar, p->mask, (float)p->scale, loss, grad, glv) == AMBIENT_STATUS_OK,
          "%s", ambient_last_error());
}

/* Random problem; near != 0 puts sigma_tn at 0.999 sigma_t. mask_kind: 0 none, 1 all ones,
 * 2 all zeros, 3 random 0/1, 4 random in [0, 1]. fd: check every gradient by finite
 * differences (small shapes) or only a sample of them. */
static void test_loss(int64_t n, int64_t pixels, int64_t channels, int near, int mask_kind, int with_logvar, int fd_all) {
    int64_t size = pixels * channels, count = n * size;
    float *x0 = test_alloc(count), *xt = test_alloc(count), *xtn = test_alloc(count), *grad = test_alloc(count);
    float *st = test_alloc(n), *stn = test_alloc(n), *lv = test_alloc(n), *loss = test_alloc(n), *glv = test_alloc(n);
    float *mask = mask_kind ? test_alloc(n * pixels) : NULL;
    double *want = dalloc(count), *x0d = dalloc(size), *lwant = dalloc(n), *glwant = dalloc(n);
    test_fill(xtn, count, 1.0f);
    test_fill(x0, count, 1.0f);
    for (int64_t i = 0; i < n; i++) {
        st[i] = 0.02f + 4.0f * fabsf(test_uniform());
        stn[i] = near ? 0.999f * st[i] : (i % 3 == 0 ? 0.0f : 0.9f * st[i] * fabsf(test_uniform()));
        lv[i] = 0.7f * test_uniform();
        float s = sqrtf(st[i] * st[i] - stn[i] * stn[i]);
        for (int64_t e = 0; e < size; e++) xt[i * size + e] = xtn[i * size + e] + s * test_uniform();
        /* a denoiser output close to the truth, as in training */
        for (int64_t e = 0; e < size; e++) x0[i * size + e] = xtn[i * size + e] + 0.3f * x0[i * size + e];
    }
    for (int64_t p = 0; mask && p < n * pixels; p++)
        mask[p] = mask_kind == 1 ? 1.0f : mask_kind == 2 ? 0.0f : mask_kind == 3 ? (float)(test_next_u64() & 1) : fabsf(test_uniform());
    loss_problem prob = {n, size, channels, x0, xt, xtn, st, stn, with_logvar ? lv : NULL, mask, 0.5, 0.75};
    test_poison(grad, count);
    test_poison(loss, n);
    test_poison(glv, n);
    run_loss(&prob, loss, grad, with_logvar ? glv : NULL);

    for (int64_t i = 0; i < n; i++) {
        double t = st[i], tn = stn[i], sd = prob.sigma_data;
        double r = tn * tn / (t * t), w = (t * t + sd * sd) / (t * t * sd * sd);
        double inv = with_logvar ? exp(-(double)lv[i]) : 1.0, s = 0, msum = 0;
        for (int64_t e = 0; e < size; e++) {
            int64_t k = i * size + e;
            double m = mask ? mask[k / channels] : 1.0;
            double res = r * xt[k] + (1 - r) * x0[k] - xtn[k];
            want[k] = prob.scale * 2 * w / (1 - r) * m * res * inv;
            s += m * res * res;
            msum += m;
            x0d[e] = x0[k];
        }
        lwant[i] = loss_ref(&prob, i, x0d, 0, 0);
        glwant[i] = prob.scale * (msum - w / ((1 - r) * (1 - r)) * s * inv);
        /* the formulas against finite differences of the double loss */
        int64_t stride = fd_all ? 1 : size / 7 + 1;
        for (int64_t e = 0; e < size; e += stride) {
            double keep = x0d[e], h = 1e-3;
            x0d[e] = keep + h;
            double lp = loss_ref(&prob, i, x0d, 0, 0);
            x0d[e] = keep - h;
            double lm = loss_ref(&prob, i, x0d, 0, 0);
            x0d[e] = keep;
            double fd = prob.scale * (lp - lm) / (2 * h);
            double g = want[i * size + e];
            CHECK(fabs(fd - g) <= 1e-6 * (fabs(lp) + fabs(lm)) / h + 1e-6 * fabs(g),
                  "grad_x0 formula vs finite differences at sample %lld element %lld: %.9g vs %.9g",
                  (long long)i, (long long)e, g, fd);
        }
        if (with_logvar) {
            double h = 1e-4, u = lv[i];
            double fd = prob.scale * (loss_ref(&prob, i, x0d, u + h, 1) - loss_ref(&prob, i, x0d, u - h, 1)) / (2 * h);
            CHECK(fabs(fd - glwant[i]) <= 1e-6 * fabs(lwant[i]) / h + 1e-6,
                  "grad_logvar formula vs finite differences at sample %lld: %.9g vs %.9g", (long long)i, glwant[i], fd);
        }
    }
    /* near sigma_t the weight is large and the residual small: relative tolerances */
    double rtol = near ? 1e-4 : 1e-5;
    char what[96];
    snprintf(what, sizeof what, "loss n=%lld px=%lld c=%lld near=%d mask=%d logvar=%d", (long long)n, (long long)pixels,
             (long long)channels, near, mask_kind, with_logvar);
    double lscale = 0;
    for (int64_t i = 0; i < n; i++) lscale = fmax(lscale, fabs(lwant[i]));
    test_close(what, loss, lwant, n, 1e-6 * lscale + 1e-30, rtol);
    double gscale = 0;
    for (int64_t k = 0; k < count; k++) gscale = fmax(gscale, fabs(want[k]));
    test_close("grad_x0", grad, want, count, 1e-6 * gscale + 1e-30, rtol);
    if (with_logvar) test_close("grad_logvar", glv, glwant, n, 1e-6 * lscale + 1e-6 * prob.scale * size, rtol);
    if (mask_kind == 2) {
        for (int64_t i = 0; i < n; i++) {
            CHECK(loss[i] == 0.0f, "all-zero mask: loss %g", loss[i]);
            if (with_logvar) CHECK(glv[i] == 0.0f, "all-zero mask: grad_logvar %g", glv[i]);
        }
        for (int64_t k = 0; k < count; k++) CHECK(grad[k] == 0.0f, "all-zero mask: grad %g", grad[k]);
    }

    /* loss only (grad_x0 NULL) gives the same loss */
    float *loss2 = test_alloc(n);
    test_poison(loss2, n);
    CHECK(ambient_ambient_loss(n, size, channels, (float)prob.sigma_data, x0, xt, xtn, st, stn, prob.logvar, mask,
                               (float)prob.scale, loss2, NULL, with_logvar ? glv : NULL) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    CHECK(memcmp(loss, loss2, (size_t)n * sizeof(float)) == 0, "loss without grad_x0 differs");

    /* bit-identical for any thread count */
    float *loss3 = test_alloc(n), *grad3 = test_alloc(count), *glv3 = test_alloc(n);
    int threads[] = {1, 3, 2};
    for (int t = 0; t < 3; t++) {
        ambient_threads_set(threads[t]);
        test_poison(grad3, count);
        run_loss(&prob, loss3, grad3, with_logvar ? glv3 : NULL);
        CHECK(memcmp(loss, loss3, (size_t)n * sizeof(float)) == 0, "loss differs with %d threads", threads[t]);
        CHECK(memcmp(grad, grad3, (size_t)count * sizeof(float)) == 0, "grad_x0 differs with %d threads", threads[t]);
        if (with_logvar) CHECK(memcmp(glv, glv3, (size_t)n * sizeof(float)) == 0, "grad_logvar differs with %d threads", threads[t]);
    }
    ambient_threads_set(0);
    free(x0); free(xt); free(xtn); free(grad); free(st); free(stn); free(lv); free(loss); free(glv); free(mask);
    free(want); free(x0d); free(lwant); free(glwant); free(loss2); free(loss3); free(grad3); free(glv3);
}

/* sigma_tn = 0 and no mask: the plain EDM loss w * sum (D - x)^2. */
static void test_loss_is_edm(void) {
    int64_t n = 3, size = 8 * 8 * 3;
    float *x = test_alloc(n * size), *d = test_alloc(n * size), *xt = test_alloc(n * size), *grad = test_alloc(n * size);
    float st[3] = {0.002f, 0.5f, 80.0f}, stn[3] = {0, 0, 0}, loss[3];
    test_fill(x, n * size, 1.0f);
    test_fill(d, n * size, 1.0f);
    test_fill(xt, n * size, 5.0f);
    CHECK(ambient_ambient_loss(n, size, 3, 0.5f, d, xt, x, st, stn, NULL, NULL, 1.0f, loss, grad, NULL) == AMBIENT_STATUS_OK,
          "%s", ambient_last_error());
    double want[3];
    for (int64_t i = 0; i < n; i++) {
        double t = st[i], w = (t * t + 0.25) / (t * t * 0.25), s = 0;
        for (int64_t e = 0; e < size; e++) {
            double diff = (double)d[i * size + e] - x[i * size + e];
            s += diff * diff;
        }
        want[i] = w * s;
    }
    test_close("EDM loss", loss, want, n, 0, 1e-5);
    free(x); free(d); free(xt); free(grad);
}

/* ---- Optimizer -------------------------------------------------------------------------- */

static void test_sum_squares(int64_t count) {
    float *x = test_alloc(count), result = NAN;
    test_fill(x, count, 3.0f);
    double want = 0;
    for (int64_t i = 0; i < count; i++) want += (double)x[i] * x[i];
    CHECK(ambient_sum_squares(count, x, 0, &result) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    test_close("sum_squares", &result, &want, 1, 1e-30, 1e-6);
    float acc = 2.5f;
    CHECK(ambient_sum_squares(count, x, 1, &acc) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    double want_acc = want + 2.5;
    test_close("sum_squares accumulate", &acc, &want_acc, 1, 1e-30, 1e-6);
    for (int t = 1; t <= 3; t++) {
        float again = NAN;
        ambient_threads_set(t);
        CHECK(ambient_sum_squares(count, x, 0, &again) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
        CHECK(memcmp(&again, &result, sizeof(float)) == 0, "sum_squares differs with %d threads: %.9g vs %.9g", t, again, result);
    }
    ambient_threads_set(0);
    free(x);
}

static void test_nan_guard(int64_t count) {
    float *x = test_alloc(count), *orig = test_alloc(count);
    test_fill(x, count, 1.0f);
    int64_t planted = 0;
    for (int64_t i = 0; i < count; i += 1 + (int64_t)(test_next_u64() % 5000)) {
        uint64_t kind = test_next_u64() % 4;
        x[i] = kind == 0 ? NAN : kind == 1 ? INFINITY : kind == 2 ? -INFINITY : -NAN;
        planted++;
    }
    /* the largest finite value and a subnormal are kept */
    if (count > 3 && isfinite(x[count - 1]) && isfinite(x[count - 2])) { x[count - 1] = 3.4028235e38f; x[count - 2] = -1e-42f; }
    memcpy(orig, x, (size_t)count * sizeof(float));
    int64_t bad = -1;
    CHECK(ambient_nan_guard(count, x, &bad) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(bad == planted, "nan_guard counted %lld, planted %lld", (long long)bad, (long long)planted);
    for (int64_t i = 0; i < count; i++) {
        if (isfinite(orig[i])) CHECK(memcmp(&x[i], &orig[i], sizeof(float)) == 0, "finite element %lld changed", (long long)i);
        else CHECK(x[i] == 0.0f && !signbit(x[i]), "non-finite element %lld is %g, not 0", (long long)i, x[i]);
    }
    CHECK(ambient_nan_guard(count, x, &bad) == AMBIENT_STATUS_OK && bad == 0, "a clean buffer has no bad values");
    free(x); free(orig);
}

static void test_adam(int64_t count, int clip_mode) {
    /* clip_mode 0: no clipping, 1: norm above max_norm (clips), 2: norm below max_norm */
    float *p = test_alloc(count), *g = test_alloc(count), *m = test_alloc(count), *v = test_alloc(count);
    double *pd = dalloc(count), *md = dalloc(count), *vd = dalloc(count);
    test_fill(p, count, 1.0f);
    for (int64_t i = 0; i < count; i++) { pd[i] = p[i]; m[i] = 0; v[i] = 0; md[i] = 0; vd[i] = 0; }
    const float lr = 1e-2f, b1 = 0.9f, b2 = 0.99f, eps = 1e-8f;
    for (int64_t step = 1; step <= 5; step++) {
        test_fill(g, count, 0.5f);
        float ss = 0;
        CHECK(ambient_sum_squares(count, g, 0, &ss) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
        double norm = sqrt((double)ss);
        float max_norm = clip_mode == 1 ? (float)(0.3 * norm) : (float)(3.0 * norm + 1);
        double c = clip_mode ? fmin(1.0, max_norm / norm) : 1.0;
        CHECK(ambient_adam_step(count, lr, b1, b2, eps, step, clip_mode ? &ss : NULL, max_norm, p, g, m, v) == AMBIENT_STATUS_OK,
              "%s", ambient_last_error());
        for (int64_t i = 0; i < count; i++) {
            double gi = g[i] * c;
            md[i] = b1 * md[i] + (1 - (double)b1) * gi;
            vd[i] = b2 * vd[i] + (1 - (double)b2) * gi * gi;
            double mh = md[i] / (1 - pow(b1, (double)step)), vh = vd[i] / (1 - pow(b2, (double)step));
            pd[i] -= lr * mh / (sqrt(vh) + eps);
        }
    }
    test_close("adam param", p, pd, count, 2e-6, 1e-6);
    test_close("adam m", m, md, count, 1e-7, 1e-5);
    test_close("adam v", v, vd, count, 1e-9, 1e-5);
    free(p); free(g); free(m); free(v); free(pd); free(md); free(vd);
}

static void test_ema(int64_t count, float beta) {
    float *p = test_alloc(count), *e = test_alloc(count);
    double *want = dalloc(count);
    test_fill(p, count, 1.0f);
    test_fill(e, count, 1.0f);
    for (int64_t i = 0; i < count; i++) want[i] = e[i] + (1 - (double)beta) * ((double)p[i] - e[i]);
    CHECK(ambient_ema_update(count, beta, p, e) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    test_close("ema", e, want, count, 1e-7, 1e-6);
    free(p); free(e); free(want);
}

/* ---- Bad arguments ---------------------------------------------------------------------- */

static int error_has(const char *text) {
    return strstr(ambient_last_error(), text) != NULL;
}

static void test_bad_arguments(void) {
    float a[12] = {0}, b[12] = {0}, c[12] = {0}, g[12] = {0}, loss[2], glv[2], lv[2] = {0, 0};
    float st[2] = {1.0f, 0.5f}, stn[2] = {0.2f, 0.5f}, good_stn[2] = {0.2f, 0.1f};
    int64_t ids[2] = {1, 2}, count = 0;
    /* sigma_tn >= sigma_t: names the sample and the values */
    CHECK(ambient_ambient_loss(2, 6, 3, 0.5f, a, b, c, st, stn, NULL, NULL, 1, loss, g, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "tn == t");
    CHECK(error_has("sample 1") && error_has("sigma_tn = 0.5") && error_has("sigma_t = 0.5"), "message: %s", ambient_last_error());
    /* noising allows sigma_tn == sigma_t but not more */
    CHECK(ambient_ambient_noising(2, 6, a, st, stn, ids, 1, 2, b, c) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    float big[2] = {0.2f, 0.6f};
    CHECK(ambient_ambient_noising(2, 6, a, st, big, ids, 1, 2, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "tn > t");
    CHECK(error_has("sample 1") && error_has("0.6"), "message: %s", ambient_last_error());
    float zero_t[2] = {0.0f, 1.0f};
    CHECK(ambient_ambient_noising(2, 6, a, zero_t, good_stn, ids, 1, 2, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "t = 0");
    CHECK(error_has("sample 0") && error_has("sigma_t"), "message: %s", ambient_last_error());
    float neg_tn[2] = {-0.1f, 0.1f};
    CHECK(ambient_ambient_noising(2, 6, a, st, neg_tn, ids, 1, 2, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "tn < 0");
    CHECK(ambient_ambient_noising(2, 6, a, st, good_stn, ids, 1, 2, b, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "x_tn == x_t");
    CHECK(error_has("overlaps"), "message: %s", ambient_last_error());
    CHECK(ambient_ambient_noising(2, 6, a, st, good_stn, ids, 1, 2, a, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "x_tn == x");
    CHECK(ambient_ambient_noising(2, 6, a, st, good_stn, NULL, 1, 2, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "ids NULL");
    CHECK(error_has("host_sample_ids is NULL"), "message: %s", ambient_last_error());
    CHECK(ambient_ambient_noising(-1, 6, a, st, good_stn, ids, 1, 2, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "n < 0");
    CHECK(ambient_ambient_noising(INT64_MAX, 6, a, st, good_stn, ids, 1, 2, b, c) == AMBIENT_STATUS_INVALID_ARGUMENT, "overflow");

    CHECK(ambient_ambient_loss(2, 6, 3, 0.0f, a, b, c, st, good_stn, NULL, NULL, 1, loss, g, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "sigma_data 0");
    CHECK(error_has("sigma_data"), "message: %s", ambient_last_error());
    CHECK(ambient_ambient_loss(2, 6, 4, 0.5f, a, b, c, st, good_stn, NULL, NULL, 1, loss, g, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "size not a multiple of channels");
    CHECK(ambient_ambient_loss(2, 6, 0, 0.5f, a, b, c, st, good_stn, NULL, NULL, 1, loss, g, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "channels 0");
    CHECK(ambient_ambient_loss(2, 6, 3, 0.5f, a, b, c, st, good_stn, lv, NULL, 1, loss, g, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "logvar alone");
    CHECK(error_has("together"), "message: %s", ambient_last_error());
    CHECK(ambient_ambient_loss(2, 6, 3, 0.5f, a, b, c, st, good_stn, NULL, NULL, 1, loss, a, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "grad == x0");
    CHECK(error_has("grad_x0 overlaps x0_pred"), "message: %s", ambient_last_error());
    CHECK(ambient_ambient_loss(2, 6, 3, 0.5f, a, b, c, st, good_stn, lv, NULL, 1, loss, g, lv) == AMBIENT_STATUS_INVALID_ARGUMENT, "glv == lv");
    CHECK(ambient_ambient_loss(2, 6, 3, 0.5f, a, b, c, st, good_stn, NULL, NULL, NAN, loss, g, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "scale NaN");
    CHECK(ambient_ambient_loss(2, 6, 3, 0.5f, NULL, b, c, st, good_stn, NULL, NULL, 1, loss, g, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "x0 NULL");
    CHECK(ambient_ambient_loss(2, 6, 3, 0.5f, a, b, c, st, good_stn, lv, NULL, 1, loss, g, glv) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(ambient_ambient_loss(0, 6, 3, 0.5f, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 1, NULL, NULL, NULL) == AMBIENT_STATUS_OK, "empty");

    float r = 0;
    CHECK(ambient_sum_squares(-1, a, 0, &r) == AMBIENT_STATUS_INVALID_ARGUMENT, "negative count");
    CHECK(error_has("negative"), "message: %s", ambient_last_error());
    CHECK(ambient_sum_squares(4, a, 0, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "result NULL");
    CHECK(ambient_sum_squares(4, a, 0, a + 2) == AMBIENT_STATUS_INVALID_ARGUMENT, "result inside x");
    r = 7;
    CHECK(ambient_sum_squares(0, NULL, 0, &r) == AMBIENT_STATUS_OK && r == 0.0f, "empty sum is 0");
    CHECK(ambient_nan_guard(4, a, NULL) == AMBIENT_STATUS_INVALID_ARGUMENT, "count NULL");
    CHECK(ambient_nan_guard(0, NULL, &count) == AMBIENT_STATUS_OK && count == 0, "empty guard");

    float ss = 4;
    CHECK(ambient_adam_step(4, 1e-3f, 0.9f, 0.99f, 1e-8f, 0, NULL, 1, a, b, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "step 0");
    CHECK(error_has("step"), "message: %s", ambient_last_error());
    CHECK(ambient_adam_step(4, 1e-3f, 1.0f, 0.99f, 1e-8f, 1, NULL, 1, a, b, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "beta1 1");
    CHECK(error_has("beta1"), "message: %s", ambient_last_error());
    CHECK(ambient_adam_step(4, 1e-3f, 0.9f, -0.1f, 1e-8f, 1, NULL, 1, a, b, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "beta2 < 0");
    CHECK(ambient_adam_step(4, 1e-3f, 0.9f, 0.99f, 0.0f, 1, NULL, 1, a, b, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "eps 0");
    CHECK(ambient_adam_step(4, -1e-3f, 0.9f, 0.99f, 1e-8f, 1, NULL, 1, a, b, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "lr < 0");
    CHECK(ambient_adam_step(4, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, &ss, 0.0f, a, b, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "max_norm 0");
    CHECK(error_has("max_norm"), "message: %s", ambient_last_error());
    CHECK(ambient_adam_step(4, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, NULL, 1, a, a, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "param == grad");
    CHECK(error_has("param overlaps grad"), "message: %s", ambient_last_error());
    CHECK(ambient_adam_step(4, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, NULL, 1, a, b, c, c + 2) == AMBIENT_STATUS_INVALID_ARGUMENT, "m overlaps v");
    CHECK(ambient_adam_step(4, 1e-3f, 0.9f, 0.99f, 1e-8f, 1, NULL, 1, a, NULL, c, g) == AMBIENT_STATUS_INVALID_ARGUMENT, "grad NULL");
    CHECK(ambient_ema_update(4, 1.5f, a, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "beta > 1");
    CHECK(ambient_ema_update(4, NAN, a, b) == AMBIENT_STATUS_INVALID_ARGUMENT, "beta NaN");
    CHECK(ambient_ema_update(4, 0.5f, a, a + 1) == AMBIENT_STATUS_INVALID_ARGUMENT, "ema overlaps param");
    CHECK(ambient_ema_update(0, 0.5f, NULL, NULL) == AMBIENT_STATUS_OK, "empty");
    CHECK(ambient_last_error()[0] == '\0', "a successful call clears the message");
}

/* ---- Driver ----------------------------------------------------------------------------- */

static void noising_cases(void) {
    test_noising(1, 1, 3, 4);
    test_noising(3, 7, -5, 123456789);
    test_noising(5, 5 * 7 * 3, 42, 43);
    test_noising(8, 32 * 32 * 3, 20261128, 1);  /* over the parallel threshold */
    test_noising(3, 9001, 1ll << 40, -1);       /* several chunks, odd tail */
    test_noising_identity(1);
    test_noising_identity(1000);
}

/* Runs the noising cases in a child process whose Philox version is forced by AMBIENT_CPU_ISA
 * (the choice is made once per process, so this runs before the parent calls any kernel). */
static void noising_with_isa(const char *isa) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("AMBIENT_CPU_ISA", isa, 1);
        noising_cases();
        _exit(test_failures ? 1 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "noising with AMBIENT_CPU_ISA=%s failed", isa);
}

int main(void) {
    test_seed(20261128);
    if (getenv("AMBIENT_CPU_ISA") == NULL) {
        noising_with_isa("scalar");
        noising_with_isa("avx2");
    }
    noising_cases();
    /* noising is bit-identical for any thread count */
    {
        int64_t n = 16, size = 5000;
        float *x = test_alloc(n * size), *a = test_alloc(n * size), *b = test_alloc(n * size), *a2 = test_alloc(n * size),
              *b2 = test_alloc(n * size), st[16], stn[16];
        int64_t ids[16];
        test_fill(x, n * size, 1.0f);
        for (int i = 0; i < 16; i++) { st[i] = 1.0f + i; stn[i] = 0.5f * i; ids[i] = 100 - i; }
        CHECK(ambient_ambient_noising(n, size, x, st, stn, ids, 9, 10, a, b) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
        for (int t = 1; t <= 3; t++) {
            ambient_threads_set(t);
            CHECK(ambient_ambient_noising(n, size, x, st, stn, ids, 9, 10, a2, b2) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
            CHECK(memcmp(a, a2, (size_t)(n * size) * sizeof(float)) == 0 && memcmp(b, b2, (size_t)(n * size) * sizeof(float)) == 0,
                  "noising differs with %d threads", t);
        }
        ambient_threads_set(0);
        free(x); free(a); free(b); free(a2); free(b2);
    }

    test_loss_is_edm();
    /* small shapes: every gradient by finite differences */
    for (int mask = 0; mask <= 4; mask++)
        for (int logvar = 0; logvar <= 1; logvar++) {
            test_loss(2, 3 * 5, 3, 0, mask, logvar, 1);
            test_loss(3, 7, 4, 1, mask, logvar, 1);
        }
    test_loss(1, 1, 1, 0, 3, 1, 1);
    test_loss(2, 9, 5, 0, 4, 1, 1);      /* channels with no special case */
    test_loss(2, 5, 67, 0, 3, 1, 1);     /* wide pixels: mask applied per pixel */
    test_loss(2, 3, 67, 1, 0, 0, 1);
    /* realistic shapes, sampled finite differences */
    test_loss(64, 32 * 32, 3, 0, 0, 1, 0);
    test_loss(16, 32 * 32, 3, 1, 3, 1, 0);
    test_loss(8, 64 * 64, 4, 0, 4, 1, 0);
    test_loss(8, 64 * 64, 4, 1, 0, 0, 0);
    test_loss(5, 33 * 31, 3, 0, 1, 0, 0);
    test_loss(3, 4099, 1, 0, 3, 1, 0);

    int64_t counts[] = {0, 1, 7, 4097, 65537, 1000003};
    for (size_t i = 1; i < sizeof counts / sizeof counts[0]; i++) test_sum_squares(counts[i]);
    for (size_t i = 1; i < sizeof counts / sizeof counts[0]; i++) test_nan_guard(counts[i]);
    for (int clip = 0; clip <= 2; clip++) {
        test_adam(1, clip);
        test_adam(1003, clip);
        test_adam(100003, clip);
    }
    float betas[] = {0.0f, 0.5f, 0.999f, 1.0f};
    for (size_t i = 0; i < 4; i++) { test_ema(9, betas[i]); test_ema(100003, betas[i]); }
    test_bad_arguments();
    return test_finish("test_cpu_training");
}
