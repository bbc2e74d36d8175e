/*
 * 3x3 "same" convolution (NHWC, stride 1, pad 1) by Winograd F(2x2, 3x3), used by
 * ambient_conv2d_forward, ambient_conv2d_backward_input and (below, "Weight gradient")
 * ambient_conv2d_backward_weight; cpu/conv2d.c decides when.
 *
 * The output is cut into 2x2 tiles; tile (ty, tx) reads the 4x4 input patch at
 * (2 ty - 1, 2 tx - 1) (zero outside the image). With
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1],  G = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 1],
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * every tile's output is  Y = A^T [ sum_k (G g_jk G^T) o (B^T d_k B) ] A,  so for each of the
 * 16 positions (u, v) of the 4x4 transform domain the sum over input channels k is one matrix
 * product  M_uv[tiles, c_out] = V_uv[tiles, c_in] * U_uv[c_in, c_out]: 16 products of 4 / 9
 * the multiply-adds of the direct convolution's one (2.25x fewer), done by the GEMM
 * micro-kernel (kernels.h). F(2x2) keeps float32 rounding close to the direct sum (the
 * transforms only add, subtract and halve); F(4x4) would save more but amplifies it.
 *
 * The input gradient is the same convolution of dy with W'[i, t, o] = W[o, 8 - t, i] (the
 * kernel flipped and its channels transposed), so only the weight transform differs.
 *
 * Work: U is transformed and packed once per call (all threads); then threads take blocks of
 * `block` tiles (a multiple of the micro-kernel's mr): input transform (channels vectorised,
 * NHWC keeps them contiguous) into a small row-major buffer, packed per position into the
 * micro-kernel's A layout; 16 x (col slivers x row slivers) micro-kernel calls into M; output
 * transform into y (beta applied there). A block's V and M stay in L2.
 */
#include "internal.h"
#include "kernels.h"

#include <stdlib.h>
#include <string.h>

#define SIMD_CLONES __attribute__((target_clones("avx512f", "arch=haswell", "default")))

static int64_t min64(int64_t x, int64_t y) { return x < y ? x : y; }
static int64_t ceil_div(int64_t x, int64_t y) { return (x + y - 1) / y; }
static int64_t round_up(int64_t x, int64_t y) { return ceil_div(x, y) * y; }

static void *winograd_scratch_slot;

typedef struct {
    int64_t n, h, w, cin, cout; /* of the convolution computed: src has cin channels, dst cout */
    int64_t th, tw, tiles;      /* tiles per column, per row, in all */
    int64_t block, kc_step, ncols_pad;
    const float *src, *weight;
    int flipped;
    float beta;
    float *dst;
} wino_problem;

/* Tiles per block: several row slivers so that each packed B sliver is reused, while the
 * block's V (16 x block x cin) and M (16 x block x cout) stay in L2 (400 KiB: a few percent
 * faster on Zen 4 than budgets from 256 KiB to 1.6 MiB). */
static int64_t block_tiles(const ambient_cpu_kernels *kern, int64_t cin, int64_t cout, int64_t tiles) {
    int64_t budget = (INT64_C(400) << 10) / (16 * 4 * (cin + cout));
    int64_t slivers = budget / kern->mr;
    if (slivers < 1) slivers = 1;
    if (slivers > 8) slivers = 8;
    return min64(slivers * kern->mr, round_up(tiles, kern->mr));
}

/* ---- Weight transform: U_uv[k, j] = (G g_jk G^T)[u, v], packed per position as the GEMM's B
 * (slivers of nr columns, k-major: bpack + pos * cin * ncols_pad + jt * nr * cin + k * nr). */
static void transform_weight_column(const wino_problem *pb, int nr, int64_t j, float *bpack) {
    const int64_t cin = pb->cin, cout = pb->cout, jt = j / nr, jr = j % nr;
    for (int64_t k = 0; k < cin; k++) {
        float g[9];
        for (int t = 0; t < 9; t++)
            g[t] = pb->flipped ? pb->weight[(k * 9 + (8 - t)) * cout + j] : pb->weight[(j * 9 + t) * cin + k];
        /* rows: G g (4 x 3) */
        float r[4][3];
        for (int c = 0; c < 3; c++) {
            float g0 = g[c], g1 = g[3 + c], g2 = g[6 + c];
            r[0][c] = g0;
            r[1][c] = 0.5f * (g0 + g1 + g2);
            r[2][c] = 0.5f * (g0 - g1 + g2);
            r[3][c] = g2;
        }
        for (int u = 0; u < 4; u++) {
            float g0 = r[u][0], g1 = r[u][1], g2 = r[u][2];
            float v[4] = {g0, 0.5f * (g0 + g1 + g2), 0.5f * (g0 - g1 + g2), g2};
            for (int q = 0; q < 4; q++)
                bpack[(u * 4 + q) * cin * pb->ncols_pad + jt * nr * cin + k * nr + jr] = v[q];
        }
    }
}

/* ---- Input transform of rows tiles starting at tile t0 into v[pos][r][cin] (row stride cin). */
SIMD_CLONES static void transform_input(const wino_problem *pb, int64_t t0, int rows, const float *zero,
                                        float *restrict v) {
    const int64_t cin = pb->cin, per_image = pb->th * pb->tw, pos_stride = (int64_t)rows * cin;
    for (int r = 0; r < rows; r++) {
        int64_t t = t0 + r, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
        const float *d[16];
        for (int a = 0; a < 4; a++)
            for (int b = 0; b < 4; b++) {
                int64_t yy = 2 * ty - 1 + a, xx = 2 * tx - 1 + b;
                d[a * 4 + b] = (yy < 0 || yy >= pb->h || xx < 0 || xx >= pb->w)
                                   ? zero
                                   : pb->src + ((img * pb->h + yy) * pb->w + xx) * cin;
            }
        float *out = v + r * cin;
        for (int64_t c = 0; c < cin; c++) {
            float e[4][4];
            /* columns: B^T d */
            for (int b = 0; b < 4; b++) {
                float d0 = d[b][c], d1 = d[4 + b][c], d2 = d[8 + b][c], d3 = d[12 + b][c];
                e[0][b] = d0 - d2;
                e[1][b] = d1 + d2;
                e[2][b] = d2 - d1;
                e[3][b] = d1 - d3;
            }
            /* rows: (B^T d) B */
            for (int a = 0; a < 4; a++) {
                float d0 = e[a][0], d1 = e[a][1], d2 = e[a][2], d3 = e[a][3];
                out[(a * 4 + 0) * pos_stride + c] = d0 - d2;
                out[(a * 4 + 1) * pos_stride + c] = d1 + d2;
                out[(a * 4 + 2) * pos_stride + c] = d2 - d1;
                out[(a * 4 + 3) * pos_stride + c] = d1 - d3;
            }
        }
    }
}

/* ---- Output transform of rows tiles starting at t0 from m[pos][r][cout] (row stride cout). */
SIMD_CLONES static void transform_output(const wino_problem *pb, int64_t t0, int64_t rows, const float *restrict m) {
    const int64_t cout = pb->cout, per_image = pb->th * pb->tw, pos_stride = pb->block * cout;
    const float beta = pb->beta;
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = t0 + r, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
        int64_t y0 = 2 * ty, x0 = 2 * tx;
        int ny = y0 + 1 < pb->h ? 2 : 1, nx = x0 + 1 < pb->w ? 2 : 1;
        float *o00 = pb->dst + ((img * pb->h + y0) * pb->w + x0) * cout;
        float *o01 = o00 + cout, *o10 = o00 + pb->w * cout, *o11 = o10 + cout;
        const float *in = m + r * cout;
        if (ny == 2 && nx == 2 && beta == 0.0f) {
            for (int64_t c = 0; c < cout; c++) {
                float s[2][4];
                for (int b = 0; b < 4; b++) {
                    float m0 = in[b * pos_stride + c], m1 = in[(4 + b) * pos_stride + c];
                    float m2 = in[(8 + b) * pos_stride + c], m3 = in[(12 + b) * pos_stride + c];
                    s[0][b] = m0 + m1 + m2;
                    s[1][b] = m1 - m2 - m3;
                }
                o00[c] = s[0][0] + s[0][1] + s[0][2];
                o01[c] = s[0][1] - s[0][2] - s[0][3];
                o10[c] = s[1][0] + s[1][1] + s[1][2];
                o11[c] = s[1][1] - s[1][2] - s[1][3];
            }
            continue;
        }
        float *outs[4] = {o00, o01, o10, o11};
        for (int64_t c = 0; c < cout; c++) {
            float s[2][4];
            for (int b = 0; b < 4; b++) {
                float m0 = in[b * pos_stride + c], m1 = in[(4 + b) * pos_stride + c];
                float m2 = in[(8 + b) * pos_stride + c], m3 = in[(12 + b) * pos_stride + c];
                s[0][b] = m0 + m1 + m2;
                s[1][b] = m1 - m2 - m3;
            }
            float o[4] = {s[0][0] + s[0][1] + s[0][2], s[0][1] - s[0][2] - s[0][3], s[1][0] + s[1][1] + s[1][2],
                          s[1][1] - s[1][2] - s[1][3]};
            for (int q = 0; q < 4; q++) {
                if ((q >> 1) >= ny || (q & 1) >= nx) continue;
                float *p = outs[q] + c;
                *p = beta == 0.0f ? o[q] : o[q] + beta * *p;
            }
        }
    }
}

int ambient_conv2d_winograd_applies(int64_t h, int64_t w) {
    const char *algo = getenv("AMBIENT_CONV_ALGO");
    if (algo != NULL && strcmp(algo, "gemm") == 0) return 0;
    /* a 1-pixel-wide image wastes at least half of every tile */
    return h >= 2 && w >= 2;
}

int ambient_conv2d_winograd(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, const float *src,
                            const float *weight, int flipped, float beta, float *dst, int threads) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    const int mr = kern->mr, nr = kern->nr;
    wino_problem pb = {n, h, w, cin, cout, ceil_div(h, 2), ceil_div(w, 2), 0, 0, 0, 0, src, weight, flipped, beta, dst};
    pb.tiles = n * pb.th * pb.tw;
    pb.block = block_tiles(kern, cin, cout, pb.tiles);
    int64_t steps = ceil_div(cin, kern->kc * 5 / 4);
    pb.kc_step = round_up(ceil_div(cin, steps), 16);
    pb.ncols_pad = round_up(cout, nr);
    const int64_t col_tiles = pb.ncols_pad / nr, blocks = ceil_div(pb.tiles, pb.block);
    if (threads > blocks) threads = (int)blocks;

    const int64_t b_floats = round_up(16 * cin * pb.ncols_pad, 16), z_floats = round_up(cin, 16);
    const int64_t a_floats = round_up(16 * pb.block * cin, 16), v_floats = round_up(16 * mr * cin, 16);
    const int64_t m_floats = round_up(16 * pb.block * cout, 16);
    const int64_t thread_floats = a_floats + v_floats + m_floats;
    float *scratch = ambient_scratch_take(&winograd_scratch_slot, b_floats + z_floats + threads * thread_floats);
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "ambient_conv2d: cannot allocate Winograd buffers");
    float *bpack = scratch, *zero = scratch + b_floats;
    memset(zero, 0, (size_t)z_floats * sizeof(float));

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        /* pad columns of the last sliver stay zero */
#pragma omp for schedule(static)
        for (int64_t jt = 0; jt < col_tiles; jt++) {
            if ((jt + 1) * nr > cout)
                for (int pos = 0; pos < 16; pos++)
                    memset(bpack + pos * cin * pb.ncols_pad + jt * nr * cin, 0, (size_t)(nr * cin) * sizeof(float));
        }
#pragma omp for schedule(static)
        for (int64_t j = 0; j < cout; j++) transform_weight_column(&pb, nr, j, bpack);

        float *apack = scratch + b_floats + z_floats + omp_get_thread_num() * thread_floats;
        float *vbuf = apack + a_floats, *mbuf = vbuf + v_floats;
#pragma omp for schedule(dynamic, 1)
        for (int64_t blk = 0; blk < blocks; blk++) {
            int64_t t0 = blk * pb.block, rows = min64(pb.block, pb.tiles - t0);
            /* V for the block, packed: apack + pos * block * cin + sliver * mr * cin + k * mr */
            for (int64_t ir = 0; ir < rows; ir += mr) {
                int r = (int)min64(mr, rows - ir);
                transform_input(&pb, t0 + ir, r, zero, vbuf);
                for (int pos = 0; pos < 16; pos++)
                    kern->pack_transposed(cin, r, mr, vbuf + pos * r * cin, cin,
                                          apack + pos * pb.block * cin + ir * cin);
            }
            for (int pos = 0; pos < 16; pos++) {
                const float *a = apack + pos * pb.block * cin, *b = bpack + pos * cin * pb.ncols_pad;
                float *mpos = mbuf + pos * pb.block * cout;
                for (int64_t pc = 0; pc < cin; pc += pb.kc_step) {
                    int64_t kc = min64(pb.kc_step, cin - pc);
                    float bt = pc == 0 ? 0.0f : 1.0f;
                    for (int64_t jt = 0; jt < col_tiles; jt++) {
                        int64_t j = jt * nr;
                        int cols = (int)min64(nr, cout - j);
                        for (int64_t ir = 0; ir < rows; ir += mr)
                            kern->gemm_tile(kc, a + ir * cin + pc * mr, b + j * cin + pc * nr, 1.0f, bt,
                                            mpos + ir * cout + j, cout, (int)min64(mr, rows - ir), cols);
                    }
                }
            }
            transform_output(&pb, t0, rows, mbuf);
        }
    }
    ambient_scratch_give(&winograd_scratch_slot, scratch);
    return AMBIENT_STATUS_OK;
}

/* ---- Weight gradient -------------------------------------------------------------------------
 *
 * The weight gradient is the transpose of the map W -> y for fixed x, so the same tiles give
 *   dW = G'^T [ sum over tiles (A' dy_t A'^T) o (B^T d_t B) ] G'
 * for each 2x2 tile dy_t of the output gradient and its 4x4 input patch d_t (zero outside the
 * image, which also covers the half tiles of odd sizes), with
 *   A' = [1 0; 1 1; 1 -1; 0 1],  G' = [1 0 0; .5 .5 .5; .5 -.5 .5; 0 0 -1]
 * (A and G of the forward pass with the sign of their last row flipped in both, which cancels
 * and spares the negations). The sum over tiles is, for each transform position (u, v), one
 * matrix product with K = tiles:  dU_uv[c_out, c_in] = Y_uv^T[c_out, tiles] * V_uv[tiles, c_in],
 * 16 x (c_out c_in) multiply-adds per tile instead of the direct 36 x (c_out c_in) per 2x2
 * pixels; the 3x3 result of the final transform is tiny.
 *
 * Work: one item per thread, (group of rows u, range of tiles), each summing into its own dU
 * blocks, so the result does not depend on scheduling; the end sums the ranges, applies G'
 * and beta. An item walks its tiles in chunks of kc, up to two rows u (8 positions) at a time:
 * it transforms the chunk straight into the micro-kernel's packed layouts (Y as A: slivers of
 * mr c_out rows; V as B: slivers of nr c_in columns), each source pixel loaded once for all the
 * positions, then runs the 8 products on them. kc is sized so that the chunk's packed panels
 * stay in L2; dU is read and written once per chunk.
 */

typedef struct {
    int64_t n, h, w, cin, cout, th, tw, tiles;
    int64_t ranges, kc_max, rows_pad, cols_pad; /* dU_uv is rows_pad (c_out) x cols_pad (c_in) */
    const float *x, *dy, *zero;
    float *du; /* (range, position) blocks of rows_pad x cols_pad */
} wino_weight_problem;

/* The 4x4 patch d of tile t (x pixels (2 ty - 1 + a, 2 tx - 1 + b)) and its 2x2 gradient
 * (dy pixels (2 ty + i, 2 tx + j)), zero rows outside the image. */
static void tile_pointers(const wino_weight_problem *pb, int64_t t, const float *d[16], const float *g[4]) {
    int64_t per_image = pb->th * pb->tw, img = t / per_image, ty = (t % per_image) / pb->tw, tx = t % pb->tw;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) {
            int64_t yy = 2 * ty - 1 + a, xx = 2 * tx - 1 + b;
            d[a * 4 + b] = (yy < 0 || yy >= pb->h || xx < 0 || xx >= pb->w)
                               ? pb->zero
                               : pb->x + ((img * pb->h + yy) * pb->w + xx) * pb->cin;
        }
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            int64_t yy = 2 * ty + i, xx = 2 * tx + j;
            g[i * 2 + j] = (yy >= pb->h || xx >= pb->w) ? pb->zero : pb->dy + ((img * pb->h + yy) * pb->w + xx) * pb->cout;
        }
}

/* Transforms tiles [t0, t0 + kc) for rows u0 .. u0 + nu - 1 (positions q = (u - u0) * 4 + v)
 * into apack + q * a_pos (Y, slivers of mr at stride kc_max * mr) and bpack + q * b_pos (V,
 * slivers of nr at stride kc_max * nr), zero past the channels. Plain C, one channel at a time;
 * the AVX-512 version below does the same 16 channels at a time. */
static void transform_chunk_plain(const wino_weight_problem *pb, int mr, int nr, int u0, int nu, int64_t t0,
                                  int64_t kc, float *apack, int64_t a_pos, float *bpack, int64_t b_pos) {
    for (int64_t p = 0; p < kc; p++) {
        const float *d[16], *g[4];
        tile_pointers(pb, t0 + p, d, g);
        for (int64_t c = 0; c < pb->cols_pad; c++) {
            float *out = bpack + (c / nr) * pb->kc_max * nr + p * nr + c % nr;
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                float e[4];
                for (int b = 0; b < 4; b++) {
                    float d0 = 0, d1 = 0, d2 = 0, d3 = 0;
                    if (c < pb->cin) d0 = d[b][c], d1 = d[4 + b][c], d2 = d[8 + b][c], d3 = d[12 + b][c];
                    e[b] = u == 0 ? d0 - d2 : u == 1 ? d1 + d2 : u == 2 ? d2 - d1 : d1 - d3;
                }
                out[(q * 4 + 0) * b_pos] = e[0] - e[2];
                out[(q * 4 + 1) * b_pos] = e[1] + e[2];
                out[(q * 4 + 2) * b_pos] = e[2] - e[1];
                out[(q * 4 + 3) * b_pos] = e[1] - e[3];
            }
        }
        for (int64_t c = 0; c < pb->rows_pad; c++) {
            float *out = apack + (c / mr) * pb->kc_max * mr + p * mr + c % mr;
            float g00 = 0, g01 = 0, g10 = 0, g11 = 0;
            if (c < pb->cout) g00 = g[0][c], g01 = g[1][c], g10 = g[2][c], g11 = g[3][c];
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                float r0 = u == 0 ? g00 : u == 1 ? g00 + g10 : u == 2 ? g00 - g10 : g10;
                float r1 = u == 0 ? g01 : u == 1 ? g01 + g11 : u == 2 ? g01 - g11 : g11;
                out[(q * 4 + 0) * a_pos] = r0;
                out[(q * 4 + 1) * a_pos] = r0 + r1;
                out[(q * 4 + 2) * a_pos] = r0 - r1;
                out[(q * 4 + 3) * a_pos] = r1;
            }
        }
    }
}

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define HAVE_TRANSFORM_AVX512 1

static inline __attribute__((target("avx512f"))) __mmask16 lanes_mask(int64_t lanes) {
    return lanes <= 0 ? 0 : lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
}

/* The same with AVX-512: V 16 channels at a time (a sliver of nr is nr / 16 aligned vectors),
 * Y one mr sliver at a time with masked loads and stores. Slivers are walked, not found by
 * division: a 64-bit division per vector took a fifth of the time. */
__attribute__((target("avx512f"))) static void transform_chunk_avx512(const wino_weight_problem *pb, int mr, int nr,
                                                                      int u0, int nu, int64_t t0, int64_t kc,
                                                                      float *apack, int64_t a_pos, float *bpack,
                                                                      int64_t b_pos) {
    const __mmask16 store_y = lanes_mask(mr);
    for (int64_t p = 0; p < kc; p++) {
        const float *d[16], *g[4];
        tile_pointers(pb, t0 + p, d, g);
        float *sliver = bpack + p * nr;
        for (int64_t c0 = 0; c0 < pb->cols_pad; c0 += nr, sliver += pb->kc_max * nr)
            for (int half = 0; half < nr; half += 16) {
                int64_t c = c0 + half;
                __mmask16 m = lanes_mask(pb->cin - c);
                float *out = sliver + half;
                __m512 e[2][4];
                for (int b = 0; b < 4; b++) {
                    /* rows u of B^T d: source rows 1 and 2 serve every u, 0 and 3 one each */
                    __m512 d1 = _mm512_maskz_loadu_ps(m, d[4 + b] + c), d2 = _mm512_maskz_loadu_ps(m, d[8 + b] + c);
                    for (int q = 0; q < nu; q++) {
                        int u = u0 + q;
                        if (u == 0) e[q][b] = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, d[b] + c), d2);
                        else if (u == 1) e[q][b] = _mm512_add_ps(d1, d2);
                        else if (u == 2) e[q][b] = _mm512_sub_ps(d2, d1);
                        else e[q][b] = _mm512_sub_ps(d1, _mm512_maskz_loadu_ps(m, d[12 + b] + c));
                    }
                }
                for (int q = 0; q < nu; q++) {
                    _mm512_store_ps(out + (q * 4 + 0) * b_pos, _mm512_sub_ps(e[q][0], e[q][2]));
                    _mm512_store_ps(out + (q * 4 + 1) * b_pos, _mm512_add_ps(e[q][1], e[q][2]));
                    _mm512_store_ps(out + (q * 4 + 2) * b_pos, _mm512_sub_ps(e[q][2], e[q][1]));
                    _mm512_store_ps(out + (q * 4 + 3) * b_pos, _mm512_sub_ps(e[q][1], e[q][3]));
                }
            }
        float *out = apack + p * mr;
        for (int64_t c = 0; c < pb->rows_pad; c += mr, out += pb->kc_max * mr) {
            __mmask16 m = lanes_mask(pb->cout - c);
            __m512 g00 = _mm512_maskz_loadu_ps(m, g[0] + c), g01 = _mm512_maskz_loadu_ps(m, g[1] + c);
            __m512 g10 = _mm512_maskz_loadu_ps(m, g[2] + c), g11 = _mm512_maskz_loadu_ps(m, g[3] + c);
            for (int q = 0; q < nu; q++) {
                int u = u0 + q;
                __m512 r0 = u == 0 ? g00 : u == 1 ? _mm512_add_ps(g00, g10) : u == 2 ? _mm512_sub_ps(g00, g10) : g10;
                __m512 r1 = u == 0 ? g01 : u == 1 ? _mm512_add_ps(g01, g11) : u == 2 ? _mm512_sub_ps(g01, g11) : g11;
                _mm512_mask_storeu_ps(out + (q * 4 + 0) * a_pos, store_y, r0);
                _mm512_mask_storeu_ps(out + (q * 4 + 1) * a_pos, store_y, _mm512_add_ps(r0, r1));
                _mm512_mask_storeu_ps(out + (q * 4 + 2) * a_pos, store_y, _mm512_sub_ps(r0, r1));
                _mm512_mask_storeu_ps(out + (q * 4 + 3) * a_pos, store_y, r1);
            }
        }
    }
}
#endif

/* dU of rows u0 .. u0 + nu - 1 over the tiles of one range, into the range's blocks. */
static void weight_item(const wino_weight_problem *pb, const ambient_cpu_kernels *kern, int u0, int nu, int64_t range,
                        float *apack, float *bpack) {
    const int mr = kern->mr, nr = kern->nr;
    const int64_t t0 = pb->tiles * range / pb->ranges, t1 = pb->tiles * (range + 1) / pb->ranges;
    const int64_t ldc = pb->cols_pad, block = pb->rows_pad * ldc;
    const int64_t a_pos = pb->rows_pad * pb->kc_max, b_pos = pb->cols_pad * pb->kc_max;
    for (int ub = u0; ub < u0 + nu; ub += 2) {
        int rows = u0 + nu - ub < 2 ? 1 : 2;
        float *du0 = pb->du + (range * 16 + ub * 4) * block;
        if (t1 == t0) memset(du0, 0, (size_t)(rows * 4 * block) * sizeof(float));
        for (int64_t tc = t0; tc < t1; tc += pb->kc_max) {
            int64_t kc = min64(pb->kc_max, t1 - tc);
            float beta = tc == t0 ? 0.0f : 1.0f;
#ifdef HAVE_TRANSFORM_AVX512
            if (kern == &ambient_cpu_kernels_avx512)
                transform_chunk_avx512(pb, mr, nr, ub, rows, tc, kc, apack, a_pos, bpack, b_pos);
            else
#endif
                transform_chunk_plain(pb, mr, nr, ub, rows, tc, kc, apack, a_pos, bpack, b_pos);
            for (int q = 0; q < rows * 4; q++) {
                const float *a = apack + q * a_pos, *b = bpack + q * b_pos;
                float *du = du0 + q * block;
                for (int64_t j = 0; j < ldc; j += nr)
                    for (int64_t i = 0; i < pb->rows_pad; i += mr)
                        kern->gemm_tile(kc, a + i * pb->kc_max, b + j * pb->kc_max, 1.0f, beta, du + i * ldc + j, ldc,
                                        mr, nr);
            }
        }
    }
}

/* dW[o, a, b, i] = sum_uv G'[u, a] G'[v, b] dU_uv[o, i] (+ beta dW) for one output channel o. */
SIMD_CLONES static void weight_output(const wino_weight_problem *pb, int64_t o, float beta, float *dweight) {
    const int64_t block = pb->rows_pad * pb->cols_pad, cin = pb->cin;
    const float *base = pb->du + o * pb->cols_pad;
    float *out = dweight + o * 9 * cin;
    for (int64_t i = 0; i < cin; i++) {
        float m[16];
        for (int pos = 0; pos < 16; pos++) {
            float s = base[pos * block + i];
            for (int64_t r = 1; r < pb->ranges; r++) s += base[(r * 16 + pos) * block + i];
            m[pos] = s;
        }
        /* columns: t[a][v] = sum_u G'[u, a] m[u][v] */
        float t[3][4];
        for (int v = 0; v < 4; v++) {
            float m0 = m[v], m1 = m[4 + v], m2 = m[8 + v], m3 = m[12 + v];
            t[0][v] = m0 + 0.5f * (m1 + m2);
            t[1][v] = 0.5f * (m1 - m2);
            t[2][v] = 0.5f * (m1 + m2) - m3;
        }
        for (int a = 0; a < 3; a++) {
            float m0 = t[a][0], m1 = t[a][1], m2 = t[a][2], m3 = t[a][3];
            float w[3] = {m0 + 0.5f * (m1 + m2), 0.5f * (m1 - m2), 0.5f * (m1 + m2) - m3};
            for (int b = 0; b < 3; b++) {
                float *d = out + (a * 3 + b) * cin + i;
                *d = beta == 0.0f ? w[b] : w[b] + beta * *d;
            }
        }
    }
}

static int64_t gcd64(int64_t a, int64_t b) { return b == 0 ? a : gcd64(b, a % b); }

int ambient_conv2d_winograd_weight_applies(int64_t h, int64_t w, int64_t cin, int64_t cout) {
    if (!ambient_conv2d_winograd_applies(h, w)) return 0;
    /* The products pad c_out to mr rows and c_in to nr columns: with few input channels the
     * padding costs more than Winograd saves. Multiply-adds per 2x2 pixels, against the implicit
     * GEMM's (which pads 9 c_in to mr and c_out to nr); measured break-even near 0.9 (c_in = 16,
     * c_out = 64 or 128: 0.91 here, 0.93-0.99 in time), 0.75 leaves a margin for the transforms. */
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    double wino = 16.0 * (double)round_up(cout, kern->mr) * (double)round_up(cin, kern->nr);
    double gemm = 4.0 * (double)round_up(9 * cin, kern->mr) * (double)round_up(cout, kern->nr);
    return wino < 0.75 * gemm;
}

int ambient_conv2d_winograd_weight(int64_t n, int64_t h, int64_t w, int64_t cin, int64_t cout, const float *x,
                                   const float *dy, float beta, float *dweight, int threads) {
    const ambient_cpu_kernels *kern = ambient_cpu_kernels_get();
    wino_weight_problem pb = {.n = n, .h = h, .w = w, .cin = cin, .cout = cout, .th = ceil_div(h, 2), .tw = ceil_div(w, 2)};
    pb.tiles = n * pb.th * pb.tw;
    /* one item per thread: `groups` groups of rows u times `ranges` ranges of tiles */
    const int groups = (int)gcd64(4, threads), rows_per_group = 4 / groups;
    pb.ranges = threads / groups;
    pb.rows_pad = round_up(cout, kern->mr);
    pb.cols_pad = round_up(cin, kern->nr);
    /* kc: the packed panels of up to 8 positions in about 512 KiB of L2 */
    int64_t kc = (INT64_C(512) << 10) / (8 * 4 * (pb.rows_pad + pb.cols_pad)) / 16 * 16;
    if (kc < 32) kc = 32;
    pb.kc_max = min64(kc, round_up(ceil_div(pb.tiles, pb.ranges), 16));
    pb.x = x;
    pb.dy = dy;

    const int positions = rows_per_group < 2 ? 4 : 8;
    /* sizes near the header's limits would overflow the products below: refuse them first */
    double floats = 16.0 * (double)pb.ranges * (double)pb.rows_pad * (double)pb.cols_pad +
                    (double)threads * positions * (double)pb.kc_max * (double)(pb.rows_pad + pb.cols_pad);
    if (floats > 0x1p56)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "ambient_conv2d_backward_weight: %g floats of Winograd buffers are too many",
                            floats);
    const int64_t a_floats = positions * pb.rows_pad * pb.kc_max, b_floats = positions * pb.cols_pad * pb.kc_max;
    const int64_t z_floats = round_up((cin > cout ? cin : cout) + 32, 16);
    const int64_t du_floats = pb.ranges * 16 * pb.rows_pad * pb.cols_pad;
    float *scratch = ambient_scratch_take(&winograd_scratch_slot, z_floats + du_floats + threads * (a_floats + b_floats));
    if (scratch == NULL)
        return ambient_fail(AMBIENT_STATUS_OUT_OF_MEMORY, "ambient_conv2d_backward_weight: cannot allocate Winograd buffers");
    memset(scratch, 0, (size_t)z_floats * sizeof(float));
    pb.zero = scratch;
    pb.du = scratch + z_floats;

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        float *apack = pb.du + du_floats + omp_get_thread_num() * (a_floats + b_floats), *bpack = apack + a_floats;
#pragma omp for schedule(static)
        for (int item = 0; item < threads; item++)
            weight_item(&pb, kern, (item % groups) * rows_per_group, rows_per_group, item / groups, apack, bpack);
#pragma omp for schedule(static)
        for (int64_t o = 0; o < cout; o++) weight_output(&pb, o, beta, dweight);
    }
    ambient_scratch_give(&winograd_scratch_slot, scratch);
    return AMBIENT_STATUS_OK;
}
