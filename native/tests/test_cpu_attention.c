/*
 * CPU backend: multi-head attention (ambient_attention_forward / _backward) against a
 * float64 softmax attention computed the naive way (all L x L logits), on random q, k, v
 * that are either normalised per head row (as EDM2 feeds it) or unnormalised and large
 * (peaked softmax, running max that moves between key tiles). Lengths that are not
 * multiples of any tile, 1 and 3 heads, head_dim 8, 17, 64; outputs NaN-poisoned; the
 * backward against central finite differences of the float64 forward (small shapes) and
 * against the float64 analytic gradient (larger ones); bad arguments rejected.
 */
#include "ambient.h"
#include "test_util.h"

typedef struct {
    int64_t n, L, H, d;
} shape;

static int64_t qkv_count(const shape *s) { return s->n * s->L * s->H * 3 * s->d; }
static int64_t out_count(const shape *s) { return s->n * s->L * s->H * s->d; }
static int64_t lse_count(const shape *s) { return s->n * s->H * s->L; }

static double *dalloc(int64_t n) {
    double *p = (double *)calloc((size_t)(n > 0 ? n : 1), sizeof(double));
    if (!p) { fprintf(stderr, "out of memory\n"); exit(2); }
    return p;
}

/* Row pointers of sample b, head h, token i: q, then k = q + d, v = q + 2 d. */
static const double *row(const shape *s, const double *qkv, int64_t b, int64_t i, int64_t h) {
    return qkv + ((b * s->L + i) * s->H + h) * 3 * s->d;
}

/* Probabilities P (L x L) and logits' largest |value| of one sample and head. */
static double probs_ref(const shape *s, const double *qkv, int64_t b, int64_t h, double *P, double *lse) {
    double scale = 1.0 / sqrt((double)s->d), biggest = 0;
    for (int64_t i = 0; i < s->L; i++) {
        const double *q = row(s, qkv, b, i, h);
        double m = -INFINITY;
        for (int64_t j = 0; j < s->L; j++) {
            const double *k = row(s, qkv, b, j, h) + s->d;
            double dot = 0;
            for (int64_t c = 0; c < s->d; c++) dot += q[c] * k[c];
            P[i * s->L + j] = scale * dot;
            if (P[i * s->L + j] > m) m = P[i * s->L + j];
            if (fabs(scale * dot) > biggest) biggest = fabs(scale * dot);
        }
        double sum = 0;
        for (int64_t j = 0; j < s->L; j++) sum += (P[i * s->L + j] = exp(P[i * s->L + j] - m));
        for (int64_t j = 0; j < s->L; j++) P[i * s->L + j] /= sum;
        if (lse) lse[i] = m + log(sum);
    }
    return biggest;
}

/* out and lse of the whole batch; returns the largest |logit|. */
static double forward_ref(const shape *s, const double *qkv, double *out, double *lse) {
    double *P = dalloc(s->L * s->L), biggest = 0;
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t h = 0; h < s->H; h++) {
            double big = probs_ref(s, qkv, b, h, P, lse ? lse + (b * s->H + h) * s->L : NULL);
            if (big > biggest) biggest = big;
            for (int64_t i = 0; i < s->L; i++) {
                double *o = out + ((b * s->L + i) * s->H + h) * s->d;
                for (int64_t c = 0; c < s->d; c++) o[c] = 0;
                for (int64_t j = 0; j < s->L; j++) {
                    const double *v = row(s, qkv, b, j, h) + 2 * s->d;
                    for (int64_t c = 0; c < s->d; c++) o[c] += P[i * s->L + j] * v[c];
                }
            }
        }
    free(P);
    return biggest;
}

/* The analytic gradient: dV = P^T dO, dP = dO V^T, dS = P (dP - rowsum(P dP)),
 * dQ = scale dS K, dK = scale dS^T Q. */
static void backward_ref(const shape *s, const double *qkv, const double *dout, double *dqkv) {
    const int64_t L = s->L, d = s->d;
    double scale = 1.0 / sqrt((double)d);
    double *P = dalloc(L * L), *dS = dalloc(L * L);
    for (int64_t b = 0; b < s->n; b++)
        for (int64_t h = 0; h < s->H; h++) {
            probs_ref(s, qkv, b, h, P, NULL);
            for (int64_t i = 0; i < L; i++) {
                const double *go = dout + ((b * L + i) * s->H + h) * d;
                double D = 0;
                for (int64_t j = 0; j < L; j++) {
                    const double *v = row(s, qkv, b, j, h) + 2 * d;
                    double dp = 0;
                    for (int64_t c = 0; c < d; c++) dp += go[c] * v[c];
                    dS[i * L + j] = dp;
                    D += P[i * L + j] * dp;
                }
                for (int64_t j = 0; j < L; j++) dS[i * L + j] = P[i * L + j] * (dS[i * L + j] - D);
            }
            for (int64_t i = 0; i < L; i++) {
                double *gq = dqkv + ((b * L + i) * s->H + h) * 3 * d, *gk = gq + d, *gv = gq + 2 * d;
                for (int64_t c = 0; c < 3 * d; c++) gq[c] = 0;
                for (int64_t j = 0; j < L; j++) {
                    const double *qj = row(s, qkv, b, j, h), *kj = qj + d;
                    const double *go = dout + ((b * L + j) * s->H + h) * d;
                    for (int64_t c = 0; c < d; c++) {
                        gq[c] += scale * dS[i * L + j] * kj[c];
                        gk[c] += scale * dS[j * L + i] * qj[c];
                        gv[c] += P[j * L + i] * go[c];
                    }
                }
            }
        }
    free(P);
    free(dS);
}

/* d/dqkv of sum(out * dout) by central differences of the float64 forward. */
static void backward_fd(const shape *s, const double *qkv, const double *dout, double *dqkv) {
    int64_t count = qkv_count(s), oc = out_count(s);
    double *x = dalloc(count), *op = dalloc(oc), *om = dalloc(oc);
    memcpy(x, qkv, (size_t)count * sizeof(double));
    for (int64_t e = 0; e < count; e++) {
        double h = 1e-5 * fmax(1.0, fabs(x[e])), keep = x[e];
        x[e] = keep + h;
        forward_ref(s, x, op, NULL);
        x[e] = keep - h;
        forward_ref(s, x, om, NULL);
        x[e] = keep;
        double g = 0;
        for (int64_t i = 0; i < oc; i++) g += dout[i] * (op[i] - om[i]);
        dqkv[e] = g / (2 * h);
    }
    free(x);
    free(op);
    free(om);
}

/* q, k, v of every head: unit RMS per row (normalised), or uniform in [-amp, amp). */
static void fill_qkv(const shape *s, float *qkv, int normalised, float amp) {
    int64_t rows = qkv_count(s) / s->d;
    test_fill(qkv, qkv_count(s), normalised ? 1.0f : amp);
    if (!normalised) return;
    for (int64_t r = 0; r < rows; r++) {
        float *x = qkv + r * s->d;
        double sum = 0;
        for (int64_t c = 0; c < s->d; c++) sum += (double)x[c] * x[c];
        double inv = 1.0 / sqrt(sum / (double)s->d);
        for (int64_t c = 0; c < s->d; c++) x[c] = (float)(x[c] * inv);
    }
}

static double max_abs(const double *x, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

/* Checks one of q, k, v (part 0, 1, 2) of a gradient with a tolerance relative to its largest
 * element (at least `floor`: a gradient that is 0 exactly, as for length 1, comes out as
 * rounding noise): float32 attention loses about ulp * |logit| in each probability. */
static void close_part(const char *what, const shape *s, const float *got, const double *want, int part,
                       double rel, double floor) {
    int64_t rows = s->n * s->L * s->H, count = rows * s->d;
    float *g = test_alloc(count);
    double *w = dalloc(count);
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < s->d; c++) {
            g[r * s->d + c] = got[(r * 3 + part) * s->d + c];
            w[r * s->d + c] = want[(r * 3 + part) * s->d + c];
        }
    char name[96];
    snprintf(name, sizeof name, "%s d%c", what, "qkv"[part]);
    test_close(name, g, w, count, rel * fmax(floor, max_abs(w, count)), 1e-4);
    free(g);
    free(w);
}

static void test_case(shape s, int normalised, float amp, int finite_differences) {
    int64_t qc = qkv_count(&s), oc = out_count(&s), lc = lse_count(&s);
    float *qkv = test_alloc(qc), *out = test_alloc(oc), *out2 = test_alloc(oc), *lse = test_alloc(lc);
    float *dout = test_alloc(oc), *dqkv = test_alloc(qc);
    double *x = dalloc(qc), *want = dalloc(oc), *want_lse = dalloc(lc), *g = dalloc(oc), *want_d = dalloc(qc);
    fill_qkv(&s, qkv, normalised, amp);
    test_fill(dout, oc, 1.0f);
    for (int64_t i = 0; i < qc; i++) x[i] = qkv[i];
    for (int64_t i = 0; i < oc; i++) g[i] = dout[i];
    char what[128];
    snprintf(what, sizeof what, "attention n=%lld L=%lld H=%lld d=%lld %s", (long long)s.n, (long long)s.L,
             (long long)s.H, (long long)s.d, normalised ? "normalised" : "large");

    double biggest = forward_ref(&s, x, want, want_lse);
    /* Logit error ~ 1e-7 |logit|; probabilities, outputs and lse inherit it. */
    double slack = 1.0 + biggest;
    test_poison(out, oc);
    test_poison(lse, lc);
    int status = ambient_attention_forward(s.n, s.L, s.H, s.d, qkv, out, lse);
    CHECK(status == AMBIENT_STATUS_OK, "%s: %s", what, ambient_last_error());
    char name[200];
    snprintf(name, sizeof name, "%s out", what);
    double vmax = max_abs(x, qc); /* bounds every out and dV element's scale */
    test_close(name, out, want, oc, 2e-6 * vmax * slack, 1e-5);
    snprintf(name, sizeof name, "%s lse", what);
    test_close(name, lse, want_lse, lc, 2e-6 * slack, 2e-6);

    /* Inference (lse NULL) gives the same out bit for bit. */
    test_poison(out2, oc);
    status = ambient_attention_forward(s.n, s.L, s.H, s.d, qkv, out2, NULL);
    CHECK(status == AMBIENT_STATUS_OK, "%s: %s", what, ambient_last_error());
    CHECK(memcmp(out, out2, (size_t)oc * sizeof(float)) == 0, "%s: out differs without lse", what);

    test_poison(dqkv, qc);
    status = ambient_attention_backward(s.n, s.L, s.H, s.d, qkv, out, lse, dout, dqkv);
    CHECK(status == AMBIENT_STATUS_OK, "%s: %s", what, ambient_last_error());
    backward_ref(&s, x, g, want_d);
    if (finite_differences) {
        /* The analytic reference itself against differences of the forward. */
        double *fd = dalloc(qc);
        backward_fd(&s, x, g, fd);
        float *ref_f = test_alloc(qc);
        for (int64_t i = 0; i < qc; i++) ref_f[i] = (float)want_d[i];
        snprintf(name, sizeof name, "%s analytic reference vs differences", what);
        test_close(name, ref_f, fd, qc, 1e-6 * (1.0 + max_abs(fd, qc)), 1e-5);
        snprintf(name, sizeof name, "%s backward vs differences", what);
        for (int part = 0; part < 3; part++) close_part(name, &s, dqkv, fd, part, 2e-6 * slack, vmax);
        free(fd);
        free(ref_f);
    }
    snprintf(name, sizeof name, "%s backward", what);
    for (int part = 0; part < 3; part++) close_part(name, &s, dqkv, want_d, part, 2e-6 * slack, vmax);

    free(qkv); free(out); free(out2); free(lse); free(dout); free(dqkv);
    free(x); free(want); free(want_lse); free(g); free(want_d);
}

/* The forward does not depend on the thread count; the backward's dK and dV do not either,
 * and its dQ only through the order of a fixed split (checked against the reference above). */
static void test_threads(shape s) {
    int64_t qc = qkv_count(&s), oc = out_count(&s), lc = lse_count(&s);
    float *qkv = test_alloc(qc), *out1 = test_alloc(oc), *out4 = test_alloc(oc), *lse = test_alloc(lc);
    float *dout = test_alloc(oc), *d1 = test_alloc(qc), *d4 = test_alloc(qc);
    fill_qkv(&s, qkv, 1, 1.0f);
    test_fill(dout, oc, 1.0f);
    ambient_threads_set(1);
    CHECK(ambient_attention_forward(s.n, s.L, s.H, s.d, qkv, out1, lse) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(ambient_attention_backward(s.n, s.L, s.H, s.d, qkv, out1, lse, dout, d1) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    ambient_threads_set(4);
    CHECK(ambient_attention_forward(s.n, s.L, s.H, s.d, qkv, out4, lse) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(memcmp(out1, out4, (size_t)oc * sizeof(float)) == 0, "forward depends on the thread count");
    CHECK(ambient_attention_backward(s.n, s.L, s.H, s.d, qkv, out1, lse, dout, d4) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    int64_t rows = qc / s.d, differ = 0;
    for (int64_t r = 0; r < rows; r++)
        if (r % 3 != 0) differ += memcmp(d1 + r * s.d, d4 + r * s.d, (size_t)s.d * sizeof(float)) != 0;
    CHECK(differ == 0, "dK or dV depends on the thread count (%lld rows)", (long long)differ);
    /* Two runs with the same threads: bit for bit. */
    float *again = test_alloc(qc);
    CHECK(ambient_attention_backward(s.n, s.L, s.H, s.d, qkv, out1, lse, dout, again) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());
    CHECK(memcmp(again, d4, (size_t)qc * sizeof(float)) == 0, "backward is not deterministic");
    ambient_threads_set(0);
    free(qkv); free(out1); free(out4); free(lse); free(dout); free(d1); free(d4); free(again);
}

static void expect_invalid(int status, const char *function, const char *fragment) {
    const char *msg = ambient_last_error();
    CHECK(status == AMBIENT_STATUS_INVALID_ARGUMENT, "%s: status %d for a bad argument (%s)", function, status,
          fragment);
    CHECK(strstr(msg, function) != NULL && strstr(msg, fragment) != NULL, "message \"%s\" lacks \"%s\"", msg,
          fragment);
}

static void test_bad_arguments(void) {
    const char *fw = "ambient_attention_forward", *bw = "ambient_attention_backward";
    shape s = {2, 5, 2, 8};
    int64_t qc = qkv_count(&s), oc = out_count(&s), lc = lse_count(&s);
    float *qkv = test_alloc(qc), *out = test_alloc(oc), *lse = test_alloc(lc), *dout = test_alloc(oc);
    float *dqkv = test_alloc(qc);
    fill_qkv(&s, qkv, 1, 1.0f);
    test_fill(dout, oc, 1.0f);

    expect_invalid(ambient_attention_forward(-1, 5, 2, 8, qkv, out, lse), fw, "n = -1");
    expect_invalid(ambient_attention_forward(2, -5, 2, 8, qkv, out, lse), fw, "length = -5");
    expect_invalid(ambient_attention_forward(2, 5, -2, 8, qkv, out, lse), fw, "heads = -2");
    expect_invalid(ambient_attention_forward(2, 5, 2, -8, qkv, out, lse), fw, "head_dim = -8");
    expect_invalid(ambient_attention_forward(2, 5, 2, 0, qkv, out, lse), fw, "head_dim = 0");
    expect_invalid(ambient_attention_forward(INT64_C(1) << 40, INT64_C(1) << 20, 2, 8, qkv, out, lse), fw, "too large");
    expect_invalid(ambient_attention_forward(2, 5, 2, 8, NULL, out, lse), fw, "qkv is NULL");
    expect_invalid(ambient_attention_forward(2, 5, 2, 8, qkv, NULL, lse), fw, "out is NULL");
    expect_invalid(ambient_attention_forward(2, 5, 2, 8, qkv, qkv + qc - 1, lse), fw, "overlaps qkv");
    expect_invalid(ambient_attention_forward(2, 5, 2, 8, qkv, out, qkv + 3), fw, "lse");
    expect_invalid(ambient_attention_forward(2, 5, 2, 8, qkv, out, out + oc - 2), fw, "overlaps out");
    /* Nothing to do: no pointer is needed. */
    CHECK(ambient_attention_forward(0, 5, 2, 8, NULL, NULL, NULL) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(ambient_attention_forward(2, 0, 2, 0, NULL, NULL, NULL) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(ambient_attention_backward(2, 5, 0, 8, NULL, NULL, NULL, NULL, NULL) == AMBIENT_STATUS_OK, "%s",
          ambient_last_error());

    CHECK(ambient_attention_forward(2, 5, 2, 8, qkv, out, lse) == AMBIENT_STATUS_OK, "%s", ambient_last_error());
    CHECK(ambient_last_error()[0] == '\0', "the error message is not cleared by a good call");
    expect_invalid(ambient_attention_backward(2, 5, 2, -1, qkv, out, lse, dout, dqkv), bw, "head_dim = -1");
    expect_invalid(ambient_attention_backward(2, 5, 2, 8, qkv, out, NULL, dout, dqkv), bw, "lse is NULL");
    expect_invalid(ambient_attention_backward(2, 5, 2, 8, qkv, out, lse, NULL, dqkv), bw, "dout is NULL");
    expect_invalid(ambient_attention_backward(2, 5, 2, 8, qkv, out, lse, dout, NULL), bw, "dqkv is NULL");
    expect_invalid(ambient_attention_backward(2, 5, 2, 8, qkv, out, lse, dout, qkv), bw, "overlaps qkv");
    expect_invalid(ambient_attention_backward(2, 5, 2, 8, qkv, dqkv + 1, lse, dout, dqkv), bw, "overlaps out");
    expect_invalid(ambient_attention_backward(2, 5, 2, 8, qkv, out, dqkv + qc - 1, dout, dqkv), bw, "overlaps lse");
    expect_invalid(ambient_attention_backward(2, 5, 2, 8, qkv, out, lse, dqkv, dqkv), bw, "overlaps dout");
    free(qkv); free(out); free(lse); free(dout); free(dqkv);
}

int main(void) {
    test_seed(20240611);
    /* Small shapes: every gradient also by finite differences. */
    const shape small[] = {{1, 1, 1, 8}, {2, 7, 3, 8}, {1, 7, 1, 17}, {2, 3, 3, 17}, {1, 5, 2, 64}};
    for (size_t i = 0; i < sizeof small / sizeof small[0]; i++) {
        test_case(small[i], 1, 1.0f, 1);
        test_case(small[i], 0, 3.0f, 1);
    }
    /* Lengths across the tile edges of every kernel table. */
    const shape larger[] = {{1, 63, 1, 64}, {2, 65, 3, 8}, {1, 130, 3, 17}, {2, 130, 1, 64},
                            {1, 33, 2, 40}, {1, 300, 1, 64}, {2, 256, 2, 64}, {1, 45, 2, 130}};
    for (size_t i = 0; i < sizeof larger / sizeof larger[0]; i++) {
        test_case(larger[i], 1, 1.0f, 0);
        test_case(larger[i], 0, 2.0f, 0);
    }
    /* Very peaked softmax: logits in the hundreds. */
    test_case((shape){1, 130, 1, 17}, 0, 12.0f, 0);
    test_threads((shape){1, 300, 1, 64});
    test_threads((shape){3, 97, 1, 24});
    test_bad_arguments();
    return test_finish("test_cpu_attention");
}
