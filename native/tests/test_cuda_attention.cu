/*
 * test_cuda_attention: the tensor-core attention of the CUDA backend (native/cuda/
 * attention_mma.cuh) run on the host, with no GPU.
 *
 * Host code only (nvcc compiles it; nothing is launched). The forward, dQ and dK/dV block
 * bodies that the kernels run are executed here for every block of the grid, each CUDA
 * thread a coroutine, with ldmatrix, mma.sync, shuffles and barriers emulated by
 * cuda_emulation/block.h. Inputs are fresh random rows normalised as EDM2 normalises q, k and v;
 * lengths that are not multiples of the 64-row tiles, head sizes that are padded (8, 16, 40,
 * 96) and both instantiations (64, 128) are covered, in bf16 and tf32. Outputs and shared
 * memory start as NaN, so an element the kernels forget shows. Results are compared with a
 * float64 reference at the precision's tolerance.
 *
 * Together with test_parity.c on a GPU, this is the evidence for these kernels: they were
 * compiled for sm_80 and sm_90 but have not yet run on a GPU.
 */
#include "attention_mma.cuh"
#include "test_util.h"
#include "cuda_emulation/block.h"

#include <vector>

static double rms_of(const double *x, int64_t n) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += x[i] * x[i];
    return n > 0 ? sqrt(ss / (double)n) : 0;
}

/* Worst |got - want| / (|want| + rms) (NaN: infinity); rms is want's unless given. */
static double worst_relative(const float *got, const double *want, int64_t n, double rms = -1) {
    if (rms < 0) rms = rms_of(want, n);
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (fabs(want[i]) + rms + 1e-30);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* The float64 reference: out, lse, and for dout the gradient dqkv, plus D = <dout, out>. */
struct reference {
    std::vector<double> out, lse, dqkv, row_dot;
};

static reference attention_reference(int64_t n, int64_t L, int64_t H, int64_t d, const std::vector<float> &qkv,
                                     const std::vector<float> &dout) {
    reference r;
    r.out.assign((size_t)(n * L * H * d), 0.0);
    r.lse.assign((size_t)(n * H * L), 0.0);
    r.row_dot.assign((size_t)(n * H * L), 0.0);
    r.dqkv.assign(qkv.size(), 0.0);
    const double scale = 1.0 / sqrt((double)d);
    const int64_t tok = 3 * H * d;
    std::vector<double> p((size_t)(L * L)), ds((size_t)(L * L));
    for (int64_t b = 0; b < n; b++)
        for (int64_t h = 0; h < H; h++) {
            const float *base = qkv.data() + (b * L * H + h) * 3 * d;
            double *dbase = r.dqkv.data() + (b * L * H + h) * 3 * d;
            auto q = [&](int64_t i, int64_t c) { return (double)base[i * tok + c]; };
            auto k = [&](int64_t i, int64_t c) { return (double)base[i * tok + d + c]; };
            auto v = [&](int64_t i, int64_t c) { return (double)base[i * tok + 2 * d + c]; };
            auto o_at = [&](int64_t i) { return ((b * L + i) * H + h) * d; };
            for (int64_t i = 0; i < L; i++) {
                double m = -INFINITY;
                for (int64_t j = 0; j < L; j++) {
                    double s = 0;
                    for (int64_t c = 0; c < d; c++) s += q(i, c) * k(j, c);
                    p[i * L + j] = s * scale;
                    m = fmax(m, s * scale);
                }
                double l = 0;
                for (int64_t j = 0; j < L; j++) l += p[i * L + j] = exp(p[i * L + j] - m);
                for (int64_t j = 0; j < L; j++) p[i * L + j] /= l;
                r.lse[(b * H + h) * L + i] = m + log(l);
                for (int64_t c = 0; c < d; c++) {
                    double o = 0;
                    for (int64_t j = 0; j < L; j++) o += p[i * L + j] * v(j, c);
                    r.out[o_at(i) + c] = o;
                }
                double dd = 0;
                for (int64_t c = 0; c < d; c++) dd += r.out[o_at(i) + c] * dout[o_at(i) + c];
                r.row_dot[(b * H + h) * L + i] = dd;
                for (int64_t j = 0; j < L; j++) {
                    double dp = 0;
                    for (int64_t c = 0; c < d; c++) dp += dout[o_at(i) + c] * v(j, c);
                    ds[i * L + j] = p[i * L + j] * (dp - dd);
                }
            }
            for (int64_t i = 0; i < L; i++)
                for (int64_t c = 0; c < d; c++) {
                    double dq = 0, dk = 0, dv = 0;
                    for (int64_t j = 0; j < L; j++) {
                        dq += ds[i * L + j] * k(j, c);
                        dk += ds[j * L + i] * q(j, c);
                        dv += p[j * L + i] * dout[o_at(j) + c];
                    }
                    dbase[i * tok + c] = dq * scale;
                    dbase[i * tok + d + c] = dk * scale;
                    dbase[i * tok + 2 * d + c] = dv;
                }
        }
    return r;
}

/* Every block of a grid of (n heads) x (64-row tiles): body(args, bh, row0, tid, smem). */
template <class BODY>
static void emulate_grid(int64_t bh_count, int64_t length, int words, BODY body) {
    std::vector<uint32_t> smem((size_t)words);
    for (int64_t bh = 0; bh < bh_count; bh++)
        for (int64_t row0 = 0; row0 < length; row0 += ATTENTION_MMA_ROWS) {
            smem.assign((size_t)words, 0x7fc07fc0u); /* NaN in every bf16 half and as a tf32 word */
            uint32_t *s = smem.data();
            const int status = emulate_thread_block(ATTENTION_MMA_THREADS, s, smem.size(),
                                                    [&](int tid) { body(bh, row0, tid, s); });
            CHECK(status == 0, "head %lld, rows %lld: the emulation reported a problem (above)", (long long)bh,
                  (long long)row0);
        }
}

static const char *precision_name(int p) { return p == AMBIENT_MATMUL_BF16 ? "bf16" : "tf32"; }

/* Bounds on the worst and on the rms error, relative as worst_relative measures them. The
 * roundings compound (q and k before S, whose error exp turns into a relative error of P, then
 * P and v; dP, dS and the operands of the gradients likewise), so the worst element over
 * millions reaches ~2.3e-2 in bf16 while the rms error stays near 4e-3 (test_parity.c allows
 * the same worst error). */
static double worst_tol(int p) { return p == AMBIENT_MATMUL_BF16 ? 4e-2 : 5e-3; }
static double rms_tol(int p) { return p == AMBIENT_MATMUL_BF16 ? 8e-3 : 1e-3; }

static void report(const char *what, int p, int64_t n, int64_t L, int64_t H, int64_t d, const float *got,
                   const double *want, int64_t count, double rms = -1) {
    if (rms < 0) rms = rms_of(want, count);
    double e = worst_relative(got, want, count, rms), ss = 0;
    for (int64_t i = 0; i < count; i++) ss += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
    double e_rms = count > 0 ? sqrt(ss / (double)count) / (rms + 1e-30) : 0;
    printf("  %-4s %s n%lld L%lld H%lld d%lld: worst relative error %.2e (bound %.0e), rms %.2e (bound %.0e)\n", what,
           precision_name(p), (long long)n, (long long)L, (long long)H, (long long)d, e, worst_tol(p), e_rms, rms_tol(p));
    CHECK(e <= worst_tol(p) && e_rms <= rms_tol(p), "%s %s n%lld L%lld H%lld d%lld: worst relative error %.3g, rms %.3g",
          what, precision_name(p), (long long)n, (long long)L, (long long)H, (long long)d, e, e_rms);
}

template <int P, int DP>
static void check_attention(int64_t n, int64_t L, int64_t H, int64_t d) {
    CHECK(attention_mma_dim(d) == DP, "d = %lld runs the DP = %d kernels", (long long)d, DP);
    const int64_t qkv_count = n * L * H * 3 * d, out_count = n * L * H * d, lse_count = n * H * L;
    std::vector<float> qkv((size_t)qkv_count), dout((size_t)out_count);
    test_fill(qkv.data(), qkv_count, 1.0f);
    test_fill(dout.data(), out_count, 1.0f);
    /* q, k and v of every token and head with unit rms (EDM2's normalisation before attention) */
    for (int64_t r = 0; r < qkv_count / d; r++) {
        double ss = 0;
        for (int64_t c = 0; c < d; c++) ss += (double)qkv[r * d + c] * qkv[r * d + c];
        const double k = sqrt((double)d / ss);
        for (int64_t c = 0; c < d; c++) qkv[r * d + c] = (float)(qkv[r * d + c] * k);
    }
    const reference ref = attention_reference(n, L, H, d, qkv, dout);

    std::vector<float> out((size_t)out_count), lse((size_t)lse_count), dqkv((size_t)qkv_count);
    std::vector<float> lse_in((size_t)lse_count), row_dot((size_t)lse_count);
    for (int64_t i = 0; i < lse_count; i++) {
        lse_in[i] = (float)ref.lse[i];
        row_dot[i] = (float)ref.row_dot[i];
    }
    test_poison(out.data(), out_count);
    test_poison(lse.data(), lse_count);
    test_poison(dqkv.data(), qkv_count);
    attention_mma_args a = {L,          H,          d,           (float)(1.0 / sqrt((double)d)), qkv.data(), out.data(),
                            lse.data(), lse_in.data(), dout.data(), row_dot.data(),                 dqkv.data()};

    emulate_grid(n * H, L, attention_mma_forward_shape<P, DP>::WORDS, [&](int64_t bh, int64_t row0, int tid, uint32_t *s) {
        attention_mma_forward_block<P, DP>(a, bh, row0, tid, s);
    });
    report("out", P, n, L, H, d, out.data(), ref.out.data(), out_count);
    report("lse", P, n, L, H, d, lse.data(), ref.lse.data(), lse_count);

    emulate_grid(n * H, L, attention_mma_dkdv_shape<P, DP>::WORDS, [&](int64_t bh, int64_t row0, int tid, uint32_t *s) {
        attention_mma_dkdv_block<P, DP>(a, bh, row0, tid, s);
    });
    emulate_grid(n * H, L, attention_mma_dq_shape<P, DP>::WORDS, [&](int64_t bh, int64_t row0, int tid, uint32_t *s) {
        attention_mma_dq_block<P, DP>(a, bh, row0, tid, s);
    });
    /* dq, dk, dv separately, each against the rms of all of dqkv: with a single key the exact dq
     * and dk are 0 (P = 1, dS = dP - D), and only the rounding of the terms remains */
    const double rms = rms_of(ref.dqkv.data(), qkv_count);
    for (int part = 0; part < 3; part++) {
        std::vector<float> got;
        std::vector<double> want;
        for (int64_t r = 0; r < qkv_count / (3 * d); r++)
            for (int64_t c = 0; c < d; c++) {
                got.push_back(dqkv[(r * 3 + part) * d + c]);
                want.push_back(ref.dqkv[(r * 3 + part) * d + c]);
            }
        static const char *names[3] = {"dq", "dk", "dv"};
        report(names[part], P, n, L, H, d, got.data(), want.data(), (int64_t)got.size(), rms);
    }
}

/* A deliberately wrong fragment must fail: the comparison is not blind. */
static void check_detects_errors(void) {
    const int64_t L = 20, d = 16;
    std::vector<float> qkv((size_t)(L * 3 * d)), out((size_t)(L * d)), lse((size_t)L);
    test_fill(qkv.data(), (int64_t)qkv.size(), 1.0f);
    std::vector<float> dout(out.size(), 0.0f);
    const reference ref = attention_reference(1, L, 1, d, qkv, dout);
    attention_mma_args a = {L, 1, d, 0.25f, qkv.data(), out.data(), lse.data(), nullptr, nullptr, nullptr, nullptr};
    emulate_grid(1, L, attention_mma_forward_shape<AMBIENT_MATMUL_TF32, 64>::WORDS,
                 [&](int64_t bh, int64_t row0, int tid, uint32_t *s) {
                     attention_mma_forward_block<AMBIENT_MATMUL_TF32, 64>(a, bh, row0, tid, s);
                 });
    out[3 * d + 5] += 0.05f; /* one element off by about a third of the rms */
    CHECK(worst_relative(out.data(), ref.out.data(), L * d) > worst_tol(AMBIENT_MATMUL_TF32),
          "a wrong element passes the tf32 comparison");
}

int main(void) {
    test_seed(20261129);
    printf("test_cuda_attention: tensor-core attention blocks emulated on the host\n");
    check_detects_errors();
    check_attention<AMBIENT_MATMUL_BF16, 64>(2, 37, 2, 16);
    check_attention<AMBIENT_MATMUL_TF32, 64>(2, 37, 2, 16);
    check_attention<AMBIENT_MATMUL_BF16, 64>(1, 1, 1, 8);
    check_attention<AMBIENT_MATMUL_BF16, 64>(1, 130, 1, 64);
    check_attention<AMBIENT_MATMUL_TF32, 64>(1, 100, 1, 40);
    check_attention<AMBIENT_MATMUL_BF16, 128>(1, 70, 1, 96);
    check_attention<AMBIENT_MATMUL_TF32, 128>(1, 65, 1, 128);
    check_attention<AMBIENT_MATMUL_BF16, 64>(4, 256, 2, 64); /* W3-sized heads: the tails of the error */
    check_attention<AMBIENT_MATMUL_TF32, 64>(2, 256, 2, 64);
    if (test_failures) {
        fprintf(stderr, "test_cuda_attention: %d failures\n", test_failures);
        return 1;
    }
    printf("test_cuda_attention: all passed\n");
    return 0;
}
