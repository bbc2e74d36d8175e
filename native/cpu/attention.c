/*
 * EDM2's multi-head cosine attention (q, k, v already pixel-normalised per head by the
 * caller), flash-style: keys are visited in tiles with an online softmax, so nothing of
 * size length x length is ever stored; the scratch of one thread is O(length x head_dim +
 * tile^2).
 *
 * Layout: qkv is n x L x H x 3 x d (per token and head: q, k, v), out and dout are
 * n x L x H x d, lse is n x H x L; scale = 1 / sqrt(d), S = scale q k^T per sample and head.
 *
 * Forward, per (sample, head, tile of nr queries), all products on the GEMM register tile
 * of kernels.h (mr x nr, k-major packed operands), transposed so that no probability tile
 * ever needs repacking:
 *   S^T[keys, queries] = K Q^T                A: K packed in mr-key slivers, B: Q^T sliver
 *   online softmax down the columns (one lane per query: running max m, sum l)
 *   O^T[d, queries]   = alpha O^T + V^T P^T    A: V^T slivers, B: P^T exactly as S^T was written
 *   out = (O^T)^T / l,  lse = m + log l
 * Per (sample, head) each thread packs K and V once and reuses them for its query tiles.
 *
 * Backward (flash-attention's, S and P recomputed from lse, no L x L storage), per
 * (sample, head, range of key tiles), with query tiles as the inner loop:
 *   S = Q K^T, P = exp(S - lse), dP = dO V^T,  dS = P (dP - D), D_i = <dO_i, O_i>
 *   dV^T += dO^T P,  dK^T += Q^T dS,  dQ += dS K        (dK, dQ times scale at the end)
 * P and dS come out of the micro-kernel as nr-key blocks that are already the k-major B
 * operand of the dV and dK products; only dS is transposed (pack_transposed) for dQ.
 * That is five matrix products per tile pair: 10 n H L^2 d flops (S is recomputed).
 * Threads take whole (sample, head) tasks when there are enough of them (dQ then stays in
 * the thread's accumulator); otherwise each head's key tiles are split in `parts`, every
 * part writes its dQ to a buffer of its own and the parts are added in a fixed order, so
 * results do not depend on the thread count's scheduling.
 *
 * Accumulation is float32; exp is a vectorisable polynomial (fast_math.h). Every buffer the
 * micro-kernel writes is padded to whole register tiles, so it always takes its fast path;
 * padded keys get probability 0, padded queries and channels are computed and dropped.
 */
#include "internal.h"
#include "fast_math.h"
#include "kernels.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))
/* Widest register tile of any kernel table (kernels.h: nr <= 32). */
#define NR_MAX 32
/* Below this many flops one thread does everything. */
#define PARALLEL_FLOPS (INT64_C(1) << 21)

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t max64(int64_t x, int64_t y) { return x > y ? x : y; }
static int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
static int64_t round_up(int64_t x, int64_t y) { return ceil_div(x, y) * y; }

/* ---- Shapes and tiles ------------------------------------------------------------------- */

typedef struct {
    const ambient_cpu_kernels *kern;
    int64_t n, L, H, d;
    int mr, nr;
    int64_t tok;  /* floats from one token to the next in qkv: 3 H d */
    int64_t orow; /* ... in out and dout: H d */
    float scale;
    int64_t lm, dm; /* L and d rounded up to mr */
    int64_t ln, dn; /* L and d rounded up to nr */
    int64_t sliver; /* floats per packed kc = d sliver of mr rows (64-byte multiple) */
    int64_t column; /* floats per packed lm x mr sliver of V^T, Q^T or dO^T (64-byte multiple) */
    int64_t group;  /* slivers per tile: tiles of group * mr keep A operands 64-byte aligned */
} attn_plan;

static int check_shape(const char *function, int64_t n, int64_t length, int64_t heads,
                       int64_t head_dim) {
    const int64_t dims[4] = {n, length, heads, head_dim};
    const char *names[4] = {"n", "length", "heads", "head_dim"};
    for (int i = 0; i < 4; i++)
        AMBIENT_REQUIRE(dims[i] >= 0 && dims[i] <= AMBIENT_MAX_COUNT, "%s: %s = %lld is %s", function,
                        names[i], (long long)dims[i], dims[i] < 0 ? "negative" : "too large");
    int64_t total = 3;
    for (int i = 0; i < 4; i++)
        AMBIENT_REQUIRE(!__builtin_mul_overflow(total, dims[i], &total) && total <= AMBIENT_MAX_COUNT,
                        "%s: qkv of n x length x heads x 3 x head_dim = %lld x %lld x %lld x 3 x %lld elements is too large",
                        function, (long long)n, (long long)length, (long long)heads, (long long)head_dim);
    AMBIENT_REQUIRE(head_dim > 0 || n == 0 || length == 0 || heads == 0,
                    "%s: head_dim = 0 (scale 1/sqrt(head_dim) is undefined); it must be positive", function);
    return AMBIENT_STATUS_OK;
}

static void make_plan(attn_plan *p, int64_t n, int64_t length, int64_t heads, int64_t head_dim) {
    const ambient_cpu_kernels *k = ambient_cpu_kernels_get();
    p->kern = k;
    p->n = n;
    p->L = length;
    p->H = heads;
    p->d = head_dim;
    p->mr = k->mr;
    p->nr = k->nr;
    p->tok = 3 * heads * head_dim;
    p->orow = heads * head_dim;
    p->scale = (float)(1.0 / sqrt((double)head_dim));
    p->lm = round_up(length, k->mr);
    p->dm = round_up(head_dim, k->mr);
    p->ln = round_up(length, k->nr);
    p->dn = round_up(head_dim, k->nr);
    p->sliver = round_up(k->mr * head_dim, 16);
    p->column = round_up(p->lm * k->mr, 16);
    /* Smallest group with group * mr * mr a multiple of 16 floats: a tile start k0 (a
     * multiple of group * mr) then leaves every sliver + k0 * mr 64-byte aligned. */
    p->group = 1;
    while ((p->group * k->mr * k->mr) % 16) p->group++;
}

/* Tiles of a multiple of `unit` elements, about `target` each and about equal, over `count`:
 * the tile size (the last tile may be shorter; a single tile may pass count). */
static int64_t tile_size(int64_t count, int64_t unit, int64_t target) {
    int64_t units = ceil_div(count, unit), per = max64(1, target / unit);
    int64_t tiles = ceil_div(units, per);
    return ceil_div(units, tiles) * unit;
}

/* ---- Scratch ------------------------------------------------------------------------------- */

/* Scratch is kept between calls (cpu/scratch.c). */
static void *scratch_cache;

/* Hands out consecutive 64-byte aligned pieces of a block. */
static float *carve(float **cursor, int64_t floats) {
    float *p = *cursor;
    *cursor += round_up(floats, 16);
    return p;
}

/* ---- Packing ------------------------------------------------------------------------------- */

/* Rows of `rows` tokens x d (row stride ld) into mr-row slivers with k = d (the A operand of
 * a product over channels): sliver s at dst + s * sliver, rows past `rows` zero. */
static void pack_rows_by_channel(const attn_plan *p, int64_t rows, const float *src, int64_t ld,
                                 float *dst) {
    for (int64_t s = 0; s * p->mr < p->lm; s++)
        p->kern->pack_transposed(p->d, (int)max64(0, min64(p->mr, rows - s * p->mr)), p->mr,
                                 src + s * p->mr * ld, ld, dst + s * p->sliver);
}

/* The transpose of the same rows as A operands over tokens: for each group g of mr channels,
 * dst[g * column + t * mr + r] = src[t * ld + g * mr + r] for t < lm, zero past the data. */
SIMD_CLONES
static void pack_rows_by_token(const attn_plan *p, int64_t rows, const float *src, int64_t ld,
                               float *dst) {
    const int mr = p->mr;
    for (int64_t g = 0; g < p->dm; g += mr) {
        float *out = dst + g / mr * p->column;
        int width = (int)min64(mr, p->d - g);
        int64_t t = 0;
        for (; t < rows; t++) {
            const float *in = src + t * ld + g;
            for (int r = 0; r < width; r++) out[t * mr + r] = in[r];
            for (int r = width; r < mr; r++) out[t * mr + r] = 0.0f;
        }
        for (; t < p->lm; t++)
            for (int r = 0; r < mr; r++) out[t * mr + r] = 0.0f;
    }
}

/* Keys [k0, k0 + kb) as B operands with k = key over nr-channel blocks:
 * dst[jg / nr * kb_max * nr + t * nr + j] = K[k0 + t][jg + j], zero past the data. */
SIMD_CLONES
static void pack_keys_by_token(const attn_plan *p, int64_t kb, int64_t kb_max, int64_t valid,
                               const float *src, float *dst) {
    const int nr = p->nr;
    for (int64_t jg = 0; jg < p->dn; jg += nr) {
        float *out = dst + jg / nr * kb_max * nr;
        int width = (int)min64(nr, p->d - jg);
        int64_t t = 0;
        for (; t < valid; t++) {
            const float *in = src + t * p->tok + jg;
            for (int j = 0; j < width; j++) out[t * nr + j] = in[j];
            for (int j = width; j < nr; j++) out[t * nr + j] = 0.0f;
        }
        for (; t < kb; t++)
            for (int j = 0; j < nr; j++) out[t * nr + j] = 0.0f;
    }
}

/* ---- Forward ------------------------------------------------------------------------------- */

typedef struct {
    float *ka, *va, *qb, *st, *ot;
} forward_scratch;

/* Online-softmax step over one S^T tile (kb key rows, the first `valid` real, nr query
 * columns): updates the running max m and sum l, leaves P^T = exp(S^T - m) in place (0 for
 * padded keys) and alpha = exp(m_old - m_new). Returns whether any m changed. */
static inline __attribute__((always_inline)) int softmax_step(float *restrict st, int64_t kb,
                                                              int64_t valid, const int nr,
                                                              float *restrict m, float *restrict l,
                                                              float *restrict alpha) {
    float mx[NR_MAX], sum[NR_MAX];
    for (int j = 0; j < nr; j++) {
        mx[j] = m[j];
        sum[j] = 0.0f;
    }
    for (int64_t k = 0; k < valid; k++) {
#pragma omp simd
        for (int j = 0; j < nr; j++) {
            float v = st[k * nr + j];
            mx[j] = v > mx[j] ? v : mx[j];
        }
    }
    int changed = 0;
    for (int j = 0; j < nr; j++) {
        changed |= mx[j] != m[j];
        alpha[j] = ambient_fast_expf(m[j] - mx[j]);
        m[j] = mx[j];
    }
    for (int64_t k = 0; k < valid; k++) {
#pragma omp simd
        for (int j = 0; j < nr; j++) {
            float e = ambient_fast_expf(st[k * nr + j] - mx[j]);
            st[k * nr + j] = e;
            sum[j] += e;
        }
    }
    for (int64_t k = valid; k < kb; k++)
        for (int j = 0; j < nr; j++) st[k * nr + j] = 0.0f;
    for (int j = 0; j < nr; j++) l[j] = l[j] * alpha[j] + sum[j];
    return changed;
}

SIMD_CLONES
static int softmax_tile(float *st, int64_t kb, int64_t valid, int nr, float *m, float *l,
                        float *alpha) {
    /* The widest table's nr as a constant, so the query loop becomes whole vectors. */
    if (nr == 32) return softmax_step(st, kb, valid, 32, m, l, alpha);
    return softmax_step(st, kb, valid, nr, m, l, alpha);
}

SIMD_CLONES
static void scale_columns(float *restrict ot, int64_t rows, int nr, const float *restrict alpha) {
    for (int64_t r = 0; r < rows; r++)
#pragma omp simd
        for (int j = 0; j < nr; j++) ot[r * nr + j] *= alpha[j];
}

/* One tile of `rows` queries starting at q (token 0 of the tile's q), with the head's keys
 * and values already packed; writes out (token stride orow) and lse (NULL: not wanted). */
static void forward_query_tile(const attn_plan *p, const forward_scratch *s, int64_t bk,
                               const float *q, int rows, float *out, float *lse) {
    const ambient_cpu_kernels *kern = p->kern;
    const int mr = p->mr, nr = p->nr;
    float m[NR_MAX], l[NR_MAX], alpha[NR_MAX];
    for (int j = 0; j < nr; j++) {
        m[j] = -INFINITY;
        l[j] = 0.0f;
    }
    kern->pack_transposed(p->d, rows, nr, q, p->tok, s->qb);
    for (int64_t k0 = 0; k0 < p->lm; k0 += bk) {
        int64_t kb = min64(bk, p->lm - k0), valid = min64(kb, p->L - k0);
        for (int64_t t = 0; t < kb; t += mr)
            kern->gemm_tile(p->d, s->ka + (k0 + t) / mr * p->sliver, s->qb, p->scale, 0.0f,
                            s->st + t * nr, nr, mr, nr);
        int changed = softmax_tile(s->st, kb, valid, nr, m, l, alpha);
        if (k0 > 0 && changed) scale_columns(s->ot, p->dm, nr, alpha);
        for (int64_t g = 0; g < p->dm; g += mr)
            kern->gemm_tile(kb, s->va + g / mr * p->column + k0 * mr, s->st, 1.0f,
                            k0 == 0 ? 0.0f : 1.0f, s->ot + g * nr, nr, mr, nr);
    }
    for (int j = 0; j < rows; j++) {
        float inv = 1.0f / l[j];
        for (int64_t c = 0; c < p->d; c++) out[j * p->orow + c] = s->ot[c * nr + j] * inv;
        if (lse != NULL) lse[j] = m[j] + logf(l[j]);
    }
}

int ambient_attention_forward(int64_t n, int64_t length, int64_t heads, int64_t head_dim,
                              const float *qkv, float *out, float *lse) {
    ambient_clear_error();
    int status = check_shape(__func__, n, length, heads, head_dim);
    if (status) return status;
    if (n == 0 || length == 0 || heads == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(qkv);
    AMBIENT_REQUIRE_POINTER(out);
    const int64_t f = (int64_t)sizeof(float);
    int64_t in_bytes = n * length * heads * 3 * head_dim * f, out_bytes = in_bytes / 3,
            lse_bytes = n * heads * length * f;
    AMBIENT_REQUIRE(!ambient_overlaps(out, out_bytes, qkv, in_bytes), "%s: out = %p overlaps qkv = %p",
                    __func__, (void *)out, (const void *)qkv);
    if (lse != NULL) {
        AMBIENT_REQUIRE(!ambient_overlaps(lse, lse_bytes, qkv, in_bytes), "%s: lse = %p overlaps qkv = %p",
                        __func__, (void *)lse, (const void *)qkv);
        AMBIENT_REQUIRE(!ambient_overlaps(lse, lse_bytes, out, out_bytes), "%s: lse = %p overlaps out = %p",
                        __func__, (void *)lse, (void *)out);
    }

    attn_plan p;
    make_plan(&p, n, length, heads, head_dim);
    /* Key tiles of about 112 keys (8 slivers of 14 on AVX-512). */
    int64_t bk = tile_size(p.lm, p.group * p.mr, 112);
    int64_t qtiles = ceil_div(length, p.nr), items = n * heads * qtiles;
    int64_t per_thread = round_up(p.lm / p.mr * p.sliver, 16) + round_up(p.dm / p.mr * p.column, 16) +
                         round_up(p.d * p.nr, 16) + round_up(bk * p.nr, 16) + round_up(p.dm * p.nr, 16);
    int threads = ambient_cpu_threads();
    double flops = 4.0 * (double)n * (double)heads * (double)length * (double)length * (double)head_dim;
    if (flops < (double)PARALLEL_FLOPS) threads = 1;
    if (threads > items) threads = (int)items;

    float *scratch = ambient_scratch_take(&scratch_cache, per_thread * threads);
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of scratch",
                            __func__, (long long)(per_thread * threads * f));

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        float *cursor = scratch + t * per_thread;
        forward_scratch s;
        s.ka = carve(&cursor, p.lm / p.mr * p.sliver);
        s.va = carve(&cursor, p.dm / p.mr * p.column);
        s.qb = carve(&cursor, p.d * p.nr);
        s.st = carve(&cursor, bk * p.nr);
        s.ot = carve(&cursor, p.dm * p.nr);
        /* Contiguous runs of query tiles, so a head's keys are packed once per thread. */
        int64_t begin = items * t / nt, end = items * (t + 1) / nt, packed = -1;
        for (int64_t item = begin; item < end; item++) {
            int64_t head = item / qtiles, q0 = item % qtiles * p.nr;
            int64_t b = head / heads, h = head % heads;
            const float *base = qkv + b * length * p.tok + h * 3 * head_dim;
            if (head != packed) {
                pack_rows_by_channel(&p, length, base + head_dim, p.tok, s.ka);
                pack_rows_by_token(&p, length, base + 2 * head_dim, p.tok, s.va);
                packed = head;
            }
            forward_query_tile(&p, &s, bk, base + q0 * p.tok, (int)min64(p.nr, length - q0),
                               out + (b * length + q0) * p.orow + h * head_dim,
                               lse == NULL ? NULL : lse + head * length + q0);
        }
    }
    ambient_scratch_give(&scratch_cache, scratch);
    return AMBIENT_STATUS_OK;
}

/* ---- Backward ------------------------------------------------------------------------------ */

typedef struct {
    float *qa, *doa, *qc, *doc, *dd; /* per head: Q, dO packed both ways; D */
    float *kb, *vb, *kd;             /* per key tile: K, V as B operands over channels, K over keys */
    float *st, *dpt, *dsa;           /* per tile pair: S then P, dP then dS, dS transposed */
    float *dvt, *dkt;                /* dV^T, dK^T of the key tile */
    float *dq;                       /* lm x dn accumulator of dQ / scale */
} backward_scratch;

/* P = exp(S - lse) and dS = P (dP - D) over one qb x nr block: rows past rows_valid and
 * columns past cols_valid get 0 in both. */
static inline __attribute__((always_inline)) void probs_step(float *restrict st, float *restrict dp,
                                                             int64_t qb, int64_t rows_valid,
                                                             const int nr, int cols_valid,
                                                             const float *restrict lse,
                                                             const float *restrict dd) {
    for (int64_t i = 0; i < rows_valid; i++) {
        float li = lse[i], di = dd[i];
#pragma omp simd
        for (int j = 0; j < nr; j++) {
            float e = ambient_fast_expf(st[i * nr + j] - li);
            e = j < cols_valid ? e : 0.0f;
            st[i * nr + j] = e;
            dp[i * nr + j] = e * (dp[i * nr + j] - di);
        }
    }
    for (int64_t i = rows_valid; i < qb; i++)
        for (int j = 0; j < nr; j++) st[i * nr + j] = dp[i * nr + j] = 0.0f;
}

SIMD_CLONES
static void probs_block(float *st, float *dp, int64_t qb, int64_t rows_valid, int nr,
                        int cols_valid, const float *lse, const float *dd) {
    if (nr == 32) probs_step(st, dp, qb, rows_valid, 32, cols_valid, lse, dd);
    else probs_step(st, dp, qb, rows_valid, nr, cols_valid, lse, dd);
}

/* D_i = <dO_i, O_i> for the head's rows, 0 for padded ones. */
SIMD_CLONES
static void row_dots(const attn_plan *p, const float *dout, const float *out, float *dd) {
    for (int64_t i = 0; i < p->lm; i++) {
        float sum = 0.0f;
        if (i < p->L) {
            const float *a = dout + i * p->orow, *b = out + i * p->orow;
#pragma omp simd reduction(+ : sum)
            for (int64_t c = 0; c < p->d; c++) sum += a[c] * b[c];
        }
        dd[i] = sum;
    }
}

/* Key tiles [t0, t1) of tile size bk (keys) of one head, every query tile (size bq) against
 * each; dK and dV of those keys go to dqkv, dQ / scale is left in s->dq (lm x dn). */
static void backward_task(const attn_plan *p, const backward_scratch *s, int64_t bq, int64_t bk,
                          int64_t t0, int64_t t1, const float *base, const float *dout_base,
                          const float *out_base, const float *lse, float *dbase) {
    const ambient_cpu_kernels *kern = p->kern;
    const int mr = p->mr, nr = p->nr;
    const int64_t d = p->d, L = p->L;

    pack_rows_by_channel(p, L, base, p->tok, s->qa);
    pack_rows_by_channel(p, L, dout_base, p->orow, s->doa);
    pack_rows_by_token(p, L, base, p->tok, s->qc);
    pack_rows_by_token(p, L, dout_base, p->orow, s->doc);
    row_dots(p, dout_base, out_base, s->dd);
    memset(s->dq, 0, (size_t)(p->lm * p->dn) * sizeof(float));

    for (int64_t kt = t0; kt < t1; kt++) {
        int64_t k0 = kt * bk, kb = min64(bk, p->ln - k0), kvalid = min64(kb, L - k0);
        int64_t blocks = kb / nr;
        for (int64_t jb = 0; jb < blocks; jb++) {
            const float *key = base + (k0 + jb * nr) * p->tok;
            int rows = (int)min64(nr, L - k0 - jb * nr);
            kern->pack_transposed(d, rows, nr, key + d, p->tok, s->kb + jb * d * nr);
            kern->pack_transposed(d, rows, nr, key + 2 * d, p->tok, s->vb + jb * d * nr);
        }
        pack_keys_by_token(p, kb, bk, kvalid, base + k0 * p->tok + d, s->kd);

        for (int64_t q0 = 0; q0 < p->lm; q0 += bq) {
            int64_t qb = min64(bq, p->lm - q0), qvalid = max64(0, min64(qb, L - q0));
            float beta = q0 == 0 ? 0.0f : 1.0f;
            for (int64_t jb = 0; jb < blocks; jb++) {
                float *st = s->st + jb * bq * nr, *dpt = s->dpt + jb * bq * nr;
                for (int64_t i = 0; i < qb; i += mr) {
                    const int64_t sl = (q0 + i) / mr * p->sliver;
                    kern->gemm_tile(d, s->qa + sl, s->kb + jb * d * nr, p->scale, 0.0f, st + i * nr, nr, mr, nr);
                    kern->gemm_tile(d, s->doa + sl, s->vb + jb * d * nr, 1.0f, 0.0f, dpt + i * nr, nr, mr, nr);
                }
                probs_block(st, dpt, qb, qvalid, nr, (int)min64(nr, L - k0 - jb * nr), lse + q0, s->dd + q0);
                for (int64_t g = 0; g < p->dm; g += mr) {
                    const int64_t col = g / mr * p->column + q0 * mr;
                    kern->gemm_tile(qb, s->doc + col, st, 1.0f, beta, s->dvt + jb * p->dm * nr + g * nr, nr, mr, nr);
                    kern->gemm_tile(qb, s->qc + col, dpt, 1.0f, beta, s->dkt + jb * p->dm * nr + g * nr, nr, mr, nr);
                }
                for (int64_t i = 0; i < qb; i += mr)
                    kern->pack_transposed(nr, mr, mr, dpt + i * nr, nr, s->dsa + i * bk + jb * nr * mr);
            }
            for (int64_t i = 0; i < qb; i += mr)
                for (int64_t jg = 0; jg < p->dn; jg += nr)
                    kern->gemm_tile(kb, s->dsa + i * bk, s->kd + jg / nr * bk * nr, 1.0f, 1.0f,
                                    s->dq + (q0 + i) * p->dn + jg, p->dn, mr, nr);
        }

        /* dK = scale dK^T^T and dV = dV^T^T into the tile's keys. */
        for (int64_t key = 0; key < kvalid; key++) {
            const float *kt_col = s->dkt + key / nr * p->dm * nr + key % nr;
            const float *vt_col = s->dvt + key / nr * p->dm * nr + key % nr;
            float *dk = dbase + (k0 + key) * p->tok + d, *dv = dk + d;
            for (int64_t c = 0; c < d; c++) {
                dk[c] = p->scale * kt_col[c * nr];
                dv[c] = vt_col[c * nr];
            }
        }
    }
}

int ambient_attention_backward(int64_t n, int64_t length, int64_t heads, int64_t head_dim,
                               const float *qkv, const float *out, const float *lse,
                               const float *dout, float *dqkv) {
    ambient_clear_error();
    int status = check_shape(__func__, n, length, heads, head_dim);
    if (status) return status;
    if (n == 0 || length == 0 || heads == 0) return AMBIENT_STATUS_OK;
    AMBIENT_REQUIRE_POINTER(qkv);
    AMBIENT_REQUIRE_POINTER(out);
    AMBIENT_REQUIRE_POINTER(lse);
    AMBIENT_REQUIRE_POINTER(dout);
    AMBIENT_REQUIRE_POINTER(dqkv);
    const int64_t f = (int64_t)sizeof(float);
    int64_t in_bytes = n * length * heads * 3 * head_dim * f, out_bytes = in_bytes / 3,
            lse_bytes = n * heads * length * f;
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, qkv, in_bytes), "%s: dqkv = %p overlaps qkv = %p",
                    __func__, (void *)dqkv, (const void *)qkv);
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, out, out_bytes), "%s: dqkv = %p overlaps out = %p",
                    __func__, (void *)dqkv, (const void *)out);
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, lse, lse_bytes), "%s: dqkv = %p overlaps lse = %p",
                    __func__, (void *)dqkv, (const void *)lse);
    AMBIENT_REQUIRE(!ambient_overlaps(dqkv, in_bytes, dout, out_bytes), "%s: dqkv = %p overlaps dout = %p",
                    __func__, (void *)dqkv, (const void *)dout);

    attn_plan p;
    make_plan(&p, n, length, heads, head_dim);
    /* Key tiles of about 128 keys in nr blocks, query tiles of about 112 in mr slivers. */
    int64_t bk = tile_size(p.ln, p.nr, 128);
    int64_t bq = tile_size(p.lm, p.group * p.mr, 112);
    int64_t ktiles = p.ln / bk + (p.ln % bk != 0), all_heads = n * heads;

    int threads = ambient_cpu_threads();
    double flops = 10.0 * (double)all_heads * (double)length * (double)length * (double)head_dim;
    if (flops < (double)PARALLEL_FLOPS) threads = 1;
    /* Split heads into parts of their key tiles until the tasks spread evenly. */
    int64_t parts = 1;
    while (parts < ktiles && threads > 1) {
        int64_t tasks = all_heads * parts;
        if (ceil_div(tasks, threads) * threads * 8 <= tasks * 9) break; /* within 12.5% */
        parts++;
    }
    int64_t tasks = all_heads * parts;
    if (threads > tasks) threads = (int)tasks;

    int64_t per_thread = 0, sizes[14];
    int pieces = 0;
    sizes[pieces++] = p.lm / p.mr * p.sliver;      /* qa */
    sizes[pieces++] = p.lm / p.mr * p.sliver;      /* doa */
    sizes[pieces++] = p.dm / p.mr * p.column;      /* qc */
    sizes[pieces++] = p.dm / p.mr * p.column;      /* doc */
    sizes[pieces++] = p.lm;                        /* dd */
    sizes[pieces++] = bk * head_dim;               /* kb */
    sizes[pieces++] = bk * head_dim;               /* vb */
    sizes[pieces++] = p.dn * bk;                   /* kd */
    sizes[pieces++] = bq * bk;                     /* st */
    sizes[pieces++] = bq * bk;                     /* dpt */
    sizes[pieces++] = bq * bk;                     /* dsa */
    sizes[pieces++] = p.dm * bk;                   /* dvt */
    sizes[pieces++] = p.dm * bk;                   /* dkt */
    sizes[pieces++] = p.lm * p.dn;                 /* dq */
    for (int i = 0; i < pieces; i++) per_thread += round_up(sizes[i], 16);
    int64_t partial_floats = parts > 1 ? tasks * length * head_dim : 0;
    int64_t total = per_thread * threads + round_up(partial_floats, 16);

    float *scratch = ambient_scratch_take(&scratch_cache, total);
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of scratch",
                            __func__, (long long)(total * f));
    float *partials = scratch + per_thread * threads;

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *cursor = scratch + omp_get_thread_num() * per_thread;
        backward_scratch s;
        float **slots[14] = {&s.qa, &s.doa, &s.qc, &s.doc, &s.dd, &s.kb, &s.vb,
                             &s.kd, &s.st, &s.dpt, &s.dsa, &s.dvt, &s.dkt, &s.dq};
        for (int i = 0; i < pieces; i++) *slots[i] = carve(&cursor, sizes[i]);

#pragma omp for schedule(dynamic, 1)
        for (int64_t task = 0; task < tasks; task++) {
            int64_t head = task / parts, part = task % parts;
            int64_t b = head / heads, h = head % heads;
            int64_t hoff = h * 3 * head_dim, ooff = b * length * p.orow + h * head_dim;
            const float *base = qkv + b * length * p.tok + hoff;
            float *dbase = dqkv + b * length * p.tok + hoff;
            backward_task(&p, &s, bq, bk, ktiles * part / parts, ktiles * (part + 1) / parts, base,
                          dout + ooff, out + ooff, lse + head * length, dbase);
            if (parts == 1) {
                for (int64_t i = 0; i < length; i++)
                    for (int64_t c = 0; c < head_dim; c++)
                        dbase[i * p.tok + c] = p.scale * s.dq[i * p.dn + c];
            } else {
                float *mine = partials + task * length * head_dim;
                for (int64_t i = 0; i < length; i++)
                    memcpy(mine + i * head_dim, s.dq + i * p.dn, (size_t)head_dim * sizeof(float));
            }
        }
        if (parts > 1) {
            /* The parts of each head in order: the sum does not depend on scheduling. */
#pragma omp for schedule(static)
            for (int64_t row = 0; row < all_heads * length; row++) {
                int64_t head = row / length, i = row % length, b = head / heads, h = head % heads;
                float *dq = dqkv + (b * length + i) * p.tok + h * 3 * head_dim;
                const float *src = partials + (head * parts * length + i) * head_dim;
                for (int64_t c = 0; c < head_dim; c++) {
                    float sum = 0.0f;
                    for (int64_t part = 0; part < parts; part++) sum += src[part * length * head_dim + c];
                    dq[c] = p.scale * sum;
                }
            }
        }
    }
    ambient_scratch_give(&scratch_cache, scratch);
    return AMBIENT_STATUS_OK;
}
