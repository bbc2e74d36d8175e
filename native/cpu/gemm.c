/*
 * ambient_gemm: for each b in [0, batch), C_b = alpha * op(A_b) * op(B_b) + beta * C_b,
 * row-major float32, op() an optional transpose (see ambient.h).
 *
 * GotoBLAS/BLIS layering, with the register tile (mr x nr) and the blocking (mc, kc, nc)
 * taken from the micro-kernel table dispatch.c chose for this processor:
 *   for jc over n in steps of nc:            a kc x nc panel of op(B) ...
 *     for pc over k in steps of kc:          ... packed once per step, shared by the team (L3)
 *       for ic over this thread's rows:      an mc x kc block of op(A), packed per thread (L2)
 *         for jr over this thread's columns: a kc x nr sliver of packed B (L1 / L2)
 *           for ir over the block's rows:    gemm_tile: C[mr x nr] += A sliver * B sliver
 * Packing reads op(A) and op(B) in whatever layout they have (which absorbs the transposes)
 * and writes k-major slivers, zero-padded to whole tiles so the micro-kernel never branches
 * inside its k loop; the kernel clips its tile to C at the edges. The first kc step applies
 * the caller's beta (beta == 0: C is never read), later ones accumulate (beta = 1).
 *
 * Threads split each C panel into a grid of row x column tile ranges (rows first, so A is
 * packed only once). A batch of small matrices is instead spread one matrix per thread, and a
 * product whose C is a few register tiles but whose k is long (the weight gradient of a 1x1
 * convolution, where k counts pixels) is split along k (see split_k).
 */
#include "internal.h"
#include "kernels.h"

#include <stdlib.h>

/* One matrix of the batch. */
typedef struct {
    int trans_a, trans_b;
    int64_t m, n, k;
    float alpha, beta;
    const float *a;
    int64_t lda;
    const float *b;
    int64_t ldb;
    float *c;
    int64_t ldc;
} gemm_problem;

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
static int64_t round_up(int64_t x, int64_t y) { return ceil_div(x, y) * y; }

/* ---- Packing ------------------------------------------------------------------------- */

/* The copies below read a few hundred bytes from each of many rows, a pattern the hardware
 * prefetchers follow poorly when the matrix comes from memory: ask for the row that is
 * PREFETCH_ROWS ahead while copying this one. */
#define PREFETCH_ROWS 16

static void prefetch_range(const float *p, int64_t count) {
    for (int64_t i = 0; i < count; i += 16) __builtin_prefetch(p + i);
    __builtin_prefetch(p + count - 1);
}

/* Rows [i0, i0 + mc) and columns [p0, p0 + kc) of op(A) into mr-row slivers, each kc x mr
 * stored k-major (dst[p * mr + r]), rows past mc zero. */
static void pack_a(const gemm_problem *g, const ambient_cpu_kernels *kern, int64_t i0, int64_t mc,
                   int64_t p0, int64_t kc, float *restrict dst) {
    const int mr = kern->mr;
    if (!g->trans_a) {
        /* A is m x k: each sliver is a transposed block of A. */
        for (int64_t ir = 0; ir < mc; ir += mr)
            kern->pack_transposed(kc, (int)min64(mr, mc - ir), mr, g->a + (i0 + ir) * g->lda + p0,
                                  g->lda, dst + ir * kc);
        return;
    }
    /* A is k x m: row p of A holds k step p of every sliver; reading A row by row keeps the
     * loads sequential when A comes from memory. */
    for (int64_t p = 0; p < kc; p++) {
        const float *src = g->a + (p0 + p) * g->lda + i0;
        if (p + PREFETCH_ROWS < kc) prefetch_range(src + PREFETCH_ROWS * g->lda, mc);
        for (int64_t ir = 0; ir < mc; ir += mr) {
            int rows = (int)min64(mr, mc - ir);
            float *out = dst + ir * kc + p * mr;
            for (int r = 0; r < rows; r++) out[r] = src[ir + r];
            for (int r = rows; r < mr; r++) out[r] = 0.0f;
        }
    }
}

/* Columns [j0, j1) and rows [p0, p0 + kc) of op(B) into nr-column slivers, each kc x nr
 * stored k-major (dst[p * nr + j]), columns past j1 zero. j0 is a multiple of nr from the
 * panel's start; dst points at j0's sliver. */
static void pack_b(const gemm_problem *g, const ambient_cpu_kernels *kern, int64_t j0, int64_t j1,
                   int64_t p0, int64_t kc, float *restrict dst) {
    const int nr = kern->nr;
    if (g->trans_b) {
        /* B is n x k: each sliver is a transposed block of B. */
        for (int64_t j = j0; j < j1; j += nr)
            kern->pack_transposed(kc, (int)min64(nr, j1 - j), nr, g->b + j * g->ldb + p0, g->ldb,
                                  dst + (j - j0) * kc);
        return;
    }
    /* B is k x n: row p of B holds k step p of every sliver; read it row by row. */
    for (int64_t p = 0; p < kc; p++) {
        const float *src = g->b + (p0 + p) * g->ldb;
        if (p + PREFETCH_ROWS < kc) prefetch_range(src + PREFETCH_ROWS * g->ldb + j0, j1 - j0);
        for (int64_t j = j0; j < j1; j += nr) {
            int cols = (int)min64(nr, j1 - j);
            float *out = dst + (j - j0) * kc + p * nr;
            for (int c = 0; c < cols; c++) out[c] = src[j + c];
            for (int c = cols; c < nr; c++) out[c] = 0.0f;
        }
    }
}

/* ---- The blocked product ---------------------------------------------------------------- */

/* Splits `threads` into a tr x tc grid over row_tiles x col_tiles register tiles that
 * minimises the largest share; ties go to more row groups, which pack less of A twice. */
static void split_team(int threads, int64_t row_tiles, int64_t col_tiles, int *tr, int *tc) {
    int64_t best = -1;
    for (int r = threads; r >= 1; r--) {
        if (threads % r) continue;
        int64_t share = ceil_div(row_tiles, r) * ceil_div(col_tiles, threads / r);
        if (best < 0 || share < best) {
            best = share;
            *tr = r;
            *tc = threads / r;
        }
    }
}

static void team_barrier(int threads) {
    if (threads > 1) {
#pragma omp barrier
    }
}

/* One matrix, computed by thread `tid` of a team of `threads` that all call this with the
 * same arguments (threads == 1: no synchronisation). b_pack is the team's shared kc x nc
 * buffer, a_pack this thread's mc x kc buffer. */
static void gemm_run(const gemm_problem *g, const ambient_cpu_kernels *kern, float *b_pack,
                     float *a_pack, int tid, int threads) {
    const int mr = kern->mr, nr = kern->nr;
    const int64_t row_tiles = ceil_div(g->m, mr), block_tiles = kern->mc / mr;
    /* A that is not transposed is already rows of k: where the table has a micro-kernel that
     * reads such rows, skip packing it while k is short and C narrow (packing costs most
     * against few column slivers; long rows, or rows a multiple of 256 floats apart, which
     * fall into the same L1 sets, are faster packed). */
    const int direct = kern->gemm_tile_rows != NULL && !g->trans_a && g->k <= 256 && g->lda % 256 != 0 &&
                       g->n <= 8 * (int64_t)nr;

    for (int64_t jc = 0; jc < g->n; jc += kern->nc) {
        int64_t nc = min64(kern->nc, g->n - jc), col_tiles = ceil_div(nc, nr);
        int tr = 1, tc = 1;
        split_team(threads, row_tiles, col_tiles, &tr, &tc);
        int row_group = tid / tc, col_group = tid % tc;
        int64_t row_begin = row_tiles * row_group / tr, row_end = row_tiles * (row_group + 1) / tr;
        int64_t col_begin = col_tiles * col_group / tc, col_end = col_tiles * (col_group + 1) / tc;
        /* Equal blocks of at most mc rows, so that no block is a sliver. */
        int64_t blocks = ceil_div(row_end - row_begin, block_tiles);
        int64_t tiles_per_block = blocks ? ceil_div(row_end - row_begin, blocks) : 1;

        for (int64_t pc = 0; pc < g->k; pc += kern->kc) {
            int64_t kc = min64(kern->kc, g->k - pc);
            float beta = pc == 0 ? g->beta : 1.0f;

            /* Every thread packs its share of the panel's B slivers, then waits for the rest. */
            int64_t s0 = col_tiles * tid / threads, s1 = col_tiles * (tid + 1) / threads;
            if (s1 > s0)
                pack_b(g, kern, jc + s0 * nr, min64(jc + s1 * nr, jc + nc), pc, kc, b_pack + s0 * nr * kc);
            team_barrier(threads);

            for (int64_t t0 = row_begin; t0 < row_end; t0 += tiles_per_block) {
                int64_t t1 = min64(t0 + tiles_per_block, row_end);
                int64_t i0 = t0 * mr;
                /* Unpacked A: only a last tile short of mr rows is packed (the row-major kernel
                 * reads all mr rows, which would run past A). */
                int64_t last = t1 * mr > g->m ? t1 - 1 : t1;
                if (!direct)
                    pack_a(g, kern, i0, min64(t1 * mr, g->m) - i0, pc, kc, a_pack);
                else if (last < t1)
                    pack_a(g, kern, last * mr, g->m - last * mr, pc, kc, a_pack);
                for (int64_t jt = col_begin; jt < col_end; jt++) {
                    int64_t j = jc + jt * nr;
                    int cols = (int)min64(nr, g->n - j);
                    const float *b_sliver = b_pack + jt * nr * kc;
                    for (int64_t it = t0; it < t1; it++) {
                        int64_t i = it * mr;
                        float *c = g->c + i * g->ldc + j;
                        if (direct && it < last)
                            kern->gemm_tile_rows(kc, g->a + i * g->lda + pc, g->lda, b_sliver, g->alpha, beta, c, g->ldc,
                                                 mr, cols);
                        else
                            kern->gemm_tile(kc, a_pack + (direct ? 0 : (it - t0) * mr * kc), b_sliver, g->alpha, beta, c,
                                            g->ldc, (int)min64(mr, g->m - i), cols);
                    }
                }
            }
            /* The next step repacks b_pack: everyone must be done reading it. */
            team_barrier(threads);
        }
    }
}

/* ---- Splitting k ------------------------------------------------------------------------------
 *
 * With few tiles of C, splitting C leaves threads idle or packs the same A block in each of
 * them, and every kc step ends at a barrier. Splitting k instead gives each thread its own
 * range of k and its own copy of C (thread 0 writes the caller's C with its beta, the others
 * a zeroed partial product), with one barrier at the end; the copies are then added in thread
 * order, so the result does not depend on scheduling. Worth it when each thread gets at least
 * two kc steps and C has no more than a few tiles per thread. */
static int split_k(const ambient_cpu_kernels *kern, int64_t batch, int64_t m, int64_t n, int64_t k, int threads) {
    if (threads < 2 || batch != 1) return 0;
    int64_t tiles = ceil_div(m, kern->mr) * ceil_div(n, kern->nr);
    return k >= 2 * kern->kc * threads && tiles <= 8 * threads;
}

/* Thread tid's share of g's k range into its own C (partials: m x n each, for tids >= 1). */
static void gemm_run_k_range(const gemm_problem *g, const ambient_cpu_kernels *kern, float *b_pack, float *a_pack,
                             float *partials, int tid, int threads) {
    int64_t k0 = g->k * tid / threads, k1 = g->k * (tid + 1) / threads;
    gemm_problem gt = *g;
    gt.k = k1 - k0;
    gt.a += g->trans_a ? k0 * g->lda : k0;
    gt.b += g->trans_b ? k0 : k0 * g->ldb;
    if (tid > 0) {
        gt.beta = 0.0f;
        gt.c = partials + (tid - 1) * g->m * g->n;
        gt.ldc = g->n;
    }
    gemm_run(&gt, kern, b_pack, a_pack, 0, 1);
}

/* C += the partial products, rows split between the threads (after a barrier). */
static void add_partials(const gemm_problem *g, const float *partials, int tid, int threads) {
    int64_t i0 = g->m * tid / threads, i1 = g->m * (tid + 1) / threads;
    for (int64_t i = i0; i < i1; i++) {
        float *restrict row = g->c + i * g->ldc;
        for (int t = 1; t < threads; t++) {
            const float *restrict part = partials + (t - 1) * g->m * g->n + i * g->n;
#pragma omp simd
            for (int64_t j = 0; j < g->n; j++) row[j] += part[j];
        }
    }
}

/* ---- Packing workspace -------------------------------------------------------------------- */

/* Packing buffers are kept between calls (cpu/scratch.c). */
static void *workspace_cache;

/* ---- Entry point ------------------------------------------------------------------------------ */

/* Elements from the first to the last one of `batch` rows x cols matrices with row stride ld
 * and matrix stride stride; 0 when empty, -1 past AMBIENT_MAX_COUNT (or int64 overflow). */
static int64_t span(int64_t batch, int64_t rows, int64_t cols, int64_t ld, int64_t stride) {
    if (batch == 0 || rows == 0 || cols == 0) return 0;
    int64_t x, y, s;
    if (__builtin_mul_overflow(batch - 1, stride, &x) || __builtin_mul_overflow(rows - 1, ld, &y) ||
        __builtin_add_overflow(x, y, &s) || __builtin_add_overflow(s, cols, &s) || s > AMBIENT_MAX_COUNT)
        return -1;
    return s;
}

/* Below this many multiply-adds per thread a thread team costs more than it saves. */
#define WORK_PER_THREAD (INT64_C(1) << 17)
/* A batch of matrices up to this many multiply-adds each goes one matrix per thread. */
#define SMALL_MATRIX_WORK (INT64_C(1) << 22)

int ambient_gemm(int32_t transpose_a, int32_t transpose_b, int64_t batch, int64_t m, int64_t n,
                 int64_t k, float alpha, const float *a, int64_t lda, int64_t stride_a,
                 const float *b, int64_t ldb, int64_t stride_b, float beta, float *c, int64_t ldc,
                 int64_t stride_c) {
    ambient_clear_error();
    AMBIENT_REQUIRE_COUNT(batch);
    AMBIENT_REQUIRE_COUNT(m);
    AMBIENT_REQUIRE_COUNT(n);
    AMBIENT_REQUIRE_COUNT(k);
    /* Stored shapes: A is a_rows x a_cols, B is b_rows x b_cols. */
    int64_t a_rows = transpose_a ? k : m, a_cols = transpose_a ? m : k;
    int64_t b_rows = transpose_b ? n : k, b_cols = transpose_b ? k : n;
    AMBIENT_REQUIRE(lda >= a_cols, "%s: lda = %lld is less than %s = %lld (A is %s)", __func__,
                    (long long)lda, transpose_a ? "m" : "k", (long long)a_cols,
                    transpose_a ? "k x m, transposed" : "m x k");
    AMBIENT_REQUIRE(ldb >= b_cols, "%s: ldb = %lld is less than %s = %lld (B is %s)", __func__,
                    (long long)ldb, transpose_b ? "k" : "n", (long long)b_cols,
                    transpose_b ? "n x k, transposed" : "k x n");
    AMBIENT_REQUIRE(ldc >= n, "%s: ldc = %lld is less than n = %lld", __func__, (long long)ldc,
                    (long long)n);
    AMBIENT_REQUIRE(stride_a >= 0, "%s: stride_a = %lld is negative", __func__, (long long)stride_a);
    AMBIENT_REQUIRE(stride_b >= 0, "%s: stride_b = %lld is negative", __func__, (long long)stride_b);
    AMBIENT_REQUIRE(stride_c >= 0, "%s: stride_c = %lld is negative", __func__, (long long)stride_c);
    if (batch == 0 || m == 0 || n == 0) return AMBIENT_STATUS_OK;

    AMBIENT_REQUIRE_POINTER(c);
    int64_t c_span = span(batch, m, n, ldc, stride_c);
    AMBIENT_REQUIRE(c_span >= 0, "%s: C spans more than 2^58 elements (batch = %lld, m = %lld, ldc = %lld, stride_c = %lld)",
                    __func__, (long long)batch, (long long)m, (long long)ldc, (long long)stride_c);
    /* Matrices of C written in parallel must not share elements. */
    AMBIENT_REQUIRE(batch == 1 || stride_c >= span(1, m, n, ldc, 0),
                    "%s: stride_c = %lld is less than one m x n matrix of C (%lld elements with ldc = %lld), so the batch overlaps itself",
                    __func__, (long long)stride_c, (long long)span(1, m, n, ldc, 0), (long long)ldc);
    if (k > 0) {
        AMBIENT_REQUIRE_POINTER(a);
        AMBIENT_REQUIRE_POINTER(b);
        int64_t a_span = span(batch, a_rows, a_cols, lda, stride_a);
        int64_t b_span = span(batch, b_rows, b_cols, ldb, stride_b);
        AMBIENT_REQUIRE(a_span >= 0, "%s: A spans more than 2^58 elements (batch = %lld, lda = %lld, stride_a = %lld)",
                        __func__, (long long)batch, (long long)lda, (long long)stride_a);
        AMBIENT_REQUIRE(b_span >= 0, "%s: B spans more than 2^58 elements (batch = %lld, ldb = %lld, stride_b = %lld)",
                        __func__, (long long)batch, (long long)ldb, (long long)stride_b);
        int64_t f = (int64_t)sizeof(float);
        AMBIENT_REQUIRE(!ambient_overlaps(c, c_span * f, a, a_span * f),
                        "%s: c = %p overlaps a = %p (C spans %lld elements, A %lld)", __func__,
                        (void *)c, (const void *)a, (long long)c_span, (long long)a_span);
        AMBIENT_REQUIRE(!ambient_overlaps(c, c_span * f, b, b_span * f),
                        "%s: c = %p overlaps b = %p (C spans %lld elements, B %lld)", __func__,
                        (void *)c, (const void *)b, (long long)c_span, (long long)b_span);
    }

    if (k == 0) {
        /* No products: C = beta * C, and beta == 0 must not read C. */
        for (int64_t e = 0; e < batch; e++)
            for (int64_t i = 0; i < m; i++) {
                float *row = c + e * stride_c + i * ldc;
                for (int64_t j = 0; j < n; j++) row[j] = beta == 0.0f ? 0.0f : beta * row[j];
            }
        return AMBIENT_STATUS_OK;
    }

    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    /* In double: m * n * k can pass 2^63 even when every matrix is addressable. */
    double work = (double)m * (double)n * (double)k;
    int threads = ambient_cpu_threads();
    if ((double)batch * work < (double)threads * (double)WORK_PER_THREAD)
        threads = (int)((double)batch * work / (double)WORK_PER_THREAD) + 1;
    if (threads < 1) threads = 1;
    int one_per_thread = threads > 1 && batch > 1 && work <= (double)SMALL_MATRIX_WORK;
    int by_k = !one_per_thread && split_k(kern, batch, m, n, k, threads);

    /* Buffer sizes for this problem (not more than the blocking needs). */
    int64_t kc = min64(kern->kc, k);
    int64_t a_floats = round_up(min64(kern->mc, round_up(m, kern->mr)) * kc, 16);
    int64_t b_floats = round_up(min64(kern->nc, round_up(n, kern->nr)) * kc, 16);
    int64_t partial_floats = by_k ? round_up((threads - 1) * m * n, 16) : 0;
    int64_t total = one_per_thread || by_k ? threads * (a_floats + b_floats) + partial_floats : b_floats + threads * a_floats;
    float *workspace = ambient_scratch_take(&workspace_cache, total);
    if (workspace == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "%s: cannot allocate %lld bytes of packing buffers",
                            __func__, (long long)(total * (int64_t)sizeof(float)));

    gemm_problem g = {transpose_a != 0, transpose_b != 0, m, n, k, alpha, beta, a, lda, b, ldb, c, ldc};
    if (by_k) {
        float *partials = workspace + threads * (a_floats + b_floats);
#pragma omp parallel num_threads(threads)
        {
            int tid = omp_get_thread_num(), team = omp_get_num_threads();
            float *b_pack = workspace + tid * (a_floats + b_floats);
            gemm_run_k_range(&g, kern, b_pack, b_pack + b_floats, partials, tid, team);
#pragma omp barrier
            add_partials(&g, partials, tid, team);
        }
    } else if (one_per_thread) {
#pragma omp parallel num_threads(threads)
        {
            float *b_pack = workspace + omp_get_thread_num() * (a_floats + b_floats);
            float *a_pack = b_pack + b_floats;
#pragma omp for schedule(dynamic, 1)
            for (int64_t e = 0; e < batch; e++) {
                gemm_problem ge = g;
                ge.a += e * stride_a;
                ge.b += e * stride_b;
                ge.c += e * stride_c;
                gemm_run(&ge, kern, b_pack, a_pack, 0, 1);
            }
        }
    } else {
#pragma omp parallel num_threads(threads) if (threads > 1)
        {
            int tid = omp_get_thread_num(), team = omp_get_num_threads();
            float *a_pack = workspace + b_floats + tid * a_floats;
            for (int64_t e = 0; e < batch; e++) {
                gemm_problem ge = g;
                ge.a += e * stride_a;
                ge.b += e * stride_b;
                ge.c += e * stride_c;
                gemm_run(&ge, kern, workspace, a_pack, tid, team);
            }
        }
    }
    ambient_scratch_give(&workspace_cache, workspace);
    return AMBIENT_STATUS_OK;
}
