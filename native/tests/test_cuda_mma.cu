/*
 * test_cuda_mma: the tensor-core path of the CUDA backend (native/cuda/mma.cuh,
 * native/cuda/conv2d_operands.cuh) emulated on the host, with no GPU.
 *
 * Host code only (nvcc compiles it; nothing is launched). It runs the same __host__ __device__
 * code the kernels run (the fragment layouts, ldmatrix addresses, tile staging with its
 * conversions, the GEMM and convolution operand sources, the epilogue, the split sizes, the
 * division by constants) and stands in for the two warp instructions a CPU cannot execute,
 * ldmatrix and mma.sync, with cuda_emulation/block.h.
 * Every block of the grid runs mma_block_tile itself (slices, double buffers, warps and
 * barriers), every CUDA thread a coroutine, on random non-zero inputs with edge tiles in every
 * direction, and is compared with a float64 product of the same operands rounded to bf16 / tf32
 * (tight tolerance: the data movement must be exact) and of the unrounded ones (the
 * precision's tolerance). Shared memory starts as NaN, so a word the staging forgets shows, and
 * removing either of mma_block_tile's block barriers makes the test fail.
 *
 * This is the only evidence this project has for the tensor-core kernels until a GPU runs
 * native/tests/test_parity.c: the kernels themselves were compiled, never executed.
 */
#include "conv2d_operands.cuh"
#include "mma.cuh"
#include "test_util.h"
#include "cuda_emulation/block.h"

#include <vector>

/* ---- One block: mma_block_tile itself, every thread a coroutine (cuda_emulation/block.h) ------------------ */

template <int P, class CFG, class SRC_A, class SRC_B, class OUT>
static void emulate_block(const SRC_A &src_a, const SRC_B &src_b, const OUT &out, int64_t m0, int64_t n0,
                          int64_t k_begin, int64_t k_end) {
    /* NaN in every bf16 half and as a tf32 word, so that a word the staging forgets shows */
    std::vector<uint32_t> smem(mma_block_shared<CFG>::WORDS, 0x7fc07fc0u);
    uint32_t *s = smem.data();
    const int status = emulate_thread_block(CFG::THREADS, s, smem.size(), [&](int tid) {
        mma_block_tile<P, CFG>(src_a, src_b, out, m0, n0, k_begin, k_end, tid, s);
    });
    CHECK(status == 0, "block (%lld, %lld): the emulation reported a problem (above)", (long long)m0, (long long)n0);
}

/* ---- References ------------------------------------------------------------------------------ */

/* v as the tensor cores see it (one rounding to bf16 or tf32). */
template <int P>
static double rounded(float v) {
    if (P == AMBIENT_MATMUL_BF16) return cuda_emulation::word_value<P>(mma_pack_bf16x2(v, 0.0f), 0);
    return (double)mma_bits_float(mma_tf32_bits(v));
}

/* Worst |got - want| / (|want| + rms(want)) over n elements (NaN anywhere: infinity). */
static double worst_relative(const float *got, const double *want, int64_t n) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) ss += want[i] * want[i];
    double rms = n > 0 ? sqrt(ss / (double)n) : 0, worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)got[i] - want[i]) / (fabs(want[i]) + rms + 1e-30);
        if (!(e <= worst)) worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

/* Tolerances: the emulated data path against the rounded operands (float32 accumulation only),
 * and the precision itself against the exact product (as test_parity.c allows). */
#define EXACT_TOL 2e-5
template <int P>
static double precision_tol(void) {
    return P == AMBIENT_MATMUL_BF16 ? 2e-2 : 3e-3;
}

static const char *precision_name(int p) { return p == AMBIENT_MATMUL_BF16 ? "bf16" : "tf32"; }

static void report(const char *what, const float *got, const double *exact_rounded, const double *exact,
                   int64_t n, double tol) {
    double e_data = worst_relative(got, exact_rounded, n), e_prec = worst_relative(got, exact, n);
    CHECK(e_data <= EXACT_TOL, "%s: worst relative error %.3g against the rounded operands (bound %.1e)", what, e_data,
          EXACT_TOL);
    CHECK(e_prec <= tol, "%s: worst relative error %.3g against the exact product (bound %.1e)", what, e_prec, tol);
    if (!(e_data <= EXACT_TOL) || !(e_prec <= tol)) {
        int shown = 0;
        for (int64_t i = 0; i < n && shown < 4; i++)
            if (!(fabs(got[i] - exact_rounded[i]) <= EXACT_TOL * (fabs(exact_rounded[i]) + 1.0))) {
                fprintf(stderr, "    [%lld] got %.9g want %.9g\n", (long long)i, got[i], exact_rounded[i]);
                shown++;
            }
    }
}

/* ---- GEMM --------------------------------------------------------------------------------------- */

/* Every block of gemm_mma_kernel's grid for C_b = alpha op(A_b) op(B_b) + beta C_b, padded
 * leading dimensions and batch strides; compared over all of C's storage (gaps must stay). */
template <int P, class CFG>
static void check_gemm(int ta, int tb, int64_t batch, int64_t m, int64_t n, int64_t k, float alpha, float beta) {
    const int64_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
    const int64_t stride_a = (ta ? k : m) * lda + 5, stride_b = (tb ? n : k) * ldb, stride_c = m * ldc + 7;
    const int64_t na = batch * stride_a, nb = batch * stride_b, nc = batch * stride_c;
    std::vector<float> a(na), b(nb), c(nc);
    test_fill(a.data(), na, 1.0f);
    test_fill(b.data(), nb, 1.0f);
    if (beta == 0.0f) test_poison(c.data(), nc);
    else test_fill(c.data(), nc, 1.0f);
    std::vector<double> want_rounded(nc), want(nc);
    for (int64_t i = 0; i < nc; i++) want_rounded[i] = want[i] = c[i];
    for (int64_t e = 0; e < batch; e++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0, r = 0;
                for (int64_t p = 0; p < k; p++) {
                    float av = ta ? a[e * stride_a + p * lda + i] : a[e * stride_a + i * lda + p];
                    float bv = tb ? b[e * stride_b + j * ldb + p] : b[e * stride_b + p * ldb + j];
                    s += (double)av * bv;
                    r += rounded<P>(av) * rounded<P>(bv);
                }
                int64_t o = e * stride_c + i * ldc + j;
                double old = beta == 0.0f ? 0.0 : beta * (double)c[o];
                want[o] = alpha * s + old;
                want_rounded[o] = alpha * r + old;
            }
    /* gemm_mma_kernel: grid (column tiles, row tiles, batch) */
    std::vector<float> got = c;
    for (int64_t e = 0; e < batch; e++)
        for (int64_t i0 = 0; i0 < m; i0 += CFG::BM)
            for (int64_t j0 = 0; j0 < n; j0 += CFG::BN) {
                const mma_output out{got.data() + e * stride_c, ldc, m, n, alpha, beta, false};
#define EMULATE(TA, TB)                                                                                  \
    emulate_block<P, CFG>(gemm_operand<!TA>{a.data() + e * stride_a, lda, m},                            \
                          gemm_operand<TB>{b.data() + e * stride_b, ldb, n}, out, i0, j0, 0, k)
                if (!ta && !tb) EMULATE(false, false);
                else if (!ta && tb) EMULATE(false, true);
                else if (ta && !tb) EMULATE(true, false);
                else EMULATE(true, true);
#undef EMULATE
            }
    /* the gaps between rows and matrices are not C: unchanged (bitwise, NaN included) */
    int64_t bad_gap = 0;
    for (int64_t o = 0; o < nc; o++) {
        int64_t in_c = o % stride_c < m * ldc && (o % stride_c) % ldc < n;
        if (!in_c) {
            if (memcmp(&got[o], &c[o], sizeof(float)) != 0) bad_gap++;
            got[o] = 0.0f;
            want[o] = want_rounded[o] = 0.0;
        }
    }
    char what[128];
    snprintf(what, sizeof what, "gemm %s %dx%d tiles ta=%d tb=%d batch %lld %lldx%lldx%lld alpha %g beta %g",
             precision_name(P), CFG::BM, CFG::BN, ta, tb, (long long)batch, (long long)m, (long long)n, (long long)k,
             alpha, beta);
    CHECK(bad_gap == 0, "%s: wrote %lld elements outside C", what, (long long)bad_gap);
    report(what, got.data(), want_rounded.data(), want.data(), nc, precision_tol<P>());
}

/* ---- Convolution -------------------------------------------------------------------------------- */

/* Direct convolution of conv2d.cu's three passes in float64, on operands passed through
 * `round` (identity or the precision's rounding). */
template <class ROUND>
static void conv_reference(int mode, int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t ks,
                           const float *x, const float *dy, const float *weight, const float *old, float beta,
                           ROUND round, double *out) {
    const int64_t taps = ks * ks, pad = ks / 2, m = n * h * w;
    const int64_t count = mode == CONV_FORWARD ? m * c_out : mode == CONV_INPUT ? m * c_in : c_out * taps * c_in;
    for (int64_t i = 0; i < count; i++) out[i] = beta == 0.0f ? 0.0 : beta * (double)old[i];
    for (int64_t p = 0; p < m; p++) {
        int64_t px = p % w, py = (p / w) % h;
        for (int64_t t = 0; t < taps; t++) {
            int64_t yy = py + t / ks - pad, xx = px + t % ks - pad;
            if (yy < 0 || yy >= h || xx < 0 || xx >= w) continue;
            int64_t q = p + (t / ks - pad) * w + (t % ks - pad); /* the neighbour at tap t */
            for (int64_t o = 0; o < c_out; o++)
                for (int64_t c = 0; c < c_in; c++) {
                    double wv = round(weight ? weight[(o * taps + t) * c_in + c] : 0.0f);
                    if (mode == CONV_FORWARD) out[p * c_out + o] += wv * round(x[q * c_in + c]);
                    /* dx[q, c] gets W[o, t, c] dy[p, o]: the input gradient's flipped kernel */
                    else if (mode == CONV_INPUT) out[q * c_in + c] += wv * round(dy[p * c_out + o]);
                    else out[(o * taps + t) * c_in + c] += round(dy[p * c_out + o]) * round(x[q * c_in + c]);
                }
        }
    }
}

/* Every block (and split) of conv_mma_kernel's grid for one pass. */
template <int P, class CFG, int MODE>
static void check_conv(int64_t n, int64_t h, int64_t w, int64_t c_in, int64_t c_out, int64_t ks, float beta) {
    const int64_t taps = ks * ks, m = n * h * w, xs = m * c_in, ys = m * c_out, ws = c_out * taps * c_in;
    std::vector<float> x(xs), dy(ys), weight(ws);
    test_fill(x.data(), xs, 1.0f);
    test_fill(dy.data(), ys, 1.0f);
    test_fill(weight.data(), ws, 1.0f);
    const int64_t count = MODE == CONV_FORWARD ? ys : MODE == CONV_INPUT ? xs : ws;
    std::vector<float> old(count);
    if (beta == 0.0f) test_poison(old.data(), count);
    else test_fill(old.data(), count, 1.0f);
    std::vector<double> want(count), want_rounded(count);
    conv_reference(MODE, n, h, w, c_in, c_out, ks, x.data(), dy.data(), MODE == CONV_WEIGHT ? nullptr : weight.data(),
                   old.data(), beta, [](float v) { return (double)v; }, want.data());
    conv_reference(MODE, n, h, w, c_in, c_out, ks, x.data(), dy.data(), MODE == CONV_WEIGHT ? nullptr : weight.data(),
                   old.data(), beta, [](float v) { return rounded<P>(v); }, want_rounded.data());
    std::vector<float> got = old;
    int64_t splits = 1, chunk = m;
    std::vector<float> partial;
    float *out = got.data();
    if (MODE == CONV_WEIGHT) {
        conv_weight_splits(m, ws, mma_precision<AMBIENT_MATMUL_BF16>::SLICE_K, &splits, &chunk);
        if (splits > 1) {
            partial.assign((size_t)(splits * ws), NAN);
            out = partial.data();
        }
    }
    const conv_mma_args args =
        conv_mma_args_make(MODE, m, h, w, c_in, c_out, ks, x.data(), dy.data(), weight.data(), out, beta, chunk, splits > 1);
    for (int64_t z = 0; z < splits; z++)
        for (int64_t i0 = 0; i0 < args.m; i0 += CFG::BM)
            for (int64_t j0 = 0; j0 < args.n; j0 += CFG::BN)
                conv_mma_pass<MODE>(args, z, [&](const auto &src_a, const auto &src_b, const mma_output &o,
                                                 int64_t k_begin, int64_t k_end) {
                    emulate_block<P, CFG>(src_a, src_b, o, i0, j0, k_begin, k_end);
                });
    if (splits > 1) /* conv2d.cu's split_sum_op: the splits in order, then beta */
        for (int64_t e = 0; e < ws; e++) {
            float sum = 0.0f;
            for (int64_t s = 0; s < splits; s++) sum += partial[s * ws + e];
            got[e] = beta == 0.0f ? sum : sum + beta * got[e];
        }
    static const char *names[3] = {"forward", "backward_input", "backward_weight"};
    char what[160];
    snprintf(what, sizeof what, "conv2d_%s %s %dx%d tiles %lldx%lldx%lld %lld->%lld k%lld beta %g (%lld splits)",
             names[MODE], precision_name(P), CFG::BM, CFG::BN, (long long)n, (long long)h, (long long)w,
             (long long)c_in, (long long)c_out, (long long)ks, beta, (long long)splits);
    report(what, got.data(), want_rounded.data(), want.data(), count, precision_tol<P>());
}

/* ---- Small parts on their own ---------------------------------------------------------------------- */

static void check_fragment_layouts(void) {
    /* every element of every fragment held by exactly one (lane, element) */
    int a16[16][16] = {{0}}, b16[16][8] = {{0}}, a8[16][8] = {{0}}, b8[8][8] = {{0}}, c[16][8] = {{0}};
    for (int lane = 0; lane < 32; lane++) {
        for (int i = 0; i < 8; i++) a16[mma_bf16_a_coord(lane, i).row][mma_bf16_a_coord(lane, i).col]++;
        for (int i = 0; i < 4; i++) b16[mma_bf16_b_coord(lane, i).row][mma_bf16_b_coord(lane, i).col]++;
        for (int i = 0; i < 4; i++) a8[mma_tf32_a_coord(lane, i).row][mma_tf32_a_coord(lane, i).col]++;
        for (int i = 0; i < 2; i++) b8[mma_tf32_b_coord(lane, i).row][mma_tf32_b_coord(lane, i).col]++;
        for (int i = 0; i < 4; i++) c[mma_c_coord(lane, i).row][mma_c_coord(lane, i).col]++;
    }
    int bad = 0;
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 16; k++) bad += a16[r][k] != 1;
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 8; k++) bad += b16[r][k] != 1 || a8[r][k] != 1 || c[r][k] != 1 || (r < 8 && b8[r][k] != 1);
    CHECK(bad == 0, "%d fragment elements not held exactly once", bad);
    /* spot checks against the PTX ISA's tables: lane 5 is groupID 1, threadID_in_group 1 */
    mma_coord x = mma_bf16_a_coord(5, 6);
    CHECK(x.row == 9 && x.col == 10, "bf16 a6 of lane 5 at (%d, %d), want (9, 10)", x.row, x.col);
    x = mma_bf16_b_coord(5, 3);
    CHECK(x.row == 11 && x.col == 1, "bf16 b3 of lane 5 at (%d, %d), want (11, 1)", x.row, x.col);
    x = mma_tf32_a_coord(5, 1);
    CHECK(x.row == 9 && x.col == 1, "tf32 a1 of lane 5 at (%d, %d), want (9, 1)", x.row, x.col);
    x = mma_tf32_b_coord(5, 1);
    CHECK(x.row == 5 && x.col == 1, "tf32 b1 of lane 5 at (%d, %d), want (5, 1)", x.row, x.col);
    x = mma_c_coord(5, 3);
    CHECK(x.row == 9 && x.col == 3, "c3 of lane 5 at (%d, %d), want (9, 3)", x.row, x.col);
}

static void check_conversions(void) {
    struct {
        float v;
        uint32_t bf16;
    } cases[] = {{1.0f, 0x3f80u}, {-2.0f, 0xc000u}, {1.00390625f, 0x3f80u} /* tie: to even */,
                 {1.01171875f, 0x3f82u} /* tie: to even, up */, {3.0e38f, 0x7f62u}, {INFINITY, 0x7f80u}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t got = mma_pack_bf16x2(cases[i].v, 0.0f) & 0xffffu;
        CHECK(got == cases[i].bf16, "bf16(%g) = 0x%04x, want 0x%04x", cases[i].v, got, cases[i].bf16);
    }
    CHECK(mma_pack_bf16x2(1.0f, -2.0f) == 0xc0003f80u, "the low half holds the first value");
    CHECK((mma_pack_bf16x2(NAN, 0.0f) & 0x7fc0u) == 0x7fc0u, "NaN stays NaN");
    /* tf32: 10 mantissa bits, ties away from zero */
    CHECK(mma_tf32_bits(1.0f) == 0x3f800000u, "tf32(1)");
    CHECK(mma_tf32_bits(mma_bits_float(0x3f801000u)) == 0x3f802000u, "tf32 tie rounds away from zero");
    CHECK(mma_tf32_bits(mma_bits_float(0xbf800fffu)) == 0xbf800000u, "tf32 below the tie rounds down");
    /* the rounding error bounds the tolerances rely on */
    double worst_bf16 = 0, worst_tf32 = 0;
    for (int i = 0; i < 100000; i++) {
        float v = test_uniform() * 100.0f;
        worst_bf16 = fmax(worst_bf16, fabs(rounded<AMBIENT_MATMUL_BF16>(v) - v) / fabs(v));
        worst_tf32 = fmax(worst_tf32, fabs(rounded<AMBIENT_MATMUL_TF32>(v) - v) / fabs(v));
    }
    CHECK(worst_bf16 <= 1.0 / 256 && worst_tf32 <= 1.0 / 2048, "rounding errors %g (bf16), %g (tf32)", worst_bf16,
          worst_tf32);
}

static void check_fast_division(void) {
    const uint32_t divisors[] = {1, 2, 3, 5, 7, 9, 16, 17, 100, 129, 1000, 4095, 65537, 1000003, 0x7fffffffu};
    int64_t bad = 0;
    for (size_t d = 0; d < sizeof divisors / sizeof divisors[0]; d++) {
        fast_divisor f = fast_divisor_make(divisors[d]);
        for (int i = 0; i < 20000; i++) {
            uint32_t n = i < 1000 ? (uint32_t)i : i < 2000 ? 0xffffffffu - (uint32_t)(i - 1000)
                                                           : (uint32_t)test_next_u64();
            bad += fast_div(f, n) != n / divisors[d];
        }
    }
    CHECK(bad == 0, "%lld wrong quotients", (long long)bad);
}

static void check_splits(void) {
    for (int64_t m = 1; m < 200000; m = m * 3 + 1) {
        int64_t splits = 0, chunk = 0;
        conv_weight_splits(m, 1152, 32, &splits, &chunk);
        CHECK(splits >= 1 && splits <= CONV_MAX_SPLITS && chunk % 32 == 0 && splits * chunk >= m &&
                  (splits - 1) * chunk < m,
              "m %lld: %lld splits of %lld", (long long)m, (long long)splits, (long long)chunk);
    }
}

/* ---- Main -------------------------------------------------------------------------------------- */

template <int P, class CFG>
static void check_precision(void) {
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            check_gemm<P, CFG>(ta, tb, 1, 37, 29, 53, 1.0f, 0.0f); /* one edge tile */
            check_gemm<P, CFG>(ta, tb, 2, CFG::BM + 5, CFG::BN + 3, 70, 0.5f, -1.5f); /* four tiles, batch */
        }
    check_gemm<P, CFG>(0, 0, 1, 1, 1, 1, 1.0f, 0.0f);
    check_gemm<P, CFG>(0, 1, 1, 2 * CFG::BM, CFG::BN, 2 * mma_precision<P>::SLICE_K, 1.0f, 1.0f); /* exact tiles */
    check_gemm<P, CFG>(1, 0, 1, 20, 300, 3, 2.0f, 0.0f); /* k shorter than a word pair */
    /* n, h, w, c_in, c_out, kernel: odd sizes, 1x1 images, channels not multiples of anything */
    const int64_t shapes[][6] = {{1, 5, 7, 3, 5, 3}, {2, 4, 6, 16, 20, 3}, {3, 9, 11, 7, 13, 1}, {1, 1, 1, 4, 4, 3},
                                 {1, 6, 5, 33, 40, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t *v = shapes[s];
        float beta = s % 2 ? 1.0f : 0.0f;
        check_conv<P, CFG, CONV_FORWARD>(v[0], v[1], v[2], v[3], v[4], v[5], beta);
        check_conv<P, CFG, CONV_INPUT>(v[0], v[1], v[2], v[3], v[4], v[5], beta);
        check_conv<P, CFG, CONV_WEIGHT>(v[0], v[1], v[2], v[3], v[4], v[5], beta);
    }
    /* enough pixels for the weight gradient's splits */
    check_conv<P, CFG, CONV_WEIGHT>(2, 24, 30, 5, 9, 3, 1.0f);
}

int main(void) {
    test_seed(20250711);
    check_fragment_layouts();
    check_conversions();
    check_fast_division();
    check_splits();
    check_precision<AMBIENT_MATMUL_BF16, mma_config_large>();
    check_precision<AMBIENT_MATMUL_BF16, mma_config_small>();
    check_precision<AMBIENT_MATMUL_TF32, mma_config_large>();
    check_precision<AMBIENT_MATMUL_TF32, mma_config_small>();
    printf("test_cuda_mma: emulated ldmatrix + mma.sync (bf16 m16n8k16, tf32 m16n8k8) over the kernels' staging, "
           "fragments and epilogue; GEMM and conv2d match float64 (host emulation only: the kernels never ran)\n");
    return test_finish("test_cuda_mma");
}
