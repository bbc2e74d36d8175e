/*
 * EDM2's cosine attention on tensor cores (attention.cu's path for bf16 and tf32, head_dim up
 * to 128): flash attention 2's forward and backward, written over mma.cuh's tiles and warp
 * functions so that native/tests/test_cuda_attention.cu can run these very block bodies on the
 * host, thread by thread, with ldmatrix and mma.sync emulated.
 *
 * Layout and semantics as attention.cu: qkv is n x L x H x 3 x d, out and dout n x L x H x d,
 * lse n x H x L, S = scale q k^T with scale = 1 / sqrt(d). Features are padded with zeros to
 * DP = 64 or 128 (mma steps are 16 bf16 or 8 tf32 values deep, and pairs of n-tiles are
 * loaded together), tokens past L are zero rows whose scores are masked.
 *
 * Every block has 4 warps; each warp owns 16 rows of the block's 64 (queries for the forward
 * and dQ, keys for dK and dV) and keeps their accumulators in registers (mma's C fragments).
 * Operands live in shared memory as mma.cuh tiles ("slabs": a tile of 16-word slices, one
 * after the other, each row 20 words apart), converted to bf16 or tf32 while staged from
 * global memory; a product whose left factor was computed in registers (P, dS) goes through
 * the warp's own slab. Softmax runs in base 2 (scores times scale log2 e, exp2).
 *
 *   forward: for each tile of 64 keys: S = Q K^T, online softmax on S's fragments (row max and
 *            sum over the 4 lanes that share a row), O <- alpha O + P V (V^T staged).
 *            out = O / l, lse = (m + log2 l) ln 2.
 *   dQ:      for each key tile: S = Q K^T, dP = dO V^T, P = exp2(S - lse), dS = P (dP - D),
 *            dQ += dS K (K^T staged); dQ scale at the end.
 *   dK, dV:  for each tile of BQ queries: S^T = K Q^T, dP^T = V dO^T, P^T and dS^T as above,
 *            dV += P^T dO, dK += dS^T Q (Q^T and dO^T staged); dK scale at the end.
 * D = <dO, O> per query row comes from attention.cu's row-dot kernel. Like flash attention,
 * P and dS are rounded to the precision before their products, and l sums the unrounded P.
 */
#ifndef AMBIENT_CUDA_ATTENTION_MMA_CUH
#define AMBIENT_CUDA_ATTENTION_MMA_CUH

#include "mma.cuh"

#include <math.h>

#define ATTENTION_MMA_THREADS 128
#define ATTENTION_MMA_ROWS 64 /* a block's query or key rows, 16 per warp */
#define ATTENTION_MMA_TILE 64 /* keys per step of the forward and dQ passes */
#define ATTENTION_MMA_MAX_DIM 128

/* Everything the three kernels read and write. */
struct attention_mma_args {
    int64_t length, heads, d;
    float scale;
    const float *qkv;
    float *out, *lse;                        /* forward (lse may be NULL) */
    const float *lse_in, *dout, *row_dot;    /* backward */
    float *dqkv;
};

/* The padded head dimension the kernels are instantiated for; 0 beyond ATTENTION_MMA_MAX_DIM. */
static inline int attention_mma_dim(int64_t d) { return d <= 64 ? 64 : d <= ATTENTION_MMA_MAX_DIM ? 128 : 0; }

/* A slab: ROWS rows x VALUES values of the reduction, as VALUES / SLICE_K mma tiles. */
template <int P, int ROWS, int VALUES>
struct mma_slab {
    static constexpr int SLICES = VALUES / mma_precision<P>::SLICE_K;
    static constexpr int SLICE_WORDS = ROWS * MMA_PITCH_WORDS;
    static constexpr int WORDS = SLICES * SLICE_WORDS;
    static_assert(VALUES % mma_precision<P>::SLICE_K == 0, "whole slices");
    /* The word that holds value pair / value w of a row (w counted in words). */
    AMBIENT_HD static int word(int row, int w) {
        return (w / MMA_SLICE_WORDS) * SLICE_WORDS + mma_tile_word(row, w % MMA_SLICE_WORDS);
    }
};

/* slab <- rows mn0 .. of src, values k0 .. k0 + VALUES - 1 of the reduction (0 at k >= k_end). */
template <int P, int ROWS, int VALUES, class SRC>
AMBIENT_HD void attention_stage(const SRC &src, int tid, int64_t mn0, int64_t k0, int64_t k_end, uint32_t *slab) {
    using slab_t = mma_slab<P, ROWS, VALUES>;
    mma_stager<P, ROWS, ATTENTION_MMA_THREADS, SRC> stager;
    stager.init(src, tid, mn0);
    /* One slice at a time: unrolled, the compiler hoists every slice's loads and the kernels
     * need 255 registers and spill (ptxas, sm_90: bf16 forward at d 64 from 255 to 105). */
#if defined(__CUDA_ARCH__)
#pragma unroll 1
#endif
    for (int s = 0; s < slab_t::SLICES; s++) {
        stager.fetch(src, tid, k0 + (int64_t)s * mma_precision<P>::SLICE_K, k_end);
        stager.store(slab + s * slab_t::SLICE_WORDS, tid);
    }
}

/* acc (16 x 8 NT) += rows a_row0 .. a_row0 + 15 of slab a times the rows of slab b, transposed,
 * over VALUES of the reduction. */
template <int P, int NT, int A_ROWS, int B_ROWS, int VALUES>
AMBIENT_HD void attention_product(const uint32_t *a, int a_row0, const uint32_t *b, int lane, float (&acc)[1][NT][4]) {
    static_assert(NT * 8 == B_ROWS, "the product covers all rows of b");
AMBIENT_UNROLL
    for (int s = 0; s < mma_slab<P, A_ROWS, VALUES>::SLICES; s++)
        mma_warp_slice<P, 1, NT>(a + s * mma_slab<P, A_ROWS, VALUES>::SLICE_WORDS,
                                 b + s * mma_slab<P, B_ROWS, VALUES>::SLICE_WORDS, a_row0, 0, lane, acc);
}

template <int NT>
AMBIENT_HD void attention_zero(float (&acc)[1][NT][4]) {
AMBIENT_UNROLL
    for (int nt = 0; nt < NT; nt++)
AMBIENT_UNROLL
        for (int i = 0; i < 4; i++) acc[0][nt][i] = 0.0f;
}

/* The backward passes' two products over the features, from zero: s = (rows of a_s) b_s^T and
 * dp = (rows of a_dp) b_dp^T; S = Q K^T and dP = dO V^T for dQ, their transposes (K Q^T,
 * V dO^T) for dK and dV. */
template <int P, int NT, int A_ROWS, int B_ROWS, int DP>
AMBIENT_HD void attention_scores_and_dp(const uint32_t *a_s, const uint32_t *b_s, const uint32_t *a_dp,
                                        const uint32_t *b_dp, int a_row0, int lane, float (&s)[1][NT][4],
                                        float (&dp)[1][NT][4]) {
    attention_zero(s);
    attention_zero(dp);
    attention_product<P, NT, A_ROWS, B_ROWS, DP>(a_s, a_row0, b_s, lane, s);
    attention_product<P, NT, A_ROWS, B_ROWS, DP>(a_dp, a_row0, b_dp, lane, dp);
}

/* f(row, col, v, r) for each of a warp's accumulators v whose row (row0 + its row in the
 * fragment) is a token and whose column is a feature; r = 0 or 1 says which of the lane's two
 * rows it is. */
template <int NT, class F>
AMBIENT_HD void attention_for_each_output(const float (&acc)[1][NT][4], int lane, int64_t row0, int64_t length,
                                          int64_t d, F f) {
AMBIENT_UNROLL
    for (int nt = 0; nt < NT; nt++)
AMBIENT_UNROLL
        for (int i = 0; i < 4; i++) {
            mma_coord c = mma_c_coord(lane, i);
            const int64_t row = row0 + c.row, col = nt * 8 + c.col;
            if (row < length && col < d) f(row, col, acc[0][nt][i], i >> 1);
        }
}

/* A warp's 16 x 8 NT accumulators, converted, into its slab of 16 rows x 8 NT values. */
template <int P, int NT>
AMBIENT_HD void attention_store_fragments(uint32_t *slab, int lane, const float (&v)[1][NT][4]) {
    using slab_t = mma_slab<P, 16, NT * 8>;
AMBIENT_UNROLL
    for (int nt = 0; nt < NT; nt++)
AMBIENT_UNROLL
        for (int half = 0; half < 2; half++) { /* elements 2 half, 2 half + 1: one row, two columns */
            mma_coord c = mma_c_coord(lane, 2 * half);
            int col = nt * 8 + c.col;
            float lo = v[0][nt][2 * half], hi = v[0][nt][2 * half + 1];
            if (P == AMBIENT_MATMUL_BF16) {
                slab[slab_t::word(c.row, col / 2)] = mma_pack_bf16x2(lo, hi);
            } else {
                slab[slab_t::word(c.row, col)] = mma_tf32_bits(lo);
                slab[slab_t::word(c.row, col + 1)] = mma_tf32_bits(hi);
            }
        }
}

/* Max and sum of the two rows a lane's fragments touch, over the four lanes of its quad. */
AMBIENT_HD float attention_quad_max(float v) {
    v = fmaxf(v, mma_shfl_xor(v, 1));
    return fmaxf(v, mma_shfl_xor(v, 2));
}

AMBIENT_HD float attention_quad_sum(float v) {
    v += mma_shfl_xor(v, 1);
    return v + mma_shfl_xor(v, 2);
}

#define ATTENTION_LOG2E 1.4426950408889634f
#define ATTENTION_LN2 0.6931471805599453f

/* The token rows of a (sample, head) in qkv, out and dout. */
struct attention_head {
    const float *q, *k, *v; /* row r at q + r * tok */
    int64_t tok, orow;      /* token strides of qkv and of out / dout */
    int64_t out_offset;     /* of row 0 of (sample, head) in out / dout */
    int64_t qkv_offset;     /* of q of row 0 in qkv */
};

AMBIENT_HD attention_head attention_head_of(const attention_mma_args &a, int64_t bh) {
    const int64_t b = bh / a.heads, h = bh % a.heads;
    attention_head r;
    r.tok = 3 * a.heads * a.d;
    r.orow = a.heads * a.d;
    r.qkv_offset = (b * a.length * a.heads + h) * 3 * a.d;
    r.out_offset = (b * a.length * a.heads + h) * a.d;
    r.q = a.qkv + r.qkv_offset;
    r.k = r.q + a.d;
    r.v = r.q + 2 * a.d;
    return r;
}

/* ---- Forward -------------------------------------------------------------------------------- */

template <int P, int DP>
struct attention_mma_forward_shape {
    using rows = mma_slab<P, ATTENTION_MMA_ROWS, DP>;  /* Q, K: tokens x features */
    using vt = mma_slab<P, DP, ATTENTION_MMA_TILE>;     /* V^T: features x keys */
    using p = mma_slab<P, 16, ATTENTION_MMA_TILE>;      /* one warp's P */
    static constexpr int WORDS = 2 * rows::WORDS + vt::WORDS + 4 * p::WORDS;
};

/* Query rows q0 .. q0 + 63 of (sample, head) bh. */
template <int P, int DP>
AMBIENT_HD void attention_mma_forward_block(const attention_mma_args &a, int64_t bh, int64_t q0, int tid,
                                            uint32_t *smem) {
    using shape = attention_mma_forward_shape<P, DP>;
    constexpr int R = ATTENTION_MMA_ROWS, T = ATTENTION_MMA_TILE, NS = T / 8, NO = DP / 8;
    const int lane = tid & 31, warp = tid >> 5;
    uint32_t *qs = smem, *ks = qs + shape::rows::WORDS, *vts = ks + shape::rows::WORDS;
    uint32_t *ps = vts + shape::vt::WORDS + warp * shape::p::WORDS;
    const attention_head hd = attention_head_of(a, bh);
    const gemm_operand<true> q_src{hd.q, hd.tok, a.length}, k_src{hd.k, hd.tok, a.length};
    const gemm_operand<false> vt_src{hd.v, hd.tok, a.d};
    const float c = a.scale * ATTENTION_LOG2E;

    attention_stage<P, R, DP>(q_src, tid, q0, 0, a.d, qs);
    float o[1][NO][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    attention_zero(o);
    for (int64_t k0 = 0; k0 < a.length; k0 += T) {
        mma_sync_block(); /* nobody still reads the previous K, V^T or P */
        attention_stage<P, R, DP>(k_src, tid, k0, 0, a.d, ks);
        attention_stage<P, DP, T>(vt_src, tid, 0, k0, a.length, vts);
        mma_sync_block();
        float s[1][NS][4];
        attention_zero(s);
        attention_product<P, NS, R, R, DP>(qs, warp * 16, ks, lane, s);
        /* Scores in base 2, keys past the end masked; row maxima (finite: every tile has a key). */
        float mx[2] = {-INFINITY, -INFINITY};
AMBIENT_UNROLL
        for (int nt = 0; nt < NS; nt++)
AMBIENT_UNROLL
            for (int i = 0; i < 4; i++) {
                const int64_t key = k0 + nt * 8 + mma_c_coord(lane, i).col;
                float v = key < a.length ? s[0][nt][i] * c : -INFINITY;
                s[0][nt][i] = v;
                mx[i >> 1] = fmaxf(mx[i >> 1], v);
            }
        float alpha[2];
AMBIENT_UNROLL
        for (int r = 0; r < 2; r++) {
            float m_new = fmaxf(m[r], attention_quad_max(mx[r]));
            alpha[r] = exp2f(m[r] - m_new); /* 0 on the first tile */
            m[r] = m_new;
            l[r] *= alpha[r];
        }
AMBIENT_UNROLL
        for (int nt = 0; nt < NS; nt++)
AMBIENT_UNROLL
            for (int i = 0; i < 4; i++) {
                float p = exp2f(s[0][nt][i] - m[i >> 1]); /* masked keys: 0 */
                s[0][nt][i] = p;
                l[i >> 1] += p; /* this lane's part of the row sum */
            }
AMBIENT_UNROLL
        for (int nt = 0; nt < NO; nt++)
AMBIENT_UNROLL
            for (int i = 0; i < 4; i++) o[0][nt][i] *= alpha[i >> 1];
        attention_store_fragments<P, NS>(ps, lane, s);
        mma_sync_warp();
        attention_product<P, NO, 16, DP, T>(ps, 0, vts, lane, o);
    }
    const float sum[2] = {attention_quad_sum(l[0]), attention_quad_sum(l[1])};
    attention_for_each_output(o, lane, q0 + warp * 16, a.length, a.d, [&](int64_t row, int64_t col, float v, int r) {
        a.out[hd.out_offset + row * hd.orow + col] = v / sum[r];
    });
    if (a.lse && (lane & 3) == 0)
        for (int r = 0; r < 2; r++) {
            const int64_t row = q0 + warp * 16 + lane / 4 + 8 * r;
            if (row < a.length) a.lse[bh * a.length + row] = (m[r] + log2f(sum[r])) * ATTENTION_LN2;
        }
}

/* ---- Backward: dQ ------------------------------------------------------------------------------ */

template <int P, int DP>
struct attention_mma_dq_shape {
    using rows = mma_slab<P, ATTENTION_MMA_ROWS, DP>; /* Q, dO, K, V */
    using kt = mma_slab<P, DP, ATTENTION_MMA_TILE>;    /* K^T */
    using ds = mma_slab<P, 16, ATTENTION_MMA_TILE>;    /* one warp's dS */
    static constexpr int WORDS = 4 * rows::WORDS + kt::WORDS + 4 * ds::WORDS;
};

/* lse (in base 2) and D of the two query rows a lane's fragments touch; lse = +inf past the
 * end, so that P is 0 there. */
AMBIENT_HD void attention_row_stats(const attention_mma_args &a, int64_t bh, int64_t row0, int lane, float (&lse2)[2],
                                    float (&dd)[2]) {
    for (int r = 0; r < 2; r++) {
        const int64_t row = row0 + lane / 4 + 8 * r;
        const bool valid = row < a.length;
        lse2[r] = valid ? a.lse_in[bh * a.length + row] * ATTENTION_LOG2E : INFINITY;
        dd[r] = valid ? a.row_dot[bh * a.length + row] : 0.0f;
    }
}

template <int P, int DP>
AMBIENT_HD void attention_mma_dq_block(const attention_mma_args &a, int64_t bh, int64_t q0, int tid, uint32_t *smem) {
    using shape = attention_mma_dq_shape<P, DP>;
    constexpr int R = ATTENTION_MMA_ROWS, T = ATTENTION_MMA_TILE, NS = T / 8, NO = DP / 8;
    const int lane = tid & 31, warp = tid >> 5;
    uint32_t *qs = smem, *dos = qs + shape::rows::WORDS, *ks = dos + shape::rows::WORDS, *vs = ks + shape::rows::WORDS;
    uint32_t *kts = vs + shape::rows::WORDS, *dss = kts + shape::kt::WORDS + warp * shape::ds::WORDS;
    const attention_head hd = attention_head_of(a, bh);
    const gemm_operand<true> q_src{hd.q, hd.tok, a.length}, k_src{hd.k, hd.tok, a.length},
        v_src{hd.v, hd.tok, a.length}, do_src{a.dout + hd.out_offset, hd.orow, a.length};
    const gemm_operand<false> kt_src{hd.k, hd.tok, a.d};
    const float c = a.scale * ATTENTION_LOG2E;

    attention_stage<P, R, DP>(q_src, tid, q0, 0, a.d, qs);
    attention_stage<P, R, DP>(do_src, tid, q0, 0, a.d, dos);
    float lse2[2], dd[2];
    attention_row_stats(a, bh, q0 + warp * 16, lane, lse2, dd);
    float dq[1][NO][4];
    attention_zero(dq);
    for (int64_t k0 = 0; k0 < a.length; k0 += T) {
        mma_sync_block();
        attention_stage<P, R, DP>(k_src, tid, k0, 0, a.d, ks);
        attention_stage<P, R, DP>(v_src, tid, k0, 0, a.d, vs);
        attention_stage<P, DP, T>(kt_src, tid, 0, k0, a.length, kts);
        mma_sync_block();
        float s[1][NS][4], dp[1][NS][4];
        attention_scores_and_dp<P, NS, R, R, DP>(qs, ks, dos, vs, warp * 16, lane, s, dp);
AMBIENT_UNROLL
        for (int nt = 0; nt < NS; nt++)
AMBIENT_UNROLL
            for (int i = 0; i < 4; i++) {
                const int64_t key = k0 + nt * 8 + mma_c_coord(lane, i).col;
                float p = key < a.length ? exp2f(s[0][nt][i] * c - lse2[i >> 1]) : 0.0f;
                s[0][nt][i] = p * (dp[0][nt][i] - dd[i >> 1]); /* dS */
            }
        attention_store_fragments<P, NS>(dss, lane, s);
        mma_sync_warp();
        attention_product<P, NO, 16, DP, T>(dss, 0, kts, lane, dq);
    }
    attention_for_each_output(dq, lane, q0 + warp * 16, a.length, a.d, [&](int64_t row, int64_t col, float v, int) {
        a.dqkv[hd.qkv_offset + row * hd.tok + col] = v * a.scale;
    });
}

/* ---- Backward: dK, dV ---------------------------------------------------------------------------- */

template <int P, int DP>
struct attention_mma_dkdv_shape {
    static constexpr int BQ = DP <= 64 ? 64 : 32;       /* queries per step: fewer registers at 128 */
    using rows = mma_slab<P, ATTENTION_MMA_ROWS, DP>; /* K, V */
    using q = mma_slab<P, BQ, DP>;                     /* Q, dO */
    using qt = mma_slab<P, DP, BQ>;                    /* Q^T, dO^T */
    using pt = mma_slab<P, 16, BQ>;                    /* one warp's P^T, dS^T */
    static constexpr int WORDS = 2 * rows::WORDS + 2 * q::WORDS + 2 * qt::WORDS + 8 * pt::WORDS + 2 * BQ;
};

/* Key rows k0 .. k0 + 63 of (sample, head) bh. */
template <int P, int DP>
AMBIENT_HD void attention_mma_dkdv_block(const attention_mma_args &a, int64_t bh, int64_t k0, int tid,
                                         uint32_t *smem) {
    using shape = attention_mma_dkdv_shape<P, DP>;
    constexpr int R = ATTENTION_MMA_ROWS, BQ = shape::BQ, NQ = BQ / 8, NO = DP / 8;
    const int lane = tid & 31, warp = tid >> 5;
    uint32_t *ks = smem, *vs = ks + shape::rows::WORDS, *qs = vs + shape::rows::WORDS, *dos = qs + shape::q::WORDS;
    uint32_t *qts = dos + shape::q::WORDS, *dots = qts + shape::qt::WORDS;
    uint32_t *pts = dots + shape::qt::WORDS + warp * 2 * shape::pt::WORDS, *dsts = pts + shape::pt::WORDS;
    float *lse2_s = (float *)(dots + shape::qt::WORDS + 8 * shape::pt::WORDS), *dd_s = lse2_s + BQ;
    const attention_head hd = attention_head_of(a, bh);
    const float *dout_bh = a.dout + hd.out_offset;
    const gemm_operand<true> k_src{hd.k, hd.tok, a.length}, v_src{hd.v, hd.tok, a.length},
        q_src{hd.q, hd.tok, a.length}, do_src{dout_bh, hd.orow, a.length};
    const gemm_operand<false> qt_src{hd.q, hd.tok, a.d}, dot_src{dout_bh, hd.orow, a.d};
    const float c = a.scale * ATTENTION_LOG2E;

    attention_stage<P, R, DP>(k_src, tid, k0, 0, a.d, ks);
    attention_stage<P, R, DP>(v_src, tid, k0, 0, a.d, vs);
    float dk[1][NO][4], dv[1][NO][4];
    attention_zero(dk);
    attention_zero(dv);
    for (int64_t q0 = 0; q0 < a.length; q0 += BQ) {
        mma_sync_block();
        attention_stage<P, BQ, DP>(q_src, tid, q0, 0, a.d, qs);
        attention_stage<P, BQ, DP>(do_src, tid, q0, 0, a.d, dos);
        attention_stage<P, DP, BQ>(qt_src, tid, 0, q0, a.length, qts);
        attention_stage<P, DP, BQ>(dot_src, tid, 0, q0, a.length, dots);
        for (int i = tid; i < BQ; i += ATTENTION_MMA_THREADS) { /* P = 0 for queries past the end */
            const bool valid = q0 + i < a.length;
            lse2_s[i] = valid ? a.lse_in[bh * a.length + q0 + i] * ATTENTION_LOG2E : INFINITY;
            dd_s[i] = valid ? a.row_dot[bh * a.length + q0 + i] : 0.0f;
        }
        mma_sync_block();
        float st[1][NQ][4], dpt[1][NQ][4];
        attention_scores_and_dp<P, NQ, R, BQ, DP>(ks, qs, vs, dos, warp * 16, lane, st, dpt);
        /* Keys past the end get rows of garbage here that are never stored. */
AMBIENT_UNROLL
        for (int nt = 0; nt < NQ; nt++)
AMBIENT_UNROLL
            for (int i = 0; i < 4; i++) {
                const int q = nt * 8 + mma_c_coord(lane, i).col;
                float p = exp2f(st[0][nt][i] * c - lse2_s[q]);
                st[0][nt][i] = p;
                dpt[0][nt][i] = p * (dpt[0][nt][i] - dd_s[q]); /* dS^T */
            }
        attention_store_fragments<P, NQ>(pts, lane, st);
        attention_store_fragments<P, NQ>(dsts, lane, dpt);
        mma_sync_warp();
        attention_product<P, NO, 16, DP, BQ>(pts, 0, dots, lane, dv);
        attention_product<P, NO, 16, DP, BQ>(dsts, 0, qts, lane, dk);
    }
    attention_for_each_output(dk, lane, k0 + warp * 16, a.length, a.d, [&](int64_t row, int64_t col, float v, int) {
        a.dqkv[hd.qkv_offset + row * hd.tok + a.d + col] = v * a.scale;
    });
    attention_for_each_output(dv, lane, k0 + warp * 16, a.length, a.d, [&](int64_t row, int64_t col, float v, int) {
        a.dqkv[hd.qkv_offset + row * hd.tok + 2 * a.d + col] = v;
    });
}

#endif
