/*
 * CPU backend: the remaining layer ops of EDM2's UNet (mp_cat, 2x2 average pooling, nearest 2x
 * upsampling, MP Fourier features, channel scaling, activation clipping), the Philox random
 * numbers and dropout.
 *   - forward against double-precision references on random inputs, outputs poisoned first;
 *   - backward against central finite differences of the double reference forward, and for
 *     the linear ops also the adjoint identity <f(x), y> = <x, f^T(y)>;
 *   - Philox 4x32-10 against the known answers of Random123 (Salmon et al. 2011), the
 *     vectorised streams against philox.h (uniforms bit for bit, normals, which use fast
 *     polynomial log and sincos, to 1e-6 (1 + |z|)), any offset and split of a stream giving
 *     the same numbers, and the moments of 10^6 draws. The generator has one version per
 *     instruction set, so the stream and dropout cases run again in child processes with
 *     AMBIENT_CPU_ISA=avx2 and scalar;
 *   - bad arguments rejected with a message.
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

#define OK(call) CHECK((call) == AMBIENT_STATUS_OK, "%s", ambient_last_error())
#define BAD(call, text)                                                                          \
    do {                                                                                         \
        CHECK((call) == AMBIENT_STATUS_INVALID_ARGUMENT, "should be refused: %s", #call);        \
        CHECK(strstr(ambient_last_error(), text) != NULL, "message \"%s\" lacks \"%s\"",       \
              ambient_last_error(), text);                                                       \
    } while (0)

static double dot(const float *a, const float *b, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static int same_floats(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, (size_t)n * sizeof(float)) == 0;
}

/* ---- Finite differences of a double reference ------------------------------------------ */

typedef void (*reference_fn)(const void *ctx, const double *in, double *out);

/* About 200 evenly spread indices of n (an odd stride, so channels and pixels vary). */
static int64_t fd_stride(int64_t n) { return n > 400 ? (n / 200) | 1 : 1; }

/* For every `stride`-th j: d<dy, f(x)>/dx_j by central differences, compared with got[j]. */
static void check_fd(const char *what, reference_fn f, const void *ctx, const float *x, int64_t nx,
                     int64_t ny, const float *dy, const float *got, int64_t stride, double h,
                     double atol, double rtol) {
    double *xd = dalloc(nx), *yp = dalloc(ny), *ym = dalloc(ny);
    int64_t m = (nx + stride - 1) / stride;
    double *want = dalloc(m);
    float *have = test_alloc(m);
    for (int64_t j = 0; j < nx; j++) xd[j] = x[j];
    for (int64_t t = 0; t < m; t++) {
        int64_t j = t * stride;
        xd[j] = x[j] + h;
        f(ctx, xd, yp);
        xd[j] = x[j] - h;
        f(ctx, xd, ym);
        xd[j] = x[j];
        double g = 0;
        for (int64_t i = 0; i < ny; i++) g += dy[i] * (yp[i] - ym[i]);
        want[t] = g / (2 * h);
        have[t] = got[j];
    }
    test_close(what, have, want, m, atol, rtol);
    free(xd); free(yp); free(ym); free(want); free(have);
}

static void check_adjoint(const char *what, const float *fx, const float *y, int64_t ny, const float *x,
                          const float *fty, int64_t nx) {
    double left = dot(fx, y, ny), right = dot(x, fty, nx);
    CHECK(fabs(left - right) <= 1e-5 * (fabs(left) + fabs(right)) + 1e-6,
          "%s: <f(x), y> = %.12g but <x, f^T(y)> = %.12g", what, left, right);
}

/* ---- mp_cat -------------------------------------------------------------------------------- */

struct cat_ctx { int64_t rows, ca, cb; double wa, wb; const float *other; int which; };

/* y as a function of a (which = 0) or b (which = 1), the other input fixed. */
static void cat_ref(const void *p, const double *in, double *y) {
    const struct cat_ctx *c = p;
    int64_t w = c->ca + c->cb;
    for (int64_t r = 0; r < c->rows; r++) {
        for (int64_t k = 0; k < c->ca; k++)
            y[r * w + k] = c->wa * (c->which == 0 ? in[r * c->ca + k] : c->other[r * c->ca + k]);
        for (int64_t k = 0; k < c->cb; k++)
            y[r * w + c->ca + k] = c->wb * (c->which == 1 ? in[r * c->cb + k] : c->other[r * c->cb + k]);
    }
}

static void test_mp_cat(int64_t rows, int64_t ca, int64_t cb, float t) {
    int64_t na = rows * ca, nb = rows * cb, ny = rows * (ca + cb);
    float *a = test_alloc(na), *b = test_alloc(nb), *y = test_alloc(ny), *dy = test_alloc(ny),
          *da = test_alloc(na), *db = test_alloc(nb);
    double *want = dalloc(ny);
    test_fill(a, na, 2.0f);
    test_fill(b, nb, 2.0f);
    test_fill(dy, ny, 1.0f);
    double s = sqrt((double)(ca + cb) / ((1.0 - t) * (1.0 - t) + (double)t * t));
    struct cat_ctx ctx = {rows, ca, cb, s * (1.0 - t) / sqrt((double)ca), s * t / sqrt((double)cb), b, 0};
    test_poison(y, ny);
    OK(ambient_mp_cat_forward(rows, ca, cb, t, a, b, y));
    double *ad = dalloc(na);
    for (int64_t i = 0; i < na; i++) ad[i] = a[i];
    cat_ref(&ctx, ad, want);
    test_close("mp_cat_forward", y, want, ny, 1e-6, 1e-6);

    test_poison(da, na);
    test_poison(db, nb);
    OK(ambient_mp_cat_backward(rows, ca, cb, t, dy, da, db));
    check_fd("mp_cat_backward da", cat_ref, &ctx, a, na, ny, dy, da, fd_stride(na), 1e-3, 1e-6, 1e-5);
    ctx.other = a;
    ctx.which = 1;
    check_fd("mp_cat_backward db", cat_ref, &ctx, b, nb, ny, dy, db, fd_stride(nb), 1e-3, 1e-6, 1e-5);
    /* linear in (a, b): <y, dy> = <a, da> + <b, db> */
    double left = dot(y, dy, ny), right = dot(a, da, na) + dot(b, db, nb);
    CHECK(fabs(left - right) <= 1e-5 * fabs(left) + 1e-6, "mp_cat adjoint: %.12g vs %.12g", left, right);
    free(a); free(b); free(y); free(dy); free(da); free(db); free(want); free(ad);
}

/* ---- Resampling ----------------------------------------------------------------------------- */

struct shape_ctx { int64_t n, h, w, c; }; /* the small (pooled / not yet upsampled) tensor */

static void pool_ref(const void *p, const double *x, double *y) {
    const struct shape_ctx *s = p;
    int64_t H = 2 * s->h, W = 2 * s->w, c = s->c;
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t r = 0; r < s->h; r++)
            for (int64_t q = 0; q < s->w; q++)
                for (int64_t k = 0; k < c; k++) {
                    double sum = 0;
                    for (int dr = 0; dr < 2; dr++)
                        for (int dq = 0; dq < 2; dq++)
                            sum += x[((i * H + 2 * r + dr) * W + 2 * q + dq) * c + k];
                    y[((i * s->h + r) * s->w + q) * c + k] = sum / 4;
                }
}

static void upsample_ref(const void *p, const double *x, double *y) {
    const struct shape_ctx *s = p;
    int64_t H = 2 * s->h, W = 2 * s->w, c = s->c;
    for (int64_t i = 0; i < s->n; i++)
        for (int64_t r = 0; r < H; r++)
            for (int64_t q = 0; q < W; q++)
                for (int64_t k = 0; k < c; k++)
                    y[((i * H + r) * W + q) * c + k] = x[((i * s->h + r / 2) * s->w + q / 2) * c + k];
}

static void test_resample(int64_t n, int64_t h, int64_t w, int64_t c) {
    struct shape_ctx ctx = {n, h, w, c};
    int64_t small = n * h * w * c, big = 4 * small;
    float *xb = test_alloc(big), *xs = test_alloc(small), *ys = test_alloc(small), *yb = test_alloc(big),
          *gs = test_alloc(small), *gb = test_alloc(big), *dxb = test_alloc(big), *dxs = test_alloc(small);
    double *want = dalloc(big), *in = dalloc(big);
    test_fill(xb, big, 3.0f);
    test_fill(xs, small, 3.0f);
    test_fill(gs, small, 1.0f);
    test_fill(gb, big, 1.0f);

    /* pooling: n x 2h x 2w x c -> n x h x w x c */
    test_poison(ys, small);
    OK(ambient_avg_pool2x2_forward(n, 2 * h, 2 * w, c, xb, ys));
    for (int64_t i = 0; i < big; i++) in[i] = xb[i];
    pool_ref(&ctx, in, want);
    test_close("avg_pool2x2_forward", ys, want, small, 1e-6, 1e-6);
    test_poison(dxb, big);
    OK(ambient_avg_pool2x2_backward(n, 2 * h, 2 * w, c, gs, dxb));
    check_fd("avg_pool2x2_backward", pool_ref, &ctx, xb, big, small, gs, dxb, fd_stride(big), 1e-3, 1e-6, 1e-5);
    check_adjoint("avg_pool2x2", ys, gs, small, xb, dxb, big);

    /* upsampling: n x h x w x c -> n x 2h x 2w x c */
    test_poison(yb, big);
    OK(ambient_upsample2x_forward(n, h, w, c, xs, yb));
    for (int64_t i = 0; i < small; i++) in[i] = xs[i];
    upsample_ref(&ctx, in, want);
    test_close("upsample2x_forward", yb, want, big, 0, 0); /* copies: exact */
    test_poison(dxs, small);
    OK(ambient_upsample2x_backward(n, h, w, c, gb, dxs));
    check_fd("upsample2x_backward", upsample_ref, &ctx, xs, small, big, gb, dxs, fd_stride(small), 1e-3,
             1e-6, 1e-5);
    check_adjoint("upsample2x", yb, gb, big, xs, dxs, small);
    free(xb); free(xs); free(ys); free(yb); free(gs); free(gb); free(dxb); free(dxs); free(want); free(in);
}

/* Small integers: every average is exact, so the kernels must match exactly. */
static void test_resample_exact(void) {
    int64_t n = 2, h = 6, w = 10, c = 5, big = n * h * w * c;
    float *x = test_alloc(big), *y = test_alloc(big / 4), *z = test_alloc(big);
    for (int64_t i = 0; i < big; i++) x[i] = (float)(4 * ((int)(test_next_u64() % 17) - 8));
    OK(ambient_avg_pool2x2_forward(n, h, w, c, x, y));
    OK(ambient_upsample2x_forward(n, h / 2, w / 2, c, y, z));
    int bad = 0;
    for (int64_t i = 0; i < n; i++)
        for (int64_t r = 0; r < h; r++)
            for (int64_t q = 0; q < w; q++)
                for (int64_t k = 0; k < c; k++) {
                    int64_t r0 = r & ~1, q0 = q & ~1;
                    float sum = 0;
                    for (int d = 0; d < 4; d++) sum += x[((i * h + r0 + d / 2) * w + q0 + d % 2) * c + k];
                    bad += z[((i * h + r) * w + q) * c + k] != sum / 4;
                }
    CHECK(bad == 0, "pool then upsample of small integers: %d elements differ", bad);
    free(x); free(y); free(z);
}

/* ---- MP Fourier ----------------------------------------------------------------------------- */

struct fourier_ctx { int64_t n, c; const float *freqs, *phases; };

static void fourier_ref(const void *p, const double *x, double *y) {
    const struct fourier_ctx *f = p;
    for (int64_t i = 0; i < f->n; i++)
        for (int64_t k = 0; k < f->c; k++)
            y[i * f->c + k] = sqrt(2.0) * cos(x[i] * f->freqs[k] + f->phases[k]);
}

static void test_mp_fourier(int64_t n, int64_t c) {
    float *x = test_alloc(n), *freqs = test_alloc(c), *phases = test_alloc(c), *y = test_alloc(n * c),
          *dy = test_alloc(n * c), *dx = test_alloc(n);
    double *want = dalloc(n * c), *xd = dalloc(n);
    test_fill(x, n, 2.0f); /* c_noise = ln(sigma) / 4 stays within about [-2, 2] */
    OK(ambient_random_normal(c, 7, 0, 0, freqs));
    OK(ambient_random_uniform(c, 7, 1, 0, phases));
    for (int64_t k = 0; k < c; k++) {
        freqs[k] *= 6.2831853f;
        phases[k] *= 6.2831853f;
    }
    test_fill(dy, n * c, 1.0f);
    struct fourier_ctx ctx = {n, c, freqs, phases};
    test_poison(y, n * c);
    OK(ambient_mp_fourier_forward(n, c, x, freqs, phases, y));
    for (int64_t i = 0; i < n; i++) xd[i] = x[i];
    fourier_ref(&ctx, xd, want);
    test_close("mp_fourier_forward", y, want, n * c, 1e-6, 1e-6);
    test_poison(dx, n);
    OK(ambient_mp_fourier_backward(n, c, x, freqs, phases, dy, dx));
    check_fd("mp_fourier_backward", fourier_ref, &ctx, x, n, n * c, dy, dx, 1, 1e-6, 1e-4 * sqrt((double)c), 1e-5);
    free(x); free(freqs); free(phases); free(y); free(dy); free(dx); free(want); free(xd);
}

/* ---- Channel scaling ------------------------------------------------------------------------- */

struct scale_ctx { int64_t n, p, c; const float *x, *s; int which, silu; }; /* which: 0 = x varies, 1 = s */

static void scale_ref(const void *q, const double *in, double *y) {
    const struct scale_ctx *k = q;
    for (int64_t i = 0; i < k->n; i++)
        for (int64_t p = 0; p < k->p; p++)
            for (int64_t c = 0; c < k->c; c++) {
                int64_t e = (i * k->p + p) * k->c + c, sc = i * k->c + c;
                double xv = k->which == 0 ? in[e] : k->x[e], sv = k->which == 1 ? in[sc] : k->s[sc];
                double u = xv * (1 + sv);
                y[e] = k->silu ? u / (1 + exp(-u)) / 0.596 : u;
            }
}

/* channel_scale (silu = 0) or channel_scale_silu (1): forward against float64, in place,
 * both gradients by finite differences, dx = dy, and ds independent of the thread count. */
static void test_channel_scale(int64_t n, int64_t positions, int64_t c, int silu) {
    typedef int (*forward_fn)(int64_t, int64_t, int64_t, const float *, const float *, float *);
    typedef int (*backward_fn)(int64_t, int64_t, int64_t, const float *, const float *, const float *, float *, float *);
    forward_fn forward = silu ? ambient_channel_scale_silu_forward : ambient_channel_scale_forward;
    backward_fn backward = silu ? ambient_channel_scale_silu_backward : ambient_channel_scale_backward;
    const char *name = silu ? "channel_scale_silu" : "channel_scale";
    char label[96];
    int64_t count = n * positions * c, ns = n * c;
    float *x = test_alloc(count), *s = test_alloc(ns), *y = test_alloc(count), *dy = test_alloc(count),
          *dx = test_alloc(count), *ds = test_alloc(ns), *copy = test_alloc(count);
    double *want = dalloc(count), *in = dalloc(count);
    test_fill(x, count, 2.0f);
    test_fill(s, ns, 0.8f);
    test_fill(dy, count, 1.0f);
    struct scale_ctx ctx = {n, positions, c, x, s, 0, silu};
    test_poison(y, count);
    OK(forward(n, positions, c, x, s, y));
    for (int64_t i = 0; i < count; i++) in[i] = x[i];
    scale_ref(&ctx, in, want);
    snprintf(label, sizeof label, "%s_forward", name);
    test_close(label, y, want, count, 1e-6, 2e-6);
    /* in place */
    memcpy(copy, x, (size_t)count * sizeof(float));
    OK(forward(n, positions, c, copy, s, copy));
    snprintf(label, sizeof label, "%s_forward in place", name);
    test_close(label, copy, want, count, 1e-6, 2e-6);

    test_poison(dx, count);
    test_poison(ds, ns);
    OK(backward(n, positions, c, x, s, dy, dx, ds));
    snprintf(label, sizeof label, "%s_backward dx", name);
    check_fd(label, scale_ref, &ctx, x, count, count, dy, dx, fd_stride(count), 1e-3, 1e-6, 1e-5);
    ctx.which = 1;
    snprintf(label, sizeof label, "%s_backward ds", name);
    check_fd(label, scale_ref, &ctx, s, ns, count, dy, ds, fd_stride(ns), 1e-3, 1e-6 * sqrt((double)positions), 1e-5);
    /* dx may be dy: same numbers */
    memcpy(copy, dy, (size_t)count * sizeof(float));
    float *ds2 = test_alloc(ns);
    OK(backward(n, positions, c, x, s, copy, copy, ds2));
    CHECK(memcmp(copy, dx, (size_t)count * sizeof(float)) == 0 && memcmp(ds2, ds, (size_t)ns * sizeof(float)) == 0,
          "%s_backward with dx = dy differs", name);
    /* ds does not depend on the thread count */
    ambient_threads_set(1);
    OK(backward(n, positions, c, x, s, dy, copy, ds2));
    ambient_threads_set(0);
    CHECK(memcmp(ds2, ds, (size_t)ns * sizeof(float)) == 0, "%s_backward ds depends on threads", name);
    free(x); free(s); free(y); free(dy); free(dx); free(ds); free(copy); free(want); free(in); free(ds2);
}

/* ---- Clip ----------------------------------------------------------------------------------- */

static void test_clip(int64_t count, float limit) {
    float *x = test_alloc(count), *y = test_alloc(count), *dy = test_alloc(count), *dx = test_alloc(count);
    double *want = dalloc(count);
    test_fill(x, count, 2.0f * limit + 1.0f);
    test_fill(dy, count, 1.0f);
    if (count > 3) { x[0] = limit; x[1] = -limit; x[2] = NAN; }
    test_poison(y, count);
    OK(ambient_clip_forward(count, limit, x, y));
    for (int64_t i = 0; i < count; i++) want[i] = fmin(fmax(x[i], -(double)limit), (double)limit);
    if (count > 3) {
        CHECK(isnan(y[2]), "clip must pass NaN through, got %g", y[2]);
        y[2] = 0; want[2] = 0;
    }
    test_close("clip_forward", y, want, count, 0, 0); /* exact */
    float *forward = test_alloc(count);
    memcpy(forward, y, (size_t)count * sizeof(float));
    test_poison(dx, count);
    OK(ambient_clip_backward(count, limit, x, dy, dx));
    /* finite differences, away from the kinks */
    double h = 1e-3;
    int64_t m = 0;
    for (int64_t i = 0; i < count; i++) {
        double v = x[i];
        if (isnan(v) || fabs(fabs(v) - limit) <= 2 * h) {
            want[i] = (v > -limit && v < limit) ? dy[i] : 0.0; /* the stated convention at the kinks */
        } else {
            double p = fmin(fmax(v + h, -(double)limit), limit), q = fmin(fmax(v - h, -(double)limit), limit);
            want[i] = dy[i] * (p - q) / (2 * h);
            m++;
        }
    }
    CHECK(count < 100 || m > count / 3, "too few clip points away from the kinks");
    test_close("clip_backward", dx, want, count, 1e-9, 1e-6);
    /* in place */
    memcpy(y, x, (size_t)count * sizeof(float));
    OK(ambient_clip_forward(count, limit, y, y));
    if (count > 3) y[2] = 0;
    CHECK(same_floats(y, forward, count), "clip_forward in place differs");
    free(x); free(y); free(dy); free(dx); free(want); free(forward);
}

/* ---- Random numbers ----------------------------------------------------------------------- */

static void test_philox_known_answers(void) {
    /* Random123 kat_vectors, philox4x32 with 10 rounds: counter (c0..c3), key (k0, k1) ->
     * our (group = c1:c0, stream = c3:c2, seed = k1:k0). */
    struct { uint64_t group, stream, seed; uint32_t want[4]; } cases[] = {
        {0, 0, 0, {0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}},
        {UINT64_MAX, UINT64_MAX, UINT64_MAX, {0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}},
        {0x85a308d3243f6a88ull, 0x0370734413198a2eull, 0x299f31d0a4093822ull,
         {0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t out[4];
        ambient_philox4x32(cases[i].seed, cases[i].stream, cases[i].group, out);
        CHECK(memcmp(out, cases[i].want, sizeof out) == 0,
              "philox4x32-10 vector %zu: got %08x %08x %08x %08x want %08x %08x %08x %08x", i, out[0], out[1],
              out[2], out[3], cases[i].want[0], cases[i].want[1], cases[i].want[2], cases[i].want[3]);
    }
}

/* The kernels against philox.h element by element for any offset and count: uniforms bit for
 * bit, normals within 1e-6 (1 + |z|) (philox.h uses libm, the kernels fast_math.h). */
static void test_random_matches_philox(int64_t count, int64_t seed, int64_t stream, int64_t offset) {
    float *u = test_alloc(count), *z = test_alloc(count);
    test_poison(u, count);
    test_poison(z, count);
    OK(ambient_random_uniform(count, seed, stream, offset, u));
    OK(ambient_random_normal(count, seed, stream, offset, z));
    int64_t bad_u = 0, bad_z = 0;
    for (int64_t e = 0; e < count; e++) {
        uint64_t index = (uint64_t)(offset + e);
        float wu[4], wz[4];
        ambient_philox_uniform4((uint64_t)seed, (uint64_t)stream, index / 4, wu);
        ambient_philox_normal4((uint64_t)seed, (uint64_t)stream, index / 4, wz);
        if (memcmp(&u[e], &wu[index % 4], sizeof(float)) != 0) {
            if (bad_u++ < 3) fprintf(stderr, "  uniform[%lld] = %.9g, philox.h %.9g\n", (long long)e, u[e], wu[index % 4]);
        }
        if (!(fabsf(z[e] - wz[index % 4]) <= 1e-6f * (1.0f + fabsf(wz[index % 4])))) {
            if (bad_z++ < 3) fprintf(stderr, "  normal[%lld] = %.9g, philox.h %.9g\n", (long long)e, z[e], wz[index % 4]);
        }
    }
    CHECK(bad_u == 0 && bad_z == 0, "count %lld offset %lld: %lld uniforms and %lld normals differ from philox.h",
          (long long)count, (long long)offset, (long long)bad_u, (long long)bad_z);
    free(u); free(z);
}

static void test_random_splits(void) {
    int64_t n = 100003;
    float *one = test_alloc(n), *two = test_alloc(n), *other = test_alloc(n);
    int (*fns[2])(int64_t, int64_t, int64_t, int64_t, float *) = {ambient_random_uniform, ambient_random_normal};
    const char *names[2] = {"uniform", "normal"};
    for (int f = 0; f < 2; f++) {
        OK(fns[f](n, 1234, 5, 7, one));
        OK(fns[f](n, 1234, 5, 7, two));
        CHECK(same_floats(one, two, n), "%s: the same arguments give different numbers", names[f]);
        int64_t splits[] = {1, 2, 3, 4, 5, 1001, 40000, n - 1};
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            int64_t k = splits[s];
            test_poison(two, n);
            OK(fns[f](k, 1234, 5, 7, two));
            OK(fns[f](n - k, 1234, 5, 7 + k, two + k));
            CHECK(same_floats(one, two, n), "%s: split at %lld differs from one call", names[f], (long long)k);
        }
        ambient_threads_set(3);
        OK(fns[f](n, 1234, 5, 7, two));
        ambient_threads_set(0);
        CHECK(same_floats(one, two, n), "%s: three threads give other numbers", names[f]);
        OK(fns[f](n, 1234, 6, 7, other));
        int64_t equal = 0;
        for (int64_t i = 0; i < n; i++) equal += one[i] == other[i];
        CHECK(equal < 100, "%s: streams 5 and 6 share %lld of %lld numbers", names[f], (long long)equal, (long long)n);
        OK(fns[f](n, 1235, 5, 7, other));
        equal = 0;
        for (int64_t i = 0; i < n; i++) equal += one[i] == other[i];
        CHECK(equal < 100, "%s: seeds 1234 and 1235 share %lld numbers", names[f], (long long)equal);
    }
    free(one); free(two); free(other);
}

static void test_random_moments(void) {
    int64_t n = 1000000;
    float *z = test_alloc(n);
    OK(ambient_random_normal(n, 20260101, 3, 0, z));
    double sum = 0, sq = 0;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        sum += z[i];
        finite &= isfinite(z[i]);
    }
    double mean = sum / n;
    for (int64_t i = 0; i < n; i++) sq += (z[i] - mean) * (z[i] - mean);
    double var = sq / (n - 1);
    CHECK(finite, "normals must be finite");
    CHECK(fabs(mean) < 5e-3, "normal mean %.5f", mean);
    CHECK(fabs(var - 1) < 1e-2, "normal variance %.5f", var);

    OK(ambient_random_uniform(n, 20260101, 3, 0, z));
    sum = 0; sq = 0;
    int in_range = 1;
    for (int64_t i = 0; i < n; i++) {
        in_range &= z[i] >= 0.0f && z[i] < 1.0f;
        sum += z[i];
    }
    mean = sum / n;
    for (int64_t i = 0; i < n; i++) sq += (z[i] - mean) * (z[i] - mean);
    var = sq / (n - 1);
    CHECK(in_range, "uniforms must lie in [0, 1)");
    CHECK(fabs(mean - 0.5) < 2e-3, "uniform mean %.5f", mean);
    CHECK(fabs(var - 1.0 / 12) < 1e-3, "uniform variance %.5f", var);
    free(z);
}

/* ---- Dropout ------------------------------------------------------------------------------ */

static void test_dropout(int64_t count, float p, int64_t offset) {
    float *x = test_alloc(count), *y = test_alloc(count), *u = test_alloc(count), *dy = test_alloc(count),
          *dx = test_alloc(count), *copy = test_alloc(count);
    double *want = dalloc(count), *wantg = dalloc(count);
    test_fill(x, count, 2.0f);
    test_fill(dy, count, 1.0f);
    OK(ambient_random_uniform(count, 99, 17, offset, u));
    double scale = 1.0 / (1.0 - p);
    int64_t kept = 0;
    for (int64_t i = 0; i < count; i++) {
        int keep = u[i] >= p;
        kept += keep;
        want[i] = keep ? x[i] * scale : 0.0;
        wantg[i] = keep ? dy[i] * scale : 0.0;
    }
    test_poison(y, count);
    OK(ambient_dropout_forward(count, p, 99, 17, offset, x, y));
    test_close("dropout_forward", y, want, count, 0, 1e-6);
    test_poison(dx, count);
    OK(ambient_dropout_backward(count, p, 99, 17, offset, dy, dx));
    test_close("dropout_backward", dx, wantg, count, 0, 1e-6);
    /* the backward mask is the forward's: dx is zero exactly where y is */
    int64_t mismatch = 0;
    for (int64_t i = 0; i < count; i++) mismatch += (y[i] == 0.0f) != (dx[i] == 0.0f);
    CHECK(mismatch == 0, "dropout: %lld elements masked in one direction only", (long long)mismatch);
    /* kept fraction within 5 standard deviations of 1 - p */
    if (count >= 10000) {
        double frac = (double)kept / count, sd = sqrt((double)p * (1 - p) / count);
        CHECK(fabs(frac - (1 - p)) <= 5 * sd + 1e-12, "dropout p = %g kept %.5f", p, frac);
    }
    /* in place */
    memcpy(copy, x, (size_t)count * sizeof(float));
    OK(ambient_dropout_forward(count, p, 99, 17, offset, copy, copy));
    CHECK(same_floats(copy, y, count), "dropout in place differs");
    /* any split: two calls with offsets are one call */
    int64_t k = count / 3 + 1;
    if (k < count) {
        test_poison(copy, count);
        OK(ambient_dropout_forward(k, p, 99, 17, offset, x, copy));
        OK(ambient_dropout_forward(count - k, p, 99, 17, offset + k, x + k, copy + k));
        CHECK(same_floats(copy, y, count), "dropout split at %lld differs", (long long)k);
    }
    free(x); free(y); free(u); free(dy); free(dx); free(copy); free(want); free(wantg);
}

/* ---- Bad arguments ------------------------------------------------------------------------- */

static void test_bad_arguments(void) {
    float a[64], b[64], c[64];
    test_fill(a, 64, 1.0f);
    test_fill(b, 64, 1.0f);
    BAD(ambient_mp_cat_forward(-1, 2, 2, 0.5f, a, b, c), "rows = -1");
    BAD(ambient_mp_cat_forward(2, 0, 2, 0.5f, a, b, c), "ca = 0");
    BAD(ambient_mp_cat_forward(2, 2, 2, NAN, a, b, c), "t = nan");
    BAD(ambient_mp_cat_forward(2, 2, 2, 0.5f, a, b, a), "overlaps");
    BAD(ambient_mp_cat_forward(2, 2, 2, 0.5f, NULL, b, c), "a is NULL");
    BAD(ambient_mp_cat_forward(INT64_MAX / 2, 2, 2, 0.5f, a, b, c), "too large");
    BAD(ambient_mp_cat_backward(2, 2, 2, 0.5f, a, b, b), "must not overlap");
    BAD(ambient_avg_pool2x2_forward(1, 3, 2, 1, a, b), "must be even");
    BAD(ambient_avg_pool2x2_forward(1, 2, -2, 1, a, b), "non-negative");
    BAD(ambient_avg_pool2x2_forward(1, 4, 4, 2, a, a + 4), "overlap");
    BAD(ambient_avg_pool2x2_backward(1, 2, 5, 1, a, b), "must be even");
    BAD(ambient_upsample2x_forward(1, INT64_MAX / 4, 4, 4, a, b), "too large");
    BAD(ambient_upsample2x_forward(1, 2, 2, 1, a, NULL), "y is NULL");
    BAD(ambient_upsample2x_backward(1, 2, 2, 1, a, a), "overlap");
    BAD(ambient_mp_fourier_forward(-3, 4, a, b, c, c + 16), "n = -3");
    BAD(ambient_mp_fourier_forward(2, 4, a, b, c, b), "overlaps");
    BAD(ambient_mp_fourier_backward(2, 4, a, b, c, a + 8, NULL), "dx is NULL");
    BAD(ambient_channel_scale_forward(1, 2, 4, a, b, b), "overlaps s");
    BAD(ambient_channel_scale_forward(1, 2, 4, a, b, a + 1), "partly overlaps");
    BAD(ambient_channel_scale_forward(1, -2, 4, a, b, c), "non-negative");
    BAD(ambient_channel_scale_backward(1, 2, 4, a, b, c, c + 8, c), "overlaps");
    BAD(ambient_channel_scale_backward(1, 2, 4, a, b, c, a, c + 32), "dx overlaps x");
    BAD(ambient_clip_forward(4, -1.0f, a, b), "limit = -1");
    BAD(ambient_clip_forward(4, INFINITY, a, b), "limit = inf");
    BAD(ambient_clip_forward(-4, 1.0f, a, b), "negative");
    BAD(ambient_clip_backward(4, 1.0f, a, b, b + 1), "partly overlaps");
    BAD(ambient_random_normal(4, 1, 2, -1, a), "offset = -1");
    BAD(ambient_random_uniform(4, 1, 2, INT64_MAX - 2, a), "overflows");
    BAD(ambient_random_uniform(4, 1, 2, 0, NULL), "y is NULL");
    BAD(ambient_dropout_forward(4, 1.0f, 1, 2, 0, a, b), "probability = 1");
    BAD(ambient_dropout_forward(4, -0.1f, 1, 2, 0, a, b), "probability = -0.1");
    BAD(ambient_dropout_forward(4, NAN, 1, 2, 0, a, b), "probability = nan");
    BAD(ambient_dropout_backward(4, 0.5f, 1, 2, 0, NULL, b), "dy is NULL");
    BAD(ambient_dropout_forward(4, 0.5f, 1, 2, 0, a, a + 1), "partly overlaps");
    /* empty calls succeed and clear the message */
    OK(ambient_mp_cat_forward(0, 2, 2, 0.5f, NULL, NULL, NULL));
    OK(ambient_avg_pool2x2_forward(0, 2, 2, 1, NULL, NULL));
    OK(ambient_random_normal(0, 1, 2, 3, NULL));
    OK(ambient_dropout_forward(0, 0.5f, 1, 2, 3, NULL, NULL));
    CHECK(ambient_last_error()[0] == '\0', "a successful call clears the message");
    /* probability 0 is the identity, in any seed */
    OK(ambient_dropout_forward(64, 0.0f, 1, 2, 3, a, c));
    CHECK(same_floats(a, c, 64), "dropout with p = 0 must copy");
    /* no pixels: ds = 0 */
    c[0] = NAN;
    OK(ambient_channel_scale_backward(1, 0, 4, NULL, b, NULL, NULL, c));
    CHECK(c[0] == 0.0f && c[3] == 0.0f, "channel_scale_backward over no pixels must give ds = 0");
}

/* Streams and dropout at offsets and lengths that start and end inside Philox groups and
 * inside the generator's blocks (32 and 256 groups). */
static void stream_cases(void) {
    int64_t offsets[] = {0, 1, 2, 3, 5, 4097};
    int64_t counts[] = {1, 2, 3, 5, 8, 127, 129, 1023, 1025, 70001};
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
        for (size_t j = 0; j < sizeof counts / sizeof counts[0]; j++)
            test_random_matches_philox(counts[j], 42 + (int64_t)i, (int64_t)j, offsets[i]);
    test_random_matches_philox(1000, -1, INT64_MIN, INT64_MAX - 1000); /* the top of the counter space */
    test_random_splits();
    float ps[] = {0.0f, 0.13f, 0.5f, 0.9f};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        test_dropout(1, ps[i], 3);
        test_dropout(7, ps[i], 0);
        test_dropout(4099, ps[i], 1023);
        test_dropout(200001, ps[i], 5);
    }
}

/* Runs stream_cases in a child process whose generator is forced by AMBIENT_CPU_ISA (chosen
 * once per process, so this runs before the parent calls any kernel). */
static void stream_cases_with_isa(const char *isa) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("AMBIENT_CPU_ISA", isa, 1);
        stream_cases();
        _exit(test_failures ? 1 : 0);
    }
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "random streams with AMBIENT_CPU_ISA=%s failed", isa);
}

int main(void) {
    test_seed(20261201);
    if (getenv("AMBIENT_CPU_ISA") == NULL) {
        stream_cases_with_isa("scalar");
        stream_cases_with_isa("avx2");
    }
    test_philox_known_answers();

    struct { int64_t rows, ca, cb; float t; } cats[] = {
        {1, 1, 1, 0.5f}, {7, 3, 5, 0.3f}, {13, 67, 13, 0.0f}, {5, 64, 64, 1.0f}, {2000, 64, 64, 0.5f}, {777, 17, 33, 0.7f},
    };
    for (size_t i = 0; i < sizeof cats / sizeof cats[0]; i++) test_mp_cat(cats[i].rows, cats[i].ca, cats[i].cb, cats[i].t);

    int64_t shapes[][4] = {{1, 1, 1, 1}, {1, 3, 5, 3}, {2, 7, 3, 17}, {1, 5, 9, 67}, {3, 16, 16, 64}, {1, 17, 15, 130}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++)
        test_resample(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
    test_resample_exact();

    test_mp_fourier(1, 1);
    test_mp_fourier(5, 7);
    test_mp_fourier(64, 192);
    test_mp_fourier(300, 200); /* over the parallel threshold */

    int64_t scales[][3] = {{1, 1, 1}, {1, 7, 3}, {3, 25, 17}, {1, 1024, 67}, {4, 256, 64}, {2, 9, 200}, {5, 33, 130}};
    for (size_t i = 0; i < sizeof scales / sizeof scales[0]; i++)
        for (int silu = 0; silu < 2; silu++) test_channel_scale(scales[i][0], scales[i][1], scales[i][2], silu);

    test_clip(5, 1.0f);
    test_clip(1001, 2.5f);
    test_clip(100003, 256.0f);

    stream_cases();
    test_dropout((INT64_C(1) << 22) + 9, 0.13f, 6); /* large enough for cache-bypassing stores */
    test_random_moments();
    test_bad_arguments();
    return test_finish("test_cpu_layers");
}
